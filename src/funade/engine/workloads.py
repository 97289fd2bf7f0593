"""Workload use cases: apply, delete, scale and the `rollout` verbs.

Everything is validated before anything is written, and a whole apply is one store
transaction: bad input changes nothing. The controllers turn the stored objects into
running pods; this module only ever changes desired state.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from funade.core import (
    autoscaling,
    cronjobs,
    istio,
    jobs,
    localtarget,
    manifests,
    merge,
    objects,
    revisions,
    rollout,
    selectors,
    services,
)
from funade.core.gitops import application, appset
from funade.core.ports import Event, ObjectKey, Store

__all__ = [
    "CLUSTER_SCOPED",
    "ApplyResult",
    "WorkloadError",
    "Workloads",
    "labelled",
    "normalize_kind",
    "parse_documents",
]

Obj = dict[str, Any]

CLUSTER_SCOPED = objects.CLUSTER_SCOPED

_ALIASES = {
    "po": "Pod",
    "pod": "Pod",
    "pods": "Pod",
    "deploy": "Deployment",
    "deployment": "Deployment",
    "deployments": "Deployment",
    "rs": "ReplicaSet",
    "replicaset": "ReplicaSet",
    "replicasets": "ReplicaSet",
    "ns": "Namespace",
    "namespace": "Namespace",
    "namespaces": "Namespace",
    "cm": "ConfigMap",
    "configmap": "ConfigMap",
    "configmaps": "ConfigMap",
    "secret": "Secret",
    "secrets": "Secret",
    "ep": "Endpoints",
    "endpoints": "Endpoints",
    "svc": "Service",
    "service": "Service",
    "services": "Service",
    "hpa": "HorizontalPodAutoscaler",
    "horizontalpodautoscaler": "HorizontalPodAutoscaler",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "job": "Job",
    "jobs": "Job",
    "cj": "CronJob",
    "cronjob": "CronJob",
    "cronjobs": "CronJob",
    "pdb": "PodDisruptionBudget",
    "poddisruptionbudget": "PodDisruptionBudget",
    "netpol": "NetworkPolicy",
    "networkpolicy": "NetworkPolicy",
    "networkpolicies": "NetworkPolicy",
    "sa": "ServiceAccount",
    "serviceaccount": "ServiceAccount",
    "ing": "Ingress",
    "ingress": "Ingress",
    "rollout": "Rollout",
    "rollouts": "Rollout",
    "ro": "Rollout",
}


def normalize_kind(kind: str, known: Sequence[str] = ()) -> str:
    """Map what users type (``deploy``, ``pods``, ``Deployment``) to a kind."""
    lowered = kind.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for candidate in known:
        if candidate.lower() in (lowered, lowered.rstrip("s"), lowered.removesuffix("es")):
            return candidate
    return kind[:1].upper() + kind[1:]


class WorkloadError(Exception):
    """A request the target refuses, with a message naming the object."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ApplyResult:
    """What apply did to one object."""

    key: ObjectKey
    action: str  # created | configured | unchanged (plus " (dry run)")
    runnable: bool
    warnings: tuple[str, ...] = ()


def parse_documents(text: str, source: str) -> list[Obj]:
    """Load and validate every object of a manifest text; returns the objects as written.

    Defaults are left to the server (:meth:`Workloads.apply` validates again and fills
    them in), so it can tell a field the manifest sets from one it leaves out.

    Raises:
        manifests.ManifestError: naming the file, line and field of the first problem.
    """
    result: list[Obj] = []
    for doc in manifests.load_documents(text, source):
        objects.parse_document(doc)
        result.append(doc.obj)
    return result


RESTARTED_AT = merge.RESTARTED_AT


def labelled(items: list[Obj], selector: str | None) -> list[Obj]:
    """The objects whose labels match a kubectl ``-l`` selector (all of them without one)."""
    if not selector:
        return items
    match = selectors.parse_selector(selector)
    return [o for o in items if match.matches(o.get("metadata", {}).get("labels") or {})]


