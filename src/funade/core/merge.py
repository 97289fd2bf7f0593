"""What an apply keeps from the live object: the fields the manifest leaves to controllers and verbs.

One rule for the local target's apply (:mod:`funade.engine.workloads`) and for the GitOps
diff (:mod:`funade.core.gitops.diff`), so a sync never fights what `scale`, `rollout
pause|restart` or a Rollout's Service pin set, and a diff never reports it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["MANAGED_BY_ANNOTATION", "POD_HASH_LABEL", "RESTARTED_AT", "autoscaled", "keep_live_fields"]

Obj = dict[str, Any]
POD_HASH_LABEL = "rollouts-pod-template-hash"
"""The label Argo Rollouts puts on its ReplicaSets, pods and pinned Service selectors."""
MANAGED_BY_ANNOTATION = "argo-rollouts.argoproj.io/managed-by-rollouts"
"""The annotation on a Service whose selector a Rollout pins."""
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
"""The pod-template annotation `rollout restart` sets."""


def _group(api_version: object) -> str:
    return str(api_version or "").rpartition("/")[0]


def _keep_rollout_pin(result: Obj, live: Mapping[str, Any]) -> Obj:
    owner = ((live.get("metadata") or {}).get("annotations") or {}).get(MANAGED_BY_ANNOTATION)
    pinned = ((live.get("spec") or {}).get("selector") or {}).get(POD_HASH_LABEL)
    if owner is None or pinned is None:
        return result
    meta = result.setdefault("metadata", {})
    meta["annotations"] = {**(meta.get("annotations") or {}), MANAGED_BY_ANNOTATION: owner}
    spec = result.setdefault("spec", {})
    spec["selector"] = {**(spec.get("selector") or {}), POD_HASH_LABEL: pinned}
    return result


#: Kinds a HorizontalPodAutoscaler can scale on the local target.
AUTOSCALABLE = frozenset({"Deployment", "ReplicaSet", "Rollout"})


def autoscaled(objects: Iterable[Mapping[str, Any]], namespace: str = "default") -> dict[tuple[str, str, str], str]:
    """``(kind, namespace, name)`` of each object a HorizontalPodAutoscaler among ``objects`` scales → that HPA's name.

    ``namespace`` is the one an HPA without its own is applied to.
    """
    found: dict[tuple[str, str, str], str] = {}
    for obj in objects:
        if obj.get("kind") != "HorizontalPodAutoscaler":
            continue
        meta = obj.get("metadata") or {}
        ref = (obj.get("spec") or {}).get("scaleTargetRef") or {}
        if isinstance(ref, Mapping) and ref.get("kind") in AUTOSCALABLE and ref.get("name"):
            where = str(meta.get("namespace") or namespace)
            found[(str(ref["kind"]), where, str(ref["name"]))] = str(meta.get("name"))
    return found


def keep_live_fields(desired: Mapping[str, Any], live: Mapping[str, Any] | None, *, scaled_by: str = "") -> Obj:
    """The desired object as the target stores it over ``live``, before defaults.

    ``kubectl apply`` (and the local target's apply) keep a field the manifest never
    mentions: ``spec.replicas`` set by ``scale``, ``spec.paused`` set by ``rollout pause``,
    the pod template's ``kubectl.kubernetes.io/restartedAt`` set by ``rollout restart``,
    and the revision a Rollout pinned in a Service's selector. Argo CD's three-way diff
    ignores such fields for the same reason; the GitOps diff predicts with this too, so
    they compare equal.

    ``scaled_by`` names the HorizontalPodAutoscaler that scales this object: then the live
    ``spec.replicas`` is kept even when the manifest sets one. (kubectl would reset it, and
    the autoscaler would scale back a moment later; Kubernetes' documentation asks to drop
    ``replicas`` from such manifests. The seed's Deployment keeps it, so funade keeps the
    autoscaler's count, and the apply says so.)
    """
    result: Obj = copy.deepcopy(dict(desired))
    if live is None:
        return result
    if scaled_by and result.get("kind") in AUTOSCALABLE and result.get("kind") == live.get("kind"):
        live_replicas = (live.get("spec") or {}).get("replicas")
        if isinstance(result.get("spec"), dict) and isinstance(live_replicas, int):
            result["spec"]["replicas"] = live_replicas
    if result.get("kind") == "Service" and live.get("kind") == "Service":
        return _keep_rollout_pin(result, live)
    if _group(result.get("apiVersion")) != "apps":
        return result
    if result.get("kind") not in ("Deployment", "ReplicaSet") or live.get("kind") != result.get("kind"):
        return result
    spec = result.get("spec")
    live_spec = live.get("spec")
    if not isinstance(spec, dict) or not isinstance(live_spec, dict):
        return result
    if "replicas" not in spec and "replicas" in live_spec:
        spec["replicas"] = live_spec["replicas"]
    if result["kind"] == "Deployment":
        if "paused" not in spec and live_spec.get("paused"):
            spec["paused"] = True
        live_template = live_spec.get("template")
        live_meta = live_template.get("metadata") if isinstance(live_template, dict) else None
        live_annotations = live_meta.get("annotations") if isinstance(live_meta, dict) else None
        restarted = live_annotations.get(RESTARTED_AT) if isinstance(live_annotations, dict) else None
        template = spec.get("template")
        if restarted is not None and isinstance(template, dict):
            meta = template.setdefault("metadata", {})
            if isinstance(meta, dict):
                annotations = meta.setdefault("annotations", {})
                if isinstance(annotations, dict):
                    annotations.setdefault(RESTARTED_AT, restarted)
    return result
