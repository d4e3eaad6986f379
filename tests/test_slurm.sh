#!/usr/bin/env bash
# tests/test_slurm.sh — scripts/sweep.sh end to end, locally and on a real Slurm.
#
# 1. Local (always): a 1-run sweep on a tiny generated data set (tests/tools/mkcifar.c),
#    into a run folder that holds a run stopped after epoch 1: the sweep resumes it,
#    finishes it and writes the table; run again, it skips the finished run.
# 2. Slurm (where it can start): a one-node cluster on localhost from Debian's
#    slurm-wlm + munge, configured in a temp folder (SLURM_CONF, own ports, own
#    munge socket and key; no systemd): munged, slurmctld and slurmd started as
#    root, a 2-task job array of tiny runs submitted by `sweep.sh --slurm`
#    (vanilla resnet20, seeds 1 and 2), waited for (at most 180 s), both run
#    folders and the table checked; the same sweep submitted again does nothing
#    but finds both runs finished. The daemons are stopped and the folder removed.
#    Skipped, saying why, when not root or the packages are missing (.ci/run
#    installs them) or the daemons do not come up.
# Prints "ok"/"FAIL"/"SKIP" lines and "RESULT p f s".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. tests/check.sh
finish() { echo "RESULT $P $F $S"; [ $F = 0 ]; exit; }
[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; F=1; finish; }

