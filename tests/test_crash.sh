#!/usr/bin/env bash
# tests/test_crash.sh — crash consistency and a full disk, end to end.
#
# 1. Kill -9 at random moments, >= 20 times, resuming each time: a tiny run (resnet20,
#    16 images, one step per epoch, so most of an epoch is spent writing checkpoints) is
#    first run uninterrupted; then the same run is started, killed after a random delay
#    (every other time: when the k-th temporary file is seen, k random, i.e. inside a
#    random save), and continued with --resume, again and again. Its final files must
#    be bit-identical (cmp) to the uninterrupted run's, and the same files must exist.
#    The random delays are scaled to the uninterrupted run's duration, so 20 kills
#    cannot finish the run on a fast or a slow machine; $RANDOM's seed is printed.
# 2. A full disk: a run in a small tmpfs (mounted here; skipped with a message where
#    mounting is not allowed) that fills it must stop with a clear message, name the
#    last good epoch, leave every checkpoint readable and the resumable state of the
#    last finished epoch unchanged, and continue with --resume once there is space.
# Prints "ok"/"FAIL"/"SKIP" lines and "RESULT p f s" (read by build.sh).
set -u
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
skip() { echo "  SKIP $*"; S=$((S+1)); }
now_ms() { date +%s%3N; }

