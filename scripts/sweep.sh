#!/usr/bin/env bash
# scripts/sweep.sh — train pairs x seeds x methods, locally or as a Slurm job array, then `dkd table`.
#
#   scripts/sweep.sh [options] [-- dkd train flags...]
#
# What runs: one `dkd train` per (pair, method, seed). Methods: dkd (the
# pair's DKD recipe), kd (classic KD on the pair), vanilla (the student alone;
# a student shared by two pairs is trained once). Every run has its folder:
#   --layout output      OUT/<tag>,seed<S>                       (default; OUT = output)
#   --layout mdistiller  OUT_<S>/cifar100_baselines/<tag>          (mdistiller's output_i/ layout)
# with <tag> as mdistiller's EXPERIMENT.TAG (dkd,res56,res20 / kd,res56,res20 /
# vanilla,res20). When all runs are done, `dkd table` writes OUT/table.md
# (+ bar charts) from them. Console logs: OUT/logs/.
#
# Where it runs:
#   --local (default)  one process per GPU (CUDA_VISIBLE_DEVICES=i, the runs dealt
#                      out in turn) when nvidia-smi lists GPUs, else one after the
#                      other on the CPU
#   --slurm            a Slurm job array, one task per run (sbatch --array
#                      --requeue): a task that is requeued or submitted again
#                      continues its run with --resume; a task whose run has
#                      finished does nothing. A last job (afterany) writes the table.
# A run folder holding a finished run is skipped, one holding dkd_state is resumed,
# in both modes: running the same sweep again finishes what is left.
#
# Options:
#   --pairs LIST     all (default), same, cross, or a comma list of pair numbers
#                    (as `./dkd list` numbers them) or TEACHER:STUDENT (res56:res20)
#   --methods LIST   comma list of dkd, kd, vanilla (default dkd)
#   --seeds LIST     comma list of seeds (default 1)
#   --out DIR        output folder (default output)
#   --layout output|mdistiller
#   --gpus N         local: use N GPUs (default: as many as nvidia-smi lists; 0: CPU)
#   --sbatch "ARGS"  extra sbatch options, e.g. "--partition gpu --gres gpu:1 --time 24:00:00"
#   --max-parallel N slurm: at most N tasks at a time (--array=...%N)
#   --dkd PATH       the dkd binary (default: ./dkd of this repository)
#   --dry-run        print the plan (runs, commands, sbatch lines) and stop
#   -- FLAGS         passed to every `dkd train` (e.g. -- --epochs 1 --subset 256 --data DIR)
# Examples:
#   scripts/sweep.sh --methods dkd,kd,vanilla --seeds 1,2,3 --dry-run
#   scripts/sweep.sh --slurm --seeds 1,2,3,4,5 --sbatch "--gres gpu:1 --time 12:00:00"
#   scripts/sweep.sh --pairs 1 --seeds 1,2 -- --epochs 1 --subset 256
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
die() { echo "sweep: error: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

# ---- one task (used by both modes; a Slurm task calls: sweep.sh --run-task FILE INDEX)
# A task file line: DIR<TAB>dkd train arguments (space-separated, no spaces inside one).
run_task() {  # file index(0-based) dkd
  local file=$1 idx=$2 dkd=$3 line dir args
  line=$(sed -n "$((idx + 1))p" "$file")
  [ -n "$line" ] || die "no task $idx in $file"
  dir=${line%%$'\t'*}; args=${line#*$'\t'}
  if [ -f "$dir/worklog.txt" ] && grep -q "^best_acc" "$dir/worklog.txt"; then
    echo "sweep: $dir has finished already, nothing to do"; return 0
  fi
  local resume=""
  if [ -f "$dir/dkd_state" ]; then resume="--resume"; echo "sweep: resuming $dir"; fi
  mkdir -p "$dir"
  # shellcheck disable=SC2086
  "$dkd" train $args --out "$dir" $resume
}
if [ "${1:-}" = "--run-task" ]; then
  [ $# = 4 ] || die "--run-task FILE INDEX DKD"
  run_task "$2" "$3" "$4"; exit $?
fi

# ---- options
pairs=all; methods=dkd; seeds=1; out=output; layout=output; mode=local; gpus=""; sbatch_extra=""
max_par=""; dkd="$ROOT/dkd"; dry=0; extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --pairs) pairs=${2:?--pairs needs a value}; shift ;;
    --methods) methods=${2:?--methods needs a value}; shift ;;
    --seeds) seeds=${2:?--seeds needs a value}; shift ;;
    --out) out=${2:?--out needs a value}; shift ;;
    --layout) layout=${2:?--layout needs a value}; shift ;;
    --gpus) gpus=${2:?--gpus needs a value}; shift ;;
    --sbatch) sbatch_extra=${2:?--sbatch needs a value}; shift ;;
    --max-parallel) max_par=${2:?--max-parallel needs a value}; shift ;;
    --dkd) dkd=${2:?--dkd needs a value}; shift ;;
    --local) mode=local ;;
    --slurm) mode=slurm ;;
    --dry-run) dry=1 ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
