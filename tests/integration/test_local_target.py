"""The local target end to end: a real funade server running Kubernetes objects on Docker.

Every test drives the `funade` CLI like a user, reads live state through the HTTP API
and checks behaviour that could go wrong: rolling-update arithmetic, automatic rollback,
the rollout verbs, probes, crash-loop back-off, the seed's manifests, recovery from a
killed server, and refusal of bad input. Each test works in a namespace of its own,
deleted afterwards (the controllers then remove its pods). No bare sleeps: every wait
polls a condition until a deadline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

import funade as funade_package
from tests.integration.conftest import (
    APP_PORT,
    CliResult,
    Funade,
    container_status,
    docker_containers,
    docker_inspect,
    flat,
    free_port,
    images,
    is_ready,
    live,
    pod_ip,
    running_server,
    waiting_reason,
)

pytestmark = pytest.mark.integration

Obj = dict[str, Any]

V1 = "funade-testapp:1.0.0"
V2 = "funade-testapp:2.0.0"
V3 = "funade-testapp:3.0.0"  # /ready always answers 503
ROOT_IMAGE = "funade-testapp:root"
SEED_DEPLOYMENT = Path("/work/shared/seed-examples/k8s/base/deployment.yaml")
# The same file, for machines without the shared seed examples (a CI clone has only the repo).
SEED_DEPLOYMENT_COPY = """\
# k8s/base/deployment.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: myapp
  labels:
    app: myapp
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  selector:
    matchLabels:
      app: myapp
  template:
    metadata:
      labels:
        app: myapp
    spec:
      serviceAccountName: myapp
      securityContext:
        runAsNonRoot: true
        runAsUser: 1001
      containers:
        - name: app
          image: ghcr.io/myorg/myapp:abc1234
          ports:
            - containerPort: 3000
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: 500m
              memory: 512Mi
          readinessProbe:
            httpGet:
              path: /health
              port: 3000
            initialDelaySeconds: 5
            periodSeconds: 10
          livenessProbe:
            httpGet:
              path: /health
              port: 3000
            initialDelaySeconds: 15
            periodSeconds: 20
          startupProbe:
            httpGet:
              path: /health
              port: 3000
            failureThreshold: 30
            periodSeconds: 2
          env:
            - name: NODE_ENV
              value: production
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: myapp-secrets
                  key: database-url
"""


# -- manifests ------------------------------------------------------------------------------


def app_container(image: str, env: dict[str, str] | None = None, **extra: Any) -> Obj:
    container: Obj = {
        "name": "app",
        "image": image,
        "ports": [{"containerPort": APP_PORT}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": APP_PORT}, "periodSeconds": 1},
    }
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    container.update(extra)
    return container


def deployment(
    name: str,
    image: str,
    *,
    replicas: int = 3,
    env: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    progress_deadline: int | None = None,
) -> Obj:
    """A Deployment of the test app: readiness on /ready every second, maxSurge 1, maxUnavailable 0."""
    spec: Obj = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": [app_container(image, env)]},
        },
    }
    if progress_deadline is not None:
        spec["progressDeadlineSeconds"] = progress_deadline
    metadata: Obj = {"name": name}
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": metadata, "spec": spec}


def bare_pod(name: str, container: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"terminationGracePeriodSeconds": 2, **spec, "containers": [container]},
    }


# -- small readers ----------------------------------------------------------------------------


def answer(pod: Obj, path: str = "/", port: int = APP_PORT) -> str:
    """The test app's answer to GET path, straight at the pod IP (reachable from the host)."""
    response = httpx.get(f"http://{pod_ip(pod)}:{port}{path}", timeout=5.0)
    response.raise_for_status()
    return response.text.strip()


def version(pod: Obj) -> str:
    return answer(pod).split()[0]


def condition(obj: Obj, kind: str) -> Obj | None:
    return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == kind), None)


def history(funade: Funade, ns: str, name: str) -> list[Obj]:
    r = funade.cli("rollout", "history", f"deployment/{name}", "-n", ns, "-o", "json")
    assert r.code == 0, r.output
    return list(json.loads(r.stdout))


def revisions(funade: Funade, ns: str, name: str) -> dict[int, list[str]]:
    """revision number → images, from `funade rollout history`."""
    return {int(h["revision"]): list(h["images"]) for h in history(funade, ns, name)}