[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; echo "RESULT 0 1 0"; exit 1; }
tmp=$(mktemp -d); mnt="$tmp/small"
cleanup() { mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"; rm -rf "$tmp"; }
trap cleanup EXIT
gcc -O2 -o "$tmp/mkcifar" tests/tools/mkcifar.c || { echo "RESULT 0 1 0"; exit 1; }
mkdir -p "$tmp/data/cifar-100-binary"
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/train.bin" 16 1
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/test.bin" 16 2
export DKD_CIFAR_ANY_SIZE=1
EPOCHS=40
ARGS=(train resnet20 --data "$tmp/data" --threads 1 --batch 16 --seed 5 --epochs $EPOCHS --save-every 4)
run() { ./dkd "${ARGS[@]}" "$@"; }
KEEP="best latest student_best student_latest dkd_state worklog.txt"   # + epoch_N, student_N

# ------------------------------------------------------------ 1. kill -9 and resume
if [ "${DKD_SANITIZED:-0}" = 1 ]; then
  skip "kill -9 and resume: not under the sanitizers (./build.sh asan-test), whose binary trains ~10x slower; ./build.sh test runs it"
else
t0=$(now_ms)
run --out "$tmp/whole" > "$tmp/whole.log" 2>&1 || { bad "the uninterrupted run failed: $(tail -2 "$tmp/whole.log")"; echo "RESULT $P $F $S"; exit 1; }
whole_ms=$(( $(now_ms) - t0 ))
# odd attempts: killed after 0..2.5 epochs' time; even ones: at the k-th temporary file seen
# (k = 1..10, an epoch writes 7-9 files), i.e. inside a random save of the first or second
# epoch; an attempt gets through about one epoch on average, so 20 kills cover half the run
max_delay=$(( whole_ms * 5 / (2 * EPOCHS) > 20 ? whole_ms * 5 / (2 * EPOCHS) : 20 ))
seed=${DKD_CRASH_SEED:-$(( $(date +%s) % 32768 ))}; RANDOM=$seed
echo "  (uninterrupted run: $EPOCHS epochs in ${whole_ms} ms; kills after 0..${max_delay} ms, or at the k-th temporary file; RANDOM seed $seed)"

dir="$tmp/killed"; mkdir -p "$dir"
kills=0; in_save=0; attempts=0; finished_early=0
while [ $kills -lt 20 ] || [ $in_save -lt 1 -a $kills -lt 40 ]; do
  attempts=$((attempts + 1))
  if [ -f "$dir/dkd_state" ]; then resume=--resume; else resume=; fi
  ./dkd "${ARGS[@]}" --out "$dir" $resume >> "$tmp/killed.log" 2>&1 &   # a simple command: $! is dkd itself
  pid=$!
  if [ $((attempts % 2)) = 1 ]; then
    sleep "$(awk -v ms=$((RANDOM % max_delay)) 'BEGIN{printf "%.3f", ms / 1000}')"
  else
    # inside a save: wait until the k-th distinct temporary file is seen (or the process ends)
    k=$((RANDOM % 10 + 1)); seen=0; prev=""
    while kill -0 $pid 2>/dev/null; do
      cur=$(compgen -G "$dir/*.tmp")
      if [ -n "$cur" ] && [ "$cur" != "$prev" ]; then seen=$((seen + 1)); [ $seen -ge $k ] && break; fi
      prev=$cur
    done
  fi
  if kill -9 $pid 2>/dev/null; then
    wait $pid 2>/dev/null
    kills=$((kills + 1))
    compgen -G "$dir/*.tmp" > /dev/null && in_save=$((in_save + 1))
  else
    wait $pid; rc=$?
    if [ $rc = 0 ]; then finished_early=1; break; fi
    bad "attempt $attempts exited with $rc before the kill: $(tail -2 "$tmp/killed.log")"; break
  fi
done
[ $finished_early = 1 ] && echo "  (the run finished after $kills kills)"
echo "  (the killed attempts resumed at epochs: $(sed -n 's/^resuming .* at epoch \([0-9]*\) .*/\1/p' "$tmp/killed.log" | tr '\n' ' '))"
[ $kills -ge 20 ] && ok "$kills runs killed with SIGKILL at random moments, each resumed with --resume" ||
  bad "only $kills kills before the run finished (attempts $attempts)"
[ $in_save -ge 1 ] && ok "$in_save of the kills landed inside a checkpoint write (a temporary file was left behind)" ||
  bad "no kill landed inside a checkpoint write in $kills kills"
if [ $finished_early = 0 ]; then
  if [ -f "$dir/dkd_state" ]; then resume=--resume; else resume=; fi
  run --out "$dir" $resume >> "$tmp/killed.log" 2>&1 && ok "the last --resume finishes the run" ||
    bad "the last --resume failed: $(tail -2 "$tmp/killed.log")"
fi
grep -q "^done: " "$tmp/killed.log" || bad "the killed run never reported done"
# log.csv and the curves hold timings; config.yaml records each command line and resume
# (as '#' comments), so its settings are compared without them
files=$(cd "$tmp/whole" && ls | grep -vE '^(log\.csv|curves\.(png|svg)|config\.yaml)$')
[ "$(grep -v '^#' "$tmp/whole/config.yaml")" = "$(grep -v '^#' "$dir/config.yaml")" ] &&
  ok "config.yaml: the same settings as the uninterrupted run's" || bad "config.yaml settings differ"
grep -q '^# resumed at epoch' "$dir/config.yaml" && ok "config.yaml records the resumes" || bad "config.yaml records no resume"
nsame=0; ndiff=""
for f in $files; do cmp -s "$tmp/whole/$f" "$dir/$f" && nsame=$((nsame + 1)) || ndiff="$ndiff $f"; done
[ -z "$ndiff" ] && ok "all $nsame files (checkpoints, dkd_state, worklog.txt) bit-identical to the uninterrupted run's" ||
  bad "files differ from the uninterrupted run's:$ndiff"
for f in $KEEP epoch_4 student_4; do [ -f "$dir/$f" ] || bad "the killed run lacks $f"; done
[ "$(cd "$dir" && ls)" = "$(cd "$tmp/whole" && ls)" ] && ok "the same files exist, no temporary file left over" ||
  bad "file lists differ: $(cd "$dir" && ls | tr '\n' ' ') vs $(cd "$tmp/whole" && ls | tr '\n' ' ')"
resumed=$(grep -c "^resuming " "$tmp/killed.log")
[ "$resumed" -ge 5 ] && ok "$resumed of the attempts resumed from a saved epoch (not all killed before their first save)" ||
  bad "only $resumed attempts resumed from a saved epoch: the kills came too early to test resuming"
fi

# ------------------------------------------------------------ 2. a full disk
mkdir -p "$mnt"
# size the disk from a real run: one epoch fits with room to rewrite a file (temp + rename),
# the second epoch's extra epoch_2/student_2 (--save-every 2) do not
run --out "$tmp/one" --epochs 1 > /dev/null 2>&1
one_kb=$(du -sk "$tmp/one" | cut -f1); big_kb=$(du -sk "$tmp/one/dkd_state" | cut -f1)
size_kb=$((one_kb + big_kb + 64))
if ! mount -t tmpfs -o size=${size_kb}k tmpfs "$mnt" 2>"$tmp/mount.err"; then
  skip "full disk: cannot mount a small tmpfs here ($(head -1 "$tmp/mount.err")); needs root and mount rights"
else
  out="$mnt/run"
  run --out "$out" --epochs 1 --save-every 2 > "$tmp/disk1.log" 2>&1 && ok "full disk: epoch 1 fits in a ${size_kb} KiB tmpfs" ||
    bad "full disk: the first epoch did not fit: $(tail -2 "$tmp/disk1.log")"
  mkdir -p "$tmp/before"; cp "$out"/* "$tmp/before/"
  msg=$(run --out "$out" --epochs 3 --save-every 2 --resume 2>&1); rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && echo "$msg" | grep -q "No space left on device" && echo "$msg" | grep -q "last good epoch on disk is 1"; then
    ok "full disk: the run stops (exit $rc): $(echo "$msg" | grep error | cut -c1-200)..."
  else bad "full disk: exit $rc, message: $(echo "$msg" | tail -2)"; fi
  cmp -s "$tmp/before/dkd_state" "$out/dkd_state" && ok "full disk: dkd_state is still epoch 1's, bit for bit" || bad "full disk: dkd_state changed"
  compgen -G "$out/*.tmp" > /dev/null && bad "full disk: temporary files left: $(ls "$out")" || ok "full disk: no temporary file left"
  nread=0; for f in best latest student_best student_latest; do
    ./dkd eval resnet20 -c "$out/$f" --data "$tmp/data" --threads 1 > /dev/null 2>&1 && nread=$((nread + 1)) || bad "full disk: $f is damaged"
  done
  [ $nread = 4 ] && ok "full disk: best, latest, student_best, student_latest all read back and evaluate"
  mount -o remount,size=$((size_kb * 4))k "$mnt" && run --out "$out" --epochs 3 --save-every 2 --resume > "$tmp/disk3.log" 2>&1 &&
    cmp -s "$out/student_latest" "$(run --out "$tmp/three" --epochs 3 --save-every 2 > /dev/null 2>&1; echo "$tmp/three/student_latest")" &&
    ok "full disk: with space again, --resume finishes bit-identical to an uninterrupted run" ||
    bad "full disk: resuming after freeing space failed: $(tail -2 "$tmp/disk3.log" 2>/dev/null)"
fi

echo "RESULT $P $F $S"
[ $F = 0 ]
