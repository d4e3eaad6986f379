#!/usr/bin/env bash
# build.sh — the one build command of dkd.
#   ./build.sh          build ./dkd (C reference path; CUDA too when nvcc is found)
#   ./build.sh test     build, then build and run every test; ends with "N passed, N failed[, N skipped]"
#   ./build.sh asan-test  the same tests under AddressSanitizer + UBSan: its own build dir
#                       (build-asan/) and binary (build-asan/dkd; ./dkd is left as it is),
#                       C path only, halting on the first report; skips the CUDA emulation tests;
#                       the shell tests' binary has the GEMM engines unsanitized (see below)
#   ./build.sh clean    remove build/, build-asan/ and ./dkd
# Environment knobs:
#   DKD_NATIVE=0        do not pass -march=native (portable binary; on x86-64 the GEMM and
#                       convolution kernels are built for AVX-512, AVX2+FMA and plain C either
#                       way and chosen at run time: kernels/isa.h, DKD_ISA=avx512|avx2|scalar)
#   DKD_NO_CUDA=1       do not use nvcc even if it is installed
#   DKD_ASAN=1          build with AddressSanitizer + UBSan (debugging)
#   DKD_NO_STB=1        build without stb even if installed (PNG output off, SVG only)
#   DKD_BUILD_DIR=DIR   ./build.sh (build mode only) in DIR instead of build/, the binary as
#                       DIR/dkd; ./dkd is left as it is (scripts/qemu_isa_check.sh uses build/qemu)
#   CC=clang            another C compiler
#   CUDA_ARCHS="80 86 89 90"  GPU architectures compiled by nvcc (PTX of the last one is embedded too)
set -u
cd "$(dirname "$0")"
mode="${1:-build}"
if [ "$mode" = "clean" ]; then rm -rf build build-asan dkd; echo "cleaned"; exit 0; fi
if [ "$mode" = "-h" ] || [ "$mode" = "--help" ] || [ "$mode" = "help" ]; then sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi
case "$mode" in build|test|asan-test) ;; *) echo "build.sh: unknown mode '$mode' (build, test, asan-test, clean, help)" >&2; exit 2;; esac

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
B=build; BIN=./dkd
if [ -n "${DKD_BUILD_DIR:-}" ] && [ "$DKD_BUILD_DIR" != build ]; then
  # (the tests run ./dkd and build/'s objects: another dir is for building only)
  [ "$mode" = build ] || { echo "build.sh: DKD_BUILD_DIR is for ./build.sh (build mode) only" >&2; exit 2; }
  B=$DKD_BUILD_DIR; BIN=$B/dkd
fi
if [ "$mode" = "asan-test" ]; then
  # A separate build dir and binary: the sanitized objects never mix with the optimised ones.
  B=build-asan; BIN=$B/dkd; DKD_ASAN=1; DKD_NO_CUDA=1
  export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
  echo "build: asan-test: -fsanitize=address,undefined in $B/, ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
fi
mkdir -p $B/obj $B/obj/kernels $B/obj/models $B/tests $B/cuda $B/emu

# ---- flags -------------------------------------------------------------------
# -std=c11 (not gnu11) keeps -ffp-contract=off: no silent a*b+c -> fma contraction,
# so float results match PyTorch's operation order where we ask for it.
CFLAGS="-std=c11 -O3 -g -Wall -Wextra -Wno-unused-parameter -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I."
LDFLAGS="-lm"
SAN_CFLAGS=""
if [ "${DKD_ASAN:-0}" = "1" ]; then
  # -O1 for debugging; asan-test trains whole (tiny) runs, so -O2: the sanitizers still check every access
  SAN_OPT=-O1; [ "$mode" = asan-test ] && SAN_OPT=-O2
  SAN_CFLAGS="$SAN_OPT -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
  LDFLAGS="$LDFLAGS -fsanitize=address,undefined"
fi
# Run-time instruction-set dispatch (kernels/isa.c) where the compiler targets x86-64.
# Sanitized builds (DKD_ASAN=1, asan-test) compile the kernels once, for this CPU, instead.
ISA_DISPATCH=0
if [ "${DKD_ASAN:-0}" != "1" ]; then
  case "$($CC -dumpmachine 2>/dev/null)" in x86_64*) ISA_DISPATCH=1; CFLAGS="$CFLAGS -DDKD_ISA_DISPATCH";; esac
