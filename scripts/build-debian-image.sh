#!/usr/bin/env bash
# Build the Debian images the SBOM accuracy test and bench/scan.py read (no Docker Hub):
#
#   funade-debian:12      debootstrap --variant=minbase bookworm, imported with `docker import`
#   funade-debian:12-py   the same plus ~30 packages (python3, curl, openssl, …) installed with
#                         apt-get in a container of funade-debian:12, then `docker commit`
#
# Idempotent: an image is rebuilt only when its `funade.debian/recipe` label differs from
# the sha256 of its recipe (suite, mirror, variant, package list), so a second run takes
# a second. The first run downloads from Debian's mirror: about 30 s for debootstrap and
# 30–60 s for apt-get. FORCE=1 rebuilds both.
#
# Env: MIRROR (default http://deb.debian.org/debian), SUITE (default bookworm),
#      DOCKER (default docker), FORCE=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SUITE="${SUITE:-bookworm}"
DOCKER="${DOCKER:-docker}"
FORCE="${FORCE:-0}"
BASE="funade-debian:12"
FULL="funade-debian:12-py"
LABEL="funade.debian/recipe"
EXTRA=(
  python3 python3-pip python3-requests python3-yaml python3-six
  curl wget ca-certificates openssl gnupg
  less procps iproute2 iputils-ping netbase tzdata
  xz-utils bzip2 unzip zip file jq lsb-release
  vim-tiny nano openssh-client sqlite3 libssl3 git
)

die() { echo "build-debian-image: error: $*" >&2; exit 1; }
say() { echo "build-debian-image: $*" >&2; }

command -v "$DOCKER" >/dev/null 2>&1 || die "docker CLI '$DOCKER' not found (make setup)"
"$DOCKER" info >/dev/null 2>&1 || die "cannot talk to the Docker Engine ('$DOCKER info' failed)"

# Serialise concurrent runs (the test and the benchmark may both ask for the image).
mkdir -p "$ROOT/build"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ROOT/build/.debian-image.lock"
  flock 9
fi

base_recipe="$(printf '%s\n' "$SUITE" "$MIRROR" minbase | sha256sum | awk '{print $1}')"
full_recipe="$(printf '%s\n' "$base_recipe" "${EXTRA[@]}" | sha256sum | awk '{print $1}')"

current() { "$DOCKER" image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null || true; }

if [[ "$FORCE" != 1 && "$(current "$FULL")" == "$full_recipe" && "$(current "$BASE")" == "$base_recipe" ]]; then
  exit 0
fi

workdir=""
builder=""
cleanup() {
  [[ -n "$builder" ]] && "$DOCKER" rm -f "$builder" >/dev/null 2>&1 || true
  [[ -n "$workdir" ]] && rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

started=$SECONDS
if [[ "$FORCE" == 1 || "$(current "$BASE")" != "$base_recipe" ]]; then
  command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (make setup installs it)"
  [[ "$(id -u)" == 0 ]] || die "debootstrap needs root"
  workdir="$(mktemp -d /tmp/funade-debootstrap.XXXXXX)"
  say "debootstrap --variant=minbase $SUITE from $MIRROR (about 30 s)"
  debootstrap --variant=minbase "$SUITE" "$workdir/root" "$MIRROR" >"$workdir/debootstrap.log" 2>&1 \
    || { tail -20 "$workdir/debootstrap.log" >&2; die "debootstrap failed"; }
  # What a Debian image leaves out: downloaded .debs and apt lists.
  rm -rf "$workdir/root/var/cache/apt/archives/"*.deb "$workdir/root/var/lib/apt/lists/"*
  tar --numeric-owner -C "$workdir/root" -c . | "$DOCKER" import \
    --change "LABEL $LABEL=$base_recipe" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    - "$BASE" >/dev/null
  rm -rf "$workdir"
  workdir=""
fi

say "apt-get install ${#EXTRA[@]} packages in a container of $BASE"
builder="funade-debian-build-$$"
"$DOCKER" run --name "$builder" -e DEBIAN_FRONTEND=noninteractive "$BASE" sh -ec "
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends ${EXTRA[*]} >/dev/null
  apt-get clean
  rm -rf /var/lib/apt/lists/*
" || die "apt-get in $BASE failed"
"$DOCKER" commit --change "LABEL $LABEL=$full_recipe" --change 'CMD ["bash"]' "$builder" "$FULL" >/dev/null
"$DOCKER" rm -f "$builder" >/dev/null
builder=""
count="$("$DOCKER" run --rm "$FULL" dpkg-query -W -f '.\n' | wc -l)"
say "built $FULL: $count packages in $((SECONDS - started)) s"
