#!/usr/bin/env bash
# tests/test_gpu_check.sh — scripts/gpu_check.sh as far as a machine without a
# GPU can check it: it parses, its --dry-run names every stage with a limit and
# the limits fit the 8 minutes, it finds the 11 pairs and 15 models in
# ./dkd list, bad arguments fail clearly, and with no GPU visible it says
# "no GPU", writes nothing and exits 0.
# Prints "ok"/"FAIL" lines and "RESULT p f s" (read by build.sh).
set -u
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
s=scripts/gpu_check.sh

bash -n $s && ok "bash -n $s" || bad "bash -n $s: syntax error"

dry=$(bash $s --dry-run --out "$tmp/out" 2>&1); rc=$?
[ $rc = 0 ] && ok "--dry-run exits 0" || bad "--dry-run exit $rc: $dry"
for st in build tests check graph kernels sanitizer step infer epoch; do
  echo "$dry" | grep -qE "^  $st +[0-9]+ " && ok "--dry-run lists stage $st with a limit" || bad "--dry-run lacks stage $st"
done
sum=$(echo "$dry" | awk '/^  [a-z]+ +[0-9]+ / {s += $2} END {print s + 0}')
said=$(echo "$dry" | sed -n 's/^total limit: \([0-9]*\) s$/\1/p')
[ "$sum" = "$said" ] && ok "--dry-run total ($said s) is the sum of the stage limits" || bad "stage limits sum to $sum, total says '$said'"
[ "$sum" -gt 0 ] && [ "$sum" -le 470 ] && ok "stage limits + 10 s for nvidia-smi fit 8 minutes ($sum s <= 470 s)" || bad "stage limits $sum s exceed 470 s"
[ ! -e "$tmp/out" ] && ok "--dry-run writes nothing" || bad "--dry-run created $tmp/out"
if [ -x ./dkd ]; then
  echo "$dry" | grep -q '^pairs (11): ' && ok "--dry-run finds the 11 pairs in ./dkd list" || bad "pairs: $(echo "$dry" | grep '^pairs')"
  echo "$dry" | grep -q '^models (15): ' && ok "--dry-run finds the 15 models in ./dkd list" || bad "models: $(echo "$dry" | grep '^models')"
  echo "$dry" | grep -q 'resnet56,resnet20' && ok "--dry-run pairs as teacher,student (resnet56,resnet20)" || bad "no resnet56,resnet20 pair in: $(echo "$dry" | grep '^pairs')"
else
  echo "  SKIP pair/model lists: ./dkd not built"; S=$((S+1))
fi

msg=$(bash $s --frobnicate 2>&1); rc=$?
[ $rc = 2 ] && echo "$msg" | grep -q "unknown argument '--frobnicate'" && ok "an unknown argument: exit 2 and says which" || bad "unknown argument: exit $rc, '$msg'"

# No GPU visible (CUDA_VISIBLE_DEVICES empty hides every device, as CUDA does).
msg=$(CUDA_VISIBLE_DEVICES= bash $s --out "$tmp/out2" 2>&1); rc=$?
[ $rc = 0 ] && echo "$msg" | grep -q "no GPU" && ok "no GPU visible: says 'no GPU' and exits 0 ($(echo "$msg" | head -1 | cut -c1-90))" || bad "no GPU: exit $rc, '$msg'"
[ ! -e "$tmp/out2" ] && ok "no GPU: writes nothing" || bad "no GPU: created $tmp/out2"

echo "RESULT $P $F $S"
[ $F = 0 ]
