"""Services on the local target, for real: HAProxy on loopback in front of the pods Docker runs.

Requests reach Ready pods only; a rolling update under load loses no request; a pod that
is deleted finishes its in-flight request before it gets SIGTERM; HAProxy killed with
SIGKILL is back by itself; the loopback port survives a re-apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from funade.adapters.haproxy import HAProxy
from tests.integration.conftest import (
    REPO_ROOT,
    CliResult,
    Funade,
    docker_inspect,
    free_port,
    funade_executable,
    wait_until,
)
from tests.integration.test_local_target import app_container, bare_pod, deployment

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
V1, V2, BROKEN = "funade-testapp:1.0.0", "funade-testapp:2.0.0", "funade-testapp:3.0.0"


def service(name: str, selector: dict[str, str] | None = None, **spec: Any) -> Obj:
    body = {"selector": selector or {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}], **spec}
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": body}


def local_port(funade: Funade, ns: str, name: str) -> int:
    svc = funade.obj("Service", ns, name)
    return int(svc["status"]["localTarget"]["ports"][0]["localPort"])


def endpoints(funade: Funade, ns: str, name: str) -> list[Obj]:
    return list(funade.obj("Endpoints", ns, name)["status"]["localTarget"]["endpoints"])


def ready_endpoints(funade: Funade, ns: str, name: str, count: int) -> None:
    """Wait until the Service has exactly ``count`` endpoints, all ready."""
    funade.wait_until(
        lambda: Counter(e["state"] for e in endpoints(funade, ns, name)) == {"ready": count},
        60,
        f"{count} ready endpoints behind {name}",
        namespace=ns,
    )


def get(port: int, path: str = "/", timeout: float = 5.0) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=timeout)


class Load:
    """A client thread sending requests one after another (new connection each time) until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.outcomes: Counter[str] = Counter()
        self.bodies: Counter[str] = Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                response = get(self.port, timeout=3.0)
                self.outcomes[str(response.status_code)] += 1
                self.bodies[response.text.split(" ")[0]] += 1
            except httpx.HTTPError as exc:
                self.outcomes[type(exc).__name__] += 1

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    @property
    def failures(self) -> dict[str, int]:
        return {k: v for k, v in self.outcomes.items() if k != "200"}