def rollout_status(funade: Funade, ns: str, name: str, timeout: int = 90) -> CliResult:
    args = ("rollout", "status", f"deployment/{name}", "-n", ns, "--timeout", str(timeout))
    return funade.cli(*args, timeout=timeout + 30)


def settled(funade: Funade, ns: str, name: str, image: str, replicas: int) -> list[Obj]:
    """Wait until exactly ``replicas`` live pods run ``image``, all ready, none terminating."""

    def check() -> list[Obj] | None:
        pods = funade.pods(ns, f"app={name}")
        if len(pods) == replicas and all(images(p) == [image] and is_ready(p) for p in pods):
            return pods
        return None

    return funade.wait_until(check, 90, f"{replicas} ready pods of {name} running {image}", namespace=ns)


def template_images(deployment: Obj) -> list[str]:
    return [c["image"] for c in deployment["spec"]["template"]["spec"]["containers"]]


def timestamp(value: str) -> float:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


# -- 1. rolling update ---------------------------------------------------------------------------


def test_rolling_update_keeps_capacity_and_respects_max_surge(funade: Funade, ns: str) -> None:
    r = funade.apply(ns, deployment("web", V1), args=["--wait", "--timeout", "90"])
    assert r.code == 0, r.output
    assert 'deployment "web" successfully rolled out' in r.stdout
    pods = live(funade.pods(ns, "app=web"))
    assert len(pods) == 3
    assert all(is_ready(p) for p in pods)
    assert {version(p) for p in pods} == {"version=1.0.0"}

    r = funade.apply(ns, deployment("web", V2))
    assert r.code == 0, r.output
    assert "deployment.apps/web configured" in r.stdout

    samples: list[tuple[int, int, frozenset[str]]] = []

    def rolled_out() -> bool:
        current = live(funade.pods(ns, "app=web"))
        ready = sum(1 for p in current if is_ready(p))
        samples.append((len(current), ready, frozenset(i for p in current for i in images(p))))
        return len(current) == 3 and ready == 3 and all(images(p) == [V2] for p in current)

    funade.wait_until(rolled_out, 90, "every pod of web to run 2.0.0 and be ready", interval=0.05, namespace=ns)
    assert min(ready for _, ready, _ in samples) >= 3, f"ready pods dropped below 3 (maxUnavailable 0): {samples}"
    assert max(total for total, _, _ in samples) <= 4, f"more than 4 pods at once (maxSurge 1): {samples}"
    # The samples really saw the rollout happen: both versions side by side, one surge pod.
    assert any(len(imgs) == 2 for _, _, imgs in samples), samples
    assert any(total == 4 for total, _, _ in samples), samples

    r = rollout_status(funade, ns, "web")
    assert r.code == 0, r.output
    assert 'deployment "web" successfully rolled out' in r.stdout
    pods = live(funade.pods(ns, "app=web"))
    assert [version(p) for p in pods] == ["version=2.0.0"] * 3

    status = funade.deployment(ns, "web")["status"]
    assert (status["updatedReplicas"], status["readyReplicas"], status["availableReplicas"]) == (3, 3, 3)
    assert status["currentRevision"] == 2
    assert revisions(funade, ns, "web") == {1: [V1], 2: [V2]}
    r = funade.cli("rollout", "history", "deployment/web", "-n", ns)
    assert r.code == 0, r.output
    rows = [line.split() for line in r.stdout.splitlines()]
    assert [row[0] for row in rows if row and row[0].isdigit()] == ["1", "2"], r.stdout


# -- 2. automatic rollback -------------------------------------------------------------------------


