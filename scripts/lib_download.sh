# scripts/lib_download.sh — what get_cifar100.sh and get_teachers.sh share:
# fetch one archive with curl or wget, and on failure leave nothing behind
# (no partial download, no folder the script created). Sourced, not run:
#
#   PROG=get_something                  # the name in every message
#   . "$(dirname "$0")/lib_download.sh"
#   make_dest DIR                       # create DIR; remove it again (and any parent
#                                       # made for it) if the script then fails
#   fetch_archive URL FILE WHY [NOTE]   # FILE already there: use it; else download URL
#                                       # to FILE (WHY: the likely causes when that fails)

die() { echo "$PROG: error: $*" >&2; exit 1; }
# The script's header comment (every '#' line after the first), as its --help.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

created=()   # folders make_dest created, deepest first
part=""      # the download in progress
cleanup_download() {
  local rc=$?
  [ -z "$part" ] || rm -f "$part"
  if [ $rc != 0 ]; then for d in "${created[@]+"${created[@]}"}"; do rmdir "$d" 2>/dev/null || true; done; fi
}

make_dest() {
  local d=$1
  while [ ! -d "$d" ]; do created+=("$d"); d=$(dirname "$d"); done
  trap cleanup_download EXIT
  mkdir -p "$1" || die "cannot create the folder '$1'"
}

fetch_archive() {
  local url=$1 file=$2 why=$3 note=${4:-}
  if [ -f "$file" ]; then echo "$PROG: using the archive already in $file"; return 0; fi
  echo "$PROG: downloading $url${note:+ ($note)}"
  local offline="cannot download $url ($why): download it by other means into $(dirname "$file")/ and run this script again"
  part="$file.part"
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 2 --connect-timeout 20 -o "$part" "$url" 2>/dev/null || die "$offline"
  elif command -v wget >/dev/null 2>&1; then
    wget -q --tries=2 --timeout=20 -O "$part" "$url" 2>/dev/null || die "$offline"
  else
    die "neither curl nor wget is installed: install one (apt-get install curl), or download $url by other means into $(dirname "$file")/ and run this script again"
  fi
  mv "$part" "$file"
  part=""
}
