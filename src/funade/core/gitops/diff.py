"""Desired manifests against live objects, the way Argo CD compares them: sync status and a diff.

A GitOps tool is only as useful as its OutOfSync signal. Live objects carry what the
target owns (uid, resourceVersion, status, funade's bookkeeping annotations) and the
defaults the API server filled in (``imagePullPolicy``, probe timings, a Secret's
``type``...). Comparing them with raw manifests would report drift forever, the first
complaint about Argo CD (false OutOfSync). So both sides are *normalized* first:

1. target-owned fields are dropped (:func:`normalize`);
2. the desired side gets the defaults the target applies (``objects.parse`` + ``to_dict``)
   and keeps the live fields the target keeps when a manifest leaves them out
   (``replicas`` set by ``scale``, ``paused``, a restart's ``restartedAt``: :func:`predict`);
3. ``ignoreDifferences`` rules remove the fields they name from both sides
   (RFC 6901 JSON pointers and a jq subset, :mod:`funade.core.gitops.jq`).

What remains must be equal for Synced. Secret values never leave this module in clear:
they are replaced by runs of ``+`` as Argo CD does (same value, same mask; a changed
value gets a longer mask), after the comparison, so a change is still detected.

Argo CD sources: gitops-engine ``pkg/diff`` (``NormalizeSecret``, ``HideSecretData``),
``argo-cd/util/argo/normalizers`` (ignoreDifferences matching), ``controller/state.go``
(which resources count for the sync status), ``pkg/sync/hook`` (what is a hook).
"""

from __future__ import annotations

import base64
import copy
import difflib
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from funade.core import merge, objects, revisions, services
from funade.core.gitops import jq

__all__ = [
    "CLUSTER_SCOPED_KINDS",
    "COMPARE_OPTIONS_ANNOTATION",
    "HELM_HOOK_ANNOTATION",
    "HOOK_ANNOTATION",
    "LAST_APPLIED_ANNOTATION",
    "SECRET_MASK",
    "SYNC_OPTIONS_ANNOTATION",
    "TARGET_OWNED_ANNOTATIONS",
    "TRACKING_ANNOTATION",
    "TRACKING_LABEL",
    "DiffError",
    "IgnoreRule",
    "ResourceDiff",
    "ResourceKey",
    "SyncStatus",
    "annotation_options",
    "app_sync_status",
    "compare",
    "diff",
    "group_of",
    "has_option",
    "is_hook",
    "is_skipped",
    "managed_by",
    "mask_secrets",
    "normalize",
    "predict",
    "tracking_id",
]

Obj = dict[str, Any]

TRACKING_LABEL = "app.kubernetes.io/instance"
"""Argo CD's default tracking label (``application.instanceLabelKey``): its value is the app name."""
TRACKING_ANNOTATION = "argocd.argoproj.io/tracking-id"
"""Argo CD's annotation tracking: ``<app>:<group>/<kind>:<namespace>/<name>``."""
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"
COMPARE_OPTIONS_ANNOTATION = "argocd.argoproj.io/compare-options"
SYNC_OPTIONS_ANNOTATION = "argocd.argoproj.io/sync-options"
HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HELM_HOOK_ANNOTATION = "helm.sh/hook"
SECRET_MASK = "++++++++"
"""The mask of a Secret value's first distinct value; each further distinct value gets ``++++`` more."""

TARGET_OWNED_ANNOTATIONS = frozenset(
    {
        LAST_APPLIED_ANNOTATION,
        services.PORTS_ANNOTATION,  # the loopback ports the local target gave a Service
        revisions.REVISION_ANNOTATION,
        "funade.io/rollback-generation",  # controller.workloads.ROLLBACK_GENERATION (core cannot import it)
        "funade.io/healthy",  # controller.workloads.HEALTHY_ANNOTATION, on revisions
    }
)
"""Annotations the target writes on live objects; never part of desired state."""

_TARGET_OWNED_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
)

