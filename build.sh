#!/usr/bin/env bash
# build.sh — the one build command of dkd.
#   ./build.sh          build ./dkd (C reference path; CUDA too when nvcc is found)
#   ./build.sh test     build, then build and run every test; ends with "N passed, N failed[, N skipped]"
#   ./build.sh clean    remove build/ and ./dkd
# Environment knobs:
#   DKD_NATIVE=0        do not pass -march=native (portable binary)
#   DKD_NO_CUDA=1       do not use nvcc even if it is installed
#   DKD_ASAN=1          build with AddressSanitizer + UBSan (debugging)
#   CC=clang            another C compiler
#   CUDA_ARCHS="80 86 89 90"  GPU architectures compiled by nvcc (PTX of the last one is embedded too)
set -u
cd "$(dirname "$0")"
mode="${1:-build}"
if [ "$mode" = "clean" ]; then rm -rf build dkd; echo "cleaned"; exit 0; fi
if [ "$mode" = "-h" ] || [ "$mode" = "--help" ] || [ "$mode" = "help" ]; then sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
B=build
mkdir -p $B/obj $B/obj/kernels $B/obj/models $B/tests $B/cuda $B/emu

# ---- flags -------------------------------------------------------------------
# -std=c11 (not gnu11) keeps -ffp-contract=off: no silent a*b+c -> fma contraction,
# so float results match PyTorch's operation order where we ask for it.
CFLAGS="-std=c11 -O3 -g -Wall -Wextra -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I."
if [ "${DKD_NATIVE:-1}" != "0" ]; then CFLAGS="$CFLAGS -march=native"; fi
LDFLAGS="-lm"
if [ "${DKD_ASAN:-0}" = "1" ]; then CFLAGS="$CFLAGS -O1 -fsanitize=address,undefined -fno-omit-frame-pointer"; LDFLAGS="$LDFLAGS -fsanitize=address,undefined"; fi

# OpenMP: probe, announce.
OMP=""
if echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o $B/omp_probe >/dev/null 2>&1; then
  OMP="-fopenmp"; echo "build: OpenMP found ($CC -fopenmp): training uses all cores (--threads to change)"
else
  echo "build: WARNING: OpenMP not available with $CC: the CPU path will use ONE core"
fi
CFLAGS="$CFLAGS $OMP"; LDFLAGS="$LDFLAGS $OMP"

# stb (PNG plots): Debian package libstb-dev.
STB_INC=""
for d in /usr/include/stb /usr/include /usr/local/include/stb; do
  if [ -f "$d/stb_image_write.h" ]; then STB_INC="-I$d"; break; fi
done
if [ -z "$STB_INC" ]; then
  echo "build: ERROR: stb_image_write.h not found. Install it with: apt-get install libstb-dev" >&2; exit 1
fi
CFLAGS="$CFLAGS $STB_INC"

# CUDA: nvcc optional.
NVCC=""
if [ "${DKD_NO_CUDA:-0}" != "1" ] && command -v nvcc >/dev/null 2>&1; then NVCC=$(command -v nvcc); fi
CUDA_ARCHS="${CUDA_ARCHS:-80 86 89 90}"

# ---- sources -------------------------------------------------------------------
LIB_SRC="$(ls *.c | grep -v '^main\.c$') $(ls kernels/*.c models/*.c 2>/dev/null)"
CU_SRC="$(ls kernels/*.cu 2>/dev/null || true)"

fail=0
compile_c() {  # src obj
  local src=$1 obj=$2
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ dkd.h -nt "$obj" ] || [ build.sh -nt "$obj" ] ||
     [ -n "$(find kernels pickle.h -name '*.h' -newer "$obj" 2>/dev/null)" ]; then
    $CC $CFLAGS $EXTRA_CFLAGS -c "$src" -o "$obj" || return 1
  fi
}
EXTRA_CFLAGS=""
[ -n "$NVCC" ] && [ -n "$CU_SRC" ] && EXTRA_CFLAGS="-DDKD_HAVE_CUDA"

OBJS=""
for s in $LIB_SRC; do
  o=$B/obj/${s%.c}.o
  compile_c "$s" "$o" || fail=1
  OBJS="$OBJS $o"
done
[ $fail = 0 ] || { echo "build: FAILED (C sources)" >&2; exit 1; }