def test_requests_reach_ready_pods_only_and_the_port_is_stable(funade: Funade, ns: str) -> None:
    good = deployment("good", V1, replicas=2)
    good["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    bad = deployment("bad", BROKEN, replicas=1)
    bad["spec"]["template"]["metadata"]["labels"]["tier"] = "web"
    r = funade.apply(ns, good, bad, service("web", {"tier": "web"}))
    assert r.code == 0, r.output
    port = local_port(funade, ns, "web")
    assert 30000 <= port <= 32767
    funade.wait_until(
        lambda: Counter(e["state"] for e in endpoints(funade, ns, "web")) == {"ready": 2, "down": 1},
        90,
        "two ready endpoints and one down",
        namespace=ns,
    )
    wait_until(lambda: get(port).status_code == 200, 30, "HAProxy carries the Service")
    answers = Counter(get(port).text.split(" ")[0] for _ in range(30))
    assert answers == {"version=1.0.0": 30}
    # The same port after a re-apply, and `get svc` shows it.
    assert funade.apply(ns, service("web", {"tier": "web"})).code == 0
    assert local_port(funade, ns, "web") == port
    listing = funade.cli("get", "svc", "web", "-n", ns)
    assert f"80:{port}/TCP" in listing.stdout, listing.output
    eps = funade.cli("get", "endpoints", "web", "-n", ns)
    assert eps.code == 0 and "(down)" in eps.stdout, eps.output


def test_rolling_update_under_load_loses_no_request(funade: Funade, ns: str) -> None:
    web = deployment("roll", V1, replicas=3, env={"STARTUP_DELAY": "2"})
    assert funade.apply(ns, web, service("roll"), args=("--wait",)).code == 0
    port = local_port(funade, ns, "roll")
    wait_until(lambda: get(port).status_code == 200, 30, "the Service answers")
    with Load(port) as load:
        wait_until(lambda: sum(load.outcomes.values()) > 20, 30, "steady traffic")
        r = funade.apply(ns, deployment("roll", V2, replicas=3, env={"STARTUP_DELAY": "2"}), args=("--wait",))
        assert r.code == 0, r.output
        seen = sum(load.outcomes.values())
        wait_until(lambda: sum(load.outcomes.values()) > seen + 20, 30, "traffic after the update")
    assert load.failures == {}, f"failed requests during the rolling update: {load.outcomes}"
    assert load.bodies["version=1.0.0"] > 0 and load.bodies["version=2.0.0"] > 0


def test_a_deleted_pod_finishes_its_in_flight_request_before_sigterm(funade: Funade, ns: str) -> None:
    pod = bare_pod("slow", app_container(V1), terminationGracePeriodSeconds=20)
    pod["metadata"]["labels"] = {"app": "slow"}
    assert funade.apply(ns, pod, service("slow")).code == 0
    port = local_port(funade, ns, "slow")
    funade.wait_until(lambda: get(port).status_code == 200, 60, "the Service answers", namespace=ns)
    result: dict[str, Any] = {}

    def slow_request() -> None:
        response = get(port, "/sleep?ms=3000", timeout=15)
        result["status"], result["done"] = response.status_code, time.time()

    thread = threading.Thread(target=slow_request)
    thread.start()
    proxy = HAProxy(funade.home)
    wait_until(
        lambda: any(s.sessions > 0 for s in asyncio.run(proxy.servers()) if s.server.startswith("slow-")),
        10,
        "the slow request is in flight at the pod",
    )
    assert funade.cli("delete", "pod", "slow", "-n", ns, "--no-wait").code == 0
    thread.join(20)
    assert result.get("status") == 200, result
    funade.wait_until(lambda: funade.find("Pod", ns, "slow") is None, 60, "the pod is gone", namespace=ns)
    # The kubelet says "Killing" when it sends SIGTERM: only after the drained request was answered.
    (killing,) = [e for e in funade.events(ns) if e["name"] == "slow" and e["reason"] == "Killing"]
    assert killing["time"] >= result["done"] - 0.2, (killing["time"], result["done"])


def test_haproxy_killed_is_back_with_the_current_state(funade: Funade, ns: str) -> None:
    assert funade.apply(ns, deployment("phoenix", V1, replicas=1), service("phoenix"), args=("--wait",)).code == 0
    port = local_port(funade, ns, "phoenix")
    wait_until(lambda: get(port).status_code == 200, 30, "the Service answers")
    master = int((funade.home / "haproxy" / "haproxy.pid").read_text().strip())
    os.kill(master, signal.SIGKILL)
    for pid in _haproxy_pids(funade):
        os.kill(pid, signal.SIGKILL)

    def answers() -> bool:
        try:
            return get(port, timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    funade.wait_until(answers, 30, "HAProxy restarted by the services controller", namespace=ns)
    assert int((funade.home / "haproxy" / "haproxy.pid").read_text().strip()) != master


def _haproxy_pids(funade: Funade) -> list[int]:
    config = str(funade.home / "haproxy" / "haproxy.cfg").encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                argv = open(f"/proc/{entry}/cmdline", "rb").read().split(b"\0")  # noqa: SIM115
            except OSError:
                continue
            if argv and argv[0].endswith(b"haproxy") and config in argv:
                found.append(int(entry))
    return found


def test_a_loopback_port_taken_meanwhile_leaves_only_its_service_down(funade: Funade, ns: str) -> None:
    """HAProxy dies, another program binds one Service's port before HAProxy is back: the others are served."""
    assert funade.apply(ns, service("squatted"), service("spared")).code == 0
    squatted, spared = local_port(funade, ns, "squatted"), local_port(funade, ns, "spared")

    def answers(port: int) -> bool:  # no pods: HAProxy itself answers 503
        try:
            return get(port, timeout=1).status_code == 503
        except httpx.HTTPError:
            return False

    funade.wait_until(lambda: answers(squatted) and answers(spared), 30, "both Services served", namespace=ns)

    def squat() -> socket.socket | None:
        for pid in _haproxy_pids(funade):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        holder = socket.socket()
        try:
            holder.bind(("127.0.0.1", squatted))
        except OSError:  # HAProxy was back first: again
            holder.close()
            return None
        holder.listen()
        return holder

    holder = wait_until(squat, 30, f"another program holding 127.0.0.1:{squatted}")
    try:
        funade.wait_until(lambda: answers(spared), 30, "the other Service served again", namespace=ns)

        def reported() -> Obj | None:
            port = funade.obj("Service", ns, "squatted")["status"]["localTarget"]["ports"][0]
            return port if port.get("error") else None

        port = funade.wait_until(reported, 30, "the taken port in the Service's status", namespace=ns)
        assert port["error"] == f"127.0.0.1:{squatted} is taken by another program"
        assert "error" not in funade.obj("Service", ns, "spared")["status"]["localTarget"]["ports"][0]
        assert any(e["reason"] == "PortTaken" and e["name"] == "squatted" for e in funade.events(ns))
        status = json.loads(funade.cli("status", "-o", "json").stdout)
        assert f"127.0.0.1:{squatted} ({ns}/squatted:http)" in status["proxy"]["error"], status
    finally:
        holder.close()
    funade.wait_until(lambda: answers(squatted), 30, "the Service served once its port is free", namespace=ns)
    assert answers(spared)


def test_a_taken_node_port_is_refused_and_changes_nothing(funade: Funade, ns: str) -> None:
    port = free_port() % 2000 + 30000
    first = service("first", type="NodePort", ports=[{"port": 80, "targetPort": 8080, "nodePort": port}])
    assert funade.apply(ns, first).code == 0
    assert local_port(funade, ns, "first") == port
    second = service("second", type="NodePort", ports=[{"port": 80, "targetPort": 8080, "nodePort": port}])
    r = funade.apply(ns, second)
    assert r.code != 0 and "provided port is already allocated" in r.stderr, r.output
    assert funade.find("Service", ns, "second") is None


def test_weights_and_header_routes_of_a_traffic_split_without_reload(funade: Funade, ns: str) -> None:
    stable = deployment("split-stable", V1, replicas=1)
    canary = deployment("split-canary", V2, replicas=1)
    for d, track in ((stable, "stable"), (canary, "canary")):
        d["spec"]["template"]["metadata"]["labels"].update({"shop": "split", "track": track})
    svc = service("split", {"shop": "split"})

    def traffic_split(weights: dict[str, int]) -> Obj:
        return {
            "apiVersion": "local.funade.io/v1alpha1",
            "kind": "TrafficSplit",
            "metadata": {"name": "split"},
            "spec": {
                "service": "split",
                "subsets": [
                    {"name": "stable", "labels": {"track": "stable"}},
                    {"name": "canary", "labels": {"track": "canary"}},
                ],
                "weights": weights,
                "headerRoutes": [{"match": [{"headers": {"x-canary": {"exact": "true"}}}], "subset": "canary"}],
            },
        }

    r = funade.apply(ns, stable, canary, svc, traffic_split({"stable": 90, "canary": 10}), args=("--wait",))
    assert r.code == 0, r.output
    port = local_port(funade, ns, "split")
    ready_endpoints(funade, ns, "split", 2)
    proxy = HAProxy(funade.home)
    worker = asyncio.run(proxy.worker_pid())
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        versions = Counter(client.get("/").text.split(" ")[0] for _ in range(2000))
        share = 100 * versions["version=2.0.0"] / 2000
        assert 7.0 <= share <= 13.0, versions
        tagged = Counter(client.get("/", headers={"x-canary": "true"}).text.split(" ")[0] for _ in range(50))
        assert tagged == {"version=2.0.0": 50}
        # All traffic to the canary: a runtime change, HAProxy's worker is the same.
        assert funade.apply(ns, traffic_split({"stable": 0, "canary": 100})).code == 0
        funade.wait_until(
            lambda: all(client.get("/").text.startswith("version=2.0.0") for _ in range(20)),
            30,
            "the new weights apply",
            namespace=ns,
        )
    assert asyncio.run(proxy.worker_pid()) == worker
    bad = funade.apply(ns, traffic_split({"preview": 100}))
    assert bad.code != 0 and "spec.weights.preview: no such subset" in bad.stderr, bad.output


def test_the_seeds_istio_files_route_traffic_as_istio_would(funade: Funade, ns: str) -> None:
    fixtures = Path(__file__).resolve().parents[1] / "fixtures" / "istio"
    deployments = []
    for track, image in (("stable", V1), ("canary", V2)):
        d = deployment(f"myapp-{track}", image, replicas=1)
        d["spec"]["template"]["metadata"]["labels"].update({"svc": "myapp", "version": track})
        deployments.append(d)
    r = funade.apply(ns, *deployments, service("myapp", {"svc": "myapp"}), args=("--wait",))
    assert r.code == 0, r.output
    r = funade.cli(
        "apply", "-n", ns, "-f", str(fixtures / "destination-rule.yaml"), "-f", str(fixtures / "virtual-service.yaml")
    )
    assert r.code == 0, r.output
    assert "circuitBreaker" in r.output and "gateways" in r.output  # what the local target cannot honour is said
    port = local_port(funade, ns, "myapp")
    ready_endpoints(funade, ns, "myapp", 2)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        funade.wait_until(  # ten in a row: before the VirtualService applies, half the answers are v2 already
            lambda: all(
                client.get("/", headers={"x-canary": "true"}).text.startswith("version=2.0.0") for _ in range(10)
            ),
            30,
            "the VirtualService applies",
            namespace=ns,
        )
        canary = Counter(client.get("/", headers={"x-canary": "true"}).text.split(" ")[0] for _ in range(40))
        assert canary == {"version=2.0.0": 40}
        split = Counter(client.get("/").text.split(" ")[0] for _ in range(1000))
    share = 100 * split["version=2.0.0"] / 1000
    assert 2.0 <= share <= 8.5, split  # 95/5


def test_outlier_detection_ejects_a_failing_pod(funade: Funade, ns: str) -> None:
    good = deployment("od-good", V1, replicas=1)
    bad = deployment("od-bad", V1, replicas=1, env={"ERROR_RATE": "100"})
    for d in (good, bad):
        d["spec"]["template"]["metadata"]["labels"]["svc"] = "od"
    rule = {
        "apiVersion": "networking.istio.io/v1beta1",
        "kind": "DestinationRule",
        "metadata": {"name": "od"},
        "spec": {
            "host": "od",
            "trafficPolicy": {
                "outlierDetection": {
                    "consecutive5xxErrors": 3,
                    "interval": "1s",
                    "baseEjectionTime": "60s",
                    "maxEjectionPercent": 100,
                }
            },
        },
    }
    r = funade.apply(ns, good, bad, service("od", {"svc": "od"}), rule, args=("--wait",))
    assert r.code == 0, r.output
    port = local_port(funade, ns, "od")
    ready_endpoints(funade, ns, "od", 2)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        first = Counter(client.get("/").status_code for _ in range(20))
        assert first[500] <= 3, first  # ejected after its third consecutive 5xx
        after = Counter(client.get("/").status_code for _ in range(40))
    assert after == {200: 40}, after
    ejected = [s for s in asyncio.run(HAProxy(funade.home).servers()) if s.ejected]
    assert ejected and all(s.server.startswith("od-bad-") for s in ejected)


# -- pods reaching Services by name: the in-cluster proxies ------------------------------------------

DEBIAN = "funade-debian:12-py"  # python3 and curl: busybox wget crashes in the scratch test image
BUILD_DEBIAN = REPO_ROOT / "scripts" / "build-debian-image.sh"
# Requests in a loop inside a pod until /tmp/stop exists, then their outcomes as JSON;
# /tmp/started once the first one was answered.
LOAD_SCRIPT = """
import collections, json, os, sys, urllib.request
seen = collections.Counter()
while not os.path.exists("/tmp/stop"):
    try:
        with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
            seen[r.read().decode().split(" ")[0]] += 1
        open("/tmp/started", "w").close()
    except Exception as exc:
        seen[type(exc).__name__] += 1
print(json.dumps(seen))
"""


@pytest.fixture(scope="module")
def debian() -> str:
    """The Debian image with curl and python3, built once per machine (quick when it is current)."""
    done = subprocess.run(["bash", str(BUILD_DEBIAN)], capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, f"{BUILD_DEBIAN.name} failed:\n{done.stdout}{done.stderr}"
    return DEBIAN


def client(funade: Funade, ns: str, image: str, name: str = "client") -> str:
    """A pod to send requests from, running."""
    pod = bare_pod(name, {"name": "shell", "image": image, "command": ["sleep", "infinity"]})
    assert funade.apply(ns, pod).code == 0
    funade.wait_until(
        lambda: (funade.pod(ns, name).get("status") or {}).get("phase") == "Running",
        90,
        f"pod {name} runs",
        namespace=ns,
    )
    return name


def inside(funade: Funade, ns: str, pod: str, *command: str) -> CliResult:
    return funade.cli("exec", pod, "-n", ns, "--", *command, timeout=60)


def fetch(funade: Funade, ns: str, pod: str, url: str) -> str:
    """The body of GET url from inside ``pod`` ("" when the request failed)."""
    r = inside(funade, ns, pod, "curl", "-sS", "--fail", "-m", "3", url)
    return r.stdout.strip() if r.code == 0 else ""


def answers_from(funade: Funade, ns: str, pod: str, url: str, count: int) -> Counter[str]:
    """The first word of ``count`` answers to GET url from inside ``pod`` (one exec, a fresh connection each)."""
    script = (
        "import collections, json, sys, urllib.request\n"
        "seen = collections.Counter()\n"
        f"for _ in range({count}):\n"
        "    try:\n"
        "        seen[urllib.request.urlopen(sys.argv[1], timeout=3).read().decode().split()[0]] += 1\n"
        "    except Exception as exc:\n"
        "        seen[type(exc).__name__] += 1\n"
        "print(json.dumps(seen))\n"
    )
    r = inside(funade, ns, pod, "python3", "-c", script, url)
    assert r.code == 0, r.output
    return Counter(json.loads(r.stdout))


def proxies(funade: Funade) -> dict[str, str]:
    """The in-cluster proxy containers of the session's home: Service (namespace/name) → container id."""
    out = subprocess.run(
        [
            "docker", "ps", "-a", "--no-trunc",
            "--filter", f"label=funade.managed={funade.instance}",
            "--filter", "label=funade.role=service-proxy",
            "--format", '{{.Label "funade.service"}}\t{{.ID}}\t{{.State}}',
        ],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    rows = (line.split("\t") for line in out.splitlines() if line)
    return {ref: cid for ref, cid, state in rows if state == "running"}


def test_pods_reach_a_service_by_its_names(funade: Funade, ns: str, debian: str) -> None:
    plain = service("plain", {"app": "web"}, ports=[{"port": 5000, "targetPort": 8080}])  # no name: carried as TCP
    assert funade.apply(ns, deployment("web", V1, replicas=2), service("web"), plain, args=("--wait",)).code == 0
    pod = client(funade, ns, debian)
    resolv = inside(funade, ns, pod, "cat", "/etc/resolv.conf").stdout
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv, resolv
    funade.wait_until(lambda: fetch(funade, ns, pod, "http://web/"), 30, "the Service answers inside", namespace=ns)
    for host in ("web", f"web.{ns}", f"web.{ns}.svc", f"web.{ns}.svc.cluster.local"):
        assert answers_from(funade, ns, pod, f"http://{host}/", 10) == {"version=1.0.0": 10}, host
    assert answers_from(funade, ns, pod, "http://plain:5000/", 20) == {"version=1.0.0": 20}
    # The proxy is not published: nothing of it listens on the host.
    info = docker_inspect(proxies(funade)[f"{ns}/web"])
    assert not info["HostConfig"]["PortBindings"] and not info["NetworkSettings"]["Ports"]
    aliases = info["NetworkSettings"]["Networks"]["funade"]["Aliases"]
    assert {f"web.{ns}", f"web.{ns}.svc", f"web.{ns}.svc.cluster.local"} <= set(aliases)


def test_endpoint_changes_reach_the_in_cluster_proxy(funade: Funade, ns: str, debian: str) -> None:
    web = deployment("web", V1, replicas=1, env={"STARTUP_DELAY": "1"})
    assert funade.apply(ns, web, service("web"), args=("--wait",)).code == 0
    pod = client(funade, ns, debian)
    funade.wait_until(lambda: fetch(funade, ns, pod, "http://web/"), 30, "the Service answers", namespace=ns)
    proxy = proxies(funade)[f"{ns}/web"]

    def hosts() -> set[str]:
        return {fetch(funade, ns, pod, "http://web/").split("host=")[-1] for _ in range(12)}

    assert len(hosts()) == 1
    assert funade.apply(ns, deployment("web", V1, replicas=3), args=("--wait",)).code == 0
    funade.wait_until(lambda: len(hosts()) == 3, 30, "three pods answer through the proxy", namespace=ns)
    # A rolling update under load from inside: no request lost, and then only v2 answers.
    load = subprocess.Popen(
        [funade_executable(), "exec", pod, "-n", ns, "--", "python3", "-c", LOAD_SCRIPT, "http://web/"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=funade.env,
    )  # fmt: skip
    try:
        funade.wait_until(
            lambda: inside(funade, ns, pod, "test", "-e", "/tmp/started").code == 0, 30, "the load runs", namespace=ns
        )
        r = funade.apply(ns, deployment("web", V2, replicas=3, env={"STARTUP_DELAY": "1"}), args=("--wait",))
        assert r.code == 0, r.output
    finally:
        inside(funade, ns, pod, "touch", "/tmp/stop")
        out, err = load.communicate(timeout=30)
    seen = Counter(json.loads(out))
    assert set(seen) <= {"version=1.0.0", "version=2.0.0"}, f"failed requests inside during the update: {seen} {err}"
    assert seen["version=2.0.0"] > 0
    assert answers_from(funade, ns, pod, "http://web/", 20) == {"version=2.0.0": 20}
    assert proxies(funade)[f"{ns}/web"] == proxy  # followed in place, never recreated


def test_a_proxy_killed_comes_back_and_a_deleted_service_takes_its_proxy(funade: Funade, ns: str, debian: str) -> None:
    assert funade.apply(ns, deployment("gone", V1, replicas=1), service("gone"), args=("--wait",)).code == 0
    pod = client(funade, ns, debian)
    funade.wait_until(lambda: fetch(funade, ns, pod, "http://gone/"), 30, "the Service answers", namespace=ns)
    killed = proxies(funade)[f"{ns}/gone"]
    subprocess.run(["docker", "kill", killed], capture_output=True, check=True, timeout=30)
    funade.wait_until(lambda: fetch(funade, ns, pod, "http://gone/"), 30, "the proxy is back", namespace=ns)
    assert funade.cli("delete", "service", "gone", "-n", ns).code == 0
    funade.wait_until(lambda: f"{ns}/gone" not in proxies(funade), 30, "the proxy is removed", namespace=ns)
    assert not docker_containers_named(killed)
    r = inside(funade, ns, pod, "curl", "-sS", "-m", "3", "http://gone/")
    assert r.code != 0 and "resolve" in r.stderr, r.output


def docker_containers_named(container_id: str) -> list[str]:
    out = subprocess.run(
        ["docker", "ps", "-aq", "--no-trunc", "--filter", f"id={container_id}"],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return out.split()


def test_the_same_short_name_means_each_namespaces_own_service(funade: Funade, ns: str, debian: str) -> None:
    other = f"{ns}-b"
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": other}}
    assert funade.apply(ns, namespace).code == 0
    try:
        assert funade.apply(ns, deployment("web", V1, replicas=1), service("web"), args=("--wait",)).code == 0
        assert funade.apply(other, deployment("web", V2, replicas=1), service("web"), args=("--wait",)).code == 0
        mine, theirs = client(funade, ns, debian), client(funade, other, debian)
        funade.wait_until(lambda: fetch(funade, ns, mine, "http://web/"), 30, "web answers in A", namespace=ns)
        funade.wait_until(lambda: fetch(funade, other, theirs, "http://web/"), 30, "web answers in B", namespace=other)
        assert answers_from(funade, ns, mine, "http://web/", 10) == {"version=1.0.0": 10}
        assert answers_from(funade, other, theirs, "http://web/", 10) == {"version=2.0.0": 10}
        # Across namespaces by the qualified name, as in Kubernetes.
        assert answers_from(funade, ns, mine, f"http://web.{other}/", 10) == {"version=2.0.0": 10}
        assert answers_from(funade, other, theirs, f"http://web.{ns}.svc.cluster.local/", 10) == {"version=1.0.0": 10}
    finally:
        assert funade.cli("delete", "namespace", other, timeout=60).code == 0
        funade.wait_until(lambda: not funade.pods(other), 90, f"the pods of namespace {other} to be removed")
