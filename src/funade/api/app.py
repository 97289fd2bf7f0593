"""The HTTP API the CLI (and any other client) talks to.

JSON in, JSON out; errors are ``{"error": message}`` with a meaningful status code.
Routes are thin: they call the engine's use cases and read the controllers' live views.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

import funade
from funade.adapters import kustomize, notify
from funade.adapters.docker import DockerClient
from funade.adapters.gitsource import GitSource
from funade.adapters.local import ports
from funade.adapters.local.runtime import ContainerRun
from funade.adapters.registry.client import RegistryClient, RegistryError
from funade.adapters.store.sqlite import SqliteStore
from funade.api.apps import AppsApi
from funade.controller.apps import AppController
from funade.controller.manager import Manager
from funade.controller.scans import ScanController
from funade.core import objects, oci, registryevents, services
from funade.core.ports import ACTOR_HEADER, AuditEntry, Event, ObjectKey
from funade.engine import gate, gitops, rollouts, workloads
from funade.engine.render import Renderer

__all__ = ["create_app"]

Obj = dict[str, Any]
NOT_RUNNABLE = "not runnable on the local target"


log = logging.getLogger(__name__)


def _targets(home: Path) -> dict[str, str]:
    """``$FUNADE_HOME/targets.yaml`` ``servers: {URL or cluster name: local}``: Argo CD's registered clusters."""
    path = home / "targets.yaml"
    try:
        loaded = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, yaml.YAMLError) as exc:
        log.warning("%s: %s (no destination but in-cluster is known until it is fixed)", path, exc)
        return {}
    servers = (loaded or {}).get("servers") if isinstance(loaded, dict) else None
    return {str(k).rstrip("/"): str(v) for k, v in servers.items()} if isinstance(servers, dict) else {}