def test_failed_rollout_is_rolled_back_unless_disabled(funade: Funade, ns: str) -> None:
    manual = {"funade.io/auto-rollback": "false"}
    r = funade.apply(
        ns,
        deployment("auto", V1, progress_deadline=10),
        deployment("manual", V2, progress_deadline=10, annotations=manual),
        args=["--wait", "--timeout", "90"],
    )
    assert r.code == 0, r.output
    r = funade.apply(ns, deployment("auto", V2, progress_deadline=10), args=["--wait", "--timeout", "90"])
    assert r.code == 0, r.output
    assert revisions(funade, ns, "auto") == {1: [V1], 2: [V2]}

    # 3.0.0 never becomes ready: both rollouts stall past their 10 s deadline.
    r = funade.apply(
        ns,
        deployment("auto", V3, progress_deadline=10),
        deployment("manual", V3, progress_deadline=10, annotations=manual),
        args=["--wait", "--timeout", "120"],
        timeout=180,
    )
    assert r.code == 1, r.output
    assert 'deployment "auto" was rolled back' in flat(r.stderr), r.output
    assert 'deployment "manual" exceeded its progress deadline' in flat(r.stderr), r.output

    r = rollout_status(funade, ns, "auto")
    assert r.code == 1, r.output
    assert "was rolled back" in flat(r.stderr)
    r = rollout_status(funade, ns, "manual")
    assert r.code == 1, r.output
    assert "exceeded its progress deadline" in flat(r.stderr)
    assert "rolled back" not in flat(r.stderr)

    # auto: 2.0.0 again, every pod ready, and 2.0.0 came back as revision 4 (kubectl semantics).
    pods = settled(funade, ns, "auto", V2, 3)
    assert [version(p) for p in pods] == ["version=2.0.0"] * 3
    auto = funade.deployment(ns, "auto")
    assert template_images(auto) == [V2]
    rolled_back = condition(auto, "RolledBack")
    assert rolled_back is not None and rolled_back["status"] == "True", auto["status"]
    assert rolled_back["reason"] == "ProgressDeadlineExceeded"
    assert (rolled_back["failedRevision"], rolled_back["restoredRevision"]) == (3, 2)
    assert revisions(funade, ns, "auto") == {1: [V1], 3: [V3], 4: [V2]}
    assert auto["status"]["currentRevision"] == 4
    events = funade.events(ns)
    assert any(e["reason"] == "RolledBack" and e["name"] == "auto" for e in events), events

    # manual: nothing rolled back; the 3.0.0 pod stays (not ready) beside the three 2.0.0 pods.
    man = funade.deployment(ns, "manual")
    assert template_images(man) == [V3]
    assert condition(man, "RolledBack") is None
    progressing = condition(man, "Progressing")
    assert progressing is not None and progressing["reason"] == "ProgressDeadlineExceeded"
    pods = live(funade.pods(ns, "app=manual"))
    new = [p for p in pods if images(p) == [V3]]
    old = [p for p in pods if images(p) == [V2]]
    assert len(new) == 1 and not is_ready(new[0]), pods
    assert len(old) == 3 and all(is_ready(p) for p in old), pods
    assert revisions(funade, ns, "manual") == {1: [V2], 2: [V3]}
    assert not any(e["reason"] == "RolledBack" and e["name"] == "manual" for e in funade.events(ns))


# -- 3. rollout verbs and scale ----------------------------------------------------------------------


