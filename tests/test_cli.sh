#!/usr/bin/env bash
# tests/test_cli.sh — the command line end to end, on a tiny generated data set:
# help/list, bad input, vanilla training, kill-and-resume bit-identity, DKD
# training, eval consistency, NaN stop, checkpoints loading back.
# Prints "ok"/"FAIL" lines and "RESULT p f s" (read by build.sh).
set -u
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
t() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
# expect a non-zero exit and a message matching a pattern
fails_with() { local name=$1 pat=$2; shift 2; local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -qiE "$pat"; then ok "$name (exit $rc: $(echo "$out" | grep -iE "$pat" | head -1 | cut -c1-110))";
  else bad "$name: exit $rc, output: $(echo "$out" | tail -3)"; fi; }

[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; echo "RESULT 0 1 0"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/mkcifar" tests/tools/mkcifar.c || { echo "RESULT 0 1 0"; exit 1; }
mkdir -p "$tmp/data/cifar-100-binary"
# fewer images under the sanitizers (./build.sh asan-test), whose binary trains ~10x slower
if [ "${DKD_SANITIZED:-0}" = 1 ]; then NTRAIN=64 NTEST=40; else NTRAIN=320 NTEST=200; fi
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/train.bin" $NTRAIN 1
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/test.bin" $NTEST 2
export DKD_CIFAR_ANY_SIZE=1
D="--data $tmp/data --threads 2"

# --- help and list
t "dkd --help" ./dkd --help
for m in train eval bench plot list; do t "dkd $m --help" ./dkd $m --help; done
out=$(./dkd list)
n=$(echo "$out" | grep -cE "^(resnet|ResNet|wrn|vgg|Mobile|Shuffle)")
[ "$n" = 15 ] && ok "dkd list shows 15 models" || bad "dkd list shows $n models"
echo "$out" | grep -q "dkd,res56,res20" && echo "$out" | grep -q "dkd,res32x4,shuv2" && ok "dkd list shows the pairs" || bad "dkd list pairs"

# --- bench: a tiny step and forward, with the per-op profile
out=$(./dkd bench --teacher resnet20 --student resnet8x4 --batch 4 --steps 1 --warmup 0 --threads 2 --profile 2>&1)
echo "$out" | grep -q "F conv 3x3" && echo "$out" | grep -q "B conv 3x3" && echo "$out" | grep -q "sum of the ops" &&
  echo "$out" | grep -q "img/s" && ok "dkd bench --profile: per-op table and img/s" || bad "dkd bench --profile: $(echo "$out" | tail -3)"
out=$(./dkd bench --infer resnet20,vgg8 --infer-batch 4 --steps 1 --warmup 0 --threads 2 --profile 2>&1)
echo "$out" | grep -q "profile of vgg8" && echo "$out" | grep -qE "^vgg8 +4 +[0-9.]+" && ok "dkd bench --infer --profile" ||
  bad "dkd bench --infer --profile: $(echo "$out" | tail -3)"

# --- bad input
fails_with "unknown mode" "unknown mode" ./dkd frobnicate
fails_with "unknown model" "unknown model" ./dkd train resnet21 $D
fails_with "unknown flag" "unknown flag" ./dkd train resnet20 --bogus 1 $D
fails_with "bad value" "expects an integer" ./dkd train resnet20 --epochs two $D
fails_with "missing value" "needs a value" ./dkd train resnet20 --epochs
fails_with "missing data" "get_cifar100" ./dkd train resnet20 --data "$tmp/nodata"
fails_with "missing teacher" "no checkpoint for the teacher" ./dkd train res56 res20 $D --out "$tmp/x"
fails_with "missing checkpoint" "cannot open|no such" ./dkd eval resnet20 -c "$tmp/none.pth" $D
head -c 3074 "$tmp/data/cifar-100-binary/test.bin" > "$tmp/trunc.bin"; head -c 1000 "$tmp/data/cifar-100-binary/test.bin" >> "$tmp/trunc.bin"
mkdir -p "$tmp/bad/cifar-100-binary"; cp "$tmp/data/cifar-100-binary/train.bin" "$tmp/bad/cifar-100-binary/"; cp "$tmp/trunc.bin" "$tmp/bad/cifar-100-binary/test.bin"
fails_with "truncated data file" "3074|truncated|size" ./dkd eval resnet20 -c tests/fixtures/resnet20.pth --data "$tmp/bad"
fails_with "checkpoint of another model" "does not fit|missing key|unexpected key" ./dkd eval resnet32 -c tests/fixtures/resnet20.pth $D

# --- vanilla training, 2 epochs
./dkd train resnet20 $D --epochs 2 --out "$tmp/run1" --seed 7 > "$tmp/run1.log" 2>&1
rc=$?; [ $rc = 0 ] && ok "vanilla training 2 epochs" || { bad "vanilla training (exit $rc)"; tail -5 "$tmp/run1.log"; }
for f in worklog.txt log.csv curves.png student_latest student_best latest dkd_state; do
  [ -s "$tmp/run1/$f" ] || bad "run1/$f missing"
done
ok "run files written (worklog.txt log.csv curves.png student_latest student_best latest dkd_state)"
grep -q "^best_acc" "$tmp/run1/worklog.txt" && [ "$(grep -c '^epoch: ' "$tmp/run1/worklog.txt")" = 2 ] && ok "worklog.txt in mdistiller's format" || bad "worklog.txt format"
fails_with "refuses to overwrite a run" "already holds a run" ./dkd train resnet20 $D --epochs 2 --out "$tmp/run1" --seed 7

# --- kill (stop after epoch 1) and resume: bit-identical to the uninterrupted run
./dkd train resnet20 $D --epochs 2 --out "$tmp/run2" --seed 7 --stop-after 1 > "$tmp/run2.log" 2>&1 || bad "run2 part 1"
./dkd train resnet20 $D --epochs 2 --out "$tmp/run2" --seed 7 --resume > "$tmp/run2b.log" 2>&1 || { bad "run2 resume"; tail -3 "$tmp/run2b.log"; }
for f in student_latest student_best dkd_state worklog.txt; do
  cmp -s "$tmp/run1/$f" "$tmp/run2/$f" && ok "resumed run: $f bit-identical to the uninterrupted run" || bad "resumed run: $f differs"
done
fails_with "resume with other settings" "resume with the same settings" ./dkd train resnet20 $D --epochs 3 --out "$tmp/run2" --seed 8 --resume

# a real SIGKILL in the middle of epoch 2, then resume
./dkd train resnet20 $D --epochs 2 --out "$tmp/run3" --seed 7 > "$tmp/run3.log" 2>&1 &
pid=$!
for i in $(seq 1 600); do [ -f "$tmp/run3/dkd_state" ] && break; sleep 0.1; done
sleep 0.3; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -f "$tmp/run3/dkd_state" ]; then
  ./dkd train resnet20 $D --epochs 2 --out "$tmp/run3" --seed 7 --resume > "$tmp/run3b.log" 2>&1
  cmp -s "$tmp/run1/student_latest" "$tmp/run3/student_latest" && ok "killed (SIGKILL) + resumed run ends bit-identical" || bad "killed+resumed run differs"
