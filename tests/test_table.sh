#!/usr/bin/env bash
# tests/test_table.sh — `dkd table` on run folders this test fabricates (log.csv,
# worklog.txt, config.yaml written here, in a temp folder): mean ± std over seeds,
# the PyTorch column from mdistiller-style output_i/ folders, difference and
# fluctuation computed from the fabricated numbers, the two tables' rows,
# missing pairs, unfinished and short runs, the Markdown file and the bar
# charts, and bad input. Prints "ok"/"FAIL" lines and "RESULT p f s".
set -u
cd "$(dirname "$0")/.."
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
[ -x ./dkd ] || { echo "no ./dkd: run ./build.sh first"; echo "RESULT 0 1 0"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# A dkd run: log.csv with test_acc per epoch (the given list), worklog.txt with best_acc if finished.
dkd_run() {  # dir finished acc...
  local d=$1 fin=$2; shift 2
  mkdir -p "$d"
  echo "epoch,lr,train_acc,train_loss,test_acc,test_acc_top5,test_loss,img_per_s,seconds,train_ce,train_kd" > "$d/log.csv"
  : > "$d/worklog.txt"
  local e=0 best=0
  for a in "$@"; do
    e=$((e+1))
    echo "$e,0.05,10,4,$a,50,3,100,1,3.5,0.5" >> "$d/log.csv"
    printf -- "-------------------------\nepoch: %d\nlr: 0.05\ntest_acc: %s\n-------------------------\n" $e "$a" >> "$d/worklog.txt"
    best=$(awk -v a="$a" -v b="$best" 'BEGIN { print (a > b ? a : b) }')
  done
  [ "$fin" = 1 ] && printf "best_acc\t%s" "$best" >> "$d/worklog.txt"
  return 0
}
# An mdistiller run: worklog.txt only.
pt_run() {  # dir acc...
  local d=$1; shift
  mkdir -p "$d"; : > "$d/worklog.txt"
  local e=0
  for a in "$@"; do
    e=$((e+1))
    printf -- "-------------------------\nepoch: %d\nlr: 0.05\ntrain_acc: 50.00\ntrain_loss: 2.00\ntest_acc: %s\ntest_acc_top5: 90.00\ntest_loss: 1.20\n-------------------------\n" $e "$a" >> "$d/worklog.txt"
  done
  printf "best_acc\t0" >> "$d/worklog.txt"
}
O=$tmp/output
dkd_run "$O/dkd,res56,res20,seed1" 1 60.5 70.25 69.0       # best 70.25
dkd_run "$O/dkd,res56,res20,seed2" 1 71.75 65.0 68.0       # best 71.75
dkd_run "$O/sub/dkd,wrn_40_2,shuv1" 1 40 50                # cross-family, found one level deeper
dkd_run "$O/dkd,res32x4,res8x4" 0 30 31                    # unfinished (no best_acc)
dkd_run "$O/kd,res32x4,res8x4" 1 33                        # KD table
printf "SOLVER:\n  BATCH_SIZE: 64\n  EPOCHS: 240\n" > "$O/dkd,res32x4,res8x4/config.yaml"
dkd_run "$O/vanilla,res20" 1 50 55                         # vanilla table (dkd's tag)
dkd_run "$O/dkd,res56,res99" 1 10                          # no such model: skipped with a message
mkdir -p "$O/empty"                                        # no runs inside: ignored
pt_run "$tmp/pt/output_1/cifar100_baselines/dkd,res56,res20" 66 71.5
pt_run "$tmp/pt/output_2/cifar100_baselines/dkd,res56,res20" 72.5 70

out=$(./dkd table "$O" --pytorch "$tmp/pt" -o "$tmp/t.md" 2>"$tmp/err"); rc=$?
[ $rc = 0 ] && ok "dkd table OUTPUT --pytorch PT -o t.md exits 0" || bad "dkd table exit $rc: $(cat "$tmp/err")"
row() { echo "$out" | awk -v sec="$1" -v t="$2" -v s="$3" -F' *\\| *' '
  /^## / { cur = $0 } index(cur, sec) && $2 == t && $3 == s { print; exit }'; }
col() { echo "$1" | awk -F' *\\| *' -v c="$2" '{ print $c }'; }
r=$(row "## DKD" resnet56 resnet20)
want_mean=$(awk 'BEGIN { printf "%.2f", (70.25 + 71.75) / 2 }')
want_sd=$(awk 'BEGIN { m = (70.25 + 71.75) / 2; printf "%.2f", sqrt(((70.25-m)^2 + (71.75-m)^2) / 1) }')
want_pt=$(awk 'BEGIN { printf "%.2f", (71.5 + 72.5) / 2 }')
want_pt_sd=$(awk 'BEGIN { printf "%.2f", sqrt(((71.5-72)^2 + (72.5-72)^2) / 1) }')
want_diff=$(awk -v a="$want_mean" -v b="$want_pt" 'BEGIN { printf "%+.2f", a - b }')
want_fl=$(awk -v a="$want_mean" -v b="$want_pt" 'BEGIN { printf "%+.2f", 100 * (a - b) / b }')
[ "$(col "$r" 6)" = "$want_mean ± $want_sd" ] && ok "dkd column: mean ± std of the seeds' best epochs ($want_mean ± $want_sd)" || bad "dkd column: row '$r'"
[ "$(col "$r" 5)" = "$want_pt ± $want_pt_sd" ] && ok "PyTorch column from output_1/, output_2/ worklogs ($want_pt ± $want_pt_sd)" || bad "PyTorch column: row '$r'"
[ "$(col "$r" 7)" = "$want_diff" ] && [ "$(col "$r" 8)" = "$want_fl" ] && ok "difference $want_diff and fluctuation $want_fl % against PyTorch" || bad "difference/fluctuation: row '$r'"
[ "$(col "$r" 9)" = "2 x 3 ep" ] && ok "runs column: 2 x 3 ep" || bad "runs column: '$(col "$r" 9)'"
paper=$(col "$r" 4)
awk -v p="$paper" 'BEGIN { exit !(p > 50 && p < 100) }' && ok "paper column: a published accuracy ($paper)" || bad "paper column '$paper'"
r=$(row "## DKD" wrn_40_2 ShuffleV1)
[ "$(col "$r" 6)" = "50.00" ] && [ "$(col "$r" 5)" = "—" ] && ok "cross-family row from a nested folder, no PyTorch run: —" || bad "wrn_40_2 ShuffleV1 row: '$r'"
p2=$(col "$r" 4); d2=$(awk -v p="$p2" 'BEGIN { printf "%+.2f", 50 - p }')
[ "$(col "$r" 7)" = "$d2" ] && ok "without a PyTorch run the difference is against the paper ($d2)" || bad "difference vs paper: '$r'"
n_same=$(echo "$out" | awk '/^## DKD/ { s = 1 } /^## KD/ { s = 0 } s && /same family/ { t = 1; next } s && /different families/ { t = 0 } s && t && /^\| [a-zA-Z]/ && !/teacher/' | wc -l)
n_cross=$(echo "$out" | awk '/^## DKD/ { s = 1 } /^## KD/ { s = 0 } s && /different families/ { t = 1; next } s && t && /^\| [a-zA-Z]/ && !/teacher/' | wc -l)
[ "$n_same" = 6 ] && [ "$n_cross" = 5 ] && ok "DKD: 6 same-family rows, 5 cross-family rows" || bad "rows: $n_same same-family, $n_cross cross-family"
echo "$out" | grep -q "^## KD" && [ "$(col "$(row "## KD" resnet32x4 resnet8x4)" 6)" = "33.00" ] && ok "KD table from kd,res32x4,res8x4" || bad "KD table"
echo "$out" | grep -q "^## vanilla" && [ "$(col "$(row "## vanilla" resnet56 resnet20)" 6)" = "55.00" ] && ok "vanilla table from vanilla,res20" || bad "vanilla table"
echo "$out" | grep -q "missing (no run): resnet110->resnet32, " && ok "missing pairs listed" || bad "missing pairs"
echo "$out" | grep -q "unfinished run: .*dkd,res32x4,res8x4 (2 of 240 epochs)" && ok "unfinished run: 2 of 240 epochs (config.yaml)" || bad "unfinished run not reported"
echo "$out" | grep -q "short run: .*dkd,res56,res20,seed1 (finished after 3 epochs" && ok "short runs reported" || bad "short runs"
grep -q "skipped .*dkd,res56,res99" "$tmp/err" && ok "a folder with an unknown model is skipped with a message" || bad "bad tag message: $(cat "$tmp/err")"
cmp -s <(echo "$out") "$tmp/t.md" && ok "-o t.md holds the printed Markdown" || bad "t.md differs from stdout"
for m in dkd kd vanilla; do
  if [ "$(head -c 4 "$tmp/t_$m.png" 2>/dev/null | od -An -c | tr -d ' ')" = "211PNG" ]; then ok "bar chart t_$m.png is a PNG"
  elif grep -q "PNG output is disabled" "$tmp/err"; then echo "  SKIP t_$m.png: built without stb"; S=$((S+1))
  else bad "t_$m.png missing or not a PNG"; fi
  grep -q "<svg " "$tmp/t_$m.svg" 2>/dev/null && ok "bar chart t_$m.svg" || bad "t_$m.svg missing"
done
# --max-epoch 1: only each run's first epoch counts
out1=$(./dkd table "$O" --pytorch "$tmp/pt" --max-epoch 1 2>/dev/null)
r1=$(out=$out1; row "## DKD" resnet56 resnet20)
want1=$(awk 'BEGIN { printf "%.2f", (60.5 + 71.75) / 2 }'); want1pt=$(awk 'BEGIN { printf "%.2f", (66 + 72.5) / 2 }')
[ "$(col "$r1" 6)" = "$want1 ± $(awk 'BEGIN { m = (60.5 + 71.75) / 2; printf "%.2f", sqrt((60.5-m)^2 + (71.75-m)^2) }')" ] &&
  [ "$(col "$r1" 5)" = "$want1pt ± $(awk 'BEGIN { printf "%.2f", sqrt((66-69.25)^2 + (72.5-69.25)^2) }')" ] &&
  echo "$out1" | grep -q "Only epochs 1-1" && ok "--max-epoch 1: dkd $want1, PyTorch $want1pt from the first epochs only" || bad "--max-epoch 1: row '$r1'"
./dkd table "$O" --max-epoch 0 >/dev/null 2>&1; [ $? = 2 ] && ok "--max-epoch 0 -> exit 2" || bad "--max-epoch 0 accepted"
# bad input
./dkd table >/dev/null 2>&1; [ $? = 2 ] && ok "no folder -> exit 2" || bad "no folder"
./dkd table "$O" --frob >/dev/null 2>&1; [ $? = 2 ] && ok "unknown option -> exit 2" || bad "unknown option"
./dkd table "$tmp/nope" 2>"$tmp/e2" >/dev/null; rc=$?
[ $rc = 1 ] && grep -q "no such folder" "$tmp/e2" && ok "missing folder -> exit 1 with a message" || bad "missing folder: rc $rc"
./dkd table "$O/empty" 2>"$tmp/e3" >/dev/null; rc=$?
[ $rc = 1 ] && grep -q "no dkd run folder found" "$tmp/e3" && ok "no runs -> exit 1 with a message" || bad "no runs: rc $rc"
mkdir -p "$tmp/g/dkd,res56,res20"; printf 'epoch,lr\n1,garbage\n' > "$tmp/g/dkd,res56,res20/log.csv"
./dkd table "$tmp/g" 2>"$tmp/e4" >/dev/null; rc=$?
[ $rc = 1 ] && grep -q "skipped .*log.csv" "$tmp/e4" && ok "a garbled log.csv is skipped with its reason" || bad "garbled log: rc $rc $(cat "$tmp/e4")"
./dkd table --help | grep -q "usage: dkd table" && ok "dkd table --help" || bad "--help"
echo "RESULT $P $F $S"
[ $F = 0 ]
