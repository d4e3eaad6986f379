#!/usr/bin/env bash
# scripts/fuzz.sh — build and run the libFuzzer targets of the file parsers.
#   scripts/fuzz.sh TARGET SECONDS     TARGET: zip legacy pickle cifar_bin cifar_py, or all
#   scripts/fuzz.sh list               the targets
# Builds with clang -fsanitize=fuzzer,address,undefined (UBSan fatal) into
# build/fuzz/, runs TARGET for SECONDS from the corpus build/fuzz/corpus/TARGET
# (created from the committed seeds tests/fuzz/corpus/TARGET and the past findings
# tests/fuzz/regressions/TARGET, kept between runs),
# then prints the executions, the time and the corpus size. Crashes, leaks,
# sanitizer reports, timeouts (> 10 s per input) and out-of-memory (> 2 GB) are
# findings: the input lands in build/fuzz/findings/ and the script exits 1.
# Environment: FUZZ_CC (default clang), FUZZ_RUNS=N (also stop after N
# executions), FUZZ_ARGS (extra libFuzzer flags).
set -u
cd "$(dirname "$0")/.."
TARGETS="zip legacy pickle cifar_bin cifar_py"
if [ "${1:-}" = "list" ]; then echo $TARGETS; exit 0; fi
if [ $# -ne 2 ] || ! [ "$2" -gt 0 ] 2>/dev/null; then
  echo "usage: scripts/fuzz.sh TARGET SECONDS   (TARGET: $TARGETS, or all)" >&2; exit 2
fi
target=$1; seconds=$2
if [ "$target" = all ]; then
  rc=0
  for t in $TARGETS; do "$0" "$t" "$seconds" || rc=1; done
  exit $rc
fi
case " $TARGETS " in *" $target "*) ;; *) echo "fuzz.sh: unknown target '$target' (known: $TARGETS)" >&2; exit 2;; esac

CC="${FUZZ_CC:-clang}"
if ! command -v "$CC" >/dev/null 2>&1; then echo "fuzz.sh: $CC not found (apt-get install clang)" >&2; exit 2; fi
B=build/fuzz
mkdir -p $B/obj $B/findings $B/corpus
FLAGS="-std=c11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -I. -Itests"
for d in /usr/include/stb /usr/include /usr/local/include/stb; do [ -f "$d/stb_image_write.h" ] && { FLAGS="$FLAGS -I$d"; break; }; done

# 1. the library, instrumented for coverage, as an archive (a target links what it uses)
objs=""
for s in $(ls *.c kernels/*.c models/*.c 2>/dev/null | grep -v '^main\.c$'); do
  o=$B/obj/$(echo "${s%.c}" | tr / _).o
  if [ ! -f "$o" ] || [ "$s" -nt "$o" ] || [ dkd.h -nt "$o" ] || [ pickle.h -nt "$o" ] || [ "$0" -nt "$o" ]; then
    $CC $FLAGS -fsanitize=fuzzer-no-link -w -c "$s" -o "$o" || { echo "fuzz.sh: $s does not compile" >&2; exit 2; }
  fi
  objs="$objs $o"
done
rm -f $B/libdkd.a && ar rcs $B/libdkd.a $objs
# 2. the target
bin=$B/fuzz_$target
$CC $FLAGS -fsanitize=fuzzer tests/fuzz/fuzz_$target.c $B/libdkd.a -lm -o $bin || { echo "fuzz.sh: fuzz_$target does not build" >&2; exit 2; }

# 3. run
corpus=$B/corpus/$target
mkdir -p "$corpus"
cp -n tests/fuzz/corpus/$target/* "$corpus"/ 2>/dev/null
cp -n tests/fuzz/regressions/$target/* "$corpus"/ 2>/dev/null   # every past finding runs first
dict=""
case $target in zip|legacy|pickle|cifar_py) dict="-dict=tests/fuzz/pickle.dict";; esac
log=$B/$target.log
echo "fuzz.sh: $target for ${seconds}s on $(ls "$corpus" | wc -l) inputs ($bin)"
start=$(date +%s)
ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}" \
  $bin -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
       ${FUZZ_RUNS:+-runs=$FUZZ_RUNS} -artifact_prefix=$B/findings/$target- $dict ${FUZZ_ARGS:-} "$corpus" > "$log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
files=$(ls "$corpus" | wc -l); bytes=$(du -sb "$corpus" | cut -f1)
echo "fuzz.sh: $target: ${execs:-?} executions in ${secs}s, corpus $files files ($bytes bytes), log $log"
if [ $rc != 0 ]; then
  echo "fuzz.sh: $target: FINDING (libFuzzer exit $rc):" >&2
  grep -E 'ERROR|SUMMARY|runtime error|Test unit written|deadly signal|out-of-memory|timeout' "$log" | head -20 >&2
  exit 1
fi
echo "fuzz.sh: $target: no findings"
