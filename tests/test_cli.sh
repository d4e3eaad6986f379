#!/usr/bin/env bash
# tests/test_cli.sh — the command line end to end, on a tiny generated data set:
# help/list, bad input, vanilla training, kill-and-resume bit-identity, DKD
# training, eval consistency, NaN stop, checkpoints loading back, mdistiller's
# command line (--cfg, KEY VALUE, eval -m/-d/-bs), run records (config.yaml,
# log.csv's test-set size, the optimizer dict torch loads), resume-state checks.
# Hermetic: every command runs inside its own temp dir, so the checkout's
# download_ckpts/, output/ and data/ are never read (a teacher downloaded there
# must not turn "missing teacher" into a real run).
# Prints "ok"/"FAIL" lines and "RESULT p f s" (read by build.sh).
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. tests/check.sh
t() { local name=$1; shift; if "$@" >/dev/null 2>&1; then ok "$name"; else bad "$name"; fi; }
# expect a non-zero exit and a message matching a pattern
fails_with() { local name=$1 pat=$2; shift 2; local out; out=$("$@" 2>&1); local rc=$?
  if [ $rc -ne 0 ] && echo "$out" | grep -qiE -- "$pat"; then ok "$name (exit $rc: $(echo "$out" | grep -iE -- "$pat" | head -1 | cut -c1-110))";
  else bad "$name: exit $rc, output: $(echo "$out" | tail -3)"; fi; }

[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; echo "RESULT 0 1 0"; exit 1; }
DKD="$ROOT/dkd"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -o "$tmp/mkcifar" tests/tools/mkcifar.c || { echo "RESULT 0 1 0"; exit 1; }
gcc -O2 -o "$tmp/patch_pkl" tests/tools/patch_pkl.c || { echo "RESULT 0 1 0"; exit 1; }
mkdir -p "$tmp/data/cifar-100-binary" "$tmp/work"
# fewer images under the sanitizers (./build.sh asan-test), whose binary trains ~10x slower
if [ "${DKD_SANITIZED:-0}" = 1 ]; then NTRAIN=64 NTEST=40; else NTRAIN=320 NTEST=200; fi
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/train.bin" $NTRAIN 1
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/test.bin" $NTEST 2
cp tests/fixtures/resnet20.pth "$tmp/resnet20.pth"
cd "$tmp/work"          # from here on, relative paths (download_ckpts/, output/, data/) are the temp dir's
unset DKD_DATA
export DKD_CIFAR_ANY_SIZE=1
D="--data $tmp/data --threads 2"
TINY="--subset 32 --test-subset 20 --batch 16 --epochs 1"

# --- help and list
t "dkd --help" "$DKD" --help
for m in train eval bench plot list; do t "dkd $m --help" "$DKD" $m --help; done
out=$("$DKD" list)
n=$(echo "$out" | grep -cE "^(resnet|ResNet|wrn|vgg|Mobile|Shuffle)")
[ "$n" = 15 ] && ok "dkd list shows 15 models" || bad "dkd list shows $n models"
echo "$out" | grep -q "dkd,res56,res20" && echo "$out" | grep -q "dkd,res32x4,shuv2" && ok "dkd list shows the pairs" || bad "dkd list pairs"

# --- bench: a tiny step and forward, with the per-op profile
out=$("$DKD" bench --teacher resnet20 --student resnet8x4 --batch 4 --steps 1 --warmup 0 --threads 2 --profile 2>&1)
echo "$out" | grep -q "F conv 3x3" && echo "$out" | grep -q "B conv 3x3" && echo "$out" | grep -q "sum of the ops" &&
  echo "$out" | grep -q "img/s" && ok "dkd bench --profile: per-op table and img/s" || bad "dkd bench --profile: $(echo "$out" | tail -3)"
out=$("$DKD" bench --infer resnet20,vgg8 --infer-batch 4 --steps 1 --warmup 0 --threads 2 --profile 2>&1)
echo "$out" | grep -q "profile of vgg8" && echo "$out" | grep -qE "^vgg8 +4 +[0-9.]+" && ok "dkd bench --infer --profile" ||
  bad "dkd bench --infer --profile: $(echo "$out" | tail -3)"
