#!/usr/bin/env bash
# scripts/compare_pytorch.sh — dkd against PyTorch on this CPU, both programs interleaved.
#
#   scripts/compare_pytorch.sh --mdistiller PATH [--rounds 3] [--steps 3] [--warmup 1]
#        [--infer-steps 6] [--threads 2] [--data DIR] [--test-runs 1] [--no-test-set]
#        [--pairs all|res56_res20,...] [--models all|resnet20,...] [--out results/cpu_vs_pytorch.md]
#
# What it times, in rounds (round r runs dkd then PyTorch for every row before round r+1,
# so both see the same minutes of a shared machine):
#   (a) the DKD training step (batch 64) of the 11 pairs of mdistiller's
#       configs/cifar100/dkd/*.yaml: `./dkd bench` against scripts/pytorch_bench.py
#       --mdistiller (mdistiller's own models and DKD distiller, imported from PATH);
#   (b) eval-mode inference (batch 64, random inputs) of the 15 models: `./dkd bench
#       --infer` against scripts/pytorch_infer_bench.py;
# then (c) the reference work's speed table: each model over the whole CIFAR-100 test
# set (`./dkd bench --infer M --data DIR` and the same in PyTorch, data loading apart),
# --test-runs runs each, with PyTorch's column, the difference and the growth in %.
# For every row below 1.5x it adds `./dkd bench --profile` lines (GFLOP/s per conv shape
# against the FMA peak of `./dkd bench --peak`). Writes the markdown file --out (and
# the raw outputs next to it, --out with .log). Needs ./dkd built (./build.sh) and
# /usr/bin/python3 with torch (Debian python3-torch). Both programs run with the glibc
# allocator kept from returning memory (MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...)
# and the same thread count.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
die() { echo "compare_pytorch: error: $*" >&2; exit 1; }
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

MODEL_LIST=all MD="" ROUNDS=3 STEPS=3 WARM=1 ISTEPS=6 THREADS=2 DATA=data TRUNS=1 TESTSET=1 PAIRS=all OUT=results/cpu_vs_pytorch.md
PY=${PYTHON:-/usr/bin/python3}
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0;;
    --mdistiller) MD="${2:?}"; shift;;
    --rounds) ROUNDS="${2:?}"; shift;;
    --steps) STEPS="${2:?}"; shift;;
    --warmup) WARM="${2:?}"; shift;;
    --infer-steps) ISTEPS="${2:?}"; shift;;
    --threads) THREADS="${2:?}"; shift;;
    --data) DATA="${2:?}"; shift;;
    --test-runs) TRUNS="${2:?}"; shift;;
    --no-test-set) TESTSET=0;;
    --pairs) PAIRS="${2:?}"; shift;;
    --models) MODEL_LIST="${2:?}"; shift;;
    --out) OUT="${2:?}"; shift;;
    *) die "unknown argument $1 (see --help)";;
  esac
  shift
done
[ -n "$MD" ] || die "--mdistiller PATH is required (a checkout of megvii-research/mdistiller)"
[ -d "$MD/configs/cifar100/dkd" ] && [ -d "$MD/mdistiller/models/cifar" ] || die "$MD is not an mdistiller checkout"
[ -x ./dkd ] || die "./dkd not built (run ./build.sh)"
$PY -c 'import torch' 2>/dev/null || die "$PY cannot import torch (apt-get install python3-torch)"
for v in "$ROUNDS" "$STEPS" "$ISTEPS" "$THREADS" "$TRUNS"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || die "counts must be positive integers"; done
[[ "$WARM" =~ ^[0-9]+$ ]] || die "--warmup must be a non-negative integer"
if [ $TESTSET = 1 ] && [ ! -f "$DATA/cifar-100-binary/test.bin" ] && [ ! -f "$DATA/test.bin" ]; then
  die "no CIFAR-100 test.bin under $DATA (scripts/prepare_shared_data.sh or scripts/get_cifar100.sh), or --no-test-set"