def _actor(request: Request) -> str:
    """Who sent the request, as the CLI says (``user@host``); printable and short, for the audit log."""
    claimed = "".join(c for c in request.headers.get(ACTOR_HEADER, "") if c.isprintable())[:120].strip()
    return claimed or "unknown"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class Api:
    """Route handlers over one store and one controller manager."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.build = funade.build_id()  # the code this server runs, fixed at its start
        self.store = SqliteStore(home / "funade.db")
        self.docker = DockerClient()
        self.manager = Manager(self.store, self.docker, home)
        self.workloads = workloads.Workloads(self.store, port_free=ports.loopback_port_free)
        self.scans = ScanController(self.store, home)
        self.rollouts = rollouts.Rollouts(self.store)
        source = GitSource(home / "git")
        self.gitops_apps = gitops.Apps(
            self.store,
            source,
            Renderer(source, kustomize=kustomize.render),
            gate=self._gitops_gate,
            targets=lambda: _targets(home),
        )
        try:
            services = notify.load_services(home)
        except notify.ConfigError as exc:
            log.warning("notifications are off: %s", exc)
            services = {}
        self.notifier = notify.Notifier(services)
        self.gitops = AppController(self.store, self.gitops_apps, source, sender=self.notifier)
        self._gitops_wake = asyncio.Event()
        self._gitops_task: asyncio.Task[None] | None = None
        self.apps = AppsApi(self.store, self.gitops_apps, self.gitops, self._gitops_wake, home)

    async def start(self) -> None:
        self.workloads.ensure_default_namespace()
        await self.manager.start()
        await self.scans.start()
        self._gitops_task = asyncio.create_task(self.gitops.run(self._gitops_wake), name="gitops")

    async def stop(self) -> None:
        if self._gitops_task is not None:
            self._gitops_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._gitops_task
        await self.gitops.stop()
        await self.notifier.aclose()
        await self.scans.stop()
        await self.manager.stop()
        await self.docker.close()
        self.store.close()

    # -- helpers --------------------------------------------------------------------

    def _kind(self, kind: str) -> str:
        return workloads.normalize_kind(kind, self.store.kinds())

    @staticmethod
    async def _json(request: Request) -> Obj:
        try:
            body = await request.json()
        except ValueError as exc:
            raise workloads.WorkloadError(f"request body is not JSON: {exc}", 400) from exc
        if not isinstance(body, dict):
            raise workloads.WorkloadError("request body must be a JSON object", 400)
        return body

    def _decorate(self, obj: Obj) -> Obj:
        if obj.get("kind") not in objects.RUNNABLE_KINDS:
            obj = dict(obj, status={**(obj.get("status") or {}), "localTarget": NOT_RUNNABLE})
        elif obj.get("kind") == "Service":
            local = services.local_ports(obj)
            taken = self.manager.services.taken
            ports = []
            for p in (obj.get("spec") or {}).get("ports") or []:
                port = {**p, "localPort": local.get(f"{p['port']}/{p.get('protocol', 'TCP')}")}
                if port["localPort"] in taken:
                    port["error"] = f"127.0.0.1:{port['localPort']} is taken by another program"
                ports.append(port)
            status = {"address": "127.0.0.1", "ports": ports}
            if self.manager.services.error:
                status["error"] = self.manager.services.error
            obj = dict(obj, status={"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}, "localTarget": status})
        return obj

    def _endpoints(self, namespace: str | None, name: str | None = None) -> list[Obj]:
        found = []
        for spec, _ in self.manager.services.specs():
            if (namespace is None or spec.namespace == namespace) and (name is None or spec.name == name):
                stored = self.store.get(ObjectKey("Service", spec.namespace, spec.name)) or {}
                created = (stored.get("metadata") or {}).get("creationTimestamp", "")
                views = services.endpoints(spec, self.manager.pod_views(spec.namespace))
                found.append(services.endpoints_object(spec, views, created))
        return found

    def _items(self, kind: str, namespace: str | None, selector: str | None) -> list[Obj]:
        if kind == "Endpoints":
            return self._endpoints(namespace)
        if kind == "Pod":
            items = self.manager.pod_views(namespace)
            known = {p["metadata"]["uid"] for p in items}
            # Bare pods applied but not yet started are shown as Pending.
            for pod in self.store.list_objects("Pod", namespace):
                if pod["metadata"]["uid"] not in known:
                    items.append(dict(pod, status={"phase": "Pending"}))
            return workloads.labelled(items, selector)
        return [self._decorate(o) for o in self.workloads.select(kind, namespace, selector)]

    # -- routes ---------------------------------------------------------------------

    async def _scan_of(self, image: str) -> Obj | None:
        """The server's scan result for an image in a loopback registry, else None."""
        try:
            ref = oci.parse_reference(image)
        except ValueError:
            return None
        host = ref.registry.rpartition(":")[0] or ref.registry
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            return None  # funade scans the pushes of its own registries only
        try:
            async with RegistryClient(ref.registry, timeout=5.0, retries=0) as client:
                found = await client.head_manifest(ref.repository, ref.reference)
        except RegistryError:
            return None
        if found is None:
            return None
        return self.store.scan_result(ref.registry, ref.repository, found.digest)

    async def _gate(self, items: list[Obj], namespace: str, override: str | None, actor: str) -> list[AuditEntry]:
        """Refuse the apply when a namespace's gate says no (nothing is stored).

        Returns the audit entries of what was let through by ``--force-gate`` (``override``) or an
        object's own ``funade.io/gate-override`` annotation; the caller records them once applied.
        """
        by_namespace: dict[str, list[Obj]] = {}
        batch = {o["metadata"]["name"]: o for o in items if isinstance(o, dict) and o.get("kind") == "Namespace"}
        for obj in items:
            if isinstance(obj, dict) and obj.get("kind") not in workloads.CLUSTER_SCOPED:
                ns = str((obj.get("metadata") or {}).get("namespace") or namespace)
                by_namespace.setdefault(ns, []).append(obj)
        entries: list[AuditEntry] = []
        for ns, objs in by_namespace.items():
            try:
                rules = gate.Gate.of(batch.get(ns) or self.store.get(ObjectKey("Namespace", "", ns)), ns)
            except gate.GateError as exc:
                raise workloads.WorkloadError(str(exc), 422) from exc
            if not rules.active:
                continue
            images = sorted({i for obj in objs for i in gate.images_of(obj)})
            scans = {image: await self._scan_of(image) for image in images} if rules.severity else {}
            found = gate.refusals(rules, objs, scans)
            blocked = [r for r in found if r.override is None and override is None]
            if blocked:
                raise workloads.WorkloadError(
                    f"refused by the gate of namespace {ns} (nothing was applied):\n  - "
                    + "\n  - ".join(f"{r.obj}: {r.message}" for r in blocked)
                    + f"\n(apply --force-gate REASON, or annotate the object {gate.OVERRIDE_ANNOTATION}: REASON, "
                    "to override; the override is recorded in the audit log)",
                    422,
                )
            by_reason: dict[str, list[gate.Refusal]] = {}
            for refusal in found:
                reason = (
                    f"{gate.OVERRIDE_ANNOTATION} on {refusal.obj}: {refusal.override}"
                    if refusal.override
                    else f"--force-gate: {override}"
                )
                by_reason.setdefault(reason, []).append(refusal)
            entries += [
                AuditEntry(
                    time.time(),
                    actor,
                    "gate-override",
                    ns,
                    reason,
                    tuple(dict.fromkeys(r.obj for r in refusals)),
                    tuple(r.message for r in refusals),
                )
                for reason, refusals in by_reason.items()
            ]
        return entries

    async def _gitops_gate(self, items: list[Obj], namespace: str, actor: str) -> None:
        """The gate of a GitOps sync: overrides can only come from annotations in git; recorded at once."""
        for entry in await self._gate(items, namespace, None, actor):
            self._audit(entry)

    def _audit(self, entry: AuditEntry) -> None:
        """Keep an override in the audit log, and say so in the namespace's events."""
        self.store.add_audit(entry)
        self.store.add_event(
            Event(
                entry.time,
                entry.namespace,
                "Namespace",
                entry.namespace,
                "Warning",
                "GateOverridden",
                f"{entry.actor} applied {', '.join(entry.objects)} despite the gate ({entry.reason}): "
                + "; ".join(entry.details),
            )
        )

    async def record_action(self, request: Request, response: Response, action: str) -> None:
        """Keep a person's successful change in the audit log: who, what, on which objects, with which options.

        An apply is kept when it changed something (not a dry run); ``rollout`` takes its verb
        (``rollout undo``, ``rollout promote`` …). The options are the request's plain values
        (``replicas=5``, ``toRevision=1``, ``prune=True``).
        """
        params = request.path_params
        body: Obj = {}
        if request.method == "POST":
            with contextlib.suppress(ValueError):
                loaded = await request.json()
                body = loaded if isinstance(loaded, dict) else {}
        if body.get("dryRun"):
            return
        namespace = str(params.get("namespace") or body.get("namespace") or "")
        objects_: tuple[str, ...] = ()
        if action == "apply":
            answer = json.loads(bytes(response.body))
            changed = [r for r in answer.get("results") or [] if not str(r.get("action", "")).startswith("unchanged")]
            if not changed:
                return
            objects_ = tuple(f"{r['kind']}/{r['name']} {r['action']}" for r in changed)
            namespace = namespace or str(changed[0].get("namespace") or "default")
        elif "kind" in params:
            objects_ = (f"{self._kind(params['kind'])}/{params['name']}",)
        elif "verb" in params:
            action = f"rollout {params['verb']}"
            objects_ = (f"{'Rollout' if '/rollouts/' in request.url.path else 'Deployment'}/{params['name']}",)
        elif "name" in params:
            objects_ = (f"Application/{params['name']}",)
        options = tuple(
            f"{k}={v}"
            for k, v in body.items()
            if isinstance(v, str | int | float | bool) and k not in ("namespace", "forceGate", "dryRun")
        )
        reason = str(body.get("forceGate") or "")
        self.store.add_audit(AuditEntry(time.time(), _actor(request), action, namespace, reason, objects_, options))

    async def healthz(self, request: Request) -> Response:
        if not self.manager.synced.is_set():
            return JSONResponse({"ok": False, "reason": "first reconcile pass not finished"}, status_code=503)
        return JSONResponse({"ok": True})

    async def status(self, request: Request) -> Response:
        counts = {kind: len(self.store.list_objects(kind)) for kind in self.store.kinds()}
        counts["Pod"] = len(self.manager.pod_workers())
        return JSONResponse(
            {
                "version": funade.__version__,
                "build": self.build,
                "pid": os.getpid(),
                "home": str(self.home),
                "uptimeSeconds": round(time.time() - self.manager.started_at, 1),
                "docker": {"ok": self.manager.docker_error is None, "error": self.manager.docker_error},
                "reconcilePasses": self.manager.passes,
                "objects": counts,
                "proxy": {
                    "running": await self.manager.services.proxy.alive(),
                    "listeners": len(self.manager.services.applied.listeners) if self.manager.services.applied else 0,
                    "error": self.manager.services.error,
                },
            }
        )

    async def apply(self, request: Request) -> Response:
        body = await self._json(request)
        items = body.get("objects")
        if not isinstance(items, list):
            raise workloads.WorkloadError('"objects" must be a list', 400)
        namespace = str(body.get("namespace") or "default")
        override = body.get("forceGate")
        if override is not None and (not isinstance(override, str) or not override.strip()):
            raise workloads.WorkloadError('"forceGate" needs a reason', 400)
        dry_run = bool(body.get("dryRun"))
        overridden = await self._gate(items, namespace, override, _actor(request))
        results = self.workloads.apply(items, namespace, dry_run)
        if not dry_run and any(r.action != "unchanged" for r in results):  # an override that changed something
            for entry in overridden:
                self._audit(entry)
        if any(r.key.kind in ("ConfigMap", "Secret") and r.action != "unchanged" for r in results):
            self.manager.kubelet.retry_config_errors()
        self.manager.poke()
        warnings = (
            []
            if self.manager.docker_error is None
            else [f"objects are stored, but no pod can start: {self.manager.docker_error}"]
        )
        return JSONResponse(
            {
                "warnings": warnings,
                "results": [
                    {
                        "kind": r.key.kind,
                        "namespace": r.key.namespace,
                        "name": r.key.name,
                        "action": r.action,
                        "runnable": r.runnable,
                        "warnings": list(r.warnings),
                    }
                    for r in results
                ],
            }
        )

    async def list_objects(self, request: Request) -> Response:
        kind = self._kind(request.path_params["kind"])
        q = request.query_params
        namespace = None if q.get("allNamespaces") == "true" else q.get("namespace", "default")
        return JSONResponse({"kind": kind, "items": self._items(kind, namespace, q.get("selector"))})

    async def get_object(self, request: Request) -> Response:
        kind = self._kind(request.path_params["kind"])
        ns = request.path_params["namespace"]
        name = request.path_params["name"]
        ns = "" if kind in workloads.CLUSTER_SCOPED else ns
        if kind == "Pod":
            worker = self.manager.find_pod(ns, name)
            if worker is not None:
                return JSONResponse(worker.view())
        if kind == "Endpoints":
            found = self._endpoints(ns, name)
            if found:
                return JSONResponse(found[0])
        obj = self.store.get(ObjectKey(kind, ns, name))
        if obj is None:
            return _error(f'{kind.lower()}s "{name}" not found' + (f" in namespace {ns}" if ns else ""), 404)
        return JSONResponse(self._decorate(obj))

    async def delete_object(self, request: Request) -> Response:
        kind = self._kind(request.path_params["kind"])
        ns = request.path_params["namespace"]
        name = request.path_params["name"]
        ns = "" if kind in workloads.CLUSTER_SCOPED else ns
        grace = request.query_params.get("gracePeriod")
        if kind == "Pod":
            worker = self.manager.find_pod(ns, name)
            stored = self.store.get(ObjectKey("Pod", ns, name))
            if worker is None and stored is None:
                return _error(f'pods "{name}" not found in namespace {ns}', 404)
            if stored is not None:
                self.store.delete(ObjectKey("Pod", ns, name))
            if worker is not None:
                self.manager.kubelet.delete_pod(worker.uid, float(grace) if grace else None)
                if request.query_params.get("wait") == "true":
                    await asyncio.wait_for(worker.gone.wait(), timeout=600)
            self.manager.poke()
            return JSONResponse({"deleted": [f"pod/{name}"]})
        deleted = self.workloads.delete(ObjectKey(kind, ns, name))
        self.manager.poke()
        return JSONResponse({"deleted": [str(k) for k in deleted]})

    async def audit(self, request: Request) -> Response:
        q = request.query_params
        namespace = None if q.get("allNamespaces") == "true" else q.get("namespace")
        entries = self.store.audit(namespace, int(q.get("limit", "200")))
        return JSONResponse(
            {"items": [{**e.__dict__, "objects": list(e.objects), "details": list(e.details)} for e in entries]}
        )

    async def events(self, request: Request) -> Response:
        q = request.query_params
        namespace = None if q.get("allNamespaces") == "true" else q.get("namespace", "default")
        kind = self._kind(q["kind"]) if q.get("kind") else None
        events = self.store.events(namespace, kind, q.get("name"), int(q.get("limit", "200")))
        return JSONResponse({"items": [e.__dict__ for e in events]})

    async def scale(self, request: Request) -> Response:
        body = await self._json(request)
        kind = self._kind(request.path_params["kind"])
        key = ObjectKey(kind, request.path_params["namespace"], request.path_params["name"])
        replicas = body.get("replicas")
        if not isinstance(replicas, int):
            raise workloads.WorkloadError('"replicas" must be an integer', 400)
        obj = self.workloads.scale(key, replicas)
        self.manager.poke()
        return JSONResponse(obj)

    async def rollout(self, request: Request) -> Response:
        key = ObjectKey("Deployment", request.path_params["namespace"], request.path_params["name"])
        verb = request.path_params["verb"]
        if verb == "history":
            return JSONResponse({"items": self.workloads.history(key)})
        body = await self._json(request) if request.method == "POST" else {}
        if verb == "undo":
            obj, revision = self.workloads.undo(key, body.get("toRevision"))
            self.manager.poke()
            return JSONResponse({"object": obj, "revision": revision})
        if verb == "restart":
            obj = self.workloads.restart(key)
        elif verb in ("pause", "resume"):
            obj = self.workloads.set_paused(key, verb == "pause")
        else:
            return _error(f"unknown rollout verb {verb!r}", 404)
        self.manager.poke()
        return JSONResponse({"object": obj})

    async def argo_rollout(self, request: Request) -> Response:
        """`funade rollout get|promote|abort|retry|undo` on an Argo Rollout."""
        ns, name, verb = (request.path_params[k] for k in ("namespace", "name", "verb"))
        body = await self._json(request) if request.method == "POST" else {}
        try:
            if verb == "view" and request.method == "GET":
                return JSONResponse(self.rollouts.view(ns, name, self.manager.pod_views(ns)))
            if request.method != "POST":
                return _error(f"{verb}: use POST", 405)
            if verb == "promote":
                obj = self.rollouts.promote(ns, name, full=bool(body.get("full")))
            elif verb == "abort":
                obj = self.rollouts.abort(ns, name)
            elif verb == "retry":
                obj = self.rollouts.retry(ns, name)
            elif verb == "undo":
                obj, revision = self.rollouts.undo(ns, name, body.get("toRevision"))
                self.manager.poke()
                return JSONResponse({"object": obj, "revision": revision})
            else:
                return _error(f"unknown rollout verb {verb!r}", 404)
        except rollouts.RolloutOpError as exc:
            return _error(str(exc), exc.status)
        self.manager.poke()
        return JSONResponse({"object": obj})

    async def _runs_of(self, request: Request) -> tuple[list[ContainerRun], str]:
        """The runs of the container a request names (``?container=``; the only one by default)."""
        ns, name = request.path_params["namespace"], request.path_params["name"]
        worker = self.manager.find_pod(ns, name)
        if worker is None:
            raise workloads.WorkloadError(f'pods "{name}" not found in namespace {ns}', 404)
        containers = [c["name"] for c in worker.pod["spec"]["containers"]]
        inits = [c["name"] for c in worker.pod["spec"].get("initContainers") or []]
        container = request.query_params.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            raise workloads.WorkloadError(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]", 400
            )
        if container not in containers + inits:
            raise workloads.WorkloadError(f"container {container} is not valid for pod {name}", 400)
        return [r for r in await self.manager.runtime.runs(worker.uid) if r.name == container], container

    async def exec_target(self, request: Request) -> Response:
        """The Docker container a `funade exec` runs in: the container's current run, if running."""
        runs, container = await self._runs_of(request)
        name = request.path_params["name"]
        if not runs or not runs[-1].info.state.running:
            raise workloads.WorkloadError(f'container "{container}" in pod "{name}" is not running', 409)
        return JSONResponse({"containerID": runs[-1].id, "container": container})

    async def logs(self, request: Request) -> Response:
        runs, container = await self._runs_of(request)
        name = request.path_params["name"]
        q = request.query_params
        if q.get("previous") == "true":
            runs = runs[:-1]
            if not runs:
                return _error(f'previous terminated container "{container}" in pod "{name}" not found', 400)
        if not runs:
            return _error(f'container "{container}" in pod "{name}" is waiting to start', 400)
        run = runs[-1]
        follow = q.get("follow") == "true"
        tail = int(q["tail"]) if q.get("tail") not in (None, "", "-1") else None

        async def lines() -> AsyncIterator[bytes]:
            async for line in self.manager.runtime.logs(run.id, follow=follow, tail=tail):
                yield (line.text + "\n").encode()

        return StreamingResponse(lines(), media_type="text/plain")

    # -- the registry's notifications and what the lifecycle needs -------------------

    async def registry_events(self, request: Request) -> Response:
        registry = request.query_params.get("registry")
        if not registry:
            return _error('the notification URL needs "?registry=HOST:PORT"', 400)
        try:
            events = registryevents.parse_envelope(await request.json(), registry)
        except ValueError as exc:  # EventError or a body that is not JSON
            return _error(f"registry notification: {exc}", 400)
        new = self.store.add_image_events(events)
        queued = self.scans.pushed(events)
        return JSONResponse({"received": len(events), "new": new, "scansQueued": queued})

    async def scans_refresh(self, request: Request) -> Response:
        self.scans.refresh()
        return JSONResponse({"refreshing": True})

    async def scan_result(self, request: Request) -> Response:
        q = request.query_params
        registry, repository, digest = q.get("registry"), q.get("repository"), q.get("digest")
        if not (registry and repository and digest):
            return _error('"registry", "repository" and "digest" are required', 400)
        result = self.store.scan_result(registry, repository, digest)
        if result is None:
            return _error(f"no scan result for {registry}/{repository}@{digest}", 404)
        return JSONResponse(result)

    async def registry_history(self, request: Request) -> Response:
        q = request.query_params
        if not q.get("registry"):
            return _error('"registry" is required', 400)
        history = registryevents.history(self.store.image_events(q["registry"], q.get("repository")))
        return JSONResponse(
            {
                "items": [
                    {
                        "repository": h.repository,
                        "digest": h.digest,
                        "pushedAt": h.pushed_at.isoformat(),
                        "lastPulledAt": h.last_pulled_at.isoformat() if h.last_pulled_at else None,
                        "tags": list(h.tags_pushed),
                    }
                    for h in sorted(history.values(), key=lambda h: (h.repository, h.pushed_at))
                ]
            }
        )

    async def images_in_use(self, request: Request) -> Response:
        """The image of every container of every pod, with the Engine's image id when it runs."""
        items = []
        for pod in self.manager.pod_views(None):
            meta = pod["metadata"]
            statuses = {c["name"]: c for c in (pod.get("status") or {}).get("containerStatuses") or []}
            for container in [*(pod["spec"].get("initContainers") or []), *pod["spec"]["containers"]]:
                items.append(
                    {
                        "pod": f"{meta['namespace']}/{meta['name']}",
                        "container": container["name"],
                        "image": container["image"],
                        "imageID": statuses.get(container["name"], {}).get("imageID") or "",
                    }
                )
        return JSONResponse({"items": items})