# --- bench --gemm: F, dX, dW rows for each conv shape of the model; CUDA columns say why they are empty
out=$("$DKD" bench --gemm --models resnet8x4 --batch 2 --threads 2 2>&1)
nf=$(echo "$out" | grep -cE "^[0-9]+x[0-9]+/s[0-9].* F +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+")
ng=$(echo "$out" | grep -cE "^ +(dX|dW) +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9.]+")
[ "$nf" -ge 5 ] && [ "$ng" = $((2 * nf)) ] && echo "$out" | grep -qE "^CUDA: (not built|versions 1\.\.[0-9]+ )" &&
  ok "dkd bench --gemm: $nf conv shapes x (F, dX, dW) with GFLOP/s" || bad "dkd bench --gemm: $nf/$ng rows: $(echo "$out" | head -5)"
fails_with "dkd bench --gemm with an unknown model" "resnet999" "$DKD" bench --gemm --models resnet999

# --- bad input
fails_with "unknown mode" "unknown mode" "$DKD" frobnicate
fails_with "unknown model" "unknown model" "$DKD" train resnet21 $D
fails_with "unknown flag" "unknown flag" "$DKD" train resnet20 --bogus 1 $D
fails_with "bad value" "expects a decimal integer" "$DKD" train resnet20 --epochs two $D
fails_with "missing value" "needs a value" "$DKD" train resnet20 --epochs
fails_with "missing data" "get_cifar100" "$DKD" train resnet20 --data "$tmp/nodata"
fails_with "missing teacher" "no checkpoint for the teacher" "$DKD" train res56 res20 $D --out "$tmp/x"
fails_with "missing checkpoint" "cannot open|no such" "$DKD" eval resnet20 -c "$tmp/none.pth" $D
head -c 3074 "$tmp/data/cifar-100-binary/test.bin" > "$tmp/trunc.bin"; head -c 1000 "$tmp/data/cifar-100-binary/test.bin" >> "$tmp/trunc.bin"
mkdir -p "$tmp/bad/cifar-100-binary"; cp "$tmp/data/cifar-100-binary/train.bin" "$tmp/bad/cifar-100-binary/"; cp "$tmp/trunc.bin" "$tmp/bad/cifar-100-binary/test.bin"
fails_with "truncated data file" "3074|truncated|size" "$DKD" eval resnet20 -c "$tmp/resnet20.pth" --data "$tmp/bad"
fails_with "checkpoint of another model" "does not fit|missing key|unexpected key" "$DKD" eval resnet32 -c "$tmp/resnet20.pth" $D

# --- vanilla training, 2 epochs
"$DKD" train resnet20 $D --epochs 2 --out "$tmp/run1" --seed 7 > "$tmp/run1.log" 2>&1
rc=$?; [ $rc = 0 ] && ok "vanilla training 2 epochs" || { bad "vanilla training (exit $rc)"; tail -5 "$tmp/run1.log"; }
for f in worklog.txt log.csv curves.png student_latest student_best latest dkd_state; do
  [ -s "$tmp/run1/$f" ] || bad "run1/$f missing"
done
ok "run files written (worklog.txt log.csv curves.png student_latest student_best latest dkd_state)"
grep -q "^best_acc" "$tmp/run1/worklog.txt" && [ "$(grep -c '^epoch: ' "$tmp/run1/worklog.txt")" = 2 ] && ok "worklog.txt in mdistiller's format" || bad "worklog.txt format"
fails_with "refuses to overwrite a run" "already holds a run" "$DKD" train resnet20 $D --epochs 2 --out "$tmp/run1" --seed 7

# --- kill (stop after epoch 1) and resume: bit-identical to the uninterrupted run
"$DKD" train resnet20 $D --epochs 2 --out "$tmp/run2" --seed 7 --stop-after 1 > "$tmp/run2.log" 2>&1 || bad "run2 part 1"
# (--no-graph: a CUDA-only choice, accepted on the CPU, where it changes nothing)
"$DKD" train resnet20 $D --epochs 2 --out "$tmp/run2" --seed 7 --resume --no-graph > "$tmp/run2b.log" 2>&1 || { bad "run2 resume"; tail -3 "$tmp/run2b.log"; }
for f in student_latest student_best dkd_state worklog.txt; do
  cmp -s "$tmp/run1/$f" "$tmp/run2/$f" && ok "resumed run: $f bit-identical to the uninterrupted run" || bad "resumed run: $f differs"