CLUSTER_SCOPED_KINDS = objects.CLUSTER_SCOPED
"""Kinds without a namespace (:data:`funade.core.objects.CLUSTER_SCOPED`)."""

_HOOK_TYPES = frozenset({"PreSync", "Sync", "PostSync", "SyncFail", "Skip", "PreDelete", "PostDelete"})
_HELM_HOOK_TYPES = frozenset({"pre-install", "pre-upgrade", "post-install", "post-upgrade"})


class DiffError(ValueError):
    """Input the comparison cannot use (a bad ignore rule, a resource listed twice)."""


class SyncStatus(StrEnum):
    """Argo CD's sync status of a resource or an application."""

    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


def group_of(api_version: object) -> str:
    """The API group of an ``apiVersion`` (``""`` for the core group ``v1``)."""
    return api_version.rpartition("/")[0] if isinstance(api_version, str) else ""


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identifies a resource as Argo CD does: group, kind, namespace (``""`` when cluster-scoped), name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ResourceKey:
        meta = obj.get("metadata") or {}
        return cls(
            group_of(obj.get("apiVersion")),
            str(obj.get("kind", "")),
            str(meta.get("namespace") or ""),
            str(meta.get("name") or ""),
        )

    def __str__(self) -> str:
        return f"{self.group}/{self.kind}/{self.namespace}/{self.name}"


# --- annotations -------------------------------------------------------------------------


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not obj:
        return {}
    return (obj.get("metadata") or {}).get("annotations") or {}


def annotation_options(obj: Mapping[str, Any] | None, annotation: str) -> tuple[str, ...]:
    """The comma-separated values of an annotation, trimmed, empty ones dropped."""
    value = _annotations(obj).get(annotation)
    if not isinstance(value, str):
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def has_option(obj: Mapping[str, Any] | None, annotation: str, option: str) -> bool:
    """Whether ``annotation`` lists ``option`` exactly (``Prune=false`` in ``sync-options``)."""
    return option in annotation_options(obj, annotation)


def is_hook(obj: Mapping[str, Any]) -> bool:
    """Whether a manifest is a sync hook rather than a managed resource (gitops-engine ``hook.IsHook``).

    An ``argocd.argoproj.io/hook`` annotation makes it a hook unless it says only
    ``Skip``; otherwise a ``helm.sh/hook`` annotation does, except ``crd-install``.
    """
    annotations = _annotations(obj)
    if HOOK_ANNOTATION in annotations:
        return not is_skipped(obj)
    helm = annotations.get(HELM_HOOK_ANNOTATION)
    return helm is not None and helm != "crd-install"


def is_skipped(obj: Mapping[str, Any]) -> bool:
    """Whether the manifest says ``argocd.argoproj.io/hook: Skip`` (and no other hook type): never applied."""
    types = [t for t in annotation_options(obj, HOOK_ANNOTATION) if t in _HOOK_TYPES]
    if not types:
        types = ["PreSync"] if any(t in _HELM_HOOK_TYPES for t in annotation_options(obj, HELM_HOOK_ANNOTATION)) else []
    return "Skip" in types and len(types) == 1


# --- tracking ----------------------------------------------------------------------------------


def tracking_id(app_name: str, obj: Mapping[str, Any]) -> str:
    """The ``argocd.argoproj.io/tracking-id`` value that marks ``obj`` as managed by ``app_name``."""
    key = ResourceKey.of(obj)
    return f"{app_name}:{key.group}/{key.kind}:{key.namespace}/{key.name}"


def managed_by(
    obj: Mapping[str, Any],
    app_name: str,
    *,
    tracking_label: str | None = TRACKING_LABEL,
    tracking_annotation: str | None = TRACKING_ANNOTATION,
) -> bool:
    """Whether a live object is tracked as part of the application ``app_name``.

    The tracking annotation must name this very object (an annotation copied onto a
    child object by a controller does not count, as in Argo CD).
    """
    meta = obj.get("metadata") or {}
    if tracking_annotation and (meta.get("annotations") or {}).get(tracking_annotation) == tracking_id(app_name, obj):
        return True
    return bool(tracking_label) and (meta.get("labels") or {}).get(tracking_label or "") == app_name


