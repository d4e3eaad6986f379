#!/usr/bin/env bash
# scripts/gpu_check.sh — the one-shot device check: everything dkd can learn on a
# machine with an NVIDIA GPU, in at most 8 minutes, written to results/gpu/.
#
#   scripts/gpu_check.sh [--out DIR] [--data DIR] [--dry-run]
#
# It needs the CUDA toolkit (nvcc) and a GPU, nothing else: no stb, no Python, no
# network. Each stage runs under `timeout` with its own limit (the limits add up to
# 8 minutes); a stage that cannot run says why and the next one starts. Stages:
#   build      ./build.sh for this GPU's architecture only (nvcc, warnings as errors;
#              without stb's headers it builds with DKD_NO_STB=1: no PNG plots)
#   tests      ./build.sh test: the whole suite (CPU reference, golden, emulated CUDA)
#   check      ./dkd bench --check-devices: one DKD step of each of the 11 pairs on the
#              GPU and on the CPU from the same weights and batch, compared
#   graph      tests/emu_graph.cpp built against the real CUDA runtime (g++ + the nvcc
#              objects) and run on the GPU: the trainer's step and the evaluation
#              replayed from one CUDA graph == launch by launch, bit for bit, the
#              per-epoch values read from device memory, the capture violations
#   kernels    tests/emu_conv.cpp and tests/emu_fused.cpp built the same way and run on
#              the GPU: the convolution (implicit GEMM and im2col) against the C
#              reference, every fused op == its separate ops bit for bit, on hardware
#   sanitizer  compute-sanitizer memcheck and racecheck of one small DKD step
#              (when the toolkit has compute-sanitizer)
#   step       DKD training-step img/s of the 11 pairs at batch 64: the step replayed as
#              one CUDA graph (dkd's default) and launch by launch (--no-graph), and which
#              mode each run reported
#   infer      inference of the 15 models over 10000 images, 3 runs, mean img/s: the
#              CIFAR-100 test set through `dkd eval` when the data is present, else
#              random images of the test set's size through `dkd bench --infer`
#   epoch      the time of a 1-epoch real-data DKD run, resnet56 -> resnet20 (data needed)
# Files: results/gpu/summary.txt (what ran, what did not and why, the numbers) and
# one log per stage. --dry-run prints the stages and their limits and does nothing.
# Without a visible GPU (none found, or CUDA_VISIBLE_DEVICES empty or -1) it says
# "no GPU", writes nothing and exits 0.
set -u
cd "$(dirname "$0")/.."

out=results/gpu; data=""; dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    --data) data=${2:?--data needs a folder}; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

# Stage limits in seconds. Their sum, plus at most 10 s for nvidia-smi, bounds the
# script (<= 480 s = 8 minutes; tests/test_gpu_check.sh checks the sum <= 470).
STAGES="build tests check graph kernels sanitizer step infer epoch"
declare -A LIMIT=([build]=100 [tests]=115 [check]=40 [graph]=15 [kernels]=10 [sanitizer]=40 [step]=45 [infer]=70 [epoch]=35)
declare -A WHAT=(
  [build]="./build.sh (nvcc for this GPU's architecture; DKD_NO_STB=1 without stb)"
  [tests]="./build.sh test"
  [check]="./dkd bench --check-devices (11 pairs, CUDA vs CPU)"
  [graph]="tests/emu_graph.cpp on the GPU: the trainer's step as a CUDA graph == launch by launch"
  [kernels]="tests/emu_conv.cpp + tests/emu_fused.cpp on the GPU: conv vs the C reference, fused == unfused"
  [sanitizer]="compute-sanitizer memcheck + racecheck of one DKD step (batch 4)"
  [step]="./dkd bench --device cuda, 11 pairs, batch 64 (graph and no graph when built)"
  [infer]="15 models x 3 runs over 10000 images (dkd eval on the test set, or dkd bench --infer)"
  [epoch]="./dkd train res56 res20 --epochs 1 on CIFAR-100"
)
total=0; for s in $STAGES; do total=$((total + LIMIT[$s])); done
# The 11 pairs (teacher,student) and the 15 models, as ./dkd list prints them.
list_pairs() { ./dkd list | awk 'f && $1 ~ /^[0-9]+$/ {print $2 "," $3} /^# +teacher/ {f=1}'; }
list_models() { ./dkd list | awk '/^model / {f=1; next} f && NF == 0 {exit} f {print $1}'; }