tmp=$(mktemp -d /tmp/dkd_test_slurm.XXXXXX)
chmod 755 "$tmp"
pids_files=()
cleanup() {
  for f in "${pids_files[@]+"${pids_files[@]}"}"; do [ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null; done
  sleep 1
  for f in "${pids_files[@]+"${pids_files[@]}"}"; do [ -s "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT

gcc -O2 -o "$tmp/mkcifar" tests/tools/mkcifar.c || { bad "mkcifar does not compile"; finish; }
mkdir -p "$tmp/data/cifar-100-binary"
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/train.bin" 96 1
"$tmp/mkcifar" "$tmp/data/cifar-100-binary/test.bin" 48 2
export DKD_CIFAR_ANY_SIZE=1
TINY=(--subset 48 --test-subset 24 --batch 16 --threads 1 --data "$tmp/data")

# ---- 1. local
L=$tmp/local
run="$L/vanilla,res20,seed3"
./dkd train resnet20 --seed 3 --epochs 2 --stop-after 1 "${TINY[@]}" --out "$run" > "$tmp/stop.log" 2>&1 ||
  bad "a run stopped after epoch 1: $(tail -2 "$tmp/stop.log")"
out=$(scripts/sweep.sh --gpus 0 --pairs res56:res20 --methods vanilla --seeds 3 --out "$L" -- --epochs 2 "${TINY[@]}" 2>&1); rc=$?
log=$(ls "$L"/logs/*.log 2>/dev/null | head -1)
if [ $rc = 0 ] && grep -q "resuming" "$log" && [ "$(grep -c '^epoch: ' "$run/worklog.txt")" = 2 ] && grep -q "^best_acc" "$run/worklog.txt"; then
  ok "local sweep: resumed the stopped run and finished it (2 epochs, best_acc)"
else bad "local sweep (exit $rc): $(echo "$out" | tail -3) | $(tail -3 "$log" 2>/dev/null)"; fi
grep -q "| resnet56 | resnet20 | .* | 1 x 2 ep |" "$L/table.md" 2>/dev/null && ok "local sweep wrote the table with the run" ||
  bad "local table: $(cat "$L/table.md" 2>/dev/null | head -20)"
scripts/sweep.sh --gpus 0 --pairs res56:res20 --methods vanilla --seeds 3 --out "$L" -- --epochs 2 "${TINY[@]}" > /dev/null 2>&1
grep -q "finished already" "$L"/logs/*.log && ok "local sweep again: the finished run is skipped" || bad "rerun did not skip the finished run"
out=$(scripts/sweep.sh --slurm --seeds 1,2 --methods dkd,kd,vanilla --dry-run 2>&1)
echo "$out" | grep -q "sbatch --parsable --array=0-$(( 11 * 2 * 2 + 9 * 2 - 1 )) --requeue" &&
  ok "dry run: 11 pairs x 2 seeds x (dkd, kd) + 9 students x 2 seeds (vanilla) in one array" || bad "dry run: $(echo "$out" | tail -3)"
scripts/sweep.sh --pairs 12 --dry-run > /dev/null 2>&1 && bad "--pairs 12 accepted" || ok "--pairs 12 refused"

# ---- 2. Slurm
if [ "$(id -u)" != 0 ]; then skip "Slurm: not root (the test starts munged, slurmctld and slurmd itself)"; finish; fi
for c in munged mungekey slurmctld slurmd sbatch squeue sinfo; do
  command -v $c >/dev/null 2>&1 || { skip "Slurm: '$c' not found (apt-get install -y slurm-wlm munge; .ci/run does)"; finish; }
done
K=$tmp/slurm
mkdir -p "$K/state" "$K/spool" "$K/log"
mungekey --create --keyfile="$K/munge.key" > /dev/null 2>&1 || { skip "Slurm: mungekey failed"; finish; }
chmod 600 "$K/munge.key"
pids_files+=("$K/munged.pid" "$K/slurmctld.pid" "$K/slurmd.pid")
munged -f --socket="$K/munge.sock" --key-file="$K/munge.key" --log-file="$K/log/munged.log" \
  --pid-file="$K/munged.pid" --seed-file="$K/munged.seed" > /dev/null 2>&1 < /dev/null ||
  { skip "Slurm: munged does not start: $(tail -2 "$K/log/munged.log" 2>/dev/null)"; finish; }
port=$((20000 + RANDOM % 20000))
host=$(hostname)
cat > "$K/slurm.conf" <<EOF
ClusterName=dkdtest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$K/munge.sock
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$K/state
SlurmdSpoolDir=$K/spool
SlurmctldPidFile=$K/slurmctld.pid
SlurmdPidFile=$K/slurmd.pid
SlurmctldLogFile=$K/log/slurmctld.log
SlurmdLogFile=$K/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$K/slurm.conf
slurmctld -c -i > "$K/log/slurmctld.out" 2>&1 < /dev/null
slurmd > "$K/log/slurmd.out" 2>&1 < /dev/null
up=0
for i in $(seq 1 30); do
  sinfo -h -o "%T" 2>/dev/null | grep -q "idle" && { up=1; break; }
  sleep 1
done
if [ $up = 0 ]; then
  skip "Slurm: the one-node cluster did not come up in 30 s: $(tail -2 "$K/log/slurmctld.log" "$K/log/slurmd.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
  finish
fi
ok "Slurm up: munged, slurmctld, slurmd on localhost (port $port), node idle"

wait_jobs() {  # seconds: 0 when no job is left in the queue
  for i in $(seq 1 "$1"); do
    [ -z "$(squeue -h 2>/dev/null)" ] && return 0
    sleep 1
  done
  return 1
}
O=$tmp/sweep
out=$(scripts/sweep.sh --slurm --pairs 1 --methods vanilla --seeds 1,2 --out "$O" -- --epochs 1 "${TINY[@]}" 2>&1); rc=$?
[ $rc = 0 ] && echo "$out" | grep -q "submitted array job" && ok "sweep.sh --slurm submitted a 2-task array and the table job" ||
  { bad "sweep.sh --slurm (exit $rc): $out"; finish; }
if wait_jobs 180; then ok "all jobs left the queue within 180 s"; else bad "jobs still queued after 180 s: $(squeue -h | head -3)"; scancel -u root 2>/dev/null; fi
for s in 1 2; do
  d="$O/vanilla,res20,seed$s"
  [ -s "$d/log.csv" ] && grep -q "^best_acc" "$d/worklog.txt" 2>/dev/null && [ -s "$d/student_best" ] &&
    ok "array task of seed $s: run folder complete ($d)" ||
    bad "seed $s run folder incomplete: $(ls "$d" 2>&1 | tr '\n' ' ') $(tail -3 "$O"/logs/slurm-*_$((s - 1)).out 2>/dev/null)"
done
grep -q "| resnet56 | resnet20 | .* | 2 x 1 ep |" "$O/table.md" 2>/dev/null && ok "table job: $O/table.md has the pair's 2 runs" ||
  bad "table.md: $(head -12 "$O/table.md" 2>/dev/null) $(cat "$O"/logs/table-*.out 2>/dev/null | tail -3)"
# submitted again (as after a requeue): each task finds its run finished
scripts/sweep.sh --slurm --pairs 1 --methods vanilla --seeds 1,2 --out "$O" -- --epochs 1 "${TINY[@]}" > /dev/null 2>&1
wait_jobs 120
n=$(grep -l "finished already" "$O"/logs/slurm-*.out 2>/dev/null | wc -l)
[ "$n" = 2 ] && ok "resubmitted: both tasks find their run finished and do nothing" || bad "resubmitted: $n of 2 tasks skipped"
finish
