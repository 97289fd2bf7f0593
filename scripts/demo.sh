#!/usr/bin/env bash
# The funade demo: from nothing to a deployed sample app — lint, build, push to the embedded
# registry, promote to production by digest, deploy, a rolling update, a broken release rolled
# back automatically, a canary Rollout whose bad version its analysis aborts, and a lifecycle
# policy preview — on the embedded `local` target (Docker + funade's own controllers + the
# distribution registry + Prometheus). `make demo` runs scripts/setup.sh first.
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
run image build build/testapp/context --repo funade-shop --build-arg VERSION=demo --allow-dirty -t demo

step "1. Start funade (API, controllers; Docker runs the pods) and its registry"
# Autoscalers decide every 5 s here (Kubernetes: every 15 s), so the demo's scale-out is quick.
export FUNADE_HPA_SYNC_SECONDS=5
run up
run status
# A demo run starts from an empty shop, so revision 1 is this run's first release.
if "$funade" get ns shop >/dev/null 2>&1; then run delete namespace shop; fi
# ...and from an empty production repository: its tags are immutable, and this run's builds
# may differ from an earlier run's (a newer funade, a changed test app).
if "$funade" image ls prod/shop >/dev/null 2>&1; then
  "$funade" registry cleanup apply prod/shop --min-versions-to-keep 0 >/dev/null
fi

registry=$("$funade" registry status -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["address"])')

step "1b. Push the releases to the registry's dev repository (the build above too), list them"
for v in 1.0.0 2.0.0 3.0.0; do docker tag "funade-testapp:$v" "dev/shop:$v"; done
run image push funade-shop:demo dev/shop:1.0.0 dev/shop:2.0.0 dev/shop:3.0.0
run image ls dev/shop

step "1c. Production tags are immutable; promote 1.0.0 to production by digest (no pull, blobs mounted)"
run registry tag-mutability prod/shop IMMUTABLE
run image promote dev/shop:1.0.0 prod/shop:1.0.0
# The production overlay now takes its image from the registry's prod repository.
sed -i "s|  - name: funade-testapp|  - name: funade-testapp\n    newName: $registry/prod/shop|" "$overlay/kustomization.yaml"
if "$funade" image promote dev/shop:2.0.0 prod/shop:1.0.0 2>"$work/err"; then
  echo "expected the immutable tag to be refused" >&2; exit 1
fi
printf '\033[33m→ refused: %s\033[0m\n' "$(cat "$work/err")"

step "1d. Policy: the production overlay against Pod Security \"restricted\" and the seed's anti-patterns"
run policy check -k "$overlay" --profile production

step "2. Deploy the shop from the registry (overlay 'production': 3 replicas, probes, limits, non-root, read-only, a Service)"
set_tag 1.0.0
run apply -k "$overlay" --wait
run get pods -n shop -o wide
# The Service is served on 127.0.0.1 by HAProxy (its endpoints: the Ready pods).
run get svc -n shop
run get endpoints -n shop
port=$("$funade" get svc shop -n shop -o json | .venv/bin/python -c \
  'import json,sys; print(json.load(sys.stdin)["status"]["localTarget"]["ports"][0]["localPort"])')
printf '\033[2m$ curl http://127.0.0.1:%s/\033[0m\n' "$port"
curl -s "http://127.0.0.1:$port/"

step "3. Release 2.0.0: promote it, then a rolling update under load (maxSurge 1, maxUnavailable 0, pods drained first)"
run image promote dev/shop:2.0.0 prod/shop:2.0.0
set_tag 2.0.0
# Under load the whole time: 8 connections through the Service while the pods are replaced.
wrk -t2 -c8 -d12s "http://127.0.0.1:$port/" > "$work/wrk.txt" 2>&1 &
load=$!
run apply -k "$overlay" --wait
wait "$load"
printf '\033[2m$ wrk -t2 -c8 -d12s http://127.0.0.1:%s/   (during the update)\033[0m\n' "$port"
grep -E 'requests in|Non-2xx|Socket errors' "$work/wrk.txt" || true
grep -qE 'Non-2xx|Socket errors' "$work/wrk.txt" || printf '\033[32m→ no failed request during the rolling update\033[0m\n'
run get deploy shop -n shop -o wide