if [ $dry = 1 ]; then
  echo "gpu_check --dry-run: stages (limit in seconds), output in $out/"
  for s in $STAGES; do printf '  %-10s %4d  %s\n' "$s" "${LIMIT[$s]}" "${WHAT[$s]}"; done
  echo "total limit: $total s"
  if [ -x ./dkd ]; then
    echo "pairs ($(list_pairs | wc -l)): $(list_pairs | tr '\n' ' ')"
    echo "models ($(list_models | wc -l)): $(list_models | tr '\n' ' ')"
  else
    echo "pairs and models: ./dkd not built yet"
  fi
  exit 0
fi

# ---- is there a GPU? ---------------------------------------------------------
gpu=""
if [ "${CUDA_VISIBLE_DEVICES+set}" = set ] && { [ -z "$CUDA_VISIBLE_DEVICES" ] || [ "$CUDA_VISIBLE_DEVICES" = "-1" ]; }; then
  why="CUDA_VISIBLE_DEVICES='$CUDA_VISIBLE_DEVICES' hides every GPU"
elif command -v nvidia-smi >/dev/null 2>&1; then
  gpu=$(timeout 10 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
  why="nvidia-smi lists no GPU"
elif ls /dev/nvidia[0-9]* >/dev/null 2>&1; then
  gpu="unknown (no nvidia-smi; /dev/nvidia0 exists)"
else
  why="no nvidia-smi and no /dev/nvidia0"
fi
if [ -z "$gpu" ]; then
  echo "gpu_check: no GPU ($why): nothing measured, nothing written. Run it on a machine with an NVIDIA GPU."
  exit 0
fi
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /opt/cuda/bin; do [ -x "$d/nvcc" ] && PATH="$d:$PATH"; done
fi

mkdir -p "$out"
summary="$out/summary.txt"
: > "$summary"
log() { echo "$*" | tee -a "$summary"; }
skipped=""
skip() { log "$1: NOT DONE: $2"; skipped="$skipped $1"; }
t_start=$(date +%s)
# run_stage NAME LOGFILE CMD...: the command under the stage's limit; returns its status
# (124 = ran past the limit, said in the summary).
run_stage() {
  local name=$1 file=$2; shift 2
  timeout -k 5 "${LIMIT[$name]}" "$@" > "$file" 2>&1
  local rc=$?
  [ $rc = 124 ] || [ $rc = 137 ] && log "$name: stopped at its ${LIMIT[$name]} s limit (partial output in $file)"
  return $rc
}

log "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log "gpu: $gpu"
log "cpu: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores"
log "nvcc: $(command -v nvcc >/dev/null 2>&1 && nvcc --version | tail -1 || echo 'not found')"

# ---- build ---------------------------------------------------------------------
cc=$(echo "$gpu" | awk -F', ' '{print $2}' | tr -d '.')
case "$cc" in ''|*[!0-9]*) archs="${CUDA_ARCHS:-80 86 89 90}" ;; *) archs="$cc" ;; esac
nostb=0
ls /usr/include/stb/stb_image_write.h /usr/include/stb_image_write.h /usr/local/include/stb/stb_image_write.h >/dev/null 2>&1 || nostb=1
[ $nostb = 1 ] && log "build: stb headers not found: building with DKD_NO_STB=1 (no PNG plots)"
built=0
if ! command -v nvcc >/dev/null 2>&1; then
  skip build "nvcc not found (install the CUDA toolkit or put its bin/ on PATH)"