# --- normalization -------------------------------------------------------------------------------


def _fold_string_data(obj: Obj) -> None:
    """A Secret's ``stringData`` merged into base64 ``data``, as the API server stores it."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict):
        return
    data = obj.get("data")
    if not isinstance(data, dict):
        data = {}
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode("ascii")
    obj["data"] = data


def _is_secret(obj: Mapping[str, Any] | None) -> bool:
    return obj is not None and obj.get("kind") == "Secret" and group_of(obj.get("apiVersion")) == ""


def _with_defaults(obj: Obj) -> Obj:
    kind = obj.get("kind")
    if not isinstance(kind, str) or objects.TYPED_KINDS.get(kind) != obj.get("apiVersion"):
        return obj  # GenericObject kinds are stored as given
    try:
        return objects.to_dict(objects.parse(obj))
    except ValueError:
        return obj  # invalid: the apply reports why; compare what was written


def normalize(
    obj: Mapping[str, Any],
    *,
    defaults: bool = True,
    tracking_label: str | None = TRACKING_LABEL,
    tracking_annotation: str | None = TRACKING_ANNOTATION,
) -> Obj:
    """The comparable form of a desired or live object.

    Drops ``status``, the metadata the target owns (uid, resourceVersion, generation,
    creationTimestamp, managedFields, selfLink, deletion fields), the
    :data:`TARGET_OWNED_ANNOTATIONS` and the tracking label and annotation. A Secret's
    ``stringData`` becomes base64 ``data``. With ``defaults``, typed kinds get the
    defaults the local target fills in on apply, so a manifest without
    ``imagePullPolicy`` equals its live form.
    """
    result: Obj = copy.deepcopy(dict(obj))
    result.pop("status", None)
    if _is_secret(result):
        _fold_string_data(result)
    if defaults:
        result = _with_defaults(result)
    meta = result.get("metadata")
    if not isinstance(meta, dict):
        return result
    meta = dict(meta)
    for name in _TARGET_OWNED_METADATA:
        meta.pop(name, None)
    if not meta.get("namespace"):
        meta.pop("namespace", None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        owned = TARGET_OWNED_ANNOTATIONS | ({tracking_annotation} if tracking_annotation else set())
        annotations = {k: v for k, v in annotations.items() if k not in owned}
        if annotations:
            meta["annotations"] = annotations
        else:
            meta.pop("annotations")
    labels = meta.get("labels")
    if isinstance(labels, dict):
        labels = {k: v for k, v in labels.items() if k != tracking_label}
        if labels:
            meta["labels"] = labels
        else:
            meta.pop("labels")
    result["metadata"] = meta
    return result




predict = merge.keep_live_fields
"""The desired object as the target will store it over live (:func:`funade.core.merge.keep_live_fields`)."""


# --- ignoreDifferences ---------------------------------------------------------------------------

_LIST_INDEX = re.compile(r"0|[1-9][0-9]*")


def _pointer_tokens(pointer: str) -> list[str]:
    """RFC 6901: ``/a/b~1c`` → ``["a", "b/c"]``."""
    if not pointer.startswith("/"):
        raise DiffError(f"JSON pointer {pointer!r}: must start with '/' (RFC 6901); '' would name the whole object")
    parts = pointer[1:].split("/")
    for part in parts:
        if re.search(r"~(?![01])", part):
            raise DiffError(f"JSON pointer {pointer!r}: '~' must be followed by 0 or 1 (RFC 6901)")
    return [p.replace("~1", "/").replace("~0", "~") for p in parts]


def _remove_pointer(doc: Any, tokens: Sequence[str]) -> bool:
    """Remove the value at ``tokens`` in place (JSON Patch ``remove``); False when it is not there."""
    parent = doc
    for i, token in enumerate(tokens):
        last = i == len(tokens) - 1
        if isinstance(parent, dict):
            if token not in parent:
                return False
            if last:
                del parent[token]
                return True
            parent = parent[token]
        elif isinstance(parent, list):
            if not _LIST_INDEX.fullmatch(token) or int(token) >= len(parent):
                return False
            if last:
                del parent[int(token)]
                return True
            parent = parent[int(token)]
        else:
            return False
    return False


def _as_tuple(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


@dataclass(frozen=True)
class IgnoreRule:
    """One ``spec.ignoreDifferences`` entry: which resources, and which fields to leave out of the diff.

    ``group`` and ``kind`` are glob patterns (``*``), as in Argo CD; an empty ``name`` or
    ``namespace`` matches any. The core group is ``""``. Pointers or expressions that
    address nothing in an object are skipped for that object, as Argo CD does.

    Raises:
        DiffError: a malformed JSON pointer.
        jq.JqError: a jq expression outside the supported subset (naming it).
    """

    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    _programs: tuple[jq.Program, ...] = field(init=False, repr=False, compare=False, default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "json_pointers", _as_tuple(self.json_pointers))
        object.__setattr__(self, "jq_path_expressions", _as_tuple(self.jq_path_expressions))
        for pointer in self.json_pointers:
            _pointer_tokens(pointer)
        object.__setattr__(self, "_programs", tuple(jq.compile(e) for e in self.jq_path_expressions))

    @classmethod
    def from_spec(cls, raw: Mapping[str, Any]) -> IgnoreRule:
        """An entry as written in an Application (``group``, ``kind``, ``jsonPointers``...).

        ``managedFieldsManagers`` is left out: the local target keeps no managedFields,
        so there is no manager to match (the Application loader warns about it).

        Raises:
            DiffError: unknown fields or a missing kind.
        """
        known = {"group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions", "managedFieldsManagers"}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DiffError(f"ignoreDifferences: unknown field(s) {', '.join(unknown)}")
        if not isinstance(raw.get("kind"), str) or not raw["kind"]:
            raise DiffError("ignoreDifferences: kind is required")
        return cls(
            kind=raw["kind"],
            group=str(raw.get("group") or ""),
            name=str(raw.get("name") or ""),
            namespace=str(raw.get("namespace") or ""),
            json_pointers=_as_tuple(raw.get("jsonPointers")),
            jq_path_expressions=_as_tuple(raw.get("jqPathExpressions")),
        )

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether this rule applies to ``obj`` (glob on group and kind, exact name and namespace)."""
        key = ResourceKey.of(obj)
        return (
            fnmatch.fnmatchcase(key.group, self.group)
            and fnmatch.fnmatchcase(key.kind, self.kind)
            and (not self.name or self.name == key.name)
            and (not self.namespace or self.namespace == key.namespace)
        )

    def apply(self, obj: Obj) -> Obj:
        """A copy of ``obj`` without the fields this rule names (no matching check)."""
        result: Obj = copy.deepcopy(obj)
        for pointer in self.json_pointers:
            _remove_pointer(result, _pointer_tokens(pointer))
        for program in self._programs:
            try:
                result = jq.delete(result, program)
            except jq.JqRuntimeError:
                continue  # Argo CD logs and skips an expression that does not fit this object
        return result


