#!/usr/bin/env bash
# scripts/gpu_check.sh — one script for a machine with an NVIDIA GPU (< 5 minutes):
#   1. build with nvcc (all .cu files, warnings as errors),
#   2. the whole test suite (CPU reference, golden fixtures, CUDA kernels emulated),
#   3. the CUDA path checked natively against the CPU reference at real sizes:
#      one DKD training step of every student (batch 64) on both devices,
#   4. timing: a res56 -> res20 DKD training step on the GPU and on the CPU, the GPU
#      step's per-op profile (dkd bench --profile), and inference of all 15 models.
# Prints one compact summary at the end. Usage: scripts/gpu_check.sh [OUTDIR]
set -u
cd "$(dirname "$0")/.."
out=${1:-results/gpu_check}
mkdir -p "$out"
log() { echo "$*" | tee -a "$out/summary.txt"; }
: > "$out/summary.txt"
log "gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | sed 's/^/gpu: /' | tee -a "$out/summary.txt"
./build.sh > "$out/build.txt" 2>&1 && log "build: ok (ptxas report in build/cuda/ptxas.txt)" || { log "build: FAILED"; tail -20 "$out/build.txt"; exit 1; }
cp build/cuda/ptxas.txt "$out/" 2>/dev/null
timeout 240 ./build.sh test > "$out/tests.txt" 2>&1; log "tests: $(tail -1 "$out/tests.txt")"
timeout 120 ./dkd bench --check-devices > "$out/check.txt" 2>&1; log "cuda vs cpu: $(grep -c '^ok' "$out/check.txt") ok, $(grep -c '^FAIL' "$out/check.txt") FAIL"
grep '^FAIL' "$out/check.txt" | head -5 | tee -a "$out/summary.txt"
log "$(./dkd bench --device cuda --steps 50 --warmup 5 2>&1 | tail -1) [cuda]"
log "$(./dkd bench --device cpu --steps 3 --warmup 1 2>&1 | tail -1) [cpu]"
./dkd bench --device cuda --steps 10 --warmup 3 --profile > "$out/profile_cuda.txt" 2>&1   # where a GPU step's time goes
log "cuda step profile: $out/profile_cuda.txt"; sed -n '/^op /,/^sum/p' "$out/profile_cuda.txt" | head -8 | tee -a "$out/summary.txt"
./dkd bench --device cuda --infer all --infer-batch 500 --steps 20 --warmup 2 > "$out/infer.txt" 2>&1
log "inference (img/s, batch 500, cuda):"; tail -n +2 "$out/infer.txt" | tee -a "$out/summary.txt"