done
fails_with "resume with other settings" "resume with the same settings" "$DKD" train resnet20 $D --epochs 3 --out "$tmp/run2" --seed 8 --resume

# a real SIGKILL in the middle of epoch 2, then resume
"$DKD" train resnet20 $D --epochs 2 --out "$tmp/run3" --seed 7 > "$tmp/run3.log" 2>&1 &
pid=$!
for i in $(seq 1 600); do [ -f "$tmp/run3/dkd_state" ] && break; sleep 0.1; done
sleep 0.3; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if [ -f "$tmp/run3/dkd_state" ]; then
  "$DKD" train resnet20 $D --epochs 2 --out "$tmp/run3" --seed 7 --resume > "$tmp/run3b.log" 2>&1
  cmp -s "$tmp/run1/student_latest" "$tmp/run3/student_latest" && ok "killed (SIGKILL) + resumed run ends bit-identical" || bad "killed+resumed run differs"
else bad "run3 never wrote dkd_state"; fi

# --- eval of the saved checkpoint gives the logged test accuracy of its epoch
acc=$("$DKD" eval resnet20 -c "$tmp/run1/student_latest" $D | sed -n 's/.*top-1 \([0-9.]*\).*/\1/p')
logged=$(tail -1 "$tmp/run1/log.csv" | cut -d, -f5)
awk -v a="$acc" -v b="$logged" 'BEGIN{exit !(a != "" && (a-b < 0.005 && b-a < 0.005))}' && ok "eval of student_latest: top-1 $acc = logged $logged" || bad "eval top-1 '$acc' vs logged '$logged'"

# --- DKD with a teacher checkpoint (the vanilla run's student as teacher)
"$DKD" train resnet20 resnet20 $D --epochs 1 --teacher-ckpt "$tmp/run1/student_best" --out "$tmp/dkd" > "$tmp/dkd.log" 2>&1 \
  && ok "DKD training with --teacher-ckpt" || { bad "DKD training"; tail -3 "$tmp/dkd.log"; }
"$DKD" train resnet20 resnet20 $D --epochs 1 --method kd --teacher-ckpt "$tmp/run1/student_best" --out "$tmp/kd" > "$tmp/kd.log" 2>&1 \
  && ok "KD training with --teacher-ckpt" || { bad "KD training"; tail -3 "$tmp/kd.log"; }

# --- NaN stops the run with a clear message, last good checkpoints intact
cp -r "$tmp/run1" "$tmp/nan"; sum=$(md5sum < "$tmp/nan/student_latest")
fails_with "NaN/Inf loss or test metrics stop the run" "loss became|test metrics of epoch [0-9]+ cannot be computed" "$DKD" train resnet20 $D --epochs 4 --out "$tmp/nan" --seed 7 --resume --lr 1e30
[ "$(md5sum < "$tmp/nan/student_latest")" = "$sum" ] && ok "checkpoints intact after the NaN stop" || bad "checkpoint changed after NaN stop"

# --- plots of several runs
"$DKD" plot "$tmp/run1" "$tmp/dkd" -o "$tmp/cmp.png" >/dev/null 2>&1 && [ -s "$tmp/cmp.png" ] && ok "dkd plot of two runs" || bad "dkd plot"

# --- messages
out=$("$DKD" train --help); echo "$out" | grep -q "SPEC" && bad "train --help cites SPEC" || ok "train --help cites no SPEC"
echo "$out" | grep -q -- "--cfg" && echo "$out" | grep -q "KEY VALUE" && ok "train --help documents --cfg and KEY VALUE" || bad "train --help: --cfg"
echo "$out" | grep -q -- "--no-graph" && ok "train --help documents --no-graph" || bad "train --help: --no-graph"
"$DKD" --help | grep -q -- "-m MODEL" && "$DKD" eval --help | grep -q -- "-m, --model" && ok "-m is documented in --help" || bad "-m not in --help"
out=$("$DKD" eval resnet20 $D 2>&1); rc=$?
[ $rc != 0 ] && echo "$out" | grep -q "not one of mdistiller's released teachers" && ! echo "$out" | grep -q get_teachers &&
  ok "eval of a non-teacher without -c: no get_teachers.sh hint" || bad "eval resnet20 without -c: $out"