def test_rollout_undo_restart_pause_resume_and_scale(funade: Funade, ns: str) -> None:
    r = funade.apply(ns, deployment("web", V1, replicas=2), args=["--wait", "--timeout", "90"])
    assert r.code == 0, r.output
    r = funade.apply(ns, deployment("web", V2, replicas=2), args=["--wait", "--timeout", "90"])
    assert r.code == 0, r.output

    # undo --to-revision 1: 1.0.0 comes back as revision 3.
    r = funade.cli("rollout", "undo", "deployment/web", "-n", ns, "--to-revision", "1")
    assert r.code == 0, r.output
    assert "rolled back" in r.stdout
    assert rollout_status(funade, ns, "web").code == 0
    pods = settled(funade, ns, "web", V1, 2)
    assert {version(p) for p in pods} == {"version=1.0.0"}
    assert revisions(funade, ns, "web") == {2: [V2], 3: [V1]}

    # undo: back to the previous revision, 2.0.0, now revision 4.
    r = funade.cli("rollout", "undo", "deployment/web", "-n", ns)
    assert r.code == 0, r.output
    assert rollout_status(funade, ns, "web").code == 0
    pods = settled(funade, ns, "web", V2, 2)
    assert {version(p) for p in pods} == {"version=2.0.0"}
    assert revisions(funade, ns, "web") == {3: [V1], 4: [V2]}

    # An unknown revision is refused and changes nothing.
    r = funade.cli("rollout", "undo", "deployment/web", "-n", ns, "--to-revision", "1")
    assert r.code != 0
    assert "unable to find specified revision 1" in flat(r.stderr)

    # restart: every pod replaced by a new revision of the same template.
    before = {p["metadata"]["uid"] for p in pods}
    r = funade.cli("rollout", "restart", "deployment/web", "-n", ns)
    assert r.code == 0, r.output
    assert rollout_status(funade, ns, "web").code == 0
    pods = settled(funade, ns, "web", V2, 2)
    assert not before & {p["metadata"]["uid"] for p in pods}, "rollout restart kept old pods"
    assert all("kubectl.kubernetes.io/restartedAt" in p["metadata"].get("annotations", {}) for p in pods)
    assert sorted(revisions(funade, ns, "web")) == [3, 4, 5]
    # Applying the manifest again keeps the restart (kubectl apply leaves fields it never set).
    r = funade.apply(ns, deployment("web", V2, replicas=2))
    assert r.code == 0, r.output
    assert "deployment.apps/web unchanged" in r.stdout, r.stdout
    assert sorted(revisions(funade, ns, "web")) == [3, 4, 5]

    # pause: a template change is stored and observed but not rolled out.
    r = funade.cli("rollout", "pause", "deployment/web", "-n", ns)
    assert r.code == 0, r.output
    changed = deployment("web", V1, replicas=2, env={"GREETING": "after-pause"})
    r = funade.apply(ns, changed)
    assert r.code == 0, r.output

    def paused_and_observed() -> bool:
        dep = funade.deployment(ns, "web")
        progressing = condition(dep, "Progressing") or {}
        return (
            dep["status"].get("observedGeneration") == dep["metadata"]["generation"]
            and progressing.get("reason") == "DeploymentPaused"
        )

    funade.wait_until(paused_and_observed, 30, "the paused deployment to observe the new template", namespace=ns)
    passes = funade.get("/v1/status")["reconcilePasses"]
    funade.wait_until(
        lambda: funade.get("/v1/status")["reconcilePasses"] >= passes + 3, 30, "three more reconcile passes"
    )
    pods = funade.pods(ns, "app=web")
    assert len(pods) == 2 and all(images(p) == [V2] for p in pods), "a paused deployment rolled out"
    assert sorted(revisions(funade, ns, "web")) == [3, 4, 5], "a paused deployment created a revision"
    r = funade.cli("rollout", "undo", "deployment/web", "-n", ns)
    assert r.code != 0 and "resume it first" in flat(r.stderr), r.output

    r = funade.cli("rollout", "resume", "deployment/web", "-n", ns)
    assert r.code == 0, r.output
    assert rollout_status(funade, ns, "web").code == 0
    pods = settled(funade, ns, "web", V1, 2)
    assert {answer(p, "/env?name=GREETING") for p in pods} == {"after-pause"}

    # scale: up to 4 ready pods, then down to 1.
    r = funade.cli("scale", "deployment/web", "--replicas", "4", "-n", ns)
    assert r.code == 0, r.output
    settled(funade, ns, "web", V1, 4)
    funade.wait_until(
        lambda: funade.deployment(ns, "web")["status"].get("readyReplicas") == 4, 30, "readyReplicas 4", namespace=ns
    )
    # A manifest without replicas leaves the scaled count alone; one with replicas sets it.
    without_replicas = deployment("web", V1, env={"GREETING": "after-pause"})
    del without_replicas["spec"]["replicas"]
    r = funade.apply(ns, without_replicas)
    assert r.code == 0, r.output
    assert "deployment.apps/web unchanged" in r.stdout, r.stdout
    assert funade.deployment(ns, "web")["spec"]["replicas"] == 4
    r = funade.cli("scale", "deployment/web", "--replicas", "1", "-n", ns)
    assert r.code == 0, r.output
    settled(funade, ns, "web", V1, 1)
    funade.wait_until(
        lambda: funade.deployment(ns, "web")["status"].get("replicas") == 1, 30, "status.replicas 1", namespace=ns
    )
    r = funade.cli("get", "deployments", "-n", ns)
    assert r.code == 0, r.output
    assert r.stdout.splitlines()[1].split()[:2] == ["web", "1/1"], r.stdout


# -- 4. liveness --------------------------------------------------------------------------------------


