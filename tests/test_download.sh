#!/usr/bin/env bash
# tests/test_download.sh — scripts/get_cifar100.sh and scripts/get_teachers.sh without a
# network: pointed at an address nothing answers (127.0.0.1, port 9), each must fail
# with exit 1 and ONE line on stderr, and leave no folder it created (data/, a nested
# DEST, download_ckpts/) nor a partial download behind. Runs in a temp folder.
# Prints "ok"/"FAIL" lines and "RESULT p f s".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
. tests/check.sh
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
export DKD_CIFAR_URL="http://127.0.0.1:9/nothing" DKD_TEACHERS_URL="http://127.0.0.1:9/nothing/cifar_teachers.tar"
offline() {  # name folder-that-must-not-exist command...
  local name=$1 gone=$2; shift 2
  local err rc
  err=$( (cd "$tmp/w" && "$@") 2>&1 >/dev/null); rc=$?
  local lines; lines=$(printf "%s\n" "$err" | grep -c .)
  if [ $rc = 1 ] && [ "$lines" = 1 ] && echo "$err" | grep -q "error: cannot download"; then ok "$name: exit 1, one line: $(echo "$err" | cut -c1-100)..."
  else bad "$name: exit $rc, $lines lines: $err"; fi
  if [ ! -e "$tmp/w/$gone" ] && [ -z "$(find "$tmp/w" -name '*.part')" ]; then ok "$name: no $gone/ and no partial file left behind"
  else bad "$name: left $(cd "$tmp/w" && find . | tr '\n' ' ')"; fi
}
mkdir -p "$tmp/w"
offline "get_cifar100 offline" data bash "$ROOT/scripts/get_cifar100.sh"
offline "get_cifar100 --binary offline, nested DEST" deep bash "$ROOT/scripts/get_cifar100.sh" --binary deep/er/dest
offline "get_teachers offline" download_ckpts bash "$ROOT/scripts/get_teachers.sh"
mkdir -p "$tmp/w/data"                      # a folder that was there before stays
(cd "$tmp/w" && bash "$ROOT/scripts/get_cifar100.sh" >/dev/null 2>&1)
[ -d "$tmp/w/data" ] && ok "an existing data/ is kept" || bad "an existing data/ was removed"
echo "RESULT $P $F $S"
[ $F = 0 ]