fails_with "eval of a teacher without -c names get_teachers.sh" "get_teachers.sh" "$DKD" eval -m resnet56 $D
grep -q "evaluating: $NTEST/$NTEST test images" "$tmp/run1.log" && ok "progress during evaluation" || bad "no evaluation progress in run1.log"
grep -qE "^epoch +2 .*ETA run [0-9]+:[0-9]{2}:[0-9]{2}" "$tmp/run1.log" && ok "ETA as h:mm:ss from measured speeds" || bad "no h:mm:ss ETA in run1.log"
out=$("$DKD" train resnet20 $D --subset 16 --test-subset 16 --batch 8 --stop-after 1 --out "$tmp/scratch" 2>&1)
echo "$out" | grep -q "from scratch with cross-entropy for 240 epochs" && echo "$out" | grep -qE "Estimated time [0-9]+:[0-9]{2}:[0-9]{2}" &&
  [ "$(echo "$out" | grep -n "Estimated time" | cut -d: -f1)" -lt "$(echo "$out" | grep -n "^epoch   1" | cut -d: -f1)" ] &&
  ok "train MODEL alone: 'from scratch', 240 epochs, time estimate before epoch 1" || bad "train MODEL alone: $(echo "$out" | head -8)"

# --- command-line values are checked strictly, before anything runs
fails_with "--decay-stages 1,2,3junk" "expects a decimal integer" "$DKD" train resnet20 $D --decay-stages 1,2,3junk --out "$tmp/v1"
fails_with "--decay-stages -5,-5,-5" "LR_DECAY_STAGES expects" "$DKD" train resnet20 $D --decay-stages -5,-5,-5 --out "$tmp/v1"
fails_with "--decay-stages 3,2,1" "must increase" "$DKD" train resnet20 $D --decay-stages 3,2,1 --out "$tmp/v1"
fails_with "--decay-stages ''" "decay-stages expects" "$DKD" train resnet20 $D --decay-stages "" --out "$tmp/v1"
for v in 0x10 inf nan -1 0 1e999 "0.1x" "0.1 0.2"; do
  fails_with "--lr '$v'" "SOLVER.LR expects" "$DKD" train resnet20 $D --lr "$v" --out "$tmp/v1"; done
fails_with "--wd -1" "WEIGHT_DECAY expects" "$DKD" train resnet20 $D --wd -1 --out "$tmp/v1"
fails_with "--T nan" "--T expects" "$DKD" train resnet20 resnet20 $D --T nan --out "$tmp/v1"
fails_with "--epochs 1e3" "expects a decimal integer" "$DKD" train resnet20 $D --epochs 1e3 --out "$tmp/v1"
fails_with "--seed 0x7" "expects a decimal integer" "$DKD" train resnet20 $D --seed 0x7 --out "$tmp/v1"
fails_with "eval -bs 0x40" "expects a decimal integer" "$DKD" eval resnet20 -c "$tmp/resnet20.pth" -bs 0x40 $D
fails_with "--out ''" "needs a non-empty value" "$DKD" train resnet20 $D --out ""
fails_with "--data ''" "needs a non-empty value" "$DKD" train resnet20 --data "" --out "$tmp/v1"
[ -e "$tmp/v1" ] && bad "a refused command created its run folder" || ok "refused commands create no run folder"
touch "$tmp/afile"
out=$("$DKD" train resnet20 $D --out "$tmp/afile" 2>&1); rc=$?
[ $rc != 0 ] && echo "$out" | grep -q "exists and is not a folder" && ! echo "$out" | grep -q "^epoch" &&
  ok "--out naming a file fails before training ($(echo "$out" | tail -1 | cut -c1-80))" || bad "--out FILE: exit $rc: $(echo "$out" | tail -2)"