def _ignore(obj: Obj | None, rules: Sequence[IgnoreRule]) -> Obj | None:
    if obj is None:
        return None
    for rule in rules:
        if rule.matches(obj):
            obj = rule.apply(obj)
    return obj


# --- secrets -------------------------------------------------------------------------------------


def mask_secrets(desired: Obj | None, live: Obj | None) -> tuple[Obj | None, Obj | None]:
    """Replace Secret ``data`` values by ``+`` masks, consistently across both sides.

    Per key, the first distinct value met (desired first, then live) becomes
    :data:`SECRET_MASK`, the next distinct one four ``+`` longer: equal values look
    equal and a changed value shows as changed, without revealing either (gitops-engine
    ``HideSecretData``). Other kinds are returned unchanged.
    """
    if not (_is_secret(desired) or _is_secret(live)):
        return desired, live
    sides = [copy.deepcopy(desired) if desired is not None else None, copy.deepcopy(live) if live is not None else None]
    for side in sides:
        if side is not None:
            _fold_string_data(side)
    datas = [side.get("data") if side is not None and isinstance(side.get("data"), dict) else None for side in sides]
    keys = sorted({k for data in datas if data for k in data})
    for key in keys:
        mask = SECRET_MASK
        seen: dict[str, str] = {}
        for data in datas:
            if data is None or key not in data:
                continue
            value = "" if data[key] is None else str(data[key])
            if value not in seen:
                seen[value] = mask
                mask += "++++"
            data[key] = seen[value]
    return sides[0], sides[1]


