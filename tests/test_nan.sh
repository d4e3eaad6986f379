#!/usr/bin/env bash
# tests/test_nan.sh — no number computed from NaN or infinity is ever reported or saved.
#   dkd eval of a checkpoint with a NaN weight, a NaN BN statistic, or a weight so large
#     that an activation overflows: non-zero exit, and the message names the tensor or
#     layer where the non-finite values start (tests/tools/poison.c makes the files);
#   dkd train whose loss, or whose test metrics, stop being finite: stops, saves nothing of
#     that epoch (best/latest/student_* stay bit-identical), and names the last good epoch
#     after reading its files back; a checkpoint damaged on disk is reported, not assumed good.
# Divergence is forced with an absurd --lr on a tiny generated data set.
# Prints "ok"/"FAIL" lines and "RESULT p f s" (read by build.sh).
set -u
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
# run a command that must fail with a message matching every pattern given after --
fails_with() { local name=$1; shift; local cmd=() pats=(); while [ "$1" != -- ]; do cmd+=("$1"); shift; done; shift; pats=("$@")
  local out rc; out=$("${cmd[@]}" 2>&1); rc=$?; local miss=""
  for p in "${pats[@]}"; do echo "$out" | grep -qiE -- "$p" || miss="$miss '$p'"; done
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && [ -z "$miss" ]; then ok "$name (exit $rc: $(echo "$out" | grep -i error | head -1 | cut -c1-160)...)";
  else bad "$name: exit $rc, missing$miss in: $(echo "$out" | tail -2)"; fi; }
sums() { (cd "$1" && md5sum best latest student_best student_latest dkd_state 2>&1); }

[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; echo "RESULT 0 1 0"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/mkcifar" tests/tools/mkcifar.c && gcc -O2 -o "$tmp/poison" tests/tools/poison.c || { echo "RESULT 0 1 0"; exit 1; }
mkdir -p "$tmp/data/cifar-100-binary"
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/train.bin" 128 1
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/test.bin" 64 2
export DKD_CIFAR_ANY_SIZE=1
D="--data $tmp/data --threads 2 --batch 64 --seed 3"   # 2 steps per epoch

# --- a good run of 2 epochs: the checkpoints the later cases start from
./dkd train resnet20 $D --epochs 2 --out "$tmp/good" > "$tmp/good.log" 2>&1 && ok "a good 2-epoch run" ||
  { bad "the good run failed: $(tail -2 "$tmp/good.log")"; echo "RESULT $P $F $S"; exit 1; }
./dkd eval resnet20 -c "$tmp/good/student_latest" --data "$tmp/data" --threads 2 > /dev/null 2>&1 && ok "eval of its student_latest succeeds" ||
  bad "eval of a good checkpoint failed"

# --- eval: every kind of non-finite input is an error naming where it starts
poisoned() { cp "$tmp/good/student_latest" "$tmp/p.pth" && "$tmp/poison" "$tmp/p.pth" "$1" "$2"; }
E="./dkd eval resnet20 -c $tmp/p.pth --data $tmp/data --threads 2"
poisoned 0 nan;  fails_with "eval: a NaN weight is an error naming it" $E -- "not finite" "conv1\.weight" "No accuracy"
poisoned 4 nan;  fails_with "eval: a NaN running_var is an error naming it" $E -- "not finite" "bn1\.running_var"
poisoned 0 3e38; fails_with "eval: finite weights that overflow an activation: the first such layer is named" $E -- \
  "every weight is finite" "output of conv1 \(node 1\)"
poisoned 0 inf;  out=$($E 2>&1); echo "$out" | grep -q "top-1" && bad "eval of an infinite weight printed an accuracy: $out" ||
  ok "eval: no top-1 printed for an infinite weight"

# --- train: the test metrics become NaN (finite loss): stop, nothing saved, last good epoch named
cp -r "$tmp/good" "$tmp/r1"; before=$(sums "$tmp/r1")
fails_with "train: NaN test metrics stop the run" ./dkd train resnet20 $D --epochs 4 --out "$tmp/r1" --resume --lr 1e12 -- \
  "test metrics of epoch 3 cannot be computed" "last good epoch on disk is 2" "CRC-32" "best, student_best read back"
[ "$(sums "$tmp/r1")" = "$before" ] && ok "train: best/latest/student_best/student_latest/dkd_state untouched by the NaN epoch" ||
  bad "train: a checkpoint changed after the NaN test metrics"
grep -q "^3," "$tmp/r1/log.csv" && bad "train: the NaN epoch was logged" || ok "train: the NaN epoch is not in log.csv"
for f in best student_best latest student_latest; do
  ./dkd eval resnet20 -c "$tmp/r1/$f" --data "$tmp/data" --threads 2 > /dev/null 2>&1 && ok "train: $f on disk evaluates to finite numbers" ||
    bad "train: $f on disk does not evaluate (non-finite?)"
done

# --- train: the loss becomes NaN
cp -r "$tmp/good" "$tmp/r2"; before=$(sums "$tmp/r2")
fails_with "train: a NaN loss stops the run" ./dkd train resnet20 $D --epochs 4 --out "$tmp/r2" --resume --lr 1e30 -- \
  "loss became (NaN|infinite) at epoch 3" "last good epoch on disk is 2"
[ "$(sums "$tmp/r2")" = "$before" ] && ok "train: checkpoints untouched by the NaN loss" || bad "train: a checkpoint changed after the NaN loss"

# --- train: diverging before any epoch finished: says that nothing was saved, saves nothing
fails_with "train: NaN in the first epoch" ./dkd train resnet20 $D --epochs 2 --out "$tmp/r3" --lr 1e12 -- \
  "epoch 1" "no epoch of this run finished"
ls "$tmp/r3" 2>/dev/null | grep -qE "best|latest|dkd_state" && bad "train: the diverged first epoch left checkpoints" ||
  ok "train: the diverged first epoch left no checkpoint"

# --- the last good files are read back, not assumed: a damaged one is reported
cp -r "$tmp/good" "$tmp/r4"; "$tmp/poison" "$tmp/r4/latest" 0 nan
fails_with "train: a non-finite checkpoint on disk is reported at the stop" ./dkd train resnet20 $D --epochs 4 --out "$tmp/r4" --resume --lr 1e30 -- \
  "last good epoch on disk is 2" "BUT .*latest: tensor module\.student\.conv1\.weight is not finite"
cp -r "$tmp/good" "$tmp/r5"; printf 'X' | dd of="$tmp/r5/student_best" bs=1 seek=200 conv=notrunc 2>/dev/null
fails_with "train: a damaged (CRC) checkpoint on disk is reported at the stop" ./dkd train resnet20 $D --epochs 4 --out "$tmp/r5" --resume --lr 1e30 -- \
  "BUT .*(CRC|damaged|corrupt)"

echo "RESULT $P $F $S"
[ $F = 0 ]
