"""Canary benchmark: the seed's Argo Rollout under constant load, a real Prometheus, automatic aborts.

Why it exists: issue 7's acceptance scenario. funade claims to run the seed's
``k8s/base/rollout.yaml`` (steps 5 → pause → analysis → 25 → pause → analysis → 50 →
pause → 100) and ``analysis-template.yaml`` (success rate ≥ 0.99, failureLimit 3) on the
local target, with HAProxy weights and the Prometheus ``funade up`` starts, and to abort
bad releases faster and more predictably than Argo Rollouts and Flagger. Under constant
load through the stable Service, it measures:

* good v2 (``funade-testapp:2.0.0``): promoted through every step; requests, failures,
  total time;
* bad v3 (the v2 image with ``ERROR_RATE=10``, reporting ``VERSION=3.0.0`` so its answers
  can be told apart): aborted by the analysis; time from the first 5xx to the abort, time
  until every request is answered by the stable revision again, and the blast radius (the
  share of the attempt's requests that v3 served and failed);
* v4 whose pods never become ready (``funade-testapp:3.0.0``, ``READY_FAIL=1``) with
  ``progressDeadlineSeconds`` small and ``progressDeadlineAbort: true``: aborted by the
  deadline, never stuck.

Beside funade's measured detection times the table puts Argo Rollouts' and Flagger's,
computed from their documented formulas with the same interval (Argo: interval ×
(failureLimit+1); Flagger: interval × threshold, threshold 1 by default). Times are
measurements, never asserted. The load is a few paced HTTP/1.1 clients in a child process
(127.0.0.1 only) that stops by itself after a maximum duration. The bench starts its own
funade server with Prometheus (temporary ``FUNADE_HOME``, free ports) and removes
everything on exit, failure or Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import re
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from harness import (
    FUNADE,
    ROOT,
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
    run,
)
from load import HTTP_ERROR, KINDS, OK, Load, Profile, Records
from rich.console import Console
from rich.table import Table

SEED = Path("/work/shared/seed-examples/k8s/base")  # the seed's files; the repository keeps identical copies
FIXTURES = ROOT / "tests" / "fixtures" / "argo"
IMAGE_GOOD = "funade-testapp:2.0.0"
IMAGE_STABLE = "funade-testapp:1.0.0"
IMAGE_NEVER_READY = "funade-testapp:3.0.0"  # built with READY_FAIL=1
APP_PORT = 8080
STARTUP_DELAY = "1"
NAMESPACE = "canary"

RATE = 200.0  # requests per second, constant, through the stable Service
CLIENTS = 4  # keep-alive connections sharing the rate
REQUEST_TIMEOUT_S = 1.0
LEAD_S = 2.0  # load before each update
TAIL_S = 3.0  # load after the rollout settled (Healthy, or aborted)
LOAD_MAX_S = 300.0  # a load process stops by itself after this long, whatever happens to the bench
POLL_S = 0.1  # how often the bench reads the Rollout
WAIT_TIMEOUT_S = 120.0  # any single wait beyond the rollout's own schedule
FLAGGER_THRESHOLD = 1  # Flagger's default `threshold` (reference §4)
FLAGGER_MIN_INTERVAL_S = 10.0  # Flagger's floor on `interval`, in code

err = Console(stderr=True, highlight=False)


# -- what the load saw ------------------------------------------------------------------


def paced(rate: float) -> Profile:
    """``rate`` requests per second from :data:`CLIENTS` keep-alive clients; a non-2xx keeps the connection."""
    return Profile(CLIENTS, rate=rate, max_seconds=LOAD_MAX_S, request_timeout=REQUEST_TIMEOUT_S)


@dataclass(frozen=True)
class Request:
    start: float  # monotonic s
    end: float
    outcome: int
    status: int
    version: int

    @property
    def ok(self) -> bool:
        return self.outcome == OK


def requests_of(records: Records) -> list[Request]:
    rows = zip(records.start, records.latency, records.outcome, records.status, records.version, strict=True)
    return sorted((Request(t, t + lat, o, s, v) for t, lat, o, s, v in rows), key=lambda r: r.start)


def failure_kinds(requests: list[Request]) -> dict[str, int]:
    kinds: Counter[str] = Counter()
    for r in requests:
        if not r.ok:
            kinds[f"{KINDS[r.outcome]} {r.status}" if r.outcome == HTTP_ERROR else KINDS[r.outcome]] += 1
    return dict(kinds)


def versions_of(requests: list[Request]) -> dict[str, int]:
    return dict(sorted(Counter(f"v{r.version}" for r in requests if r.outcome in (OK, HTTP_ERROR)).items()))


# -- manifests ------------------------------------------------------------------------------


def _seed(name: str) -> Obj:
    path = SEED / name if (SEED / name).exists() else FIXTURES / name
    doc: Obj = yaml.safe_load(path.read_text())
    return doc


def _seconds(duration: object) -> float:
    """An Argo duration (``10``, ``10s``, ``5m``, ``1h``) in seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|m|h)?", str(duration).strip())
    if not match:
        raise BenchError(f"unreadable duration {duration!r} in the seed's rollout.yaml")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


