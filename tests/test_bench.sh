#!/usr/bin/env bash
# tests/test_bench.sh — `dkd bench`'s speed-table features, end to end (no timing checked):
# --peak, --threads lists, --isa / DKD_ISA, --infer --data over a small generated test set
# (grouped table, data loading reported apart), peak RSS, and their bad-input messages.
# Run by ./build.sh test with ./dkd built; ends with "RESULT <pass> <fail> <skip>".
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# --peak: one line per available instruction set and thread count
out=$(./dkd bench --peak --threads 1,2 2>&1)
echo "$out" | grep -qE "^[a-z0-9]+ +1 +[0-9.]+$" && echo "$out" | grep -qE "^[a-z0-9]+ +2 +[0-9.]+$" &&
  ok "dkd bench --peak --threads 1,2: GFLOP/s per path and thread count" || bad "dkd bench --peak: $out"

# a training step per thread count, with the path taken and the peak RSS
out=$(./dkd bench --teacher resnet20 --student resnet8x4 --batch 4 --steps 1 --warmup 0 --threads 1,2 2>&1)
[ "$(echo "$out" | grep -c 'peak RSS [0-9]* MiB')" = 2 ] && echo "$out" | grep -q "^device cpu, 1 thread(s), kernels " &&
  echo "$out" | grep -q "^device cpu, 2 thread(s), kernels " &&
  ok "dkd bench --threads 1,2: one step per thread count, kernels path and peak RSS printed" || bad "dkd bench --threads 1,2: $out"

# the step line says how the step ran; --no-graph is accepted (a CUDA-only choice: the CPU runs op by op)
out=$(./dkd bench --teacher resnet8x4 --student resnet8x4 --batch 2 --steps 1 --warmup 0 --threads 1 --device cpu --no-graph 2>&1)
echo "$out" | grep -q "^DKD train step resnet8x4 -> resnet8x4, batch 2: .*, op by op on the CPU), " &&
  ok "dkd bench --no-graph on the CPU: the step line names the mode (op by op on the CPU)" || bad "dkd bench --no-graph: $out"

# every path the CPU runs can be forced; the line says which one ran
paths=$(./dkd bench --peak --threads 1 2>&1 | awk 'NR > 2 && $2 == 1 { print $1 }')
for p in $paths; do
  out=$(./dkd bench --isa "$p" --infer resnet20 --infer-batch 2 --steps 1 --warmup 0 --threads 1 2>&1)
  echo "$out" | grep -q "kernels $p " && ok "dkd bench --isa $p runs the $p kernels" || bad "dkd bench --isa $p: $out"
  out=$(DKD_ISA=$p ./dkd bench --infer resnet20 --infer-batch 2 --steps 1 --warmup 0 --threads 1 2>&1)
  echo "$out" | grep -q "kernels $p " && ok "DKD_ISA=$p runs the $p kernels" || bad "DKD_ISA=$p: $out"
done
[ -n "$paths" ] || bad "dkd bench --peak listed no path"

# --infer --data: a 130-image test set (DKD_CIFAR_ANY_SIZE=1), 2 runs, grouped table
mkdir -p "$tmp/data/cifar-100-binary"
/usr/bin/env python3 - "$tmp/data/cifar-100-binary/test.bin" <<'EOF' 2>/dev/null ||
import sys, random
r = random.Random(5)
with open(sys.argv[1], "wb") as f:
    for i in range(130):
        f.write(bytes([r.randrange(20), r.randrange(100)]) + bytes(r.randrange(256) for _ in range(3072)))
EOF
  head -c $((130 * 3074)) /dev/zero > "$tmp/data/cifar-100-binary/test.bin"
out=$(DKD_CIFAR_ANY_SIZE=1 ./dkd bench --infer resnet20,ShuffleV1 --data "$tmp/data" --runs 2 --threads 2 2>&1)
echo "$out" | grep -q "130 images, batch 64, eval mode, 2 run(s)" && echo "$out" | grep -q "^data loading (not in the times below): read" &&
  echo "$out" | grep -qE "^same-family students +resnet20 +[0-9.]+ +[0-9.]+ +[0-9.]+$" &&
  echo "$out" | grep -qE "^cross-family students +ShuffleV1 +[0-9.]+ +[0-9.]+ +[0-9.]+$" &&
  ok "dkd bench --infer --data: test-set table, grouped, data loading apart" || bad "dkd bench --infer --data: $out"

# bad input: clear message, non-zero exit
chk() {  # what expected-text cmd...
  local what=$1 want=$2; shift 2
  local o; o=$("$@" 2>&1); local rc=$?
  [ $rc != 0 ] && [ $rc -lt 128 ] && echo "$o" | grep -q "$want" && ok "$what" || bad "$what (rc $rc): $o"
}
chk "--isa with an unknown name is refused" "unknown" ./dkd bench --isa sse9 --infer resnet20 --steps 1
chk "DKD_ISA with an unknown name is refused" "DKD_ISA=sse9" env DKD_ISA=sse9 ./dkd bench --infer resnet20 --infer-batch 2 --steps 1 --warmup 0
chk "--threads 0 is refused" "positive counts" ./dkd bench --threads 0
chk "--threads 1,x is refused" "positive counts" ./dkd bench --threads 1,x
chk "--data without --infer is refused" "use it with --infer" ./dkd bench --data "$tmp/data"
chk "--infer --data with no data set is refused" "" ./dkd bench --infer resnet20 --data "$tmp/nothing" --runs 1
chk "--runs 0 is refused" "runs" env DKD_CIFAR_ANY_SIZE=1 ./dkd bench --infer resnet20 --data "$tmp/data" --runs 0

echo "RESULT $P $F $S"
[ $F = 0 ]