step "4. Release 3.0.0 is broken (its readiness never passes): funade rolls it back by itself"
run image promote dev/shop:3.0.0 prod/shop:3.0.0
set_tag 3.0.0
if run apply -k "$overlay" --wait; then
  echo "expected the broken release to fail" >&2
  exit 1
else
  printf '\033[33m→ exit code %s: a CI pipeline stops here, while production keeps serving 2.0.0\033[0m\n' "$?"
fi
run rollout history deploy/shop -n shop
run get pods -n shop
printf '\033[2m$ curl http://127.0.0.1:%s/\033[0m\n' "$port"
curl -s "http://127.0.0.1:$port/"
run events -n shop --for deployment/shop

step "5. Roll back by hand to the first release (it comes back as a new revision)"
run rollout undo deploy/shop -n shop --to-revision 1
run rollout status deploy/shop -n shop
run rollout history deploy/shop -n shop

step "5a. Autoscaling: the seed's HorizontalPodAutoscaler scales the shop on CPU, then back in"
run apply -n shop -f examples/shop/autoscaling/hpa.yaml
replicas() { "$funade" get deploy shop -n shop -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["spec"]["replicas"])'; }
wait_replicas() {  # poll until the shop runs $1 replicas (for $2 s at most)
  for _ in $(seq "$2"); do [ "$(replicas)" = "$1" ] && return 0; sleep 1; done
  echo "expected $1 replicas, the shop runs $(replicas)" >&2; "$funade" describe hpa shop -n shop >&2; exit 1
}
# Load: every request burns 5 ms of CPU; 3 pods at 50m each are far above 70 % of their request.
wrk -t2 -c4 -d35s "http://127.0.0.1:$port/burn?ms=5" > /dev/null 2>&1 &
load=$!
wait_replicas 6 60
run get hpa -n shop
run get pods -n shop
wait "$load"
printf '\033[2m(load stopped)\033[0m\n'
wait_replicas 3 90
run get hpa -n shop
run events -n shop --for hpa/shop
run delete hpa shop -n shop

step "5a'. Jobs: the shop's migration runs to completion; a CronJob waits for 03:00 Berlin time"
if "$funade" get job migrate -n shop >/dev/null 2>&1; then "$funade" delete job migrate -n shop >/dev/null; fi
run apply -n shop -f examples/shop/jobs/migrate.yaml
job_state() { "$funade" get job migrate -n shop -o json | .venv/bin/python -c \
  'import json,sys; s=json.load(sys.stdin).get("status",{}); print(next((c["type"] for c in s.get("conditions",[]) if c["type"] in ("Complete","Failed") and c["status"]=="True"), "Running"))'; }
for _ in $(seq 60); do [ "$(job_state)" != Running ] && break; sleep 1; done
[ "$(job_state)" = Complete ] || { echo "the migration did not complete" >&2; exit 1; }
run get jobs -n shop
run logs -n shop -l batch.kubernetes.io/job-name=migrate
run get cronjobs -n shop

step "5b. Analysis: the seed's success-rate template (Argo Rollouts) measured through the embedded Prometheus"
wrk -t1 -c2 -d10s "http://127.0.0.1:$port/" > /dev/null 2>&1 &
load=$!
run analysis run -f tests/fixtures/argo/analysis-template.yaml --arg service-name=shop --count 3 --interval 2s
wait "$load"