@dataclass(frozen=True)
class Settings:
    """What the bench changes in the seed's files, from the command line."""

    step_seconds: float  # the seed's 5m pauses become this; its 10m pause twice this
    interval_s: float
    progress_deadline_s: int
    rate: float
    seed_query: bool = False  # keep the query's 5m range

    @property
    def query_range_s(self) -> int:
        """The seed's 5m rate() range, as long as its 5m pause like in the seed (at least 4 s: 4 scrapes)."""
        return 300 if self.seed_query else max(4, round(self.step_seconds))


class Manifests:
    """The seed's rollout.yaml and analysis-template.yaml, adapted to the test app and a bench's pace."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rollout = _seed("rollout.yaml")
        self.template = _seed("analysis-template.yaml")
        self.name = self.rollout["metadata"]["name"]
        canary = self.rollout["spec"]["strategy"]["canary"]
        self.stable_service, self.canary_service = canary["stableService"], canary["canaryService"]
        self.replicas = int(self.rollout["spec"].get("replicas", 1))
        self.changes: list[str] = []
        self._adapt()

    def _adapt(self) -> None:
        s = self.settings
        self.rollout["metadata"]["namespace"] = NAMESPACE
        self.template["metadata"]["namespace"] = NAMESPACE
        steps = self.rollout["spec"]["strategy"]["canary"]["steps"]
        self.pauses: list[float] = []
        self.analyses = 0
        for step in steps:
            if "pause" in step and (step["pause"] or {}).get("duration") is not None:
                seconds = s.step_seconds * _seconds(step["pause"]["duration"]) / 300
                step["pause"]["duration"] = f"{seconds:g}s"
                self.pauses.append(seconds)
            if "analysis" in step:
                self.analyses += 1
                spec = step["analysis"]
                if not spec.get("args"):
                    # The seed's second analysis step names no args; the template's service-name
                    # has no default, so Argo (and funade) would end that run in Error.
                    spec["args"] = [{"name": "service-name", "value": self.canary_service}]
                    self.changes.append("args service-name added to the 2nd analysis step (the seed omits it)")
        metric = self.template["spec"]["metrics"][0]
        self.failure_limit = int(metric.get("failureLimit", 0))
        self.seed_interval = metric.get("interval")
        metric["interval"] = f"{s.interval_s:g}s"
        # With count < failureLimit+1 a bad canary could never reach Failed; this is the least that can.
        self.count = self.failure_limit + 1
        metric["count"] = self.count
        query = metric["provider"]["prometheus"]["query"]
        metric["provider"]["prometheus"]["query"] = query.replace("[5m]", f"[{s.query_range_s}s]")
        self.changes.insert(
            0,
            f"pauses 5m/10m → {s.step_seconds:g}/{2 * s.step_seconds:g} s; analysis interval {self.seed_interval} → "
            f"{s.interval_s:g} s, count {self.count} (failureLimit+1), query range 5m → {s.query_range_s} s",
        )

    def _container(self, image: str, env: dict[str, str]) -> Obj:
        seed = self.rollout["spec"]["template"]["spec"]["containers"][0]
        return {
            "name": seed["name"],
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "ports": [{"name": "http", "containerPort": APP_PORT}],
            "env": [{"name": k, "value": v} for k, v in {"STARTUP_DELAY": STARTUP_DELAY, **env}.items()],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": APP_PORT}, "periodSeconds": 1},
        }

    def rollout_of(self, image: str, env: dict[str, str] | None = None, **spec: Any) -> Obj:
        doc = copy.deepcopy(self.rollout)
        pod = doc["spec"]["template"]["spec"]
        pod["containers"] = [self._container(image, env or {})]
        pod["terminationGracePeriodSeconds"] = 5
        doc["spec"].update(spec)
        return doc

    def services(self) -> list[Obj]:
        def service(name: str, annotations: dict[str, str]) -> Obj:
            return {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "namespace": NAMESPACE, "annotations": annotations},
                "spec": {
                    "selector": dict(self.rollout["spec"]["selector"]["matchLabels"]),
                    "ports": [{"name": "http", "port": 80, "targetPort": APP_PORT}],
                },
            }

        # Prometheus scrapes the pods behind the canary Service, labelled service="<canary Service>".
        return [service(self.stable_service, {}), service(self.canary_service, {"prometheus.io/scrape": "true"})]

    def first(self) -> list[Obj]:
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
        return [namespace, self.template, *self.services(), self.rollout_of(IMAGE_STABLE)]


# -- the funade side -------------------------------------------------------------------------


def _wall(iso: str | None) -> float | None:
    return None if not iso else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


class Server(FunadeServer):
    """A private funade server with its Prometheus (own home, free loopback ports)."""

    def __init__(self) -> None:
        super().__init__("funade-canary-", prometheus=True, down_timeout=120.0)
        # monotonic ↔ wall clock, to place the server's timestamps among the load's requests
        self.offset = time.time() - time.monotonic()

    def start(self, *args: str, timeout: float = 90.0) -> Obj:
        answer = super().start("--no-registry", "--prometheus-address", self.prometheus, *args, timeout=timeout)
        prometheus = answer.get("prometheus") or {}
        if not prometheus.get("running"):
            raise BenchError(f"the embedded Prometheus did not start: {prometheus.get('error', prometheus)}")
        return answer

    def apply(self, objects: list[Obj]) -> float:
        """POST /v1/apply; return the monotonic time just before the request."""
        t0 = time.monotonic()
        response = self.http.post("/v1/apply", json={"objects": objects, "namespace": NAMESPACE})
        if response.status_code >= 300:
            raise BenchError(f"apply: HTTP {response.status_code}: {response.text[:500]}")
        return t0

    def get(self, path: str, **params: str) -> Obj:
        response = self.http.get(path, params=params)
        if response.status_code != 200:
            raise BenchError(f"GET {path}: HTTP {response.status_code}: {response.text[:300]}")
        obj: Obj = response.json()
        return obj

    def status(self, name: str) -> Obj:
        return dict(self.get(f"/v1/objects/Rollout/{NAMESPACE}/{name}").get("status") or {})

    def local_port(self, service: str) -> int:
        svc = self.get(f"/v1/objects/Service/{NAMESPACE}/{service}")
        return int(svc["status"]["localTarget"]["ports"][0]["localPort"])

    def runs(self) -> list[Obj]:
        return list(self.get("/v1/objects/AnalysisRun", namespace=NAMESPACE)["items"])

    def events(self, name: str) -> list[Obj]:
        return list(self.get("/v1/events", namespace=NAMESPACE, kind="Rollout", name=name, limit="500")["items"])

    def mono(self, wall: float | None) -> float | None:
        return None if wall is None else wall - self.offset


# -- one attempt ------------------------------------------------------------------------------


@dataclass
class Snapshot:
    at: float  # monotonic
    phase: str
    step: int | None
    weight: int | None
    message: str
    pod_hash: str = ""


@dataclass
class Attempt:
    """One update of the Rollout under load, and what the bench saw of it."""

    label: str
    applied: float = 0.0  # monotonic
    settled: float = 0.0  # when the bench saw the final state (Healthy, or aborted)
    status: Obj = field(default_factory=dict)
    timeline: list[Snapshot] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    runs: list[Obj] = field(default_factory=list)
    events: list[Obj] = field(default_factory=list)

    def rel(self, t: float | None) -> float | None:
        return None if t is None else t - self.applied

    def timeline_json(self) -> list[Obj]:
        """Every change the bench saw, in seconds after the apply."""
        return [
            {"at_s": round(snap.at - self.applied, 3), "phase": snap.phase, "step": snap.step, "weight": snap.weight}
            for snap in self.timeline
        ]

    def step_times(self) -> list[tuple[int, float]]:
        """(step index, seconds after apply) at which the bench first saw each step."""
        seen: dict[int, float] = {}
        current = self.status.get("currentPodHash")
        for snap in self.timeline:
            if snap.step is not None and snap.step not in seen and snap.pod_hash == current:
                seen[snap.step] = snap.at - self.applied
        return sorted(seen.items())


class Bench:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.server = Server()
        self.manifests = Manifests(settings)
        self.port = 0
        self.result: Obj = {}

    def check(self) -> None:
        require_images(IMAGE_STABLE, IMAGE_GOOD, IMAGE_NEVER_READY)
        if shutil.which("prometheus") is None:
            raise BenchError("prometheus is missing: run `bash scripts/setup.sh` (Debian package prometheus)")

    def watch(self, what: str, done: Callable[[Obj], bool], timeout: float, timeline: list[Snapshot]) -> Obj:
        """Read the Rollout every POLL_S until ``done``; keep every change of phase, step, weight, message."""
        name = self.manifests.name
        deadline = time.monotonic() + timeout
        last: tuple[object, ...] | None = None
        while True:
            st = self.server.status(name)
            now = time.monotonic()
            weight = ((st.get("canary") or {}).get("weights") or {}).get("canary", {}).get("weight")
            key = (st.get("phase"), st.get("currentStepIndex"), weight, st.get("message"))
            if key != last:
                pod_hash = str(st.get("currentPodHash") or "")
                timeline.append(
                    Snapshot(now, str(key[0]), st.get("currentStepIndex"), weight, str(key[3] or ""), pod_hash)
                )
                last = key
            if done(st):
                return st
            if st.get("phase") == "Paused" and "Inconclusive" in str(st.get("message")):
                run_status = (st.get("canary") or {}).get("currentStepAnalysisRunStatus") or {}
                raise BenchError(f"{what}: the rollout paused on an inconclusive analysis: {run_status}")
            if now > deadline:
                raise BenchError(f"timed out after {timeout:g}s waiting for {what}; last status: {key}")
            time.sleep(POLL_S)

    def setup(self) -> None:
        s = self.server
        err.print(f"funade: private server on {s.address}, Prometheus on {s.prometheus} (home {s.home})")
        s.start()
        m = self.manifests
        s.apply(m.first())
        self.watch("v1 Healthy", lambda st: st.get("phase") == "Healthy", WAIT_TIMEOUT_S, [])
        deadline = time.monotonic() + WAIT_TIMEOUT_S
        while True:
            try:
                self.port = s.local_port(m.stable_service)
                if httpx.get(f"http://127.0.0.1:{self.port}/", timeout=2).headers.get("x-version", "").startswith("1"):
                    break
            except (BenchError, KeyError, IndexError, httpx.HTTPError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"the stable Service {m.stable_service} never answered")
            time.sleep(0.2)
        err.print(f"  v1 Healthy ({m.replicas} replicas); stable Service on 127.0.0.1:{self.port}")

    def attempt(self, label: str, rollout: Obj, done: Callable[[Obj, str], bool], timeout: float) -> Attempt:
        """Load, apply ``rollout``, watch until ``done(status, previous hash)``, a tail of load, collect."""
        s = self.server
        a = Attempt(label)
        before = s.status(self.manifests.name).get("currentPodHash", "")
        load = Load(self.port, paced(self.settings.rate))
        try:
            time.sleep(LEAD_S)
            a.applied = s.apply([rollout])
            a.status = self.watch(label, lambda st: done(st, before), timeout, a.timeline)
            a.settled = time.monotonic()
            time.sleep(TAIL_S)
            records = load.stop()
        finally:
            load.kill()
        a.requests = requests_of(records)
        a.runs = s.runs()
        a.events = s.events(self.manifests.name)
        return a

    # the three scenarios

    def good(self) -> Obj:
        m, s = self.manifests, self.settings
        schedule = sum(m.pauses) + m.analyses * (m.count - 1) * s.interval_s
        err.print(f"  good v2: {len(m.rollout['spec']['strategy']['canary']['steps'])} steps, ≥ {schedule:g} s")
        a = self.attempt(
            "v2 promoted",
            m.rollout_of(IMAGE_GOOD),
            lambda st, before: (
                st.get("phase") == "Healthy"
                and st.get("currentPodHash") not in ("", before)
                and st.get("stableRS") == st.get("currentPodHash")
            ),
            WAIT_TIMEOUT_S + 2 * schedule,
        )
        window = [r for r in a.requests if r.start >= a.applied - LEAD_S]
        during = [r for r in a.requests if a.applied <= r.start < a.settled]
        after = [r for r in a.requests if r.start >= a.settled + 1.0]
        steps = len(m.rollout["spec"]["strategy"]["canary"]["steps"])
        err.print(f"  v2 promoted in {a.settled - a.applied:.1f} s")
        return {
            "promoted": a.status.get("currentStepIndex") == steps,
            "steps": steps,
            "steps_seen": [{"step": i, "at_s": round(t, 2)} for i, t in a.step_times()],
            "timeline": a.timeline_json(),
            "total_s": round(a.settled - a.applied, 2),
            "schedule_s": schedule,
            "requests": len(window),
            "failed": sum(not r.ok for r in window),
            "failures": failure_kinds(window),
            "versions_during": versions_of(during),
            "versions_after": versions_of(after),
            "analysis_runs": [_run_summary(r) for r in a.runs],
        }

    def bad(self) -> Obj:
        m, s = self.manifests, self.settings
        rollout = m.rollout_of(IMAGE_GOOD, {"ERROR_RATE": "10", "VERSION": "3.0.0"})
        err.print("  bad v3 (ERROR_RATE=10)")
        a = self.attempt(
            "v3 aborted",
            rollout,
            lambda st, before: (
                st.get("currentPodHash") not in ("", before) and (bool(st.get("abort")) or _promoted(st))
            ),
            WAIT_TIMEOUT_S + 2 * (sum(m.pauses) + m.analyses * m.count * s.interval_s),
        )
        server = self.server
        st = a.status
        funade_status = st.get("funade") or {}
        aborted = server.mono(_wall(funade_status.get("abortedAt") or st.get("abortedAt")))
        event = next(
            (
                e
                for e in reversed(a.events)
                if e["reason"] == "RolloutAborted" and e["time"] - server.offset >= a.applied
            ),
            None,
        )
        event_at = server.mono(event["time"]) if event else None
        attempt = [r for r in a.requests if r.start >= a.applied]
        bad_answers = [r for r in attempt if r.version == 3 and r.outcome == HTTP_ERROR and r.status >= 500]
        first_bad = min((r.end for r in bad_answers), default=None)
        # 100 % stable from the end of the last request not answered OK by the stable version (v2)
        not_stable = [r for r in attempt if not (r.ok and r.version == 2)]
        stable_from = max((r.end for r in not_stable), default=a.applied)
        window = [r for r in attempt if r.start < stable_from]
        after = [r for r in attempt if r.start >= stable_from]
        mine = [r for r in a.runs if _hash_label(r) == st.get("currentPodHash")]
        failed_run = next((r for r in reversed(mine) if (r.get("status") or {}).get("phase") == "Failed"), None)
        run_started = server.mono(_wall(((failed_run or {}).get("status") or {}).get("startedAt")))
        if run_started is None and failed_run is not None:
            run_started = server.mono(_wall(failed_run["metadata"].get("creationTimestamp")))
        verdict = _verdict_at(failed_run)
        served_v3 = [r for r in window if r.version == 3]
        err.print(f"  v3 aborted {(aborted or a.settled) - a.applied:.1f} s after the apply: {st.get('message')}")
        return {
            "aborted": bool(st.get("abort")),
            "message": st.get("message"),
            "aborted_by_analysis": failed_run is not None,
            "aborted_at_step": _abort_step(a),
            "apply_to_abort_s": rounded(a.rel(aborted)),
            "first_5xx_s": rounded(a.rel(first_bad)),
            "first_5xx_to_abort_s": _between(first_bad, aborted),
            "analysis_start_to_abort_s": _between(run_started, aborted),
            "verdict_to_abort_s": _between(server.mono(verdict), aborted),
            "abort_event_vs_status_s": _between(aborted, event_at),
            "first_5xx_to_stable_s": _between(first_bad, stable_from),
            "abort_to_stable_s": _between(aborted, stable_from),
            "attempt_requests": len(window),
            "served_by_v3": len(served_v3),
            "failed_by_v3": sum(not r.ok for r in served_v3),
            "failed_other": sum(not r.ok for r in window if r.version != 3),
            "failures": failure_kinds(window),
            "blast_radius_percent": rounded(100 * sum(not r.ok for r in served_v3) / max(1, len(window)), 4),
            "v3_request_gap_s": rounded(_median_gap([r.start for r in served_v3])),
            "requests_after_stable": len(after),
            "versions_after_stable": versions_of(after),
            "analysis_run": _run_summary(failed_run) if failed_run else None,
            "analysis_runs": [_run_summary(r) for r in mine],
            "first_v3_answer_s": _between(a.applied, min((r.end for r in attempt if r.version == 3), default=None)),
            "steps_seen": [{"step": i, "at_s": round(t, 2)} for i, t in a.step_times()],
            "run_started_s": _between(a.applied, run_started),
            "measurements_s": [
                _between(a.applied, server.mono(_wall(m.get("finishedAt"))))
                for m in _run_summary(failed_run)["measurements"]
            ]
            if failed_run
            else [],
            "timeline": a.timeline_json(),
        }

    def never_ready(self) -> Obj:
        m, s = self.manifests, self.settings
        deadline = s.progress_deadline_s
        rollout = m.rollout_of(
            IMAGE_NEVER_READY, {"VERSION": "4.0.0"}, progressDeadlineSeconds=deadline, progressDeadlineAbort=True
        )
        err.print(f"  v4 never ready (progressDeadlineSeconds {deadline}, progressDeadlineAbort)")
        a = self.attempt(
            "v4 aborted",
            rollout,
            lambda st, before: bool(st.get("abort")) and st.get("currentPodHash") not in ("", before),
            WAIT_TIMEOUT_S + deadline,
        )
        st = a.status
        aborted = self.server.mono(_wall((st.get("funade") or {}).get("abortedAt") or st.get("abortedAt")))
        attempt = [r for r in a.requests if r.start >= a.applied]
        err.print(f"  v4 aborted {(aborted or a.settled) - a.applied:.1f} s after the apply: {st.get('message')}")
        return {
            "aborted": bool(st.get("abort")),
            "phase": st.get("phase"),
            "message": st.get("message"),
            "by_deadline": "progress deadline" in str(st.get("message")),
            "progress_deadline_s": deadline,
            "apply_to_abort_s": rounded(a.rel(aborted)),
            "requests": len(attempt),
            "failed": sum(not r.ok for r in attempt),
            "failures": failure_kinds(attempt),
            "versions": versions_of(attempt),
            "timeline": a.timeline_json(),
        }

    def execute(self, started: float) -> Obj:
        self.check()
        self.setup()
        good = self.good()
        bad = self.bad()
        never = self.never_ready()
        s, m = self.settings, self.manifests
        return {
            "machine": {**machine(docker=True), "prometheus": _prometheus_version()},
            "settings": {
                "rate_per_s": s.rate,
                "clients": CLIENTS,
                "request_timeout_s": REQUEST_TIMEOUT_S,
                "step_seconds": s.step_seconds,
                "interval_s": s.interval_s,
                "count": m.count,
                "failure_limit": m.failure_limit,
                "query_range_s": s.query_range_s,
                "progress_deadline_s": s.progress_deadline_s,
                "replicas": m.replicas,
                "changes_to_the_seed": m.changes,
            },
            "good": good,
            "bad": bad,
            "never_ready": never,
            "peers": peers(s, m),
            "other_load": other_load(self.server.instance),
            "total_seconds": round(time.monotonic() - started, 1),
        }

    def cleanup(self) -> list[str]:
        return self.server.cleanup()


def _median_gap(times: list[float]) -> float | None:
    """The median time between consecutive instants: how finely the load samples a route."""
    gaps = sorted(b - a for a, b in itertools.pairwise(times))
    return gaps[len(gaps) // 2] if gaps else None


def _promoted(st: Obj) -> bool:
    return st.get("phase") == "Healthy" and st.get("stableRS") == st.get("currentPodHash")


def _between(start: float | None, end: float | None) -> float | None:
    """``end - start`` in seconds, rounded; None when either is unknown."""
    return None if start is None or end is None else round(end - start, 3)


def _abort_step(a: Attempt) -> int | None:
    """The step the rollout was at just before it aborted."""
    steps = [snap.step for snap in a.timeline if snap.at >= a.applied and snap.phase != "Degraded"]
    return steps[-1] if steps else None


def _verdict_at(run: Obj | None) -> float | None:
    """Wall time of the measurement that made the run Failed (the last one finished)."""
    if run is None:
        return None
    finished = [
        _wall(m.get("finishedAt"))
        for result in (run.get("status") or {}).get("metricResults") or []
        for m in result.get("measurements") or []
    ]
    present = [f for f in finished if f is not None]
    return max(present) if present else None


def _hash_label(run: Obj) -> str | None:
    return (run["metadata"].get("labels") or {}).get("rollouts-pod-template-hash")


def _run_summary(run: Obj) -> Obj:
    status = run.get("status") or {}
    results = status.get("metricResults") or []
    return {
        "name": run["metadata"]["name"],
        "created": run["metadata"].get("creationTimestamp"),
        "startedAt": status.get("startedAt"),
        "phase": status.get("phase"),
        "message": status.get("message"),
        "measurements": [
            {
                "phase": m.get("phase"),
                "value": m.get("value"),
                "startedAt": m.get("startedAt"),
                "finishedAt": m.get("finishedAt"),
            }
            for result in results
            for m in result.get("measurements") or []
        ],
    }


def peers(s: Settings, m: Manifests) -> Obj:
    """Argo Rollouts' and Flagger's documented timings with the bench's interval and deadline."""
    first_pause = m.pauses[0] if m.pauses else 0.0
    return {
        "argo_detection_s": s.interval_s * (m.failure_limit + 1),
        "flagger_detection_s": s.interval_s * FLAGGER_THRESHOLD,
        "flagger_detection_floor_s": max(s.interval_s, FLAGGER_MIN_INTERVAL_S) * FLAGGER_THRESHOLD,
        # Argo runs the same steps: the canary takes traffic during the pause before the analysis.
        "argo_first_5xx_to_abort_s": first_pause + s.interval_s * (m.failure_limit + 1),
        "argo_promotion_floor_s": sum(m.pauses) + m.analyses * (m.count - 1) * s.interval_s,
        "deadline_s": float(s.progress_deadline_s),
    }