fi
PORTABLE_CFLAGS="$CFLAGS"   # the per-instruction-set kernels add their own -m flags to these
if [ "${DKD_NATIVE:-1}" != "0" ]; then CFLAGS="$CFLAGS -march=native"; fi

# OpenMP: probe, announce.
OMP=""
if echo 'int main(void){return 0;}' | $CC -fopenmp -x c - -o $B/omp_probe >/dev/null 2>&1; then
  OMP="-fopenmp"; echo "build: OpenMP found ($CC -fopenmp): training uses all cores (--threads to change)"
else
  echo "build: WARNING: OpenMP not available with $CC: the CPU path will use ONE core"
fi
CFLAGS="$CFLAGS $OMP"; LDFLAGS="$LDFLAGS $OMP"

# stb (PNG plots): Debian package libstb-dev. Missing: installed here when we are
# root with apt-get (as .ci/run does), else dkd is built without PNG output (SVG only).
find_stb() {
  STB_INC=""
  for d in /usr/include/stb /usr/include /usr/local/include/stb; do
    if [ -f "$d/stb_image_write.h" ] && [ -f "$d/stb_easy_font.h" ]; then STB_INC="-I$d"; return 0; fi
  done
  return 1
}
if ! find_stb && [ "${DKD_NO_STB:-0}" != "1" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "build: stb headers not found: installing libstb-dev (apt-get install -y libstb-dev)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q libstb-dev >/dev/null 2>&1 ||
    { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libstb-dev >/dev/null 2>&1; } ||
    echo "build: could not install libstb-dev (offline?)"
  find_stb
fi
[ "${DKD_NO_STB:-0}" = "1" ] && STB_INC=""
if [ -n "$STB_INC" ]; then
  CFLAGS="$CFLAGS $STB_INC -DDKD_HAVE_STB"
  echo "build: stb found ($STB_INC): plots as PNG and SVG"
elif [ "${DKD_NO_STB:-0}" = "1" ]; then
  echo "build: DKD_NO_STB=1: building WITHOUT PNG output; plots are written as SVG only"
else
  echo "build: WARNING: stb headers not found (apt-get install libstb-dev): building WITHOUT PNG output; plots are written as SVG only"
fi
PLAIN_CFLAGS="$CFLAGS"; CFLAGS="$CFLAGS $SAN_CFLAGS"

# CUDA: nvcc optional.
NVCC=""
if [ "${DKD_NO_CUDA:-0}" != "1" ] && command -v nvcc >/dev/null 2>&1; then NVCC=$(command -v nvcc); fi
CUDA_ARCHS="${CUDA_ARCHS:-80 86 89 90}"

# ---- sources -------------------------------------------------------------------
LIB_SRC="$(ls *.c | grep -v '^main\.c$') $(ls kernels/*.c models/*.c 2>/dev/null)"
# The kernels built once per instruction set (x86-64), and the names they export.
ISA_SRC="kernels/gemm.c kernels/conv.c kernels/winograd.c kernels/shiftconv.c"
ISA_EXPORTS="sgemm_cpu conv2d_workspace_floats conv2d_forward_cpu conv2d_forward_eval_cpu conv2d_eval_cache_floats conv2d_backward_cpu conv2d_backward_set_cpu"
isa_flags() {
  case $1 in
    avx512) echo "-mavx512f -mavx512vl -mavx512bw -mavx512dq -mavx2 -mfma -mf16c -mprefer-vector-width=512";;
    avx2)   echo "-mavx2 -mfma -mf16c";;
    scalar) echo "";;
  esac
}
if [ $ISA_DISPATCH = 1 ]; then
  LIB_SRC=$(echo $LIB_SRC)
  for s in $ISA_SRC; do LIB_SRC=$(echo " $LIB_SRC " | sed "s| $s | |"); done
fi
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
# Objects built with other flags (DKD_NO_STB, DKD_NO_CUDA, DKD_ASAN, ...) are rebuilt.
[ "$(cat $B/cflags 2>/dev/null)" = "$CFLAGS $EXTRA_CFLAGS" ] ||
  { rm -f $B/obj/*.o $B/obj/*/*.o; echo "$CFLAGS $EXTRA_CFLAGS" > $B/cflags; }