step "5c. Progressive delivery: the shop as an Argo Rollouts canary (HAProxy weights, analysis, automatic abort)"
canary="$work/shop/rollout"
sed -i "s|    newTag: .*|    newName: $registry/prod/shop\n    newTag: 1.0.0|" "$canary/kustomization.yaml"
rollout_state() {  # "PHASE STEP" of the Rollout, from `funade rollout get -o json`
  "$funade" rollout get shop-canary -n shop -o json | .venv/bin/python -c 'import json,sys
s = json.load(sys.stdin)["rollout"].get("status", {}); print(s.get("phase", ""), s.get("currentStepIndex", ""))'
}
wait_rollout() {  # poll `funade rollout get` until the phase is $1 (and the step $2, if given); 60 s at most
  local state=""
  for _ in $(seq 60); do
    state=$(rollout_state)
    if [ "${state% *}" = "$1" ] && { [ -z "${2:-}" ] || [ "${state#* }" = "$2" ]; }; then
      printf '\033[2m→ %s%s\033[0m\n' "$1" "${2:+ at step $2}"; return 0
    fi
    sleep 1
  done
  echo "rollout shop-canary: $state, expected $1${2:+ at step $2}" >&2; exit 1
}
split_by_version() {  # 40 requests through the stable Service, counted by version
  printf '\033[2m$ curl http://127.0.0.1:%s/  (×40, by answer)\033[0m\n' "$cport"
  for _ in $(seq 40); do curl -s "http://127.0.0.1:$cport/"; echo; done | sed '/^$/d' | cut -d' ' -f1 | sort | uniq -c
}
# A first deploy goes straight to 100 %; the steps run on every later change of the pod template.
run apply -k "$canary"
wait_rollout Healthy
cport=$("$funade" get svc shop-stable -n shop -o json | .venv/bin/python -c \
  'import json,sys; print(json.load(sys.stdin)["status"]["localTarget"]["ports"][0]["localPort"])')
sed -i "s/newTag: .*/newTag: 2.0.0/" "$canary/kustomization.yaml"
run apply -k "$canary"
wait_rollout Paused 3   # 25 %, 10 s of metrics, the analysis passed: step 3 waits for a person
run rollout get shop-canary -n shop
split_by_version
run rollout promote shop-canary -n shop
wait_rollout Healthy
run rollout get shop-canary -n shop
# A bad release: the same image answering 20 % of requests with a 500. The analysis sees it
# in the canary's metrics (load through the stable Service) and aborts by itself.
sed -i '/name: ERROR_RATE/{n;s/value: .*/value: "20"/}' "$canary/rollout.yaml"
run apply -k "$canary"
wrk -t1 -c2 -d20s "http://127.0.0.1:$cport/" > /dev/null 2>&1 &
load=$!
wait_rollout Degraded
kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true
run rollout get shop-canary -n shop
split_by_version
# Argo's way back: put the stable template back (the aborted one would be tried again on `retry`).
run rollout undo rollout/shop-canary -n shop
wait_rollout Healthy

step "5d. GitOps: an Argo CD Application keeps the shop's dev environment equal to a git repository"
# A git repository as a team would have it: the shop's base and its dev overlay, on branch main.
# It lives in funade's home (not the demo's scratch directory), so the app keeps working afterwards.
home=$("$funade" status -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["home"])')
repo="$home/demo/shop-config"
rm -rf "$repo"
mkdir -p "$repo/overlays"
cp -r examples/shop/base "$repo/base"
cp -r examples/shop/overlays/dev "$repo/overlays/dev"
git_repo() { git -C "$repo" -c user.name=demo -c user.email=demo@example.com "$@"; }
git_repo init -q -b main
git_repo add -A && git_repo commit -q -m "shop dev: 1.0.0"
cat > "$work/shop-dev-app.yaml" <<YAML
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop-dev
  namespace: argocd