else bad "run3 never wrote dkd_state"; fi

# --- eval of the saved checkpoint gives the logged test accuracy of its epoch
acc=$(./dkd eval resnet20 -c "$tmp/run1/student_latest" $D | sed -n 's/.*top-1 \([0-9.]*\).*/\1/p')
logged=$(tail -1 "$tmp/run1/log.csv" | cut -d, -f5)
awk -v a="$acc" -v b="$logged" 'BEGIN{exit !(a != "" && (a-b < 0.005 && b-a < 0.005))}' && ok "eval of student_latest: top-1 $acc = logged $logged" || bad "eval top-1 '$acc' vs logged '$logged'"

# --- DKD with a teacher checkpoint (the vanilla run's student as teacher)
./dkd train resnet20 resnet20 $D --epochs 1 --teacher-ckpt "$tmp/run1/student_best" --out "$tmp/dkd" > "$tmp/dkd.log" 2>&1 \
  && ok "DKD training with --teacher-ckpt" || { bad "DKD training"; tail -3 "$tmp/dkd.log"; }
./dkd train resnet20 resnet20 $D --epochs 1 --method kd --teacher-ckpt "$tmp/run1/student_best" --out "$tmp/kd" > "$tmp/kd.log" 2>&1 \
  && ok "KD training with --teacher-ckpt" || { bad "KD training"; tail -3 "$tmp/kd.log"; }

# --- NaN stops the run with a clear message, last good checkpoints intact
cp -r "$tmp/run1" "$tmp/nan"; sum=$(md5sum < "$tmp/nan/student_latest")
fails_with "NaN/Inf loss or test metrics stop the run" "loss became|test metrics of epoch [0-9]+ cannot be computed" ./dkd train resnet20 $D --epochs 4 --out "$tmp/nan" --seed 7 --resume --lr 1e30
[ "$(md5sum < "$tmp/nan/student_latest")" = "$sum" ] && ok "checkpoints intact after the NaN stop" || bad "checkpoint changed after NaN stop"

# --- plots of several runs
./dkd plot "$tmp/run1" "$tmp/dkd" -o "$tmp/cmp.png" >/dev/null 2>&1 && [ -s "$tmp/cmp.png" ] && ok "dkd plot of two runs" || bad "dkd plot"

echo "RESULT $P $F $S"
[ $F = 0 ]