def _default_namespace(obj: Obj, namespace: str) -> Obj:
    meta = obj.setdefault("metadata", {})
    if obj["kind"] in CLUSTER_SCOPED:
        meta.pop("namespace", None)
    else:
        meta["namespace"] = meta.get("namespace") or namespace
    return obj


def _check_argo(obj: Obj, key: ObjectKey) -> None:
    """Refuse a Rollout, Application or ApplicationSet Argo would refuse (or funade cannot run), naming the field."""
    try:
        if key.kind == "Rollout":
            parsed = rollout.parse(obj)
            if parsed.template is not None:
                rollout.pod_template(parsed, parsed.template)
        elif key.kind == "Application":
            application.parse(obj)
        else:
            appset.parse(obj)
    except (rollout.RolloutError, application.ApplicationError, appset.ApplicationSetError) as exc:
        raise WorkloadError(f"{key}: {exc}") from exc


class Workloads:
    """Desired-state changes of workload objects."""

    def __init__(self, store: Store, port_free: Callable[[int], bool] | None = None) -> None:
        self.store = store
        # Whether nothing on this machine listens on 127.0.0.1:PORT (an adapter probes it).
        self.port_free = port_free or (lambda port: True)

    def _event(self, key: ObjectKey, type_: str, reason: str, message: str) -> None:
        self.store.add_event(Event(time.time(), key.namespace, key.kind, key.name, type_, reason, message))

    def _get(self, key: ObjectKey) -> Obj:
        obj = self.store.get(key)
        if obj is None:
            raise WorkloadError(
                f'{key.kind.lower()}s "{key.name}" not found'
                + (f" in namespace {key.namespace}" if key.namespace else ""),
                404,
            )
        return obj

    def ensure_default_namespace(self) -> None:
        if self.store.get(ObjectKey("Namespace", "", "default")) is None:
            self.store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}])

    # -- apply ----------------------------------------------------------------------

    def apply(self, objs: Sequence[Obj], namespace: str = "default", dry_run: bool = False) -> list[ApplyResult]:
        """Validate every object against the stored state, then write them all at once."""
        prepared: list[Obj] = []
        warnings: dict[ObjectKey, tuple[str, ...]] = {}
        seen: set[ObjectKey] = set()
        batch_namespaces = {o["metadata"]["name"] for o in objs if o.get("kind") == "Namespace"}
        scaled = self._autoscaled(objs, namespace)
        for raw in objs:
            # Re-validate: the API takes JSON from any client, not only our CLI.
            try:
                obj = _default_namespace(objects.to_dict(objects.parse(json.loads(json.dumps(raw)))), namespace)
            except manifests.ManifestError as exc:
                raise WorkloadError(str(exc)) from exc
            except ValueError as exc:
                name = raw.get("metadata", {}).get("name", "?")
                raise WorkloadError(f"{raw.get('kind', '?')} {name}: {exc}") from exc
            key = ObjectKey.of(obj)
            if key.kind in ("Rollout", "Application", "ApplicationSet"):
                _check_argo(obj, key)
            elif key.kind == "HorizontalPodAutoscaler":
                try:
                    autoscaling.parse(obj)
                except autoscaling.HpaError as exc:
                    raise WorkloadError(f"{key}: {exc}") from exc
            elif key.kind == "Job" and obj.get("apiVersion") == "batch/v1":
                try:
                    obj = jobs.defaulted(obj)
                except jobs.JobError as exc:
                    raise WorkloadError(f"{key}: {exc}") from exc
            elif key.kind == "CronJob" and obj.get("apiVersion") == "batch/v1":
                try:
                    cronjobs.parse(obj)
                    job = {"metadata": obj["metadata"], "spec": obj["spec"]["jobTemplate"]["spec"]}
                    obj["spec"]["jobTemplate"]["spec"] = jobs.defaulted(job)["spec"]
                except jobs.JobError as exc:
                    raise WorkloadError(f"{key}: spec.jobTemplate.{exc}") from exc
                except cronjobs.CronError as exc:
                    raise WorkloadError(f"{key}: {exc}") from exc
            if key in seen:
                raise WorkloadError(f"{key} appears twice in the input")
            seen.add(key)
            if (
                key.namespace
                and key.namespace not in batch_namespaces
                and self.store.get(ObjectKey("Namespace", "", key.namespace)) is None
            ):
                raise WorkloadError(
                    f'{key}: namespaces "{key.namespace}" not found '
                    f"(create it first, or add a Namespace object to the input)",
                    404,
                )
            old = self.store.get(key)
            istio_warnings: tuple[str, ...] = ()
            scaled_by = scaled.get((key.kind, key.namespace, key.name), "")
            kept = merge.keep_live_fields(raw, old, scaled_by=scaled_by)
            if kept != raw:  # fields the manifest leaves to `scale`, the rollout verbs, a Rollout or an HPA
                obj = _default_namespace(objects.to_dict(objects.parse(kept)), namespace)
            left = (raw.get("spec") or {}).get("replicas")
            hpa_note: tuple[str, ...] = ()
            if scaled_by and left is not None and left != (obj.get("spec") or {}).get("replicas"):
                hpa_note = (
                    f"spec.replicas {left} is left to HorizontalPodAutoscaler {scaled_by}, which runs "
                    f"{obj['spec']['replicas']} now (drop replicas from the manifest to silence this)",
                )
            self._check_update(obj, old)
            if key.kind == "Service":
                obj = self._with_local_ports(obj, old, prepared, objs)
            elif key.kind == services.SPLIT_KIND:
                try:
                    services.split_routing(obj)
                except services.ServiceError as exc:
                    raise WorkloadError(str(exc)) from exc
            elif key.kind in ("VirtualService", "DestinationRule") and obj.get("apiVersion") in istio.API_VERSIONS:
                try:
                    istio_warnings = tuple(istio.check(obj))
                except istio.IstioError as exc:
                    raise WorkloadError(str(exc)) from exc
            findings = localtarget.check_object(obj)
            refused = [str(f) for f in findings if f.error]
            if refused:
                raise WorkloadError(f"{key} cannot run on the local target: " + "; ".join(refused))
            warnings[key] = tuple(str(f) for f in findings if not f.error) + istio_warnings + hpa_note
            prepared.append(obj)
        if dry_run:
            return [
                ApplyResult(
                    ObjectKey.of(o),
                    self._dry_action(o) + " (dry run)",
                    o["kind"] in objects.RUNNABLE_KINDS,
                    warnings[ObjectKey.of(o)],
                )
                for o in prepared
            ]
        stored = self.store.put_many(prepared)
        results = []
        for obj, action in stored:
            key = ObjectKey.of(obj)
            if action == "configured" and key.kind == "Deployment":
                self._event(key, "Normal", "Applied", f"generation {obj['metadata'].get('generation')}")
            results.append(ApplyResult(key, action, key.kind in objects.RUNNABLE_KINDS, warnings[key]))
        return results

    def _autoscaled(self, objs: Sequence[Obj], namespace: str) -> dict[tuple[str, str, str], str]:
        """The objects an autoscaler scales: the input's autoscalers, and the stored ones it does not replace."""
        given = [o for o in objs if o.get("kind") == "HorizontalPodAutoscaler"]
        replaced = {((o.get("metadata") or {}).get("namespace") or namespace, (o.get("metadata") or {}).get("name"))
                    for o in given}  # fmt: skip
        stored = [
            o
            for o in self.store.list_objects("HorizontalPodAutoscaler")
            if (o["metadata"].get("namespace"), o["metadata"].get("name")) not in replaced
        ]
        return merge.autoscaled([*stored, *given], namespace)

    def _with_local_ports(self, obj: Obj, old: Obj | None, batch: Sequence[Obj], given: Sequence[Obj]) -> Obj:
        """Validate a Service and give each of its ports a loopback port, kept across applies.

        Explicit nodePorts anywhere in the input are reserved first, so an allocated port
        never takes one a later Service of the same apply asks for.
        """
        try:
            spec = services.parse(obj)
        except services.ServiceError as exc:
            raise WorkloadError(str(exc)) from exc
        key = ObjectKey.of(obj)
        others = [o for o in [*self.store.list_objects("Service"), *batch] if o.get("kind") == "Service"]
        taken = {
            port for other in others if ObjectKey.of(other) != key for port in services.local_ports(other).values()
        }
        taken |= {
            p["nodePort"]
            for other in given
            if other.get("kind") == "Service" and (other.get("metadata") or {}).get("name") != key.name
            for p in ((other.get("spec") or {}).get("ports") or [])
            if isinstance(p, dict) and isinstance(p.get("nodePort"), int)
        }
        try:
            ports = services.allocate(spec, services.local_ports(old) if old else {}, taken, self.port_free)
        except services.ServiceError as exc:
            raise WorkloadError(str(exc), 422) from exc
        meta = dict(obj["metadata"])
        meta["annotations"] = {
            **(meta.get("annotations") or {}),
            services.PORTS_ANNOTATION: json.dumps(ports, sort_keys=True),
        }
        return {**obj, "metadata": meta}

    def _dry_action(self, obj: Obj) -> str:
        old = self.store.get(ObjectKey.of(obj))
        if old is None:
            return "created"
        same = {k: v for k, v in old.items() if k not in ("metadata", "status")} == {
            k: v for k, v in obj.items() if k not in ("metadata", "status")
        }
        return "unchanged" if same and old["metadata"].get("labels") == obj["metadata"].get("labels") else "configured"

    @staticmethod
    def _check_update(new: Obj, old: Obj | None) -> None:
        """Refuse updates Kubernetes' API server refuses."""
        if old is None:
            return
        key = ObjectKey.of(new)
        if key.kind == "Pod":
            old_spec, new_spec = dict(old["spec"]), dict(new["spec"])
            # Only container images may change on a running pod.
            for spec in (old_spec, new_spec):
                spec["containers"] = [{k: v for k, v in c.items() if k != "image"} for c in spec["containers"]]
            if old_spec != new_spec:
                raise WorkloadError(
                    f'Pod "{key.name}" is invalid: spec: Forbidden: pod updates may not change '
                    "fields other than spec.containers[*].image (delete and re-create it)"
                )
        if key.kind == "Job" and old.get("spec", {}).get("template") != new.get("spec", {}).get("template"):
            raise WorkloadError(
                f'Job.batch "{key.name}" is invalid: spec.template: field is immutable '
                "(delete the Job and apply it again, as a new run)"
            )
        if key.kind in ("Deployment", "ReplicaSet") and old["spec"].get("selector") != new["spec"].get("selector"):
            raise WorkloadError(f'{key.kind} "{key.name}" is invalid: spec.selector: field is immutable')
        if (
            key.kind in ("ConfigMap", "Secret")
            and old.get("immutable")
            and ({k: old.get(k) for k in ("data", "binaryData")} != {k: new.get(k) for k in ("data", "binaryData")})
        ):
            raise WorkloadError(
                f'{key.kind} "{key.name}" is invalid: data: Forbidden: field is immutable when `immutable` is set'
            )

    # -- reads ----------------------------------------------------------------------

    def select(self, kind: str, namespace: str | None, selector: str | None) -> list[Obj]:
        return labelled(self.store.list_objects(kind, None if kind in CLUSTER_SCOPED else namespace), selector)

    # -- changes --------------------------------------------------------------------

    def delete(self, key: ObjectKey) -> list[ObjectKey]:
        """Delete an object; a Namespace takes everything in it along."""
        self._get(key)
        deleted = [key]
        if key.kind == "Namespace":
            if key.name == "default":
                raise WorkloadError('namespace "default" cannot be deleted', 403)
            for kind in self._kinds():
                for obj in self.store.list_objects(kind, key.name):
                    inner = ObjectKey.of(obj)
                    self.store.delete(inner)
                    deleted.append(inner)
            self.store.delete_events(key.name)
        self.store.delete(key)
        return deleted

    def _kinds(self) -> list[str]:
        kinds = getattr(self.store, "kinds", None)
        return list(kinds()) if callable(kinds) else sorted(objects.RUNNABLE_KINDS)

    def _update_spec(self, key: ObjectKey, change: Any) -> Obj:
        obj = json.loads(json.dumps(self._get(key)))
        change(obj)
        stored, _ = self.store.put_many([obj])[0]
        return stored

    def scale(self, key: ObjectKey, replicas: int) -> Obj:
        if replicas < 0:
            raise WorkloadError("--replicas must be 0 or more")
        if key.kind not in ("Deployment", "ReplicaSet"):
            raise WorkloadError(f"{key.kind} cannot be scaled on the local target")
        return self._update_spec(key, lambda o: o["spec"].__setitem__("replicas", replicas))

    def _deployment(self, key: ObjectKey) -> Obj:
        if key.kind != "Deployment":
            raise WorkloadError(f"rollout works on deployments, not {key.kind}")
        return self._get(key)

    def restart(self, key: ObjectKey) -> Obj:
        """`kubectl rollout restart`: a new template annotation starts a new revision."""
        self._deployment(key)

        def change(obj: Obj) -> None:
            meta = obj["spec"]["template"].setdefault("metadata", {})
            meta.setdefault("annotations", {})[RESTARTED_AT] = revisions.rfc3339(time.time())

        return self._update_spec(key, change)

    def set_paused(self, key: ObjectKey, paused: bool) -> Obj:
        obj = self._deployment(key)
        if bool(obj["spec"].get("paused")) == paused:
            raise WorkloadError(f'deployment "{key.name}" is {"already" if paused else "not"} paused')
        return self._update_spec(key, lambda o: o["spec"].__setitem__("paused", paused))

    def history(self, key: ObjectKey) -> list[Obj]:
        """The revisions of a Deployment, oldest first."""
        deployment = self._deployment(key)
        uid = deployment["metadata"]["uid"]
        result = []
        for rs in self.store.list_objects("ReplicaSet", key.namespace):
            if not any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or []):
                continue
            annotations = rs["metadata"].get("annotations") or {}
            template = rs["spec"]["template"]
            result.append(
                {
                    "revision": int(annotations.get(revisions.REVISION_ANNOTATION, "0")),
                    "replicaSet": rs["metadata"]["name"],
                    "changeCause": annotations.get(revisions.CHANGE_CAUSE, ""),
                    "images": [c["image"] for c in template["spec"]["containers"]],
                    "healthy": annotations.get("funade.io/healthy") == "true",
                    "replicas": rs["spec"].get("replicas", 0),
                    "template": template,
                }
            )
        return sorted(result, key=lambda r: int(r["revision"]))

    def undo(self, key: ObjectKey, to_revision: int | None) -> tuple[Obj, int]:
        """`kubectl rollout undo`: re-apply an old revision's template (it gets a new number)."""
        deployment = self._deployment(key)
        if deployment["spec"].get("paused"):
            raise WorkloadError(
                f"you cannot rollback a paused deployment; resume it first with "
                f'"funade rollout resume deployment/{key.name}" and try again',
                409,
            )
        history = self.history(key)
        if not history:
            raise WorkloadError(f'no rollout history found for deployment "{key.name}"', 404)
        current = revisions.template_hash(deployment["spec"]["template"])
        if to_revision in (None, 0):
            older = [h for h in history if revisions.template_hash(h["template"]) != current]
            if not older:
                raise WorkloadError(f'no previous revision of deployment "{key.name}" to roll back to', 409)
            target = older[-1]
        else:
            found = [h for h in history if h["revision"] == to_revision]
            if not found:
                raise WorkloadError(f"unable to find specified revision {to_revision} in history", 404)
            target = found[0]
        template = revisions.without_hash(target["template"])
        if revisions.template_hash(template) == current:
            return deployment, int(target["revision"])
        stored = self._update_spec(key, lambda o: o["spec"].__setitem__("template", template))
        self._event(
            key, "Normal", "DeploymentRollback", f"Rolled back deployment {key.name} to revision {target['revision']}"
        )
        return stored, int(target["revision"])
