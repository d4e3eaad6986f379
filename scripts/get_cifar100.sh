#!/usr/bin/env bash
# scripts/get_cifar100.sh — download the CIFAR-100 data set for dkd.
#
#   scripts/get_cifar100.sh [DEST]            the python version (what mdistiller uses)
#                                             -> DEST/cifar-100-python/{train,test,meta}
#   scripts/get_cifar100.sh --binary [DEST]   the binary version
#                                             -> DEST/cifar-100-binary/{train,test}.bin
#   scripts/get_cifar100.sh --help
#
# DEST defaults to ./data, where dkd looks first (else pass --data DEST to dkd, or
# set DKD_DATA=DEST). dkd reads either version. The archive comes from the
# dataset's home page (https://www.cs.toronto.edu/~kriz/cifar.html), is checked
# against its published md5, unpacked, and removed (--keep keeps it).
# No network? Download the archive elsewhere, put it in DEST and run this script:
# it checks and unpacks an archive it finds there instead of downloading.
# A failed download says so in one line and leaves no new (empty) folder behind.
# $DKD_CIFAR_URL replaces the site's address (a mirror; tests point it nowhere).
set -euo pipefail

BASE_URL="${DKD_CIFAR_URL:-https://www.cs.toronto.edu/~kriz}"
PY_ARCHIVE="cifar-100-python.tar.gz"; PY_MD5="eb9058c3a382ffc7106e4002c42a8d85"
BIN_ARCHIVE="cifar-100-binary.tar.gz"; BIN_MD5="03b5dce01913d631647c71ecec9e9cb8"

PROG=get_cifar100
. "$(dirname "$0")/lib_download.sh"   # defines: die, usage, make_dest, fetch_archive

binary=0; keep=0; dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --binary) binary=1 ;;
    --python) binary=0 ;;
    --keep) keep=1 ;;
    -*) die "unknown option '$1' (see --help)" ;;
    *) [ -z "$dest" ] || die "only one destination folder, got '$dest' and '$1'"; dest="$1" ;;
  esac
  shift
done
dest="${dest:-data}"

if [ $binary = 1 ]; then archive=$BIN_ARCHIVE; md5=$BIN_MD5; folder=cifar-100-binary
else archive=$PY_ARCHIVE; md5=$PY_MD5; folder=cifar-100-python; fi

# Is a complete copy already there? (sizes of the binary files; the md5s
# torchvision checks for the python files)
md5_of() {
  if command -v md5sum >/dev/null 2>&1; then md5sum "$1" | cut -d' ' -f1
  elif command -v md5 >/dev/null 2>&1; then md5 -q "$1"                 # macOS
  else die "neither md5sum nor md5 is installed: cannot check the download"; fi
}
command -v md5sum >/dev/null 2>&1 || command -v md5 >/dev/null 2>&1 ||
  die "neither md5sum nor md5 is installed: cannot check the download (install coreutils)"
command -v tar >/dev/null 2>&1 || die "tar is not installed"
size_of() { wc -c < "$1" | tr -d ' '; }
complete() {
  local d="$dest/$folder"
  if [ $binary = 1 ]; then
    [ -f "$d/train.bin" ] && [ -f "$d/test.bin" ] &&
      [ "$(size_of "$d/train.bin")" = 153700000 ] && [ "$(size_of "$d/test.bin")" = 30740000 ]
  else
    [ -f "$d/train" ] && [ -f "$d/test" ] &&
      [ "$(md5_of "$d/train")" = 16019d7e3df5f24257cddd939b257f8d ] &&
      [ "$(md5_of "$d/test")" = f0ef6b0ae62326f3e7ffdfab6717acfc ]
  fi
}
if complete; then echo "get_cifar100: $dest/$folder is already complete, nothing to do"; exit 0; fi

make_dest "$dest"
file="$dest/$archive"
fetch_archive "$BASE_URL/$archive" "$file" "offline, behind a proxy, or the site is down?" "about 160 MB"

got=$(md5_of "$file")
if [ "$got" != "$md5" ]; then
  mv "$file" "$file.bad"
  die "md5 mismatch for $archive: got $got, expected $md5 (a broken or partial download, moved to $file.bad): run this script again"
fi
echo "get_cifar100: md5 ok ($md5), unpacking into $dest/"
tar -xzf "$file" -C "$dest" || die "cannot unpack $file (disk full?)"
complete || die "the unpacked files in $dest/$folder are not as expected (wrong sizes or checksums)"
[ $keep = 1 ] || rm -f "$file"
echo "get_cifar100: done: $dest/$folder"
[ "$dest" = data ] || echo "get_cifar100: tell dkd where it is: --data $dest (or export DKD_DATA=$dest)"