def test_liveness_failure_restarts_the_container(funade: Funade, ns: str) -> None:
    container = app_container(
        V1,
        {"LIVENESS_FAIL_AFTER": "2"},
        livenessProbe={"httpGet": {"path": "/health", "port": APP_PORT}, "periodSeconds": 1, "failureThreshold": 2},
    )
    r = funade.apply(ns, bare_pod("sick", container))
    assert r.code == 0, r.output

    def restarted() -> Obj | None:
        status = container_status(funade.pod(ns, "sick"))
        if status.get("restartCount", 0) >= 1 and "running" in status.get("state", {}):
            return status
        return None

    # Polled fast: the first status that shows the restart must already show why (lastState).
    status = funade.wait_until(
        restarted, 45, "the container to be restarted by its liveness probe", interval=0.02, namespace=ns
    )
    assert "terminated" in status["lastState"], status

    r = funade.cli("events", "-n", ns)
    assert r.code == 0, r.output
    text = flat(r.stdout)
    assert "Unhealthy" in text and "Liveness probe failed" in text, r.stdout
    assert "Killing" in text and "failed liveness probe, will be restarted" in text, r.stdout


# -- 5. crash-loop back-off ------------------------------------------------------------------------------


def test_crash_loop_backs_off(funade: Funade, ns: str) -> None:
    container = {"name": "app", "image": V1, "env": [{"name": "CRASH_AFTER", "value": "0.5"}]}
    r = funade.apply(ns, bare_pod("crasher", container, restartPolicy="Always"))
    assert r.code == 0, r.output

    starts: dict[int, float] = {}
    finishes: dict[int, float] = {}
    reasons: set[str] = set()
    no_last_state: list[Obj] = []  # a restarted container must show its previous run's end

    def record(run: int, terminated: Obj) -> None:
        starts[run] = timestamp(terminated["startedAt"])
        finishes[run] = timestamp(terminated["finishedAt"])

    def third_start_seen() -> bool:
        status = container_status(funade.pod(ns, "crasher"))
        if not status:
            return False
        run = int(status["restartCount"])  # the latest run's index: 0 for the first start
        state, last = status.get("state", {}), status.get("lastState") or {}
        if "running" in state:
            starts[run] = timestamp(state["running"]["startedAt"])
            if run > 0 and "terminated" not in last:
                no_last_state.append(status)
            if "terminated" in last:
                record(run - 1, last["terminated"])
        elif "terminated" in state:
            record(run, state["terminated"])
        elif "waiting" in state:
            reasons.add(state["waiting"]["reason"])
            if "terminated" in last:
                record(run, last["terminated"])
        return 2 in starts and {0, 1} <= finishes.keys()

    funade.wait_until(third_start_seen, 40, "the third start of the crashing container", interval=0.05, namespace=ns)
    assert "CrashLoopBackOff" in reasons, reasons
    assert not no_last_state, no_last_state
    # Kubernetes' back-off: the first restart at once, the next after 10 s (timestamps have 1 s resolution).
    assert starts[1] - finishes[0] <= 2, (starts, finishes)
    assert starts[2] - finishes[1] >= 9, (starts, finishes)
    assert starts[2] - starts[1] >= 9, (starts, finishes)
    assert starts[2] - finishes[1] <= 15, f"the second back-off should be 10 s, not more: {starts} {finishes}"

    def backing_off() -> str | None:
        r = funade.cli("get", "pods", "-n", ns)
        return r.stdout if "CrashLoopBackOff" in r.stdout else None

    out = funade.wait_until(backing_off, 15, "get pods to show CrashLoopBackOff", namespace=ns)
    row = next(line.split() for line in out.splitlines() if line.startswith("crasher"))
    assert row[1:4] == ["0/1", "CrashLoopBackOff", "2"], out


# -- 6. the seed's deployment -----------------------------------------------------------------------------


