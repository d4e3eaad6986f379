#!/usr/bin/env bash
# scripts/qemu_isa_check.sh — the CPU kernels' AVX2 path checked on an emulated AVX2-only CPU.
#
#   scripts/qemu_isa_check.sh [--cpu MODEL]... [--all] [TEST...]
#
# For an AVX-512 machine that has no AVX2-only one beside it (issue 9: `./build.sh test`
# must pass on both). It builds a portable binary and the C tests (DKD_NATIVE=0, no CUDA)
# in build/qemu/ (./dkd and build/ are left as they are), then runs them under qemu-user
# (`qemu-x86_64 -cpu MODEL`, default EPYC-v1: AMD Zen 1, AVX2 + FMA, no AVX-512). qemu's
# CPUID then has no AVX-512, so kernels/isa.c picks the AVX2 path by itself, and any
# AVX-512 instruction left in a generic object would stop the program with SIGILL.
#   1. the portable build: no compiler warning in what it compiled;
#   2. each C test program (tests/test_*.c) under qemu: no crash, its RESULT line with 0 failed
#      (build.sh's convention); test_isa also checks the avx512 path is the SKIP;
#   3. `dkd bench --steps 1 --warmup 0 --batch 8` (one DKD step, resnet56 -> resnet20) under
#      qemu: exit 0 and "kernels avx2";
#   4. `dkd eval resnet56` of ../shared's third-party checkpoint on the first 64 test images
#      (when ../shared has them) under qemu: the same top-1 / top-5 / loss as this machine
#      gives natively with DKD_ISA=avx2 (the same instructions, run for real).
# Default tests: all of tests/test_*.c but test_models (builders and tables, nothing that
# depends on the instruction set) and test_fusion (fused vs unfused forwards of all 15
# models: the kernels test_golden and test_ops check); under emulation each would take
# 10-20 min more (test_golden alone takes ~12). --all adds them; naming tests runs only
# those (and the bench and eval): `scripts/qemu_isa_check.sh test_ops test_isa`.
# One summary line per program; exits 1 on any failure, 2 when qemu or the host is missing.
# qemu checks the instruction set and the numbers, never speed: TCG runs the vector code
# ~100x slower, so no timing from here means anything (the bench line's speed is not shown).
# Results of one run: results/avx2_qemu.md. Low priority on a shared machine:
#   bash -c 'echo 19 > /proc/self/autogroup; exec nice -n 19 scripts/qemu_isa_check.sh'
set -u
unset DKD_ISA   # (the dispatch must choose by itself)
cd "$(dirname "$0")/.."
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0;; esac

CPUS=""; ALL=0; PICK=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) [ $# -ge 2 ] || { echo "qemu_isa_check: --cpu needs a model (qemu-x86_64 -cpu help)" >&2; exit 2; }
           CPUS="$CPUS $2"; shift 2;;
    --all) ALL=1; shift;;
    test_*) PICK="$PICK ${1%.c}"; shift;;
    *) echo "qemu_isa_check: unknown argument '$1' (--help)" >&2; exit 2;;
  esac
done
CPUS="${CPUS:- EPYC-v1}"
QEMU="${QEMU:-qemu-x86_64}"
command -v "$QEMU" >/dev/null 2>&1 || { echo "qemu_isa_check: $QEMU not found (apt-get install qemu-user)" >&2; exit 2; }
case "$(uname -m)" in x86_64) ;; *) echo "qemu_isa_check: needs an x86-64 host (the dispatch is x86-64 only)" >&2; exit 2;; esac

B=build/qemu
mkdir -p $B/tests $B/logs
PASS=0; FAIL=0
line() { printf '%-44s %s\n' "$1" "$2"; }   # the summary line of one program
pass() { line "$1" "PASS $2"; PASS=$((PASS+1)); }
fail() { line "$1" "FAIL $2"; FAIL=$((FAIL+1)); }
why_rc() {  # rc -> words (qemu-user dies of the guest's signal: 132 = SIGILL)
  case $1 in 132) echo "SIGILL (an instruction this CPU lacks)";; 134) echo "SIGABRT";; 136) echo "SIGFPE";;
             139) echo "SIGSEGV";; 124) echo "timed out";; *) echo "exit code $1";; esac
}

# ---- 1. the portable build ----------------------------------------------------------------
t0=$SECONDS
DKD_BUILD_DIR=$B DKD_NATIVE=0 DKD_NO_CUDA=1 ./build.sh > $B/logs/build.log 2>&1
rc=$?
if [ $rc != 0 ]; then cat $B/logs/build.log; fail "build (DKD_NATIVE=0)" "build.sh exited $rc"; exit 1; fi
if grep -q 'warning:' $B/logs/build.log; then
  grep -A3 'warning:' $B/logs/build.log; fail "build (DKD_NATIVE=0)" "compiler warnings ($B/logs/build.log)"
else
  pass "build (DKD_NATIVE=0)" "no warnings in what was compiled, $((SECONDS - t0)) s"