def _prometheus_version() -> str:
    with contextlib.suppress(BenchError):
        out = run(["prometheus", "--version"])
        return out.split("\n")[0].split("version ")[-1].split(" ")[0]
    return "?"


# -- output ---------------------------------------------------------------------------------------


def _count(n: int, total: int) -> str:
    return f"{n:,}" if not n else f"{n:,} ({100 * n / max(1, total):.2f} %)"


def table(result: Obj) -> Table:
    s, g, b, n, p = result["settings"], result["good"], result["bad"], result["never_ready"], result["peers"]
    t = Table(
        title=(
            f"funade canary benchmark (the seed's rollout, {s['replicas']} replicas, {s['rate_per_s']:g} req/s; "
            f"analysis every {s['interval_s']:g} s, failureLimit {s['failure_limit']}, count {s['count']})"
        ),
        caption=(
            "Argo Rollouts: interval × (failureLimit+1); Flagger: interval × threshold (threshold "
            f"{FLAGGER_THRESHOLD}, its default; with Flagger's {FLAGGER_MIN_INTERVAL_S:g} s minimum interval: "
            f"{p['flagger_detection_floor_s']:g} s); ratio = funade / peer; a failure is non-2xx, reset, refused, "
            f"remote disconnect or no answer in {s['request_timeout_s']:g} s"
        ),
    )
    t.add_column("figure")
    t.add_column("funade (measured)", justify="right")
    t.add_column("Argo Rollouts (formula)", justify="right")
    t.add_column("ratio", justify="right")
    t.add_column("Flagger (formula)", justify="right")
    t.add_column("ratio", justify="right")

    t.add_row("good v2: 5 → 25 → 50 → 100 %", "", "", "", "", "")
    t.add_row(
        "  promoted through every step",
        f"{'yes' if g['promoted'] else 'NO'} ({g['steps']}/{g['steps']} steps)", "", "", "", "",
    )  # fmt: skip
    t.add_row(
        "  apply → Healthy (pauses + analyses)", fmt_seconds(g["total_s"]),
        f"≥ {p['argo_promotion_floor_s']:.2f} s", fmt_ratio(g["total_s"], p["argo_promotion_floor_s"]), "—", "",
    )  # fmt: skip
    t.add_row("  requests", f"{g['requests']:,}", "", "", "", "")
    t.add_row("  failed", _count(g["failed"], g["requests"]), "", "", "", "")
    t.add_section()
    t.add_row("bad v3: 10 % of requests answer 500", "", "", "", "", "")
    by = "analysis" if b["aborted_by_analysis"] else str(b["message"]) if b["aborted"] else "NOT ABORTED: promoted"
    t.add_row("  aborted by", by, "", "", "", "")
    t.add_row(
        "  detection: analysis start → abort", fmt_seconds(b["analysis_start_to_abort_s"]),
        fmt_seconds(p["argo_detection_s"]), fmt_ratio(b["analysis_start_to_abort_s"], p["argo_detection_s"]),
        fmt_seconds(p["flagger_detection_s"]), fmt_ratio(b["analysis_start_to_abort_s"], p["flagger_detection_s"]),
    )  # fmt: skip
    t.add_row(
        "  first 5xx → abort (pause included)", fmt_seconds(b["first_5xx_to_abort_s"]),
        fmt_seconds(p["argo_first_5xx_to_abort_s"]),
        fmt_ratio(b["first_5xx_to_abort_s"], p["argo_first_5xx_to_abort_s"]),
        fmt_seconds(p["flagger_detection_s"]), fmt_ratio(b["first_5xx_to_abort_s"], p["flagger_detection_s"]),
    )  # fmt: skip
    to_stable = b["abort_to_stable_s"]
    shown = fmt_seconds(to_stable) if to_stable is None or to_stable >= 0 else f"0 (−{-to_stable:.2f} s)"
    t.add_row("  abort → 100 % stable", shown, "", "", "", "")
    t.add_row("  first 5xx → 100 % stable", fmt_seconds(b["first_5xx_to_stable_s"]), "", "", "", "")
    t.add_row("  requests in the attempt", f"{b['attempt_requests']:,}", "", "", "", "")
    t.add_row("  served by v3", _count(b["served_by_v3"], b["attempt_requests"]), "", "", "", "")
    t.add_row(
        "  blast radius (v3 failed / all)",
        f"{b['failed_by_v3']:,} ({b['blast_radius_percent']:.3f} %)", "", "", "", "",
    )  # fmt: skip
    t.add_row("  failed, not by v3", f"{b['failed_other']:,}", "", "", "", "")
    t.add_section()
    t.add_row(f"v4 never ready, progressDeadlineSeconds {n['progress_deadline_s']}", "", "", "", "", "")
    t.add_row(
        "  apply → abort", fmt_seconds(n["apply_to_abort_s"]),
        fmt_seconds(p["deadline_s"]), fmt_ratio(n["apply_to_abort_s"], p["deadline_s"]),
        fmt_seconds(p["deadline_s"]), fmt_ratio(n["apply_to_abort_s"], p["deadline_s"]),
    )  # fmt: skip
    t.add_row("  requests / failed", f"{n['requests']:,} / {n['failed']:,}", "", "", "", "")
    return t