OBJS=""
for s in $LIB_SRC; do
  o=$B/obj/${s%.c}.o
  compile_c "$s" "$o" || fail=1
  OBJS="$OBJS $o"
done
[ $fail = 0 ] || { echo "build: FAILED (C sources)" >&2; exit 1; }

# One object per instruction set: its kernels linked together (ld -r), the exported names
# renamed with the set's suffix (sgemm_cpu -> sgemm_cpu_avx2) and, except in the scalar
# one, every other global made local, so the copies never clash. kernels/isa.c dispatches.
if [ $ISA_DISPATCH = 1 ]; then
  for isa in avx512 avx2 scalar; do
    mkdir -p $B/obj/isa_$isa
    parts=""
    for s in $ISA_SRC; do
      o=$B/obj/isa_$isa/$(basename ${s%.c}).o
      if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ build.sh -nt "$o" ] ||
         [ -n "$(find kernels -name '*.h' -newer "$o" 2>/dev/null)" ]; then
        $CC $PORTABLE_CFLAGS $OMP $STB_INC $EXTRA_CFLAGS $(isa_flags $isa) -c "$s" -o "$o" || fail=1
      fi
      parts="$parts $o"
    done
    [ $fail = 0 ] || { echo "build: FAILED (kernels for $isa)" >&2; exit 1; }
    out=$B/obj/isa_$isa.o
    ren=""; keep=""
    for e in $ISA_EXPORTS; do ren="$ren --redefine-sym $e=${e}_$isa"; keep="$keep --keep-global-symbol=${e}_$isa"; done
    ld -r -o $out.tmp $parts && objcopy $ren $out.tmp && { [ $isa = scalar ] || objcopy $keep $out.tmp; } &&
      mv $out.tmp $out || { echo "build: FAILED (linking the $isa kernels)" >&2; exit 1; }
    OBJS="$OBJS $out"
  done
fi

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
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ build.sh -nt "$o" ] || [ -n "$(find kernels \( -name '*.h' -o -name '*.cuh' \) -newer "$o")" ]; then
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

# asan-test: the unit tests link every object sanitized; the binary the shell tests run
# links the two GEMM engines without sanitizers. Their micro-kernels keep a tile of
# accumulators in registers, which the instrumentation turns into checked memory
# (training ran ~50x slower); test_ops checks those files sanitized on small shapes.
BIN_OBJS="$OBJS"
if [ "$mode" = "asan-test" ]; then
  mkdir -p $B/obj/plain
  for s in kernels/gemm.c kernels/winograd.c kernels/shiftconv.c; do
    o=$B/obj/plain/$(basename ${s%.c}).o
    CFLAGS="$PLAIN_CFLAGS" compile_c "$s" "$o" || exit 1
    BIN_OBJS=$(echo " $BIN_OBJS " | sed "s| $B/obj/${s%.c}.o | $o |")
  done
fi
compile_c main.c $B/obj/main.o || exit 1
$CC $BIN_OBJS $B/obj/main.o $CUDA_OBJS -o $BIN $LDFLAGS $CUDA_LD || { echo "build: FAILED (link)" >&2; exit 1; }
echo "build: $BIN built ($( [ -n "$CUDA_OBJS" ] && echo "cpu + cuda" || echo "cpu only"))"

[ "$mode" = "build" ] && exit 0