elif run_stage build "$out/build.txt" env CUDA_ARCHS="$archs" DKD_NO_STB=$nostb ./build.sh &&
     grep -q 'cpu + cuda' "$out/build.txt"; then
  built=1
  cp build/cuda/ptxas.txt "$out/ptxas.txt" 2>/dev/null
  bash scripts/ptxas_report.sh build/cuda/ptxas.txt --arch "sm_${archs%% *}" > "$out/ptxas_table.txt" 2>&1
  spills=$(bash scripts/ptxas_report.sh --check build/cuda/ptxas.txt 2>&1 | grep -E '^  (ok|FAIL)' | tr -s ' ' | tr '\n' ';')
  log "build: ok for sm_$archs in $(($(date +%s) - t_start)) s, ptxas report $out/ptxas.txt, per kernel $out/ptxas_table.txt (spills:$spills)"
else
  skip build "./build.sh failed or built no CUDA code: $(tail -3 "$out/build.txt" | tr '\n' ' ')"
fi
if [ $built = 0 ]; then
  for s in tests check graph sanitizer step infer epoch; do skip $s "no CUDA build"; done
  log "summary: build failed, nothing else done; see $out/build.txt"
  exit 1
fi

# ---- tests ---------------------------------------------------------------------
run_stage tests "$out/tests.txt" env CUDA_ARCHS="$archs" DKD_NO_STB=$nostb ./build.sh test
log "tests: $(grep -E '^[0-9]+ passed' "$out/tests.txt" | tail -1 || true)"
grep -E '^FAIL' "$out/tests.txt" | head -5 | sed 's/^/  /' | tee -a "$summary"

# ---- CUDA vs CPU -----------------------------------------------------------------
LIMIT[check]=$((LIMIT[check] - 10))   # 10 s of the stage for this probe
if timeout 10 ./dkd bench --device cuda --steps 1 --warmup 0 --batch 2 --teacher resnet20 --student resnet20 > "$out/cuda_probe.txt" 2>&1 &&
   grep -q 'device cuda' "$out/cuda_probe.txt"; then
  run_stage check "$out/check.txt" ./dkd bench --check-devices
  log "check: $(grep -E 'pairs agree' "$out/check.txt" | tail -1) ($(grep -c '^ok' "$out/check.txt") ok, $(grep -c '^FAIL' "$out/check.txt") FAIL)"
  grep '^FAIL' "$out/check.txt" | head -11 | sed 's/^/  /' | tee -a "$summary"
else
  skip check "dkd does not run on the GPU: $(head -3 "$out/cuda_probe.txt" | tr '\n' ' ')"
  for s in graph sanitizer step infer epoch; do skip $s "dkd does not run on the GPU"; done
  log "summary: $(($(date +%s) - t_start)) s; dkd could not use the GPU, see $out/cuda_probe.txt"
  exit 1
fi