@pytest.mark.skipif(
    shutil.which("kustomize") is None and shutil.which("kubectl") is None,
    reason="needs kustomize, or kubectl (which embeds it), on PATH",
)
def test_seed_deployment_runs_through_kustomize(funade: Funade, ns: str, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    seed = SEED_DEPLOYMENT.read_text() if SEED_DEPLOYMENT.exists() else SEED_DEPLOYMENT_COPY
    (overlay / "deployment.yaml").write_text(seed)
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "myapp"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "PORT", "value": "3000"}]}]}}},
    }
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["deployment.yaml"],
        "images": [{"name": "ghcr.io/myorg/myapp", "newName": "funade-testapp", "newTag": "1.0.0"}],
        "patches": [{"patch": yaml.safe_dump(patch)}],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))

    r = funade.cli("apply", "-k", str(overlay), "-n", ns)
    assert r.code == 0, r.output
    assert "deployment.apps/myapp created" in r.stdout

    # Without the Secret the container cannot be configured, and the pods say which secret is missing.
    def config_errors() -> list[Obj] | None:
        pods = funade.pods(ns, "app=myapp")
        if len(pods) == 3 and all(waiting_reason(p) == "CreateContainerConfigError" for p in pods):
            return pods
        return None

    pods = funade.wait_until(config_errors, 30, "CreateContainerConfigError on all 3 pods", namespace=ns)
    for pod in pods:
        assert 'secret "myapp-secrets" not found' in container_status(pod)["state"]["waiting"]["message"]
    r = funade.cli("get", "pods", "-n", ns)
    assert r.stdout.count("CreateContainerConfigError") == 3, r.stdout

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "myapp-secrets"},
        "type": "Opaque",
        "stringData": {"database-url": "postgres://db.internal:5432/myapp"},
    }
    r = funade.apply(ns, secret)
    assert r.code == 0, r.output
    r = rollout_status(funade, ns, "myapp", timeout=120)
    assert r.code == 0, r.output + "\n" + funade.snapshot(ns)

    pods = settled(funade, ns, "myapp", "funade-testapp:1.0.0", 3)
    for pod in pods:
        assert answer(pod, "/env?name=DATABASE_URL", port=3000) == "postgres://db.internal:5432/myapp"
        assert answer(pod, "/env?name=NODE_ENV", port=3000) == "production"
        proc_status = answer(pod, "/file?path=/proc/self/status", port=3000)
        uid_line = next(line for line in proc_status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:] == ["1001"] * 4, uid_line
        container_id = container_status(pod)["containerID"].removeprefix("docker://")
        config = docker_inspect(container_id)
        assert config["Config"]["User"] == "1001"
        assert config["HostConfig"]["NanoCpus"] == 500_000_000
        assert config["HostConfig"]["Memory"] == 512 * 1024 * 1024


# -- 7. recovery from a killed server ------------------------------------------------------------------------


def test_server_killed_mid_rollout_recovers(tmp_path: Path) -> None:
    with running_server(tmp_path) as own:
        r = own.cli("apply", "-f", "-", input="apiVersion: v1\nkind: Namespace\nmetadata:\n  name: crash\n")
        assert r.code == 0, r.output
        r = own.apply("crash", deployment("web", V1), args=["--wait", "--timeout", "90"])
        assert r.code == 0, r.output
        r = own.apply("crash", deployment("web", V2, env={"STARTUP_DELAY": "2"}))
        assert r.code == 0, r.output

        def mid_way() -> list[Obj] | None:
            pods = live(own.pods("crash", "app=web"))
            new = [p for p in pods if images(p) == [V2]]
            old = [p for p in pods if images(p) == [V1]]
            started = [p for p in new if "running" in container_status(p).get("state", {})]
            return started if len(new) >= 2 and len(old) >= 1 and started else None

        victim = own.wait_until(mid_way, 60, "the rollout to be half-way", interval=0.05, namespace="crash")[0]
        pid = own.server_pid()
        os.kill(pid, signal.SIGKILL)

        def dead() -> bool:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            # A zombie until its parent (the long gone `funade up`) is reaped: check /proc.
            stat = Path(f"/proc/{pid}/stat")
            return not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"

        own.wait_until(dead, 10, "the killed server to exit")
        assert not own.alive()

        # The kill lands anywhere; make the narrowest window certain too: one new pod's app
        # container as the server leaves it when it dies between creating and starting it.
        instance = own.instance
        uid = victim["metadata"]["uid"]
        (run,) = [c for c in docker_containers(instance) if c["pod_uid"] == uid and c["role"] == "container"]
        labels = docker_inspect(run["id"])["Config"]["Labels"]
        subprocess.run(["docker", "rm", "-f", run["id"]], check=True, capture_output=True, timeout=60)
        label_args = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        subprocess.run(
            ["docker", "create", "--name", run["name"], *label_args, V2], check=True, capture_output=True, timeout=60
        )

        own.up()
        r = rollout_status(own, "crash", "web")
        assert r.code == 0, r.output + "\n" + own.snapshot("crash")
        pods = settled(own, "crash", "web", V2, 3)
        assert [version(p) for p in pods] == ["version=2.0.0"] * 3
        assert revisions(own, "crash", "web") == {1: [V1], 2: [V2]}

        # Docker holds exactly the three pods: one sandbox and one running app container each.
        uids = {p["metadata"]["uid"] for p in pods}
        assert uid in uids
        assert container_status(own.pod("crash", victim["metadata"]["name"]))["restartCount"] == 0

        def only_live_pods() -> list[Obj] | None:
            found = docker_containers(instance)
            return found if {c["pod_uid"] for c in found} == uids else None

        found = own.wait_until(only_live_pods, 60, "the containers of replaced pods to be removed", namespace="crash")
        sandboxes = [c for c in found if c["role"] == "sandbox"]
        runs = [c for c in found if c["role"] == "container"]
        assert sorted(c["pod_uid"] for c in sandboxes) == sorted(uids), found
        assert all(c["state"] == "running" for c in sandboxes), found
        for uid in uids:
            mine = [c for c in runs if c["pod_uid"] == uid]
            assert [(c["container"], c["state"]) for c in mine] == [("app", "running")], found
        assert len(found) == 6, found
        r = own.cli("get", "pods", "-n", "crash")
        assert r.stdout.count("Running") == 3, r.stdout


