#!/usr/bin/env bash
# scripts/prepare_shared_data.sh — set up CIFAR-100 from this workplace's shared copy.
#
#   scripts/prepare_shared_data.sh [SRC] [DEST]
#
# SRC  (default <repo>/../shared/data/cifar-100-binary): train.bin.xz, test.bin.xz,
#      SHA256SUMS, fine_label_names.txt, coarse_label_names.txt (read-only)
# DEST (default <repo>/data/cifar-100-binary, git-ignored): train.bin, test.bin and
#      the label-name files, i.e. what dkd reads by default (--data data).
# A file already in DEST with the right size is kept (delete it to redo it).
# The decompressed files are checked against SRC/SHA256SUMS when it exists.
# Elsewhere (no shared folder), use scripts/get_cifar100.sh instead.
set -euo pipefail

die() { echo "prepare_shared_data: error: $*" >&2; exit 1; }
case "${1:-}" in -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;; esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"           # the repository (defaults are relative to it)
SRC="${1:-$ROOT/../shared/data/cifar-100-binary}"
DEST="${2:-$ROOT/data/cifar-100-binary}"

[ -d "$SRC" ] || die "no shared data folder $SRC (outside this workplace use scripts/get_cifar100.sh)"
command -v xz >/dev/null 2>&1 || die "xz is not installed (apt-get install xz-utils)"
mkdir -p "$DEST" || die "cannot create $DEST"

size_of() { wc -c < "$1" | tr -d ' '; }
declare -A WANT=([train.bin]=153700000 [test.bin]=30740000)
for f in test.bin train.bin; do
  out="$DEST/$f"
  if [ -f "$out" ] && [ "$(size_of "$out")" = "${WANT[$f]}" ]; then
    echo "prepare_shared_data: $out already there (${WANT[$f]} bytes)"
    continue
  fi
  [ -f "$SRC/$f.xz" ] || die "missing $SRC/$f.xz"
  echo "prepare_shared_data: decompressing $SRC/$f.xz -> $out"
  xz -dc "$SRC/$f.xz" > "$out.part" || { rm -f "$out.part"; die "cannot decompress $SRC/$f.xz (disk full?)"; }
  got=$(size_of "$out.part")
  [ "$got" = "${WANT[$f]}" ] || { rm -f "$out.part"; die "$f decompressed to $got bytes, expected ${WANT[$f]}"; }
  if [ -f "$SRC/SHA256SUMS" ] && command -v sha256sum >/dev/null 2>&1; then
    want=$(awk -v f="$f" '$2 == f || $2 == "*" f { print $1 }' "$SRC/SHA256SUMS")
    if [ -n "$want" ]; then
      have=$(sha256sum "$out.part" | cut -d' ' -f1)
      [ "$have" = "$want" ] || { rm -f "$out.part"; die "$f: sha256 $have does not match $SRC/SHA256SUMS ($want)"; }
      echo "prepare_shared_data: $f sha256 ok"
    fi
  fi
  mv "$out.part" "$out"
done
for f in fine_label_names.txt coarse_label_names.txt; do
  if [ -f "$SRC/$f" ]; then cp -f "$SRC/$f" "$DEST/$f"; chmod u+w "$DEST/$f"; fi
done
echo "prepare_shared_data: done: $DEST ($(ls "$DEST" | tr '\n' ' '))"