spec:
  project: default
  source: {repoURL: "file://$repo", targetRevision: main, path: overlays/dev}
  destination: {server: https://kubernetes.default.svc, namespace: shop-dev}
  syncPolicy:
    automated: {prune: true, selfHeal: true}
    syncOptions: [CreateNamespace=true, PruneLast=true]
    retry: {limit: 3, backoff: {duration: 5s, factor: 2, maxDuration: 1m}}
YAML
app_field() {  # a status field of `funade app get shop-dev -o json`, e.g. sync.status
  "$funade" app get shop-dev -o json | .venv/bin/python -c '
import json, sys
value = json.load(sys.stdin).get("status") or {}
for key in sys.argv[1].split("."):
    value = value.get(key) or {}
print(value or "")' "$1"
}
wait_app() {  # until sync and health are $1/$2 at the repository's HEAD (at most 90 s)
  local head; head=$(git_repo rev-parse HEAD)
  for _ in $(seq 180); do
    if [ "$(app_field sync.status)" = "$1" ] && [ "$(app_field health.status)" = "$2" ] \
      && [ "$(app_field sync.revision)" = "$head" ]; then
      printf '\033[2m→ %s, %s at %s\033[0m\n' "$1" "$2" "${head:0:7}"; return 0
    fi
    sleep 0.5
  done
  echo "shop-dev is not $1/$2 at ${head:0:7}" >&2; "$funade" app get shop-dev >&2; exit 1
}
"$funade" app delete shop-dev >/dev/null 2>&1 || true  # a previous demo's app, and what it made
if "$funade" get ns shop-dev >/dev/null 2>&1; then run delete namespace shop-dev >/dev/null; fi
run app create -f "$work/shop-dev-app.yaml"
wait_app Synced Healthy
run app get shop-dev
# A commit, announced by a signed GitHub push webhook: synced in seconds, not at the next poll.
# The server's GitHub webhook secret: the one configured, else a new one written for it.
secret=$(.venv/bin/python - "$home/webhook.yaml" <<'PY'
import pathlib, secrets, sys, yaml
path = pathlib.Path(sys.argv[1])
config = (yaml.safe_load(path.read_text()) if path.exists() else None) or {}
if not config.get("github"):
    config["github"] = secrets.token_hex(16)
    path.write_text(yaml.safe_dump(config))
print(config["github"])
PY
)
before=$(git_repo rev-parse HEAD)
sed -i "s/newTag: .*/newTag: 2.0.0/" "$repo/overlays/dev/kustomization.yaml"
git_repo commit -q -am "shop dev: 2.0.0"
after=$(git_repo rev-parse HEAD)
body=$(printf '{"ref":"refs/heads/main","before":"%s","after":"%s","repository":{"clone_url":"file://%s","default_branch":"main"},"commits":[{"id":"%s","added":[],"removed":[],"modified":["overlays/dev/kustomization.yaml"]}]}' "$before" "$after" "$repo" "$after")
signature=$(printf '%s' "$body" | .venv/bin/python -c \
  'import hashlib,hmac,sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())' "$secret")
address=${FUNADE_ADDRESS:-127.0.0.1:7300}
started=$(date +%s.%N)
printf '\033[2m$ curl -X POST http://%s/api/webhook  (GitHub push, X-Hub-Signature-256)\033[0m\n' "$address"
curl -s -X POST "http://$address/api/webhook" -H 'X-GitHub-Event: push' -H "X-Hub-Signature-256: sha256=$signature" \
  -H 'Content-Type: application/json' --data "$body"; echo
wait_app Synced Healthy
printf '\033[33m→ commit to Synced+Healthy in %s s (Argo CD polls every 120 s + up to 60 s of jitter)\033[0m\n' \
  "$(.venv/bin/python -c 'import sys,time; print(round(time.time() - float(sys.argv[1]), 1))' "$started")"
run app history shop-dev
# The same push with a wrong signature is refused.
printf '\033[2m$ curl -X POST …/api/webhook  (signed with the wrong secret)\033[0m\n'
curl -s -o /dev/null -w '→ HTTP %{http_code}\n' -X POST "http://$address/api/webhook" -H 'X-GitHub-Event: push' \
  -H "X-Hub-Signature-256: sha256=0000" -H 'Content-Type: application/json' --data "$body"
# Drift: someone deletes the Deployment by hand; self-heal puts it back.
run delete deployment shop -n shop-dev
wait_app Synced Healthy
# A broken commit: a ComparisonError, and nothing is pruned.
echo "resources: [../../base" >> "$repo/overlays/dev/kustomization.yaml"
git_repo commit -q -am "broken kustomization"
run app refresh shop-dev || true
run app get shop-dev || true
run get deploy -n shop-dev
git_repo revert --no-edit HEAD >/dev/null
run app refresh shop-dev
wait_app Synced Healthy
# Roll back to the first sync while auto-sync is on (Argo CD refuses this): auto-sync is suspended.
first=$("$funade" app history shop-dev -o json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
run app rollback shop-dev "$first"
run get deploy shop -n shop-dev -o wide
run app set shop-dev --sync-policy automated
wait_app Synced Healthy
run app list

step "5e. Supply chain: SBOM and vulnerability scan of an outdated image, read from the registry without a pull"
docker build -q -t legacy:1.0.0 examples/legacy/context >/dev/null 2>&1
run image push legacy:1.0.0
run image sbom legacy:1.0.0 --remote  # from the registry, without a pull (the local build is read with --local)
# Made-up advisories (examples/legacy/osv), kept in a throwaway home so they never mix with real
# data; `funade vuln db update` fetches osv.dev's (Debian, Alpine, PyPI, npm, Go, Maven).
demo_data="$work/vulndata"
FUNADE_HOME="$demo_data" run vuln db import examples/legacy/osv
if FUNADE_HOME="$demo_data" run image scan "$registry/legacy:1.0.0" --severity CRITICAL,HIGH --exit-code 1; then
  echo "expected the scan gate to fail" >&2; exit 1
fi
printf '\033[33m→ exit code 1: the gate stops a deployment of this image\033[0m\n'
FUNADE_HOME="$demo_data" run image scan legacy:1.0.0 -o cyclonedx | tail -n 30  # the local build, as CycloneDX 1.5
# A namespace can require it: images must have the server's scan on push and no HIGH finding.
run apply -f - <<YAML
apiVersion: v1
kind: Namespace
metadata: {name: legacy, annotations: {funade.io/scan-gate: HIGH}}
YAML
if run apply -n legacy -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: legacy}
spec: {containers: [{name: app, image: "$registry/legacy:1.0.0", command: [/bin/true]}]}
YAML
then echo "expected the gate to refuse" >&2; exit 1; fi
printf '\033[33m→ refused before anything was stored\033[0m\n'
# A person can still let it through, with a reason; the audit log keeps who, what and why for good.
run apply -n legacy --force-gate "demo: batch job, no network, OPS-42" -f - <<YAML
apiVersion: v1
kind: Pod
metadata: {name: legacy}
spec: {containers: [{name: app, image: "$registry/legacy:1.0.0", command: [/bin/true]}], restartPolicy: Never}
YAML
run audit -n legacy

step "6. Registry hygiene: the seed's ECR lifecycle policy, previewed (dated by funade's push records)"
run registry lifecycle preview --policy examples/shop/ecr-lifecycle-policy.json dev/shop prod/shop
# The same policy on an `aws ecr describe-images` export, as of a fixed date: what ECR would expire.
run registry lifecycle preview --policy examples/shop/ecr-lifecycle-policy.json \
  --images examples/shop/ecr-describe-images.json --now 2026-11-28T00:00:00Z
run registry cleanup preview dev/shop --delete-only-untagged-versions --min-versions-to-keep 0

printf '\n\033[1;32mDone.\033[0m The shop keeps running. Explore with `%s get pods -n shop`, `%s describe deploy shop -n shop`,\n' "$funade" "$funade"
printf '`%s logs -l app=shop -n shop`; stop everything with `%s down --delete-workloads`.\n' "$funade" "$funade"