# -- 8. bad input -----------------------------------------------------------------------------------------------


def test_invalid_manifests_are_refused_and_change_nothing(funade: Funade, ns: str, tmp_path: Path) -> None:
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n data: [unclosed\n")
    r = funade.cli("apply", "-f", str(bad_yaml), "-n", ns)
    assert r.code != 0
    assert f"{bad_yaml}:5" in flat(r.stderr) and "invalid YAML" in r.stderr, r.stderr

    typo = deployment("typo", V1)
    typo["spec"]["template"]["spec"]["containers"][0]["imagee"] = V1
    r = funade.apply(ns, typo)
    assert r.code != 0
    assert 'unknown field "spec.template.spec.containers[0].imagee"' in flat(r.stderr), r.stderr

    old_api = deployment("old", V1)
    old_api["apiVersion"] = "apps/v1beta1"
    r = funade.apply(ns, old_api)
    assert r.code != 0
    assert "unknown apiVersion apps/v1beta1" in flat(r.stderr), r.stderr

    mismatch = deployment("mismatch", V1)
    mismatch["spec"]["selector"]["matchLabels"] = {"app": "other"}
    r = funade.apply(ns, mismatch)
    assert r.code != 0
    assert "spec.template.metadata.labels" in flat(r.stderr), r.stderr
    assert "selector does not match template labels" in flat(r.stderr), r.stderr

    # A multi-document file whose second document is invalid applies nothing at all.
    first = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "first"}, "data": {"a": "1"}}
    second = deployment("second", V1)
    del second["spec"]["template"]["spec"]["containers"][0]["image"]
    path = funade.write(first, second, name="two-docs.yaml")
    r = funade.cli("apply", "-f", str(path), "-n", ns)
    assert r.code != 0
    assert str(path) in flat(r.stderr) and "image is required" in flat(r.stderr), r.stderr

    # The API refuses a bad batch as a whole too, whichever client sends it.
    missing_ns = dict(first, metadata={"name": "elsewhere", "namespace": "no-such-namespace"})
    for batch in ([first, second], [first, missing_ns]):
        response = funade.http.post("/v1/apply", json={"objects": batch, "namespace": ns})
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]

    for kind, name in (("ConfigMap", "first"), ("Deployment", "typo"), ("Deployment", "old")):
        assert funade.find(kind, ns, name) is None, f"{kind} {name} was stored from invalid input"
    for kind, name in (("Deployment", "mismatch"), ("Deployment", "second")):
        assert funade.find(kind, ns, name) is None, f"{kind} {name} was stored from invalid input"
    r = funade.cli("get", "configmaps", "-n", ns)
    assert "first" not in r.stdout
    assert funade.pods(ns) == []


