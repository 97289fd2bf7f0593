#!/usr/bin/env bash
# Install and start what funade needs on a Debian machine, as root. Idempotent: a second
# run skips what is done. Used by `make test` and `make demo`.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(docker.io docker-registry haproxy prometheus wrk git busybox-static gcc libc6-dev curl skopeo docker-compose)
PACKAGES+=(debootstrap)  # scripts/build-debian-image.sh: the Debian image of the SBOM test and bench/scan.py
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }

# A Debian python3 needs python3-venv for `python3 -m venv` (pyenv or python.org builds have it).
python3 -c 'import ensurepip, venv' 2>/dev/null || PACKAGES+=(python3-venv)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]} — run as root (or install them) and try again" >&2
    exit 1
  fi
  say "installing ${missing[*]}"
  # Packages must not start their own daemons (they would listen on every interface):
  # funade starts what it needs itself, on 127.0.0.1.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$policy_added" = 1 ] && rm -f /usr/sbin/policy-rc.d
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    # Nor at the next boot: funade runs its own, on loopback.
    systemctl disable --now haproxy prometheus prometheus-node-exporter docker-registry >/dev/null 2>&1 || true
  fi
fi

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd"
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
    systemctl start docker
  else
    mkdir -p /var/log
    nohup dockerd >/var/log/funade-dockerd.log 2>&1 &
  fi
  for _ in $(seq 1 120); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/funade-dockerd.log" >&2; tail -20 /var/log/funade-dockerd.log >&2; exit 1; }
fi

if [ ! -x .venv/bin/python ]; then
  say "creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.funade-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  say "installing funade into .venv"
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

say "building test images"
bash scripts/build-test-images.sh