fi
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 OMP_NUM_THREADS=$THREADS

LOG="${OUT%.md}.log"; RAW=$(mktemp); trap 'rm -f "$RAW"' EXIT
: > "$LOG"
say() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >> "$RAW"; }   # kind round row program value

# the pairs, from mdistiller's configs: name teacher student
declare -a P_NAME P_T P_S
for f in "$MD"/configs/cifar100/dkd/*.yaml; do
  n=$(basename "$f" .yaml)
  if [ "$PAIRS" != all ] && ! echo ",$PAIRS," | grep -q ",$n,"; then continue; fi
  P_NAME+=("$n")
  P_T+=("$(sed -n 's/^ *TEACHER: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$f")")
  P_S+=("$(sed -n 's/^ *STUDENT: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$f")")
done
[ ${#P_NAME[@]} -gt 0 ] || die "no pair matches --pairs $PAIRS"
MODELS="resnet56 resnet110 resnet32x4 wrn_40_2 vgg13 resnet20 resnet32 resnet8x4 wrn_16_2 wrn_40_1 vgg8 ResNet50 MobileNetV2 ShuffleV1 ShuffleV2"
[ "$MODEL_LIST" = all ] || MODELS=$(echo "$MODEL_LIST" | tr ',' ' ')

START=$(date -u '+%Y-%m-%d %H:%M UTC'); LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
say "start: ${#P_NAME[@]} pairs, 15 models, $ROUNDS rounds, $THREADS threads"
./dkd bench --peak --threads "1,$THREADS" >> "$LOG" 2>&1
PEAK=$(./dkd bench --peak --threads "$THREADS" | awk -v t=$THREADS 'NR > 2 && $2 == t { print $1 ": " $3 " GFLOP/s"; exit }')
ISA=$(./dkd bench --teacher resnet20 --student resnet8x4 --batch 2 --steps 1 --warmup 0 --threads "$THREADS" | sed -n 's/.*kernels \([a-z0-9]*\).*/\1/p' | head -1)

num() { grep -o '[0-9.]* img/s' | head -1 | cut -d' ' -f1; }
for r in $(seq 1 "$ROUNDS"); do
  for i in "${!P_NAME[@]}"; do
    t=${P_T[$i]} s=${P_S[$i]}
    o=$(./dkd bench --teacher "$t" --student "$s" --steps "$STEPS" --warmup "$WARM" --threads "$THREADS" 2>&1) || die "dkd bench $t -> $s failed: $o"
    echo "$o" >> "$LOG"; v=$(echo "$o" | grep "DKD train step" | num); rec train "$r" "$t -> $s" dkd "$v"
    rss=$(echo "$o" | sed -n 's/.*peak RSS \([0-9]*\) MiB.*/\1/p'); rec rss "$r" "$t -> $s" dkd "$rss"
    o=$($PY scripts/pytorch_bench.py --mdistiller "$MD" --pairs "${P_NAME[$i]}" --batch 64 --steps "$STEPS" --warmup "$WARM" --threads "$THREADS" 2>&1) || die "PyTorch ${P_NAME[$i]} failed: $o"
    echo "$o" >> "$LOG"; v2=$(echo "$o" | grep "DKD train step" | num); rec train "$r" "$t -> $s" pytorch "$v2"
    say "round $r train $t -> $s: dkd $v, PyTorch $v2 img/s"
  done
  for m in $MODELS; do
    o=$(./dkd bench --infer "$m" --steps "$ISTEPS" --warmup 2 --threads "$THREADS" 2>&1) || die "dkd infer $m failed"
    echo "$o" >> "$LOG"; v=$(echo "$o" | awk -v m=$m '$1 == m { print $3 }'); rec infer "$r" "$m" dkd "$v"
    o=$($PY scripts/pytorch_infer_bench.py --mdistiller "$MD" --models "$m" --steps "$ISTEPS" --warmup 2 --threads "$THREADS" 2>&1) || die "PyTorch infer $m failed"
    echo "$o" >> "$LOG"; v2=$(echo "$o" | awk -v m=$m '$1 == m { print $3 }'); rec infer "$r" "$m" pytorch "$v2"
    say "round $r infer $m: dkd $v, PyTorch $v2 img/s"
  done