# ---- emulation tests on the GPU ------------------------------------------------------
# An emulation test (tests/emu_NAME.cpp) compiled against the real runtime: g++ for the
# test, the nvcc objects of the build stage for the kernels, the C objects for the rest.
gpu_test_build() {
  local home objs omp=""
  home=$(dirname "$(dirname "$(command -v nvcc)")")
  objs=$(ls build/obj/*.o build/obj/kernels/*.o build/obj/models/*.o | grep -v '/main\.o$')
  grep -q -- '-fopenmp' build/cflags 2>/dev/null && omp=-fopenmp
  ${CXX:-g++} -std=c++17 -O2 -I. -Itests -I"$home/include" -DDKD_HAVE_CUDA -c tests/emu_$1.cpp -o build/tests/$1_gpu.o &&
    ${CXX:-g++} build/tests/$1_gpu.o build/cuda/*.o $objs -o build/tests/$1_gpu -L"$home/lib64" \
      -L"$home/targets/x86_64-linux/lib" -lcudart -lstdc++ -lm $omp -Wl,-rpath,"$home/lib64"
}
graph_test() { gpu_test_build graph && ./build/tests/graph_gpu; }
# the two kernel tests, built side by side (the stage is short), then run one after the other
kernel_tests() {
  gpu_test_build conv & local pid=$!
  gpu_test_build fused; local rf=$?
  wait $pid; local rc=$?
  [ $rc = 0 ] && ./build/tests/conv_gpu; rc=$?
  [ $rf = 0 ] && ./build/tests/fused_gpu && [ $rc = 0 ]
}
export -f gpu_test_build graph_test kernel_tests
run_stage graph "$out/graph.txt" bash -c graph_test
log "graph: $(grep '^RESULT ' "$out/graph.txt" | tail -1 || true) (RESULT pass fail skip of tests/emu_graph.cpp on the GPU; $out/graph.txt)"
grep -E '^ *FAIL' "$out/graph.txt" | head -5 | sed 's/^/  /' | tee -a "$summary"
run_stage kernels "$out/kernels.txt" bash -c kernel_tests
log "kernels: $(grep '^RESULT ' "$out/kernels.txt" | tr '\n' ' ' || true)(RESULT pass fail skip of tests/emu_conv.cpp, tests/emu_fused.cpp on the GPU; $out/kernels.txt)"
grep -E '^ *FAIL' "$out/kernels.txt" | head -5 | sed 's/^/  /' | tee -a "$summary"

# ---- compute-sanitizer -------------------------------------------------------------
san=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null | head -1)
if [ -z "$san" ]; then
  skip sanitizer "compute-sanitizer not found in this toolkit"
else
  one_step=(./dkd bench --device cuda --teacher resnet8x4 --student ShuffleV1 --batch 4 --steps 1 --warmup 0)
  LIMIT[sanitizer]=$((LIMIT[sanitizer] / 2))
  for tool in memcheck racecheck; do
    run_stage sanitizer "$out/sanitizer_$tool.txt" "$san" --tool $tool --error-exitcode 9 "${one_step[@]}"
    rc=$?
    case $rc in
      0) log "sanitizer $tool: clean ($(grep -m1 'ERROR SUMMARY' "$out/sanitizer_$tool.txt" || echo 'no error summary'))" ;;
      124|137) ;;
      *) log "sanitizer $tool: FAILED (exit $rc): $(grep -m1 -E 'ERROR SUMMARY|Error' "$out/sanitizer_$tool.txt")" ;;
    esac
  done
fi

# ---- step img/s of the 11 pairs -----------------------------------------------------
pairs=$(list_pairs)
graph=0; ./dkd bench --help 2>&1 | grep -q -- '--no-graph' && graph=1
[ $graph = 0 ] && log "step: this build has no CUDA graph (no --no-graph flag): launch-by-launch only"
# One bench run: "<img/s> img/s" and the mode its line names (graph / launches).
step_one() {
  ./dkd bench --device cuda "$@" --steps 30 --warmup 5 2>&1 | awk '/^DKD train step/ {
    m = index($0, "one CUDA graph per step") ? "graph" : index($0, "launch by launch") ? "launches" : "?";
    for (i = 1; i < NF; i++) if ($(i+1) == "img/s") { print $i " img/s (" m ")"; exit } }'
}
step_all() {
  for p in $pairs; do
    t=${p%,*}; s=${p#*,}
    a=$(step_one --teacher "$t" --student "$s")
    b="n/a"
    [ $graph = 1 ] && b=$(step_one --no-graph --teacher "$t" --student "$s")
    printf '%-12s %-12s %24s %24s\n' "$t" "$s" "${a:-failed}" "${b:-failed}"
  done
}
printf '%-12s %-12s %24s %24s\n' teacher student "step (default)" "step --no-graph" > "$out/step.txt"
export pairs graph; export -f step_one step_all
run_stage step "$out/step_rows.txt" bash -c step_all
cat "$out/step_rows.txt" >> "$out/step.txt"
log "step: DKD training step, batch 64, img/s ($out/step.txt)"; sed 's/^/  /' "$out/step.txt" | tee -a "$summary" >/dev/null

# ---- inference of the 15 models -----------------------------------------------------
[ -n "$data" ] || data=${DKD_DATA:-}
if [ -z "$data" ]; then for d in data ../shared/data; do [ -d "$d" ] && data=$d && break; done; fi
have_data=0
for f in cifar-100-binary/test.bin test.bin cifar-100-python/test test; do [ -n "$data" ] && [ -f "$data/$f" ] && have_data=1; done
models=$(list_models)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export data tmp models
# A checkpoint of MODEL for dkd eval: mdistiller's teacher if downloaded, else the
# weights after a few steps of a tiny CE run (speed does not depend on the weights).
ckpt_of() {
  local m=$1 p="download_ckpts/cifar_teachers/$1_vanilla/ckpt_epoch_240.pth"
  if [ -f "$p" ]; then echo "$p"; return; fi
  ./dkd train "$m" --device cuda --data "$data" --epochs 1 --subset 128 --test-subset 100 --out "$tmp/ce_$m" >/dev/null 2>&1 &&
    echo "$tmp/ce_$m/student_latest"
}
infer_data() {
  for m in $models; do
    c=$(ckpt_of "$m") || { printf '%-12s %s\n' "$m" "no checkpoint"; continue; }
    r=$(for k in 1 2 3; do ./dkd eval "$m" -c "$c" --device cuda --data "$data" --batch 64 2>&1 | grep -o '[0-9.]* img/s' | head -1 | cut -d' ' -f1; done)
    printf '%-12s %s  runs: %s\n' "$m" "$(echo "$r" | awk 'NF {s += $1; n++} END {if (n == 3) printf "%.0f", s / n; else print "failed"}')" "$(echo $r)"
  done
}
infer_random() {
  for k in 1 2 3; do ./dkd bench --device cuda --infer all --infer-batch 64 --steps 157 --warmup 5 2>&1; done |
    awk '$2 == 64 {s[$1] += $3; n[$1]++} END {for (m in s) printf "%-12s %.0f\n", m, s[m] / n[m]}' | sort
}
export -f ckpt_of infer_data infer_random
if [ $have_data = 1 ]; then
  run_stage infer "$out/infer.txt" bash -c infer_data
  log "infer: dkd eval over the CIFAR-100 test set ($data), batch 64, mean img/s of 3 runs ($out/infer.txt)"
else
  skip infer "no CIFAR-100 test set found (--data DIR, \$DKD_DATA, ./data): timed random images instead"
  run_stage infer "$out/infer.txt" bash -c infer_random
  log "infer: dkd bench --infer, 157 batches of 64 random images (the test set's size), mean img/s of 3 runs ($out/infer.txt)"
fi
sed 's/^/  /' "$out/infer.txt" | tee -a "$summary" >/dev/null

# ---- a 1-epoch DKD run on real data ---------------------------------------------------
if [ $have_data = 0 ]; then
  skip epoch "no CIFAR-100 data found (--data DIR, \$DKD_DATA, ./data)"
else
  epoch_run() {
    c=$(ckpt_of resnet56) || { echo "no resnet56 checkpoint"; return 1; }
    t0=$(date +%s.%N)
    ./dkd train res56 res20 --device cuda --data "$data" --epochs 1 --teacher-ckpt "$c" --out "$tmp/dkd" || return 1
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "wall %.1f s\n", b - a}'
  }
  export -f epoch_run
  if run_stage epoch "$out/epoch.txt" bash -c epoch_run; then
    log "epoch: 1-epoch DKD res56 -> res20 on CIFAR-100: $(grep -m1 '^epoch ' "$out/epoch.txt"); $(tail -1 "$out/epoch.txt")"
  else
    log "epoch: FAILED or stopped: $(tail -2 "$out/epoch.txt" | tr '\n' ' ')"
  fi
fi

log "summary: $(($(date +%s) - t_start)) s in all; not done:${skipped:- nothing}"