# ---- tests -------------------------------------------------------------------
# Each test program prints its checks and ends with a line "RESULT <pass> <fail> <skip>".
P=0; F=0; S=0
run_test() {  # name cmd...
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  local out; out=$("$@" 2>&1); local rc=$?
  echo "$out"
  echo "    ($name: $((SECONDS - t0)) s)"
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

# The op checks again with shiftconv.c off (DKD_SHIFTCONV=0), where the CPU has AVX-512
# or AVX2+FMA and so takes it by default: the Winograd and implicit-GEMM paths it
# replaces on those layers stay tested on such machines too; and with the eval-mode
# Winograd tile forced to F(2x2) (by default F(4x4) on maps from 8x8).
if { grep -qw avx512f /proc/cpuinfo || { grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; }; } 2>/dev/null &&
   [ -x $B/tests/test_ops ]; then
  DKD_SHIFTCONV=0 run_test "test_ops[DKD_SHIFTCONV=0]" ./$B/tests/test_ops
  DKD_SHIFTCONV=0 DKD_WINO_TILE=2 run_test "test_ops[DKD_SHIFTCONV=0 DKD_WINO_TILE=2]" ./$B/tests/test_ops
fi

# The golden and op checks again on every other instruction-set path of the CPU kernels
# this CPU runs (the default one ran above; tests/test_isa.c checks the ops on every path
# against a double-precision formula, test_ops on many more shapes, 2 s per path).
if [ $ISA_DISPATCH = 1 ] && [ -x $B/tests/test_golden ]; then
  flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
  has() { for f in "$@"; do echo " $flags " | grep -q " $f " || return 1; done; }
  best=scalar; has avx2 fma && best=avx2; has avx512f avx512vl avx512bw avx512dq fma && best=avx512
  for isa in avx512 avx2 scalar; do
    [ "${DKD_ISA:-$best}" = $isa ] && continue   # (already run)
    case $isa in
      avx512) has avx512f avx512vl avx512bw avx512dq fma || { echo "=== test_golden[$isa]: SKIP: this CPU has no AVX-512"; S=$((S+1)); continue; };;
      avx2)   has avx2 fma || { echo "=== test_golden[$isa]: SKIP: this CPU has no AVX2+FMA"; S=$((S+1)); continue; };;
    esac
    DKD_ISA=$isa run_test "test_golden[$isa]" ./$B/tests/test_golden
    [ -x $B/tests/test_ops ] && DKD_ISA=$isa run_test "test_ops[$isa]" ./$B/tests/test_ops
  done
fi

# CUDA kernels under CPU emulation: every kernels/*.cu compiled as C++ by g++
# against tests/cuda_emu.h, linked with the C reference, driven by tests/emu_*.cpp.
if [ "$mode" = "asan-test" ]; then
  echo "=== CUDA emulation tests (tests/emu_*.cpp): SKIP under asan-test (fiber stacks; run by ./build.sh test)"; S=$((S+1))
elif ls tests/emu_*.cpp >/dev/null 2>&1 && [ -f tests/cuda_emu.h ]; then
  EMU_FLAGS="-std=c++17 -O2 -g -I. -Itests -DDKD_CUDA_EMU -include tests/cuda_emu.h -Wall -Wno-unused-parameter $OMP"
  EMU_OBJS=""; efail=0
  for s in $CU_SRC; do
    o=$B/emu/$(basename ${s%.cu}).o
    if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ tests/cuda_emu.h -nt "$o" ] || [ -n "$(find kernels \( -name '*.h' -o -name '*.cuh' \) -newer "$o")" ]; then
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
if [ "$mode" = "asan-test" ]; then
  :   # the sanitized build is the C path only, by design
elif [ -n "$NVCC" ] && [ -n "$CU_SRC" ]; then
  echo "=== nvcc build: all .cu files compiled warning-free (-Werror)"; P=$((P+1))
  # ptxas -v of every kernel, every architecture: no register spills (scripts/ptxas_report.sh)
  run_test ptxas_spills bash scripts/ptxas_report.sh --check $B/cuda/ptxas.txt
else
  echo "=== nvcc build: SKIP: nvcc not found, CUDA files not compiled"; S=$((S+1))
fi

# Shell tests (command line, end to end): tests/test_*.sh, run with ./dkd built.
# asan-test runs them from $B/root, a folder that mirrors the checkout with symlinks
# and whose ./dkd is the sanitized binary (the scripts cd to their checkout's root
# and call ./dkd); DKD_SANITIZED=1 tells them to shorten what is only slow.
SH_ROOT=.
if [ "$mode" = "asan-test" ]; then
  SH_ROOT=$B/root; rm -rf "$SH_ROOT"; mkdir -p "$SH_ROOT"
  for f in *; do [ "$f" = dkd ] || ln -s "$PWD/$f" "$SH_ROOT/$f"; done
  ln -s "$PWD/$BIN" "$SH_ROOT/dkd"; [ -d ../shared ] && ln -sfn "$(cd .. && pwd)/shared" "$B/shared"
  export DKD_SANITIZED=1
fi
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  run_test $(basename ${t%.sh}) bash "$SH_ROOT/$t"
done

echo
if [ $S -gt 0 ]; then echo "$P passed, $F failed, $S skipped"; else echo "$P passed, $F failed"; fi
[ $F = 0 ]
