#!/usr/bin/env bash
# scripts/ptxas_report.sh — the registers and spills of every CUDA kernel, from the
# ptxas -v report that ./build.sh writes (build/cuda/ptxas.txt: nvcc -Xptxas -v).
#   scripts/ptxas_report.sh [REPORT] [--arch sm_80]   table: kernel, registers, stack, spill stores/loads
#   scripts/ptxas_report.sh --check [REPORT]          one line per architecture, then "RESULT p f s"
#                                                     (build.sh's test): FAIL where any kernel spills
# A spill is ptxas moving a value that does not fit in the registers to local memory
# (off-chip, cached): in a hot loop it costs a memory access where a register read was meant.
set -u
cd "$(dirname "$0")/.."
check=0; arch=sm_80; rep=build/cuda/ptxas.txt
while [ $# -gt 0 ]; do
  case $1 in
    --check) check=1;;
    --arch) arch=$2; shift;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) rep=$1;;
  esac
  shift
done
if [ ! -s "$rep" ]; then
  echo "ptxas_report: no report at $rep (built without nvcc?)"
  [ $check = 1 ] && echo "RESULT 0 0 1"
  exit 0
fi
demangle() { if command -v c++filt >/dev/null 2>&1; then c++filt; else cat; fi; }
# one line per (kernel, architecture): name arch registers stack spill_stores spill_loads
rows=$(awk '
  /Compiling entry function/ { match($0, /function \x27[^\x27]+\x27/); k = substr($0, RSTART + 10, RLENGTH - 11);
                               match($0, /for \x27sm_[0-9]+\x27/); a = substr($0, RSTART + 5, RLENGTH - 6); st = sl = ss = 0; next }
  /bytes stack frame/ { for (i = 1; i <= NF; i++) { if ($(i+1) == "bytes" && $(i+2) == "stack") st = $i;
                                                    if ($(i+2) == "spill" && $(i+3) == "stores,") ss = $i;
                                                    if ($(i+2) == "spill" && $(i+3) == "loads") sl = $i } next }
  /Used [0-9]+ registers/ && k != "" { for (i = 1; i <= NF; i++) if ($i == "Used") r = $(i+1);
                                       print k, a, r, st, ss, sl; k = "" }' "$rep")
if [ $check = 1 ]; then
  p=0; f=0
  for a in $(echo "$rows" | awk '{print $2}' | sort -u); do
    n=$(echo "$rows" | awk -v a=$a '$2 == a' | wc -l)
    bad=$(echo "$rows" | awk -v a=$a '$2 == a && ($5 > 0 || $6 > 0) {print $1}' | demangle | tr '\n' ' ')
    if [ -z "$bad" ]; then echo "  ok   $a: $n kernels, 0 bytes of spill stores and loads"; p=$((p+1))
    else echo "  FAIL $a: kernels that spill: $bad"; f=$((f+1)); fi
  done
  echo "RESULT $p $f 0"
  [ $f = 0 ]; exit
fi
printf "%-48s %5s %6s %7s %7s   (%s, from %s)\n" kernel regs stack spill_st spill_ld "$arch" "$rep"
echo "$rows" | awk -v a=$arch '$2 == a' | sort -u | while read -r k a r st ss sl; do
  printf "%-48s %5s %6s %7s %7s\n" "$(echo "$k" | demangle | sed 's/(.*//')" "$r" "$st" "$ss" "$sl"
done