done

if [ $TESTSET = 1 ]; then
  for m in $MODELS; do
    o=$(./dkd bench --infer "$m" --data "$DATA" --runs "$TRUNS" --threads "$THREADS" 2>&1) || die "dkd test-set $m failed: $o"
    echo "$o" >> "$LOG"
    echo "$o" | awk -v m=$m '$0 ~ /^data loading/ { print }' | head -1 > /dev/null
    v=$(echo "$o" | awk -v m=$m '$(NF-3) == m { print $(NF-2) "\t" $(NF-1) "\t" $0 }')
    rec test 1 "$m" dkd "$(echo "$v" | cut -f1)"; rec testsd 1 "$m" dkd "$(echo "$v" | cut -f2)"
    rec testgroup 1 "$m" dkd "$(echo "$v" | cut -f3 | sed 's/ *'"$m"' .*//')"
    o=$($PY scripts/pytorch_infer_bench.py --mdistiller "$MD" --models "$m" --data "$DATA" --runs "$TRUNS" --threads "$THREADS" 2>&1) || die "PyTorch test-set $m failed: $o"
    echo "$o" >> "$LOG"
    v2=$(echo "$o" | awk -v m=$m '$1 == m { print $2 "\t" $3 }')
    rec test 1 "$m" pytorch "$(echo "$v2" | cut -f1)"; rec testsd 1 "$m" pytorch "$(echo "$v2" | cut -f2)"
    say "test set $m: dkd $(echo "$v" | cut -f1) s, PyTorch $(echo "$v2" | cut -f1) s"
  done
  rec dataload 1 - dkd "$(grep -m1 '^data loading' "$LOG" | sed 's/^data loading (not in the times below): //')"
fi

# profiles of the rows below 1.5x (one step / forwards, synchronised after every op)
PROF=$(mktemp); trap 'rm -f "$RAW" "$PROF"' EXIT
$PY - "$RAW" > "$PROF.rows" <<'EOF'
import sys, statistics
rows = {}
for line in open(sys.argv[1]):
    k, r, name, prog, v = line.rstrip("\n").split("\t")
    if k in ("train", "infer") and v:
        rows.setdefault((k, name), {}).setdefault(prog, []).append(float(v))
for (k, name), d in rows.items():
    if "dkd" in d and "pytorch" in d and statistics.median(d["dkd"]) < 1.5 * statistics.median(d["pytorch"]):
        print(k + "\t" + name)
EOF
while IFS=$'\t' read -r k name; do
  if [ "$k" = train ]; then
    t=${name%% -> *} s=${name##* -> }
    o=$(./dkd bench --teacher "$t" --student "$s" --steps 1 --warmup 1 --threads "$THREADS" --profile 2>&1 || true)
  else
    o=$(./dkd bench --infer "$name" --steps 2 --warmup 1 --threads "$THREADS" --profile 2>&1 || true)
  fi
  echo "$o" >> "$LOG"
  { echo "#### $k $name"; echo "$o" | grep -E "FMA peak|^profile of|^op \(F|^[FB] " | head -7; } >> "$PROF"
done < "$PROF.rows"
rm -f "$PROF.rows"
say "done"
END=$(date -u '+%H:%M UTC'); LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)

CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
CORES=$(nproc)
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -xE 'avx2|fma|avx512f|avx512vl|avx512bw|avx512dq|avx512_bf16|amx_tile' | tr '\n' ' ')
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo "?")
DIRTY=$(git status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
TORCH=$($PY -c 'import torch; print(torch.__version__)')

$PY - "$RAW" "$PROF" > "$OUT" <<EOF
import sys, statistics
raw, prof = sys.argv[1], sys.argv[2]
data = {}
for line in open(raw):
    k, r, name, prog, v = line.rstrip("\n").split("\t")
    data.setdefault(k, {}).setdefault(name, {}).setdefault(prog, []).append(v)
def f(x): return float(x) if x not in ("", None) else float("nan")
print("# dkd against PyTorch on the CPU (generated by scripts/compare_pytorch.sh)")
print()
print("Machine: **$CPU**, $CORES cores (lscpu), CPU flags: $FLAGS; dkd's kernels ran the **$ISA** path")
print("(FMA peak of that path with $THREADS threads, \`./dkd bench --peak\`: $PEAK).")
print("Threads: $THREADS for both programs; batch 64; random inputs, fresh weights (tables 1-2).")
print("dkd commit $COMMIT$DIRTY; PyTorch $TORCH (/usr/bin/python3) with mdistiller's own models and DKD")
print("distiller from \`$MD\`; \`MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000\` for both.")
print("Run: $START to $END; load average (1, 5, 15 min) at start $LOAD0, at end $LOAD1. This machine is")
print("shared with other jobs: every figure depends on what else ran in the same minutes, which is why")
print("the programs alternate row by row and every round is shown.")
print()
print("Command: \`scripts/compare_pytorch.sh --mdistiller $MD --rounds $ROUNDS --steps $STEPS --warmup $WARM --infer-steps $ISTEPS --threads $THREADS --test-runs $TRUNS\`")
print()
def table(kind, title, unit, extra_rss=False):
    rows = data.get(kind, {})
    if not rows: return []
    R = max(len(d.get("dkd", [])) for d in rows.values())
    print("## " + title)
    print()
    hdr = "| %s |" % ("pair" if kind == "train" else "model")
    for r in range(R): hdr += " round %d dkd | round %d PyTorch |" % (r + 1, r + 1)
    hdr += " median dkd | median PyTorch | dkd / PyTorch |"
    if extra_rss: hdr += " dkd peak RSS MiB |"
    print(hdr); print("|" + "---|" * (hdr.count("|") - 1))
    below = []
    for name, d in rows.items():
        a = [f(x) for x in d.get("dkd", [])]; b = [f(x) for x in d.get("pytorch", [])]
        line = "| %s |" % name
        for r in range(R):
            line += " %s | %s |" % ("%.1f" % a[r] if r < len(a) else "", "%.1f" % b[r] if r < len(b) else "")
        ma, mb = statistics.median(a), statistics.median(b)
        ratio = ma / mb if mb > 0 else float("nan")
        line += " %.1f | %.1f | **%.2f** |" % (ma, mb, ratio)
        if extra_rss:
            rss = [f(x) for x in data.get("rss", {}).get(name, {}).get("dkd", [])]
            line += " %s |" % ("%.0f" % max(rss) if rss else "")
        print(line)
        if not ratio >= 1.5: below.append(name)
    print()
    print("%s (img/s). Target >= 1.5x: %d of %d rows reach it." % (unit, len(rows) - len(below), len(rows)))
    print()
    return below
b1 = table("train", "1. DKD training step (teacher eval forward + student forward/backward + loss + SGD)", "Images per second")
b2 = table("infer", "2. Inference, eval mode, random batches", "Images per second")
test = data.get("test", {})
if test:
    print("## 3. Inference over the CIFAR-100 test set (the reference work's speed table)")
    print()
    dl = data.get("dataload", {}).get("-", {}).get("dkd", [""])[0]
    print("10,000 test images, batch 64, eval mode, $TRUNS run(s) per model and program (mean; sd when")
    print("more than one run); data loading is not in the times (dkd: %s)." % dl)
    print("Difference = PyTorch s - dkd s; growth = PyTorch s / dkd s - 1 (how much faster dkd is).")
    print()
    print("| group | model | dkd s | PyTorch s | difference s | growth % |")
    print("|---|---|---|---|---|---|")
    for name, d in test.items():
        a = f(d["dkd"][0]); b = f(d["pytorch"][0])
        sa = data.get("testsd", {}).get(name, {}).get("dkd", [""])[0]; sb = data.get("testsd", {}).get(name, {}).get("pytorch", [""])[0]
        g = data.get("testgroup", {}).get(name, {}).get("dkd", [""])[0].strip()
        pm = lambda x, s: "%.2f" % x + (" ± %s" % s if $TRUNS > 1 and s else "")
        print("| %s | %s | %s | %s | %.2f | %+.0f%% |" % (g, name, pm(a, sa), pm(b, sb), b - a, 100 * (b / a - 1)))
    print()
p = open(prof).read().strip()
if p:
    print("## 4. Rows below 1.5x: where dkd's time goes")
    print()
    print("\`./dkd bench --profile\` for each such row (one step, or two forwards, synchronised after every op;")
    print("largest ops first; GFLOP/s counts a direct convolution's 2·MACs, so Winograd layers can exceed")
    print("the peak; '% of peak' is against the FMA peak above).")
    print()
    print("\`\`\`")
    print(p)
    print("\`\`\`")
    print()
EOF
cat >> "$OUT" <<'EOF'
## What was tried for the gap (the kernels this run used)

- Run-time instruction-set dispatch (kernels/isa.h): one binary carries AVX-512, AVX2+FMA and
  plain-C builds of the GEMM and convolution kernels and picks the best the CPU has.
- The convolutions (kernels/conv.c's header table says which layer takes which path):
  shiftconv.c (stride-1 "same" layers read straight from NCHW with lane masks: forward, dx,
  dW, depthwise) for the small and narrow layers; Winograd for the wide 3x3 layers, F(2x2,
  3x3) in training and F(4x4, 3x3) in eval-mode forwards (the teacher's forward in a DKD
  step, inference), its transforms vectorised over 8 tiles; the weights of an inference
  net's convolutions kept transformed between forwards (net.c's eval cache); 1x1 layers with
  their weights packed once per call; dW of the wide 4x4-map layers as one GEMM over the
  batch; a 12x32 AVX-512 GEMM micro-kernel; BN+ReLU and add+ReLU fused in the training
  forward, BN+ReLU in the backward, BN folded into the convolutions in eval, and in eval
  the residual add and the ReLU done by the conv as it stores its output
  (kernels/epilogue.h); in the training backward, a gradient with one reader written by
  that reader instead of zeroed and added to (net.c's Node.dact_set).
- Tried and dropped: F(4x4, 3x3) in training (resnet8x4's gradients moved from 5e-7 to
  2e-3 relative L2 against PyTorch's: fidelity first); Winograd for the 16- and 32-channel
  layers (its transforms cost more than the multiply-adds it saves: shiftconv is faster);
  a 1x1 layer's image read in place as the GEMM's B on 16x16 and 32x32 maps (its rows fall
  into the same L1 sets: slower than packing it); the residual read inside Winograd's
  output transform (resnet32x4 inference -10%: it is added in a pass of its own).
- Where the rest of the gap is (see the profiles above): shiftconv runs at 55-70% of the
  FMA peak (masks, and its tile setup on small channel counts), the backward convolutions
  (dW + dx) at 35-55% (dW on 8x8 maps the slowest part), the strided layers by im2col +
  GEMM at 20-40%, and batch norm and the residual adds in training are still memory passes
  of their own (their statistics are not taken in the conv's store). Not done: blocked
  channel layouts (nChw16c), the strided layers through shiftconv (phase decomposition),
  Winograd for dW.
- Threads: `./dkd bench --threads 1,2` measures the scaling on this 2-core machine only;
  more cores were not available, so the split at 16+ threads is not measured.
EOF
say "wrote $OUT (raw outputs: $LOG)"