fi
# The test programs, linked as build.sh test does (its flags; every library object of $B).
CFLAGS="$(cat $B/cflags)"
LDFLAGS="-lm"; case " $CFLAGS " in *" -fopenmp "*) LDFLAGS="$LDFLAGS -fopenmp";; esac
LIB=""
for s in $(ls *.c kernels/*.c models/*.c | grep -v '^main\.c$'); do [ -f $B/obj/${s%.c}.o ] && LIB="$LIB $B/obj/${s%.c}.o"; done
LIB="$LIB $(ls $B/obj/isa_*.o)"
if [ -z "$PICK" ]; then
  for t in tests/test_*.c; do
    n=$(basename ${t%.c})
    case $n in test_models|test_fusion) [ $ALL = 1 ] || continue;; esac
    PICK="$PICK $n"
  done
fi
TESTS=""
for n in $PICK; do
  [ -f tests/$n.c ] || { fail "$n" "no tests/$n.c"; continue; }
  if ${CC:-gcc} $CFLAGS -Itests tests/$n.c $LIB -o $B/tests/$n $LDFLAGS > $B/logs/$n.build.log 2>&1; then
    TESTS="$TESTS $n"
  else
    cat $B/logs/$n.build.log; fail "$n" "does not compile"
  fi
done

for cpu in $CPUS; do
  Q="$QEMU -cpu $cpu"
  echo "--- under $Q (logs in $B/logs/)"
  # ---- 2. the C tests ----------------------------------------------------------------------
  for n in $TESTS; do
    log=$B/logs/$n.$cpu.log; t0=$SECONDS
    $Q ./$B/tests/$n > $log 2>&1; rc=$?
    dt=$((SECONDS - t0))
    res=$(grep '^RESULT ' $log | tail -1)
    if [ -z "$res" ]; then fail "$n [$cpu]" "$(why_rc $rc) without a RESULT line, $dt s"; tail -5 $log; continue; fi
    set -- $res
    if [ "$3" != 0 ] || [ $rc != 0 ]; then
      grep '^  FAIL' $log | head -20; fail "$n [$cpu]" "$2 passed, $3 failed, $4 skipped, $(why_rc $rc), $dt s"; continue
    fi
    if [ $n = test_isa ] && ! grep -q '^  SKIP path avx512' $log; then
      fail "$n [$cpu]" "the avx512 path ran: is -cpu $cpu without AVX-512?"; continue
    fi
    pass "$n [$cpu]" "$2 passed, $3 failed, $4 skipped, $dt s"
  done
  # ---- 3. one DKD step ----------------------------------------------------------------------
  log=$B/logs/bench.$cpu.log; t0=$SECONDS
  $Q ./$B/dkd bench --steps 1 --warmup 0 --batch 8 --device cpu > $log 2>&1; rc=$?
  dt=$((SECONDS - t0))
  if [ $rc != 0 ]; then tail -5 $log; fail "dkd bench [$cpu]" "$(why_rc $rc), $dt s"
  elif ! grep -q 'kernels avx2 ' $log; then grep kernels $log; fail "dkd bench [$cpu]" "did not pick the avx2 kernels"
  else pass "dkd bench [$cpu]" "one DKD step res56->res20 (batch 8), kernels avx2, $dt s"
  fi
  # ---- 4. evaluation == the native AVX2 path ----------------------------------------------
  ckpt=../shared/ckpts/third_party/020118_resnet_cifar100/resnet56_mdistiller_format.pth
  xzd=../shared/data/cifar-100-binary/test.bin.xz
  if [ ! -f $ckpt ] || [ ! -f $xzd ] || ! command -v xz >/dev/null 2>&1; then
    line "dkd eval [$cpu]" "SKIP: needs $ckpt, $xzd and xz"; continue
  fi
  mkdir -p $B/data && xz -dc $xzd | head -c $((3074 * 64)) > $B/data/test.bin
  ev() { DKD_CIFAR_ANY_SIZE=1 "$@" eval resnet56 -c $ckpt --data $B/data --device cpu 2>&1 | grep 'top-1' | sed 's/ | [0-9.]* img\/s.*//'; }
  t0=$SECONDS
  got=$(ev $Q ./$B/dkd); dt=$((SECONDS - t0))
  want=""; grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo && want=$(DKD_ISA=avx2 ev ./$B/dkd)
  if [ -z "$got" ]; then fail "dkd eval [$cpu]" "no result line, $dt s"
  elif [ -n "$want" ] && [ "$got" != "$want" ]; then fail "dkd eval [$cpu]" "'$got' != native avx2 '$want'"
  else pass "dkd eval [$cpu]" "resnet56: $(echo "$got" | sed 's/^ *//')$([ -n "$want" ] && echo ' (== native avx2)'), $dt s"
  fi
done

echo
echo "qemu_isa_check: $PASS passed, $FAIL failed (cpu:$CPUS)"
[ $FAIL = 0 ]
