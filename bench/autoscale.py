"""Autoscaling benchmark: a HorizontalPodAutoscaler on the local target under a CPU load step.

Why it exists: funade claims to run Kubernetes' HPA on one Docker host with Kubernetes'
own decisions and cadence. With the default 15 s sync period (as
``--horizontal-pod-autoscaler-sync-period``), a Deployment of the test app (cpu request
50m), an HPA of 1–6 replicas at 50 % cpu and a scale-down window of 30 s, it measures:

* load on (``wrk`` asking the Service for 5 ms of CPU per request, 4 connections): time to
  the first scale-out, and to 6 ready replicas;
* load off: time until the Deployment is back at 1 replica;
* sampling cost: one stats sample of every pod the way funade takes it (the Engine's
  one-shot stats, all pods) against ``docker stats --no-stream`` for the same containers,
  the peer tool a script would use.

Beside the measured reaction times the table puts Kubernetes' documented bounds for the
same settings: a scale-out is seen within metrics-server's resolution (15 s) plus one sync
period (15 s), and a scale-in after the stabilization window plus one sync period. Times
are measurements, never asserted. The load stops by itself (``wrk -d``); the bench starts
its own funade server (temporary ``FUNADE_HOME``, free ports) and removes everything on
exit, failure or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import time
from typing import Any

from harness import (
    BenchError,
    FunadeServer,
    Obj,
    fmt_ratio,
    fmt_seconds,
    guarded,
    machine,
    noise_notes,
    other_load,
    report,
    require_images,
    rounded,
    testapp_deployment,
    wait_for,
)
from rich.console import Console
from rich.table import Table

from funade.adapters.docker import DockerClient

IMAGE = "funade-testapp:1.0.0"
NAMESPACE = "bench-hpa"
SYNC = 15.0  # Kubernetes' default sync period, and what the bench's server uses
RESOLUTION = 15.0  # metrics-server's default --metric-resolution
SCALE_DOWN_WINDOW = 30
err = Console(stderr=True)


def manifests() -> list[Obj]:
    app = testapp_deployment("burner", NAMESPACE, 1, IMAGE, "0")
    app["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": "50m", "memory": "16Mi"},
        "limits": {"cpu": "250m", "memory": "64Mi"},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "burner", "namespace": NAMESPACE},
        "spec": {"selector": {"app": "burner"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }
    target = {"type": "Utilization", "averageUtilization": 50}
    down = {
        "stabilizationWindowSeconds": SCALE_DOWN_WINDOW,
        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burner", "namespace": NAMESPACE},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burner"},
            "minReplicas": 1,
            "maxReplicas": 6,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": target}}],
            "behavior": {"scaleDown": down},
        },
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    return [namespace, app, service, hpa]


def get(server: FunadeServer, path: str) -> Obj:
    response = server.http.get(path)
    response.raise_for_status()
    return dict(response.json())


def replicas(server: FunadeServer) -> int:
    return int(get(server, f"/v1/objects/Deployment/{NAMESPACE}/burner")["spec"]["replicas"])


def ready_pods(server: FunadeServer) -> list[Obj]:
    pods = get(server, f"/v1/objects/Pod?namespace={NAMESPACE}&selector=app%3Dburner")["items"]
    return [
        p
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or [])
    ]


def sampling_cost(container_ids: list[str], rounds: int = 5) -> tuple[float, float]:
    """Median seconds for one sample of every container: funade's one-shot stats vs ``docker stats --no-stream``.

    funade's rounds are 2 s apart, as its sampler's are at least 1.5 s: the Engine answers a
    one-shot sample at once unless the same container was sampled less than a second before.
    """

    async def ours() -> float:
        async with DockerClient() as docker:
            started = time.perf_counter()
            await asyncio.gather(*(docker.stats(cid) for cid in container_ids))
            return time.perf_counter() - started

    funade_times = []
    for _ in range(rounds):
        time.sleep(2.0)  # spacing the samples, as the sampler does (not a synchronisation)
        funade_times.append(asyncio.run(ours()))
    docker_times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(["docker", "stats", "--no-stream", *container_ids], capture_output=True, check=True, timeout=60)
        docker_times.append(time.perf_counter() - started)
    return statistics.median(funade_times), statistics.median(docker_times)


def measure(server: FunadeServer, load_seconds: int) -> Obj:
    server.start("--no-registry", "--no-prometheus")
    noise = other_load(server.instance)
    path = server.home / "bench.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests()}))
    server.cli("apply", "-f", str(path), "--wait", timeout=180)
    svc = get(server, f"/v1/objects/Service/{NAMESPACE}/burner")
    port = int(svc["status"]["localTarget"]["ports"][0]["localPort"])
    wait_for("the Service answers", lambda: len(ready_pods(server)) == 1, 60)

    load = subprocess.Popen(
        ["wrk", "-t2", "-c4", f"-d{load_seconds}s", f"http://127.0.0.1:{port}/burn?ms=5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    started = time.monotonic()
    wait_for("a scale-out", lambda: replicas(server) > 1, load_seconds)
    first_out = time.monotonic() - started
    wait_for("6 ready replicas", lambda: replicas(server) == 6 and len(ready_pods(server)) == 6, load_seconds)
    at_max = time.monotonic() - started
    output, _ = load.communicate(timeout=load_seconds + 30)
    stopped = time.monotonic()
    wait_for("back to 1 replica", lambda: replicas(server) == 1, SCALE_DOWN_WINDOW + 4 * SYNC + 60)
    back_in = time.monotonic() - stopped
    # The sampling cost, on 6 pods the server no longer samples (its own samples would make the
    # Engine wait for its collector's next tick).
    server.cli("delete", "hpa", "burner", "-n", NAMESPACE)
    server.cli("scale", "deployment", "burner", "-n", NAMESPACE, "--replicas", "6")
    wait_for("6 ready replicas again", lambda: len(ready_pods(server)) == 6, 60)
    ids = [
        c["containerID"].removeprefix("docker://")
        for p in ready_pods(server)
        for c in p["status"]["containerStatuses"]
        if c.get("containerID")
    ]
    cost_funade, cost_docker = sampling_cost(ids)
    requests = next((line.split()[0] for line in output.splitlines() if "requests in" in line), "?")
    events = [
        e for e in get(server, f"/v1/events?namespace={NAMESPACE}")["items"] if e["reason"] == "SuccessfulRescale"
    ]
    return {
        "scaleOutSeconds": rounded(first_out),
        "atMaxSeconds": rounded(at_max),
        "scaleInSeconds": rounded(back_in),
        "samplingFunadeSeconds": rounded(cost_funade, 4),
        "samplingDockerStatsSeconds": rounded(cost_docker, 4),
        "pods": len(ids),
        "requests": requests,
        "rescales": [e["message"] for e in events],
        "noise": noise,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load-seconds", type=int, default=90, help="how long wrk burns CPU through the Service")
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        err.print("wrk is not installed (apt-get install wrk; `make test` installs it)")
        return 1
    require_images(IMAGE)
    server = FunadeServer("funade-bench-hpa-", registry=False, FUNADE_HPA_SYNC_SECONDS=str(int(SYNC)))
    result, code = guarded(lambda: measure(server, args.load_seconds), server.cleanup, (BenchError,), err)
    if result is None:
        return code
    outcome: dict[str, Any] = {"machine": machine(docker=True), "funade": result}
    k8s_out, k8s_in = RESOLUTION + SYNC, SCALE_DOWN_WINDOW + SYNC
    table = Table(title="HorizontalPodAutoscaler: 1 → 6 → 1 replicas under a CPU load step (sync 15 s)")
    for column in ("figure", "funade", "Kubernetes (documented bound)", "ratio"):
        table.add_column(column)
    rows = [
        ("load on → first scale-out", result["scaleOutSeconds"], f"≤ {k8s_out:.0f} s (resolution + sync)", k8s_out),
        ("load on → 6 ready replicas", result["atMaxSeconds"], "—", None),
        ("load off → back to 1 replica", result["scaleInSeconds"], f"≤ {k8s_in:.0f} s (window + sync)", k8s_in),
    ]
    for figure, ours, peer, bound in rows:
        table.add_row(figure, fmt_seconds(ours), peer, fmt_ratio(ours, bound))
    sampled, peer_sampled = result["samplingFunadeSeconds"], result["samplingDockerStatsSeconds"]
    table.add_row(
        f"one sample of {result['pods']} pods",
        fmt_seconds(sampled),
        f"docker stats --no-stream: {fmt_seconds(peer_sampled)}",
        fmt_ratio(sampled, peer_sampled),
    )
    notes = [f"wrk: {result['requests']} requests of 5 ms CPU each", *(f"  {m}" for m in result["rescales"])]
    report(outcome, [table, *notes, *noise_notes(result["noise"])], as_json=args.output == "json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
