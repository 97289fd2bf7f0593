#!/usr/bin/env bash
# Build funade's test application images (FROM scratch, no registry needed):
#
#   funade-testapp:1.0.0   VERSION=1.0.0
#   funade-testapp:2.0.0   VERSION=2.0.0
#   funade-testapp:3.0.0   VERSION=3.0.0, READY_FAIL=1 (a "broken" release: never ready)
#   funade-testapp:root    like 1.0.0 but USER 0:0 (for runAsNonRoot refusal tests)
#
# Idempotent: the static binary is recompiled only when testapp.c (or the
# compiler) changed, and an image is rebuilt only when the sha256 over its inputs
# (binary, busybox, Dockerfile, build args) differs from the image's
# `funade.test/source-hash` label.  FORCE=1 rebuilds everything.
#
# Env: BUILD_DIR (default <repo>/build/testapp), DOCKER (default docker),
#      BUSYBOX (default /bin/busybox), FORCE=1.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC_DIR="$ROOT/testapp"
BUILD_DIR="${BUILD_DIR:-$ROOT/build/testapp}"
DOCKER="${DOCKER:-docker}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
FORCE="${FORCE:-0}"
IMAGE_REPO="funade-testapp"
HASH_LABEL="funade.test/source-hash"
CFLAGS=(-static -O2 -pthread -Wall -Wextra -s)

die() { echo "build-test-images: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- prerequisites
command -v gcc >/dev/null 2>&1 || die "gcc not found (apt-get install gcc libc6-dev)"
command -v "$DOCKER" >/dev/null 2>&1 || die "docker CLI '$DOCKER' not found (apt-get install docker.io)"
command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"
[[ -x "$BUSYBOX" ]] || die "$BUSYBOX not found or not executable (apt-get install busybox-static)"
if ! file_out="$(LC_ALL=C file -L "$BUSYBOX" 2>/dev/null)"; then file_out=""; fi
if [[ -n "$file_out" && "$file_out" != *"statically linked"* && "$file_out" != *"static-pie"* ]]; then
  die "$BUSYBOX is not statically linked; install Debian's busybox-static (not busybox)"
fi
[[ -f "$SRC_DIR/testapp.c" && -f "$SRC_DIR/Dockerfile" ]] || die "missing $SRC_DIR/testapp.c or Dockerfile"
"$DOCKER" info >/dev/null 2>&1 || die "cannot talk to the Docker Engine ('$DOCKER info' failed; is dockerd running and /var/run/docker.sock accessible?)"

mkdir -p "$BUILD_DIR"

# Serialise concurrent runs (e.g. several pytest sessions) on the shared build dir.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$BUILD_DIR/.lock"
  flock 9
fi

sha() { sha256sum "$@" | awk '{print $1}'; }

# ---------------------------------------------------------------- compile
src_hash="$( { sha "$SRC_DIR/testapp.c"; printf '%s\n' "${CFLAGS[*]}"; gcc --version | head -n1; } | sha256sum | awk '{print $1}')"
bin="$BUILD_DIR/testapp"
if [[ "$FORCE" == 1 || ! -x "$bin" || "$(cat "$BUILD_DIR/testapp.src-sha256" 2>/dev/null || true)" != "$src_hash" ]]; then
  rm -f "$BUILD_DIR/testapp.src-sha256"
  gcc "${CFLAGS[@]}" -o "$bin.tmp" "$SRC_DIR/testapp.c" -lm || die "compiling testapp/testapp.c failed"
  mv -f "$bin.tmp" "$bin"
  echo "$src_hash" >"$BUILD_DIR/testapp.src-sha256"
  echo "build-test-images: compiled $bin" >&2
fi

# ---------------------------------------------------------------- build context
# Copy only when the content differs, so file mtimes (and the hash) stay put.
ctx="$BUILD_DIR/context"
mkdir -p "$ctx"
sync_file() {  # src dst mode
  if ! cmp -s "$1" "$2"; then
    cp -f "$1" "$2.tmp" && chmod "$3" "$2.tmp" && mv -f "$2.tmp" "$2"
  fi
}
sync_file "$bin" "$ctx/testapp" 0755
sync_file "$BUSYBOX" "$ctx/busybox" 0755
sync_file "$SRC_DIR/Dockerfile" "$ctx/Dockerfile" 0644
printf '*\n!testapp\n!busybox\n!Dockerfile\n' >"$BUILD_DIR/dockerignore.new"
sync_file "$BUILD_DIR/dockerignore.new" "$ctx/.dockerignore" 0644
rm -f "$BUILD_DIR/dockerignore.new"

inputs_hash="$(sha "$ctx/testapp" "$ctx/busybox" "$ctx/Dockerfile" "$ctx/.dockerignore" | sha256sum | awk '{print $1}')"

# ---------------------------------------------------------------- images
# tag|build-args (space separated KEY=VALUE)
IMAGES=(
  "1.0.0|VERSION=1.0.0"
  "2.0.0|VERSION=2.0.0"
  "3.0.0|VERSION=3.0.0 READY_FAIL=1"
  "root|VERSION=1.0.0 APP_USER=0:0"
)

summary=()
for spec in "${IMAGES[@]}"; do
  tag="${spec%%|*}"
  args="${spec#*|}"
  image="$IMAGE_REPO:$tag"
  want="$(printf '%s\n%s\n' "$inputs_hash" "$args" | sha256sum | awk '{print $1}')"
  have="$("$DOCKER" image inspect --format "{{ index .Config.Labels \"$HASH_LABEL\" }}" "$image" 2>/dev/null || true)"
  if [[ "$FORCE" != 1 && "$have" == "$want" ]]; then
    state="up to date"
  else
    old_id="$("$DOCKER" image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
    build_args=()
    for kv in $args; do build_args+=(--build-arg "$kv"); done
    if ! out="$(DOCKER_BUILDKIT=0 "$DOCKER" build --quiet --force-rm \
          "${build_args[@]}" --label "$HASH_LABEL=$want" -t "$image" "$ctx" 2>&1)"; then
      echo "$out" >&2
      die "docker build of $image failed"
    fi
    state="built"
    # drop the superseded image if nothing else uses it (fails harmlessly otherwise)
    new_id="$("$DOCKER" image inspect --format '{{.Id}}' "$image")"
    if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
      "$DOCKER" image rm "$old_id" >/dev/null 2>&1 || true
    fi
  fi
  id="$("$DOCKER" image inspect --format '{{.Id}}' "$image")"
  user="$("$DOCKER" image inspect --format '{{.Config.User}}' "$image")"
  summary+=("$(printf '%-22s %s  user=%-12s %s' "$image" "${id:7:12}" "$user" "$state")")
done

printf '%s\n' "${summary[@]}"