def create_app(home: Path) -> Starlette:
    """The ASGI app; starting it starts the controllers."""
    api = Api(home)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await api.start()
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                await api.stop()

    async def guard(request: Request, handler: Any) -> Response:
        try:
            response: Response = await handler(request)
        except workloads.WorkloadError as exc:
            return _error(str(exc), exc.status)
        except LookupError as exc:  # an Application that does not exist
            return _error(str(exc).strip("'\""), 404)
        except ValueError as exc:  # a request body that is not what the route takes
            return _error(str(exc), 400)
        return response

    def route(path: str, handler: Any, methods: list[str], audit: str = "") -> Route:
        """``audit``: the action a person takes through this route, kept in the audit log when it succeeds."""

        async def endpoint(request: Request) -> Response:
            response = await guard(request, handler)
            if audit and request.method in ("POST", "DELETE") and response.status_code < 400:
                with contextlib.suppress(Exception):  # the log must never fail the action it records
                    await api.record_action(request, response, audit)
            return response

        return Route(path, endpoint, methods=methods)

    app = Starlette(
        routes=[
            route("/healthz", api.healthz, ["GET"]),
            route("/v1/status", api.status, ["GET"]),
            route("/v1/apply", api.apply, ["POST"], audit="apply"),
            route("/v1/events", api.events, ["GET"]),
            route("/v1/audit", api.audit, ["GET"]),
            route("/v1/objects/{kind}", api.list_objects, ["GET"]),
            route("/v1/objects/{kind}/{namespace}/{name}", api.get_object, ["GET"]),
            route("/v1/objects/{kind}/{namespace}/{name}", api.delete_object, ["DELETE"], audit="delete"),
            route("/v1/scale/{kind}/{namespace}/{name}", api.scale, ["POST"], audit="scale"),
            route("/v1/rollout/{namespace}/{name}/{verb}", api.rollout, ["GET", "POST"], audit="rollout"),
            route("/v1/rollouts/{namespace}/{name}/{verb}", api.argo_rollout, ["GET", "POST"], audit="rollout"),
            route("/v1/apps", api.apps.create, ["POST"], audit="app create"),
            route("/v1/apps", api.apps.list, ["GET"]),
            route("/v1/apps/{name}", api.apps.get, ["GET"]),
            route("/v1/apps/{name}", api.apps.delete, ["DELETE"], audit="app delete"),
            route("/v1/apps/{name}/diff", api.apps.diff, ["GET"]),
            route("/v1/apps/{name}/sync", api.apps.sync, ["POST"], audit="app sync"),
            route("/v1/apps/{name}/rollback", api.apps.rollback, ["POST"], audit="app rollback"),
            route("/v1/apps/{name}/refresh", api.apps.refresh, ["POST"]),
            route("/v1/apps/{name}/set", api.apps.set_policy, ["POST"], audit="app set"),
            route("/api/webhook", api.apps.webhook, ["POST"]),
            route("/v1/logs/{namespace}/{name}", api.logs, ["GET"]),
            route("/v1/exec/{namespace}/{name}", api.exec_target, ["GET"]),
            route("/v1/registry/events", api.registry_events, ["POST"]),
            route("/v1/registry/history", api.registry_history, ["GET"]),
            route("/v1/images/in-use", api.images_in_use, ["GET"]),
            route("/v1/scans", api.scan_result, ["GET"]),
            route("/v1/scans/refresh", api.scans_refresh, ["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.api = api
    return app
