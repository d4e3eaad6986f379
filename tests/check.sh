# tests/check.sh — sourced by the shell tests (tests/test_*.sh): their counters and the
# ok/bad/skip lines that build.sh reads. A test ends with: echo "RESULT $P $F $S".
P=0; F=0; S=0
ok() { echo "  ok   $*"; P=$((P+1)); }
bad() { echo "  FAIL $*"; F=$((F+1)); }
skip() { echo "  SKIP $*"; S=$((S+1)); }