# --- comparison ----------------------------------------------------------------------------------


def _canonical(value: Any) -> Any:
    """JSON-equal values compare equal: ``1.0`` is ``1`` (as in Go's unstructured), ``True`` is not ``1``."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _same(a: Obj, b: Obj) -> bool:
    def dump(obj: Obj) -> str:
        return json.dumps(_canonical(obj), sort_keys=True, default=str)

    return dump(a) == dump(b)


def _yaml_lines(obj: Obj | None) -> list[str]:
    if obj is None:
        return []
    text = yaml.safe_dump(_canonical(obj), sort_keys=True, default_flow_style=False, allow_unicode=True)
    return text.splitlines(keepends=True)


@dataclass(frozen=True)
class ResourceDiff:
    """The comparison of one resource.

    ``desired`` and ``live`` are the normalized forms, Secret values masked: safe to
    print, store or send. ``text`` is a unified diff of their YAML (live → desired)
    under an ``argocd app diff``-style header, empty when Synced.
    """

    key: ResourceKey
    status: SyncStatus
    desired: Obj | None
    live: Obj | None
    text: str = ""

    @property
    def missing(self) -> bool:
        """Desired but not live: the sync will create it."""
        return self.live is None

    @property
    def requires_pruning(self) -> bool:
        """Live but no longer desired: the sync prunes it (when pruning is on)."""
        return self.desired is None

    @property
    def modified(self) -> bool:
        return self.status is SyncStatus.OUT_OF_SYNC


def diff(
    desired: Mapping[str, Any] | None,
    live: Mapping[str, Any] | None,
    rules: Sequence[IgnoreRule] = (),
    *,
    defaults: bool = True,
    tracking_label: str | None = TRACKING_LABEL,
    tracking_annotation: str | None = TRACKING_ANNOTATION,
    scaled_by: str = "",
) -> ResourceDiff:
    """Compare one desired manifest with its live object (either may be None, not both).

    ``scaled_by``: the HorizontalPodAutoscaler that scales the object, whose live replica
    count the target keeps (:func:`funade.core.merge.keep_live_fields`).

    The desired side is :func:`predict`-ed over live and both are :func:`normalize`-d; the
    matching ``rules`` then remove their fields from both sides. Equal → Synced.

    Raises:
        DiffError: both sides are None.
    """
    if desired is None and live is None:
        raise DiffError("diff needs a desired or a live object")

    def normalized(obj: Mapping[str, Any] | None) -> Obj | None:
        if obj is None:
            return None
        form = normalize(obj, defaults=defaults, tracking_label=tracking_label, tracking_annotation=tracking_annotation)
        return _ignore(form, rules)

    target = normalized(None if desired is None else predict(desired, live, scaled_by=scaled_by))
    current = normalized(live)
    key = ResourceKey.of(desired if desired is not None else live or {})
    synced = target is not None and current is not None and _same(target, current)
    shown_target, shown_live = mask_secrets(target, current)
    text = ""
    if not synced:
        where = f"{key.group}/{key.kind} {key.namespace}/{key.name}"
        body = difflib.unified_diff(
            _yaml_lines(shown_live),
            _yaml_lines(shown_target),
            fromfile=f"live {where}",
            tofile=f"desired {where}",
        )
        text = f"===== {where} ======\n" + "".join(line if line.endswith("\n") else line + "\n" for line in body)
    return ResourceDiff(
        key=key,
        status=SyncStatus.SYNCED if synced else SyncStatus.OUT_OF_SYNC,
        desired=shown_target,
        live=shown_live,
        text=text,
    )


def compare(
    desired: Iterable[Mapping[str, Any]],
    live: Iterable[Mapping[str, Any]],
    rules: Sequence[IgnoreRule] = (),
    *,
    namespace: str = "",
    app_name: str | None = None,
    cluster_scoped: Iterable[str] = CLUSTER_SCOPED_KINDS,
    defaults: bool = True,
    tracking_label: str | None = TRACKING_LABEL,
    tracking_annotation: str | None = TRACKING_ANNOTATION,
) -> list[ResourceDiff]:
    """Compare an application's manifests with live state, paired by (group, kind, namespace, name).

    Desired objects without a namespace get ``namespace`` (the destination), except
    cluster-scoped kinds, which lose theirs. Hooks and ``hook: Skip`` manifests are not
    managed resources and are left out (the sync plan runs hooks). With ``app_name``,
    only live objects tracked by that app (:func:`managed_by`) or named by a manifest
    are considered; without it every ``live`` object is taken as the app's. A live
    object no manifest names is OutOfSync and requires pruning; a manifest without a
    live object is OutOfSync and missing.

    Returns:
        One :class:`ResourceDiff` per resource, sorted by key.

    Raises:
        DiffError: a resource appears twice in ``desired`` or in ``live``.
    """
    scoped = frozenset(cluster_scoped)
    current: dict[ResourceKey, Mapping[str, Any]] = {}
    for found in live:
        if is_hook(found):
            continue  # hooks left from an earlier sync are neither compared nor pruned
        key = ResourceKey.of(found)
        if key in current:
            raise DiffError(f"{key} appears twice in the live objects")
        current[key] = found
    targets: dict[ResourceKey, Obj] = {}
    for raw in desired:
        if is_hook(raw) or is_skipped(raw):
            continue
        obj: Obj = dict(raw)
        meta = dict(obj.get("metadata") or {})
        kind = str(obj.get("kind", ""))
        bare = ResourceKey(group_of(obj.get("apiVersion")), kind, "", str(meta.get("name") or ""))
        if kind in scoped or (not meta.get("namespace") and bare in current):
            meta.pop("namespace", None)  # cluster-scoped: a namespace in the manifest means nothing
        elif not meta.get("namespace") and namespace:
            meta["namespace"] = namespace
        obj["metadata"] = meta
        key = ResourceKey.of(obj)
        if key in targets:
            raise DiffError(f"{key} appears twice in the desired manifests")
        targets[key] = obj
    scaled = merge.autoscaled([*targets.values(), *current.values()], namespace or "default")
    result = []
    for key in sorted(set(targets) | set(current)):
        target, live_obj = targets.get(key), current.get(key)
        if (
            target is None
            and live_obj is not None
            and app_name is not None
            and not managed_by(
                live_obj, app_name, tracking_label=tracking_label, tracking_annotation=tracking_annotation
            )
        ):
            continue
        result.append(
            diff(
                target,
                live_obj,
                rules,
                defaults=defaults,
                tracking_label=tracking_label,
                tracking_annotation=tracking_annotation,
                scaled_by=scaled.get((key.kind, key.namespace, key.name), ""),
            )
        )
    return result


def app_sync_status(diffs: Iterable[ResourceDiff]) -> SyncStatus:
    """The application's sync status: OutOfSync when any resource is.

    A resource that only requires pruning and carries
    ``argocd.argoproj.io/compare-options: IgnoreExtraneous`` does not count (Argo CD).
    """
    for item in diffs:
        if not item.modified:
            continue
        if item.requires_pruning and has_option(item.live, COMPARE_OPTIONS_ANNOTATION, "IgnoreExtraneous"):
            continue
        return SyncStatus.OUT_OF_SYNC
    return SyncStatus.SYNCED