fails_with "--out under a file" "not a folder" "$DKD" train resnet20 $D --out "$tmp/afile/run"
long="$tmp"; for i in 1 2 3 4 5 6; do long="$long/$(printf 'd%.0s' $(seq 1 200))"; done
"$DKD" train resnet20 $D $TINY --out "$long" > "$tmp/long.log" 2>&1
[ ${#long} -gt 1023 ] && [ -s "$long/log.csv" ] && [ -s "$long/student_latest" ] && ok "--out of ${#long} characters works (no truncation)" ||
  { bad "--out of ${#long} characters"; tail -3 "$tmp/long.log"; }
fails_with "--out of 5000 characters" "characters long" "$DKD" train resnet20 $D --out "$(printf 'x%.0s' $(seq 1 5000))"

# --- mdistiller's command line: --cfg, KEY VALUE, eval -m/-d/-bs
C="$ROOT/configs/cifar100"
"$DKD" train --cfg "$C/vanilla/res20.yaml" SOLVER.EPOCHS 1 SOLVER.BATCH_SIZE 16 $D --subset 32 --test-subset 20 > "$tmp/cfg.log" 2>&1
cfgrun="output/cifar100_baselines/vanilla,res20SOLVER.EPOCHS:1,SOLVER.BATCH_SIZE:16"
[ -s "$cfgrun/log.csv" ] && grep -q "BATCH_SIZE: 16" "$cfgrun/config.yaml" && grep -q "EPOCHS: 1$" "$cfgrun/config.yaml" &&
  ok "train --cfg FILE KEY VALUE: mdistiller's run folder and settings" || { bad "train --cfg"; tail -3 "$tmp/cfg.log"; ls -R output | head; }
fails_with "--cfg: an unknown key" "unknown key SOLVER.BATCHSIZE" "$DKD" train --cfg "$C/dkd/res56_res20.yaml" SOLVER.BATCHSIZE 128 $D
fails_with "--cfg: a key without value" "needs a value" "$DKD" train --cfg "$C/dkd/res56_res20.yaml" SOLVER.BATCH_SIZE
fails_with "--cfg: a bad value" "DKD.BETA expects" "$DKD" train --cfg "$C/dkd/res56_res20.yaml" DKD.BETA 0x2 $D
fails_with "--cfg and models together" "not both" "$DKD" train res56 res20 --cfg "$C/dkd/res56_res20.yaml" $D
printf 'SOLVER:\n\tLR: 0.1\n' > "$tmp/tab.yaml"
fails_with "--cfg of malformed YAML names file and line" "tab.yaml:2: a tab" "$DKD" train --cfg "$tmp/tab.yaml" $D
fails_with "--cfg of a missing file" "cfg: cannot open .*nofile.yaml" "$DKD" train --cfg "$tmp/nofile.yaml" $D
fails_with "--cfg DKD pair without a teacher here" "no checkpoint for the teacher resnet56" "$DKD" train --cfg "$C/dkd/res56_res20.yaml" $D
out=$("$DKD" eval -m resnet20 -c "$tmp/run1/student_latest" -d cifar100 -bs 50 $D 2>&1)
echo "$out" | grep -q "top-1 $acc" && echo "$out" | grep -q "batch 50" && ok "eval -m -c -d cifar100 -bs 50" || bad "eval -m: $out"
fails_with "eval -d imagenet" "cifar100 only" "$DKD" eval -m resnet20 -c "$tmp/resnet20.pth" -d imagenet $D

# --- run records
grep -q "^# command: .*dkd train resnet20 --data $tmp/data --threads 2 --epochs 2 --out $tmp/run1 --seed 7$" "$tmp/run1/config.yaml" &&
  grep -q 'STUDENT: "resnet20"' "$tmp/run1/config.yaml" && grep -q "LR_DECAY_STAGES: \[150, 180, 210\]" "$tmp/run1/config.yaml" &&
  ok "config.yaml: the command line and the resolved settings" || bad "config.yaml: $(head -5 "$tmp/run1/config.yaml")"
grep -q "^# resumed at epoch 2: .*--resume" "$tmp/run2/config.yaml" && grep -q "^# command: .*--stop-after 1" "$tmp/run2/config.yaml" &&
  ok "config.yaml of a resumed run keeps both command lines" || bad "config.yaml of run2: $(head -5 "$tmp/run2/config.yaml")"
head -1 "$tmp/run1/log.csv" | grep -q ",test_images$" && [ "$(tail -1 "$tmp/run1/log.csv" | awk -F, '{print $NF}')" = "$NTEST" ] &&
  ok "log.csv records the test-set size ($NTEST)" || bad "log.csv test_images: $(tail -1 "$tmp/run1/log.csv")"
out=$("$DKD" train --cfg "$tmp/run1/config.yaml" $D --seed 7 --out "$tmp/run1" --resume 2>&1); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "already finished its 2 epochs" && ok "config.yaml reads back (--cfg) and a finished run resumes to 'nothing to do'" ||
  bad "--cfg run1/config.yaml --resume: exit $rc: $out"
fails_with "resume with another --test-subset" "test-subset.* was 0 in the saved run but is 100" "$DKD" train resnet20 $D --epochs 3 --out "$tmp/run1" --seed 7 --resume --test-subset 100
fails_with "resume with another model" "the student .*was resnet20 in the saved run but is resnet32" "$DKD" train resnet32 $D --epochs 3 --out "$tmp/run1" --seed 7 --resume
fails_with "resume with another method" "the method .*was NONE .* but is DKD" "$DKD" train resnet20 resnet20 --teacher-ckpt "$tmp/run1/student_best" $D --epochs 3 --out "$tmp/run1" --seed 7 --resume
fails_with "resume where there is no run" "holds no run" "$DKD" train resnet20 $D --out "$tmp/norun" --resume

"$DKD" eval resnet20 -c "$tmp/run1/latest" $D --test-subset 20 >/dev/null 2>&1 && ok "dkd reads back its own 'latest' (with the optimizer dict)" ||
  bad "eval -c run1/latest"

# --- hand-corrupted resume state: epoch missing, huge, negative
for case in "missing 580500000065706f63 58 has.no..epoch" "huge 580500000065706f63684a ffffff7f epoch.=.2147483647," \
            "negative 580500000065706f63684a 01000080 epoch.=.-2147483647," "same 580500000065706f63684a 02000000 -"; do
  set -- $case
  rm -rf "$tmp/c_$1"; cp -r "$tmp/run2" "$tmp/c_$1"
  "$tmp/patch_pkl" "$tmp/c_$1/dkd_state" $2 $3 || bad "patch_pkl $1"
  out=$("$DKD" train resnet20 $D --epochs 2 --out "$tmp/c_$1" --seed 7 --resume 2>&1); rc=$?
  if [ $1 = same ]; then
    # the epoch rewritten with its own value (2): still a valid state, so the patching itself breaks nothing
    [ $rc = 0 ] && echo "$out" | grep -q "already finished its 2 epochs" && ok "resume state patched with a valid epoch still loads" || bad "patched valid state: $out"
  else
    [ $rc != 0 ] && echo "$out" | grep -qE "$4" && ! echo "$out" | grep -q "^resuming" &&
      ok "resume state with the epoch $1 is refused ($(echo "$out" | tail -1 | cut -c1-100))" || bad "epoch $1: exit $rc: $out"
  fi
done

# --- checkpoints carry torch.optim.SGD's state (mdistiller resumes from them): checked with PyTorch where present
PY=/usr/bin/python3
if [ -x $PY ] && $PY -c "import torch" 2>/dev/null; then
  for run in run1 dkd; do
    out=$($PY - "$tmp/$run" <<'PYEOF' 2>&1
import sys, torch
d = sys.argv[1]
ck = torch.load(d + "/latest", map_location="cpu")
assert list(ck.keys()) == ["epoch", "model", "optimizer", "best_acc"], list(ck.keys())
st = torch.load(d + "/dkd_state", map_location="cpu")["model"]
names = [k for k in ck["model"] if k.startswith("module.student.") and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
params = [torch.zeros_like(ck["model"][k]) for k in names]
opt = torch.optim.SGD(params, lr=0.1, momentum=0.5)
opt.load_state_dict(ck["optimizer"])
g = opt.param_groups[0]
lr = float(open(d + "/log.csv").read().split("\n")[-2].split(",")[1])
assert abs(g["lr"] - lr) < 1e-7 and g["momentum"] == 0.9 and g["weight_decay"] == 0.0005 and g["dampening"] == 0 and not g["nesterov"], g
for p, k in zip(params, names):
    buf = opt.state[p]["momentum_buffer"]
    assert buf.shape == p.shape and torch.equal(buf, st["momentum." + k[len("module.student."):]]), k
for p in params: p.grad = torch.ones_like(p)
opt.step()
print("ok", len(params), "momentum buffers")
PYEOF
)
    echo "$out" | grep -q "^ok" && ok "$run/latest: torch.optim.SGD loads its optimizer dict ($out)" || bad "$run/latest optimizer dict: $out"
  done
else
  skip "optimizer dict: $PY with torch not available (the layout is checked by PyTorch only)"
fi

echo "RESULT $P $F $S"
[ $F = 0 ]