def notes(result: Obj) -> list[str]:
    g, b, n, s = result["good"], result["bad"], result["never_ready"], result["settings"]
    steps = ", ".join(f"{x['step']}@{x['at_s']:g}s" for x in g["steps_seen"])
    lines = [
        "changes to the seed: " + "; ".join(s["changes_to_the_seed"]),
        f"v2 steps seen (index@seconds after apply): {steps}; served during the update {g['versions_during']}, "
        f"after {g['versions_after']}",
    ]
    if g["failures"]:
        lines.append(f"[yellow]v2 failures: {g['failures']}[/yellow]")
    run_ = b.get("analysis_run") or {}
    values = ", ".join(
        f"{v[0]:.3f}" if isinstance(v := m["value"], list) and v and isinstance(v[0], float) else json.dumps(v)
        for m in run_.get("measurements", [])
    )
    lines.append(
        f"v3: {b['message']}; run {run_.get('name')}: {values or '—'}; after 100 % stable: "
        f"{b['requests_after_stable']:,} requests {b['versions_after_stable']}"
    )
    seen = {x["step"]: x["at_s"] for x in b["steps_seen"]}

    def at(value: float | None) -> str:
        return "—" if value is None else f"{value:.2f}"

    lines.append(
        f"v3 timeline, s after the apply: first v3 answer {at(b['first_v3_answer_s'])}, first 5xx "
        f"{at(b['first_5xx_s'])}; step 1 (pause) seen {at(seen.get(1))}, step 2 (analysis) seen {at(seen.get(2))}; "
        f"run started {at(b['run_started_s'])}, measurements {' '.join(at(x) for x in b['measurements_s'])}; "
        f"aborted {at(b['apply_to_abort_s'])} (last measurement → abort {fmt_seconds(b['verdict_to_abort_s'])}); "
        f"v3 got a request every {fmt_seconds(b['v3_request_gap_s'])}"
    )
    if b["failures"]:
        lines.append(f"v3 attempt failures by kind: {b['failures']}")
    lines.append(f"v4: {n['phase']}: {n['message']}; answered by {n['versions']}")
    if n["failures"]:
        lines.append(f"[yellow]v4 attempt failures: {n['failures']}[/yellow]")
    return lines + noise_notes(result["other_load"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--step-seconds", type=float, default=5.0, help="the seed's 5m pauses become this (10m: twice); default 5"
    )
    parser.add_argument("--interval", type=float, default=2.0, help="analysis interval in seconds (default 2)")
    parser.add_argument("--progress-deadline", type=int, default=10, help="v4's progressDeadlineSeconds (default 10)")
    parser.add_argument("--rate", type=float, default=RATE, help=f"requests per second (default {RATE:g})")
    parser.add_argument(
        "--seed-query", action="store_true", help="keep the query's rate() range at the seed's 5m (not scaled)"
    )
    parser.add_argument("-o", "--output", choices=("table", "json"), default="table")
    parser.add_argument("--json", action="store_true", help="the same as -o json")
    args = parser.parse_args(argv)
    if args.step_seconds < 3 or args.interval < 1 or args.progress_deadline < 1 or args.rate <= 0:
        # Below 3 s the canary's first series may not have two scrapes when its analysis starts.
        parser.error("--step-seconds must be at least 3, --interval at least 1, --progress-deadline at least 1")
    if not FUNADE.exists():
        err.print(f"[red]{FUNADE} not found: run `make setup` first[/red]")
        return 2
    settings = Settings(args.step_seconds, args.interval, args.progress_deadline, args.rate, args.seed_query)
    started = time.monotonic()
    bench = Bench(settings)
    outcome, code = guarded(lambda: bench.execute(started), bench.cleanup, (BenchError, httpx.HTTPError), err)
    if outcome is None:
        return code
    total = f"total {outcome['total_seconds']:.0f} s"
    report(outcome, [table(outcome), *notes(outcome), total], as_json=args.json or args.output == "json")
    ok = outcome["good"]["promoted"] and outcome["bad"]["aborted"] and outcome["never_ready"]["aborted"]
    return code if ok else 1


if __name__ == "__main__":
    sys.exit(main())