def test_pods_that_cannot_start_say_why(funade: Funade, ns: str) -> None:
    missing_image = {"name": "app", "image": "localhost:1/nope:1"}
    as_root = {"name": "app", "image": ROOT_IMAGE}
    r = funade.apply(
        ns,
        bare_pod("no-image", missing_image),
        bare_pod("root", as_root, securityContext={"runAsNonRoot": True}),
    )
    assert r.code == 0, r.output

    def pull_failed() -> Obj | None:
        pod = funade.pod(ns, "no-image")
        return pod if waiting_reason(pod) in ("ErrImagePull", "ImagePullBackOff") else None

    pod = funade.wait_until(pull_failed, 60, "ErrImagePull on pod no-image", namespace=ns)
    assert "localhost:1/nope:1" in container_status(pod)["state"]["waiting"]["message"]

    def refused() -> Obj | None:
        pod = funade.pod(ns, "root")
        return pod if waiting_reason(pod) == "CreateContainerConfigError" else None

    pod = funade.wait_until(refused, 30, "CreateContainerConfigError on pod root", namespace=ns)
    assert "runAsNonRoot" in container_status(pod)["state"]["waiting"]["message"]
    instance = funade.instance
    root_runs = [
        c for c in docker_containers(instance) if c["pod_uid"] == pod["metadata"]["uid"] and c["role"] == "container"
    ]
    assert root_runs == [], "a container refused by runAsNonRoot was created anyway"

    r = funade.cli("get", "pods", "-n", ns)
    assert r.code == 0, r.output
    assert "CreateContainerConfigError" in r.stdout
    assert "ErrImagePull" in r.stdout or "ImagePullBackOff" in r.stdout, r.stdout


def test_cli_without_a_server_says_how_to_start_one(funade: Funade, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    env.update(FUNADE_HOME=str(tmp_path / "nowhere"), FUNADE_ADDRESS=f"127.0.0.1:{free_port()}")
    for args in (("get", "pods"), ("rollout", "status", "deployment/web"), ("status",)):
        r = funade.cli(*args, env=env, timeout=30)
        assert r.code != 0, (args, r)
        assert "start it with `funade up`" in r.output, (args, r)
    manifest = funade.write(deployment("web", V1))
    r = funade.cli("apply", "-f", str(manifest), env=env, timeout=30)
    assert r.code != 0
    assert "start it with `funade up`" in r.stderr, r


def test_non_runnable_kinds_are_stored_and_listed(funade: Funade, ns: str) -> None:
    policy = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}},
    }
    r = funade.apply(ns, policy)
    assert r.code == 0, r.output
    assert "poddisruptionbudget/web created (stored; not runnable on the local target)" in r.stdout, r.stdout
    r = funade.cli("get", "pdb", "-n", ns)
    assert r.code == 0, r.output
    assert "web" in r.stdout and "not runnable on the local target" in r.stdout, r.stdout
    stored = funade.obj("PodDisruptionBudget", ns, "web")
    assert stored["spec"]["minAvailable"] == 1
    assert stored["status"]["localTarget"] == "not runnable on the local target"
    assert funade.pods(ns) == []


def test_up_says_when_the_running_server_is_older_than_this_funade(funade: Funade) -> None:
    again = funade.cli("up", "--address", funade.address, "-o", "json")
    assert again.code == 0 and json.loads(again.stdout)["stale"] is False, again.output
    # An upgrade (here: an edited module of this editable install) makes the running server stale.
    module = Path(funade_package.__file__).parent / "core" / "quantity.py"
    before = module.stat()
    try:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        stale = funade.cli("up", "--address", funade.address)
        assert stale.code == 0 and "runs older code than this funade" in stale.stderr, stale.output
    finally:
        os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))


def test_the_audit_log_keeps_who_changed_what(funade: Funade, ns: str) -> None:
    assert funade.apply(ns, deployment("audited", V1, replicas=1), args=("--wait",)).code == 0
    assert funade.apply(ns, deployment("audited", V1, replicas=1)).code == 0  # unchanged: not an action
    assert funade.apply(ns, deployment("audited", V1, replicas=1), args=("--dry-run",)).code == 0
    assert funade.cli("scale", "deployment", "audited", "-n", ns, "--replicas", "2").code == 0
    assert funade.cli("rollout", "restart", "deployment/audited", "-n", ns).code == 0
    assert funade.cli("delete", "deployment", "audited", "-n", ns).code == 0
    assert funade.cli("scale", "deployment", "nosuch", "-n", ns, "--replicas", "2").code != 0  # failed: not kept
    entries = json.loads(funade.cli("audit", "-n", ns, "-o", "json").stdout)
    assert [(e["action"], e["objects"]) for e in entries] == [
        ("apply", ["Deployment/audited created"]),
        ("scale", ["Deployment/audited"]),
        ("rollout restart", ["Deployment/audited"]),
        ("delete", ["Deployment/audited"]),
    ]
    assert "replicas=2" in entries[1]["details"]
    assert all(e["actor"].endswith("@" + socket.gethostname()) for e in entries)
