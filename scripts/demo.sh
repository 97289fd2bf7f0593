#!/usr/bin/env bash
# The funade demo: from nothing to a deployed sample app, a rolling update, and a broken
# release rolled back automatically — on the embedded `local` target (Docker + funade's
# own controllers). `make demo` runs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."

funade=.venv/bin/funade
step() { printf '\n\033[1;36m━━ %s\033[0m\n' "$*"; }
run() { printf '\033[2m$ funade %s\033[0m\n' "$*"; "$funade" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r examples/shop "$work/shop"
overlay="$work/shop/overlays/production"
printf 'password=%s\n' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" > "$overlay/db.env"
set_tag() {  # what a release commit does to the overlay
  sed -i "s/newTag: .*/newTag: $1/" "$overlay/kustomization.yaml"
  sed -i "s/kubernetes.io\/change-cause: .*/kubernetes.io\/change-cause: \"release $1\"/" \
    "$work/shop/base/deployment.yaml"
}

step "0. Lint the app's Dockerfile (hadolint + funade's rules for the seed's practices)"
run image lint testapp/Dockerfile --context build/testapp/context
run image lint tests/fixtures/dockerfiles/go.Dockerfile -t warning

step "0b. Build it with the Docker Engine: tags from git (sha-…, latest on the default branch), OCI labels, size per layer"
# --allow-dirty: a developer's checkout may have local changes; CI's clean clone has none.
run image build build/testapp/context --repo funade-shop --build-arg VERSION=demo --allow-dirty

step "1. Start funade (API, controllers; Docker runs the pods) and its registry"
run up
run status

step "2. Deploy the shop (kustomize overlay 'production': 3 replicas, probes, limits, non-root, read-only)"
set_tag 1.0.0
run apply -k "$overlay" --wait
run get pods -n shop -o wide
ip=$("$funade" get pods -n shop -o json | .venv/bin/python -c \
  'import json,sys; print(next(p["status"]["podIP"] for p in json.load(sys.stdin)["items"] if p["status"].get("podIP")))')
printf '\033[2m$ curl http://%s:8080/\033[0m\n' "$ip"
curl -s "http://$ip:8080/"

step "3. Release 2.0.0: a rolling update (maxSurge 1, maxUnavailable 0: capacity never drops)"
set_tag 2.0.0
run apply -k "$overlay" --wait
run get deploy shop -n shop -o wide

step "4. Release 3.0.0 is broken (its readiness never passes): funade rolls it back by itself"
set_tag 3.0.0
if run apply -k "$overlay" --wait; then
  echo "expected the broken release to fail" >&2
  exit 1
else
  printf '\033[33m→ exit code %s: a CI pipeline stops here, while production keeps serving 2.0.0\033[0m\n' "$?"
fi
run rollout history deploy/shop -n shop
run get pods -n shop
ip=$("$funade" get pods -n shop -o json | .venv/bin/python -c \
  'import json,sys; print(next(p["status"]["podIP"] for p in json.load(sys.stdin)["items"] if p["status"].get("podIP")))')
printf '\033[2m$ curl http://%s:8080/\033[0m\n' "$ip"
curl -s "http://$ip:8080/"
run events -n shop --for deployment/shop

step "5. Roll back by hand to the first release (it comes back as a new revision)"
run rollout undo deploy/shop -n shop --to-revision 1
run rollout status deploy/shop -n shop
run rollout history deploy/shop -n shop

printf '\n\033[1;32mDone.\033[0m The shop keeps running. Explore with `%s get pods -n shop`, `%s describe deploy shop -n shop`,\n' "$funade" "$funade"
printf '`%s logs -l app=shop -n shop`; stop everything with `%s down --delete-workloads`.\n' "$funade" "$funade"
