#!/usr/bin/env bash
# scripts/get_teachers.sh — download mdistiller's pretrained CIFAR-100 teachers.
#
#   scripts/get_teachers.sh            -> download_ckpts/cifar_teachers/<name>_vanilla/ckpt_epoch_240.pth
#   scripts/get_teachers.sh --help
#
# The archive is the one mdistiller's README points to (its GitHub release v0.1,
# cifar_teachers.tar, the CRD teachers): resnet56, resnet110, resnet32x4,
# ResNet50, wrn_40_2 and vgg13. It is unpacked into download_ckpts/ (run from the
# repository root, where dkd looks for it), so
#   ./dkd train res56 res20
# finds download_ckpts/cifar_teachers/resnet56_vanilla/ckpt_epoch_240.pth by itself.
# No network? Download the .tar by other means, put it in download_ckpts/ and run
# this script again: it unpacks an archive it finds there. (Or train a teacher
# yourself: ./dkd train resnet56.)
# A failed download says so in one line and leaves no new (empty) folder behind.
# $DKD_TEACHERS_URL replaces the archive's address (a mirror; tests point it nowhere).
set -euo pipefail

URL="${DKD_TEACHERS_URL:-https://github.com/megvii-research/mdistiller/releases/download/v0.1/cifar_teachers.tar}"
DEST="download_ckpts"
TEACHERS="resnet56 resnet110 resnet32x4 ResNet50 wrn_40_2 vgg13"

PROG=get_teachers
. "$(dirname "$0")/lib_download.sh"   # defines: die, usage, make_dest, fetch_archive

case "${1:-}" in
  -h|--help) usage; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac
command -v tar >/dev/null 2>&1 || die "tar is not installed"

ckpt() { echo "$DEST/cifar_teachers/$1_vanilla/ckpt_epoch_240.pth"; }
missing() {
  local m=""
  for t in $TEACHERS; do [ -s "$(ckpt "$t")" ] || m="$m $t"; done
  echo "$m"
}
if [ -z "$(missing)" ]; then echo "get_teachers: all six teachers are already in $DEST/cifar_teachers/"; exit 0; fi

make_dest "$DEST"
file="$DEST/cifar_teachers.tar"
fetch_archive "$URL" "$file" "offline, behind a proxy, or GitHub unreachable?"

# A tar archive has "ustar" at byte 257; an HTML error page or a partial file does not.
magic=$(dd if="$file" bs=1 skip=257 count=5 2>/dev/null || true)
if [ "$magic" != "ustar" ]; then
  mv "$file" "$file.bad"
  die "$file is not a tar archive (a failed or partial download; moved to $file.bad). Run this script again."
fi
echo "get_teachers: unpacking $file into $DEST/"
tar -xf "$file" -C "$DEST" || die "cannot unpack $file (truncated download, or disk full?); delete it and run this script again"

left="$(missing)"
if [ -n "$left" ]; then
  die "after unpacking, these teachers are still missing:$left
  (expected files like $(ckpt resnet56)). The archive's layout may have changed: look inside with
  tar -tf $file"
fi
rm -f "$file"
echo "get_teachers: done:"
for t in $TEACHERS; do echo "  $(ckpt "$t")"; done