case "$layout" in output|mdistiller) ;; *) die "--layout is output or mdistiller, not '$layout'" ;; esac
[ -x "$dkd" ] || die "no dkd binary at $dkd (run ./build.sh, or pass --dkd PATH)"
for s in ${seeds//,/ }; do [[ "$s" =~ ^[0-9]+$ ]] || die "--seeds: '$s' is not a number"; done
for m in ${methods//,/ }; do case "$m" in dkd|kd|vanilla) ;; *) die "--methods: '$m' is none of dkd, kd, vanilla" ;; esac; done
for a in "${extra[@]+"${extra[@]}"}"; do
  case "$a" in *" "*|*$'\t'*) die "dkd flags with spaces are not supported: '$a'" ;; --out|--resume|--seed) die "$a is set by the sweep" ;; esac
done
extra_s="${extra[*]+"${extra[*]}"}"

# ---- the pairs, from `dkd list`: number, teacher, student, tag
table=$("$dkd" list | awk '/^[0-9]+ +[A-Za-z]/ && $4 ~ /^dkd,/ { print $1, $2, $3, $4 }')
[ -n "$table" ] || die "cannot read the pairs from '$dkd list'"
# a model's mdistiller name from its name or alias (the model section of `dkd list`)
model_name() {
  "$dkd" list | awk -v a="$1" '/^$/ { exit } NR > 1 { for (i = 1; i <= NF - 5; i++) if ($i == a) { print $1; exit } }'
}
sel=""
case "$pairs" in
  all) sel=$(echo "$table" | awk '{ print $1 }') ;;
  same) sel=$(echo "$table" | awk '$1 <= 6 { print $1 }') ;;
  cross) sel=$(echo "$table" | awk '$1 > 6 { print $1 }') ;;
  *)
    for p in ${pairs//,/ }; do
      if [[ "$p" =~ ^[0-9]+$ ]]; then
        echo "$table" | awk -v n="$p" '$1 == n { f = 1 } END { exit !f }' || die "--pairs: no pair number $p (see ./dkd list)"
        sel="$sel $p"
      elif [[ "$p" == *:* ]]; then
        t=$(model_name "${p%%:*}"); s=$(model_name "${p#*:}")
        n=$(echo "$table" | awk -v t="$t" -v s="$s" '$2 == t && $3 == s { print $1 }')
        [ -n "$n" ] || die "--pairs: $p is not one of the 11 pairs (see ./dkd list)"
        sel="$sel $n"
      else die "--pairs: '$p' is not a number, TEACHER:STUDENT, all, same or cross"; fi
    done ;;
esac

# ---- the runs: DIR<TAB>arguments, one per line
if [ "$layout" = output ]; then run_dir() { echo "$out/$1,seed$2"; }
else run_dir() { echo "${out}_$2/cifar100_baselines/$1"; }; fi
tasks=""
add() { tasks="$tasks$1"$'\t'"$2"$'\n'; }
seen_students=" "
for m in ${methods//,/ }; do
  for n in $sel; do
    read -r _ teacher student tag < <(echo "$table" | awk -v n="$n" '$1 == n')
    short=${tag##*,}
    for s in ${seeds//,/ }; do
      case "$m" in
        dkd) add "$(run_dir "$tag" "$s")" "$teacher $student --method dkd --seed $s${extra_s:+ $extra_s}" ;;
        kd) add "$(run_dir "kd,${tag#dkd,}" "$s")" "$teacher $student --method kd --seed $s${extra_s:+ $extra_s}" ;;
        vanilla)
          case "$seen_students" in *" $student:$s "*) continue ;; esac
          seen_students="$seen_students$student:$s "
          add "$(run_dir "vanilla,$short" "$s")" "$student --seed $s${extra_s:+ $extra_s}" ;;
      esac
    done
  done
done
ntask=$(printf "%s" "$tasks" | grep -c . || true)
[ "$ntask" -gt 0 ] || die "nothing to run"
table_dirs=$([ "$layout" = output ] && echo "$out" || echo "${out}_*")

echo "sweep: $ntask runs ($(echo $sel | wc -w) pairs x methods $methods x seeds $seeds), $mode, layout $layout"
if [ $dry = 1 ]; then
  printf "%s" "$tasks" | awk -F'\t' -v d="$dkd" '{ printf "  %s train %s --out %s\n", d, $2, $1 }'
fi

# ---- Slurm: the task list, a batch script, the array, then the table
if [ "$mode" = slurm ]; then
  script="$out/sweep_slurm.sh"; list="$out/sweep_tasks.txt"
  arr="0-$((ntask - 1))${max_par:+%$max_par}"
  sub="sbatch --parsable --array=$arr --requeue $sbatch_extra $script"
  tab="sbatch --parsable --dependency=afterany:JOBID --job-name=dkd-table --output=$out/logs/table-%j.out --chdir=$ROOT --wrap=\"$dkd table $table_dirs -o $out/table.md\""
  if [ $dry = 1 ]; then
    echo "  would write $list and $script, then run:"
    echo "  $sub"
    echo "  $tab"
    exit 0
  fi
  command -v sbatch >/dev/null 2>&1 || die "sbatch not found: is Slurm installed here? (or run without --slurm)"
  mkdir -p "$out/logs"
  out_abs=$(cd "$out" && pwd); list="$out_abs/sweep_tasks.txt"; script="$out_abs/sweep_slurm.sh"
  printf "%s" "$tasks" > "$list"
  cat > "$script" <<EOF
#!/usr/bin/env bash
#SBATCH --job-name=dkd-sweep
#SBATCH --requeue
#SBATCH --output=$out_abs/logs/slurm-%A_%a.out
#SBATCH --chdir=$ROOT
# One run of the sweep: line SLURM_ARRAY_TASK_ID+1 of $list.
exec "$ROOT/scripts/sweep.sh" --run-task "$list" "\$SLURM_ARRAY_TASK_ID" "$dkd"
EOF
  chmod +x "$script"
  # shellcheck disable=SC2086
  jobid=$(sbatch --parsable --array="$arr" --requeue $sbatch_extra "$script") || die "sbatch failed"
  jobid=${jobid%%;*}
  tjob=$(sbatch --parsable --dependency="afterany:$jobid" --job-name=dkd-table --output="$out_abs/logs/table-%j.out" \
         --chdir="$ROOT" --wrap="$dkd table $table_dirs -o $out/table.md") || die "sbatch of the table job failed"
  echo "sweep: submitted array job $jobid ($ntask tasks) and table job ${tjob%%;*}; watch with: squeue -j $jobid"
  echo "sweep: logs in $out/logs/, the table will be in $out/table.md"
  exit 0
fi

# ---- local
if [ -z "$gpus" ]; then
  gpus=0
  if command -v nvidia-smi >/dev/null 2>&1; then gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU" || true); fi
fi
[[ "$gpus" =~ ^[0-9]+$ ]] || die "--gpus: '$gpus' is not a number"
if [ $dry = 1 ]; then
  if [ "$gpus" -gt 0 ]; then echo "  on $gpus GPUs (CUDA_VISIBLE_DEVICES=0..$((gpus - 1)), runs dealt out in turn)"
  else echo "  one after the other on the CPU"; fi
  echo "  then: $dkd table $table_dirs -o $out/table.md"
  exit 0
fi
mkdir -p "$out/logs"
list="$out/sweep_tasks.txt"
printf "%s" "$tasks" > "$list"
failed=0
worker() {  # gpu-index (or "") first-task step
  local g=$1 i=$2 step=$3 rc=0 log
  while [ "$i" -lt "$ntask" ]; do
    log="$out/logs/$(basename "$(sed -n "$((i + 1))p" "$list" | cut -f1)")_$i.log"
    echo "sweep: task $i${g:+ on GPU $g}: $(sed -n "$((i + 1))p" "$list" | tr '\t' ' ') (log: $log)"
    if [ -n "$g" ]; then CUDA_VISIBLE_DEVICES=$g run_task "$list" "$i" "$dkd" > "$log" 2>&1 || { echo "sweep: task $i FAILED, see $log"; rc=1; }
    else run_task "$list" "$i" "$dkd" > "$log" 2>&1 || { echo "sweep: task $i FAILED, see $log"; rc=1; }; fi
    i=$((i + step))
  done
  return $rc
}
if [ "$gpus" -gt 0 ]; then
  pids=()
  for g in $(seq 0 $((gpus - 1))); do worker "$g" "$g" "$gpus" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || failed=1; done
else
  worker "" 0 1 || failed=1
fi
# shellcheck disable=SC2086
"$dkd" table $table_dirs -o "$out/table.md" > /dev/null || failed=1
echo "sweep: the table is in $out/table.md"
[ $failed = 0 ] || die "some runs failed (see $out/logs/)"