CUDA_OBJS=""; CUDA_LD=""
if [ -n "$NVCC" ] && [ -n "$CU_SRC" ]; then
  GENCODE=""
  for a in $CUDA_ARCHS; do GENCODE="$GENCODE -gencode arch=compute_$a,code=sm_$a"; done
  last=$(echo $CUDA_ARCHS | awk '{print $NF}')
  GENCODE="$GENCODE -gencode arch=compute_$last,code=compute_$last"
  echo "build: nvcc found ($NVCC): compiling $(echo $CU_SRC | wc -w) CUDA files for sm_{$(echo $CUDA_ARCHS | tr ' ' ',')} + PTX, warnings as errors"
  : > $B/cuda/ptxas.txt
  for s in $CU_SRC; do
    o=$B/cuda/$(basename ${s%.cu}).o
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ build.sh -nt "$o" ] || [ kernels/cuda_common.h -nt "$o" ]; then
      $NVCC -O3 -std=c++17 -I. -DDKD_HAVE_CUDA $GENCODE -Xptxas -v -Werror all-warnings -Xcompiler -Wall \
        -c "$s" -o "$o" 2> $B/cuda/$(basename ${s%.cu}).ptxas || { cat $B/cuda/$(basename ${s%.cu}).ptxas >&2; fail=1; }
    fi
    cat $B/cuda/$(basename ${s%.cu}).ptxas >> $B/cuda/ptxas.txt 2>/dev/null
    CUDA_OBJS="$CUDA_OBJS $o"
  done
  [ $fail = 0 ] || { echo "build: FAILED (CUDA sources)" >&2; exit 1; }
  CUDA_HOME="${CUDA_HOME:-$(dirname $(dirname $NVCC))}"
  CUDA_LD="-L$CUDA_HOME/lib64 -L$CUDA_HOME/targets/x86_64-linux/lib -lcudart -lstdc++ -Wl,-rpath,$CUDA_HOME/lib64"
  echo "build: ptxas report (registers, shared memory, spills): $B/cuda/ptxas.txt"
else
  [ -z "$NVCC" ] && echo "build: nvcc not found (or DKD_NO_CUDA=1): building the CPU path only"
fi

compile_c main.c $B/obj/main.o || exit 1
$CC $OBJS $B/obj/main.o $CUDA_OBJS -o dkd $LDFLAGS $CUDA_LD || { echo "build: FAILED (link)" >&2; exit 1; }
echo "build: ./dkd built ($( [ -n "$CUDA_OBJS" ] && echo "cpu + cuda" || echo "cpu only"))"

[ "$mode" = "test" ] || exit 0

# ---- tests -------------------------------------------------------------------
# Each test program prints its checks and ends with a line "RESULT <pass> <fail> <skip>".
P=0; F=0; S=0
run_test() {  # name cmd...
  local name=$1; shift
  echo "=== $name"
  local out; out=$("$@" 2>&1); local rc=$?
  echo "$out"
  local res; res=$(echo "$out" | grep '^RESULT ' | tail -1)
  if [ -z "$res" ]; then
    echo "FAIL $name: exited $rc without a RESULT line"; F=$((F+1)); return
  fi
  set -- $res
  P=$((P+$2)); F=$((F+$3)); S=$((S+$4))
  if [ $rc != 0 ] && [ "$3" = 0 ]; then echo "FAIL $name: exit code $rc"; F=$((F+1)); fi
}

TEST_LIB="$OBJS"
for t in tests/test_*.c; do
  [ -f "$t" ] || continue
  name=$(basename ${t%.c})
  if $CC $CFLAGS -Itests "$t" $TEST_LIB -o $B/tests/$name $LDFLAGS; then
    run_test $name ./$B/tests/$name
  else
    echo "FAIL $name: does not compile"; F=$((F+1))
  fi
done

# CUDA kernels under CPU emulation: every kernels/*.cu compiled as C++ by g++
# against tests/cuda_emu.h, linked with the C reference, driven by tests/emu_*.cpp.
if ls tests/emu_*.cpp >/dev/null 2>&1 && [ -f tests/cuda_emu.h ]; then
  EMU_FLAGS="-std=c++17 -O2 -g -I. -Itests -DDKD_CUDA_EMU -include tests/cuda_emu.h -Wall -Wno-unused-parameter $OMP"
  EMU_OBJS=""; efail=0
  for s in $CU_SRC; do
    o=$B/emu/$(basename ${s%.cu}).o
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ tests/cuda_emu.h -nt "$o" ] || [ kernels/cuda_common.h -nt "$o" ]; then
      $CXX $EMU_FLAGS -x c++ -c "$s" -o "$o" || efail=1
    fi
    EMU_OBJS="$EMU_OBJS $o"
  done
  if [ $efail = 0 ]; then
    for t in tests/emu_*.cpp; do
      name=$(basename ${t%.cpp})
      if $CXX $EMU_FLAGS -c "$t" -o $B/emu/$name.main.o && $CXX $B/emu/$name.main.o $EMU_OBJS $TEST_LIB -o $B/tests/$name $LDFLAGS; then
        run_test $name ./$B/tests/$name
      else
        echo "FAIL $name: does not compile"; F=$((F+1))
      fi
    done
  else
    echo "FAIL cuda emulation build: a .cu file does not compile with g++ + tests/cuda_emu.h"; F=$((F+1))
  fi
fi

# The nvcc build itself is a test where nvcc exists.
if [ -n "$NVCC" ] && [ -n "$CU_SRC" ]; then
  echo "=== nvcc build: all .cu files compiled warning-free (-Werror)"; P=$((P+1))
else
  echo "=== nvcc build: SKIP: nvcc not found, CUDA files not compiled"; S=$((S+1))
fi

# Shell tests (command line, end to end): tests/test_*.sh, run with ./dkd built.
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  run_test $(basename ${t%.sh}) bash "$t"
done

echo
if [ $S -gt 0 ]; then echo "$P passed, $F failed, $S skipped"; else echo "$P passed, $F failed"; fi
[ $F = 0 ]
