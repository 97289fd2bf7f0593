"""Argo CD ``Application`` as typed data: what to deploy, where, and how the sync behaves.

funade's GitOps loop reads the same ``argoproj.io/v1alpha1`` Application documents Argo CD
reads. This module turns one into frozen dataclasses with Argo's defaults applied, so the
engine, the notifier and the CLI all see one validated value instead of re-reading YAML:

- defaults as in ``pkg/apis/application/v1alpha1/types.go``: ``project`` ``default``,
  ``targetRevision`` ``HEAD``, ``revisionHistoryLimit`` 10, ``PrunePropagationPolicy``
  foreground, backoff 5 s × 2 capped at 3 m (``common.DefaultSyncRetry*``);
- ``syncPolicy.automated`` present (even ``{}``) means automatic sync with prune and
  self-heal off; ``automated.enabled: false`` switches it off again; absent means manual;
- retries: ``retry.limit`` counts retries after the first attempt, 0 means none and a
  negative limit means unlimited (``controller/appcontroller.go``: retry while
  ``RetryCount < Limit || Limit < 0``). An automated sync without ``retry`` gets Argo's
  built-in ``RetryStrategy{Limit: 5}``; a manual one gets none. :func:`retry_delay` is
  ``NextRetryAt``: ``duration × factor ** retries_done``, capped at ``maxDuration``;
- the destination ``https://kubernetes.default.svc`` or ``in-cluster`` is funade's
  ``local`` target; any other server URL or cluster name is kept as the target name;
- ``notifications.argoproj.io/subscribe.<trigger>.<service>: a;b`` annotations (and the
  YAML ``notifications.argoproj.io/subscriptions`` form) become :class:`Subscription`
  values, split as ``notifications-engine/pkg/subscriptions`` splits them.

What funade cannot honour is reported by field path, never dropped silently:

- **errors** (:class:`ApplicationError`) for anything that would change what gets
  deployed or how: Helm (``source.helm``, ``source.chart``), config-management plugins,
  Jsonnet and directory include/exclude globs, the Kustomize options other than
  ``images``, ``namePrefix``, ``nameSuffix``, ``commonLabels`` and ``commonAnnotations``,
  more than one entry in ``spec.sources``, ``sourceHydrator``, unknown or malformed
  ``syncOptions``, and jq expressions outside :mod:`funade.core.gitops.jq`'s subset;
- **warnings** (``Application.warnings``, ``"<path>: not supported, ignored"``) for
  fields that change nothing funade does: unknown fields (the API server's structural
  schema prunes those too), ``kustomize.version``, ``ignoreDifferences[].
  managedFieldsManagers`` (the local target keeps no managedFields), a lone source's
  ``ref`` and a pending ``operation``; ``ServerSideApply=true`` is recorded with a note
  (only targets with server-side apply honour it), ``Replace=true`` is recorded.
"""

from __future__ import annotations

import enum
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import yaml

from funade.core import fields
from funade.core.gitops import jq

__all__ = [
    "API_VERSION",
    "BACKGROUND_FINALIZER",
    "DEFAULT_AUTOMATED_RETRY_LIMIT",
    "DEFAULT_NAMESPACE",
    "DEFAULT_REVISION_HISTORY_LIMIT",
    "FOREGROUND_FINALIZER",
    "IN_CLUSTER_NAME",
    "IN_CLUSTER_SERVER",
    "LOCAL_TARGET",
    "RESOURCES_FINALIZER",
    "Application",
    "ApplicationError",
    "Automated",
    "Backoff",
    "Destination",
    "IgnoreDifference",
    "InfoItem",
    "Kustomize",
    "ManagedNamespaceMetadata",
    "PropagationPolicy",
    "RetryPolicy",
    "Source",
    "Subscription",
    "SyncOptions",
    "SyncPolicy",
    "parse",
    "parse_duration_seconds",
    "parse_subscriptions",
    "retry_delay",
    "should_retry",
]

API_VERSION = "argoproj.io/v1alpha1"
DEFAULT_NAMESPACE = "argocd"
"""``metadata.namespace`` when unset: the namespace Argo CD itself runs in."""
DEFAULT_REVISION_HISTORY_LIMIT = 10
"""``spec.revisionHistoryLimit`` when unset (``common.RevisionHistoryLimit``)."""
DEFAULT_AUTOMATED_RETRY_LIMIT = 5
"""Retries of an automated sync without ``syncPolicy.retry`` (``autoSync``: ``RetryStrategy{Limit: 5}``)."""
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
LOCAL_TARGET = "local"
"""The target name funade gives Argo's in-cluster destination."""
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
"""Deleting the Application deletes its resources (foreground cascade)."""
FOREGROUND_FINALIZER = RESOURCES_FINALIZER + "/foreground"
BACKGROUND_FINALIZER = RESOURCES_FINALIZER + "/background"

_SUBSCRIBE_PREFIX = "notifications.argoproj.io/subscribe."
_SUBSCRIPTIONS_KEY = "notifications.argoproj.io/subscriptions"
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GO_DURATION_PART = re.compile(r"([0-9]*\.?[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SECONDS = re.compile(r"^[+-]?[0-9]+$")


class ApplicationError(ValueError):
    """An Application Argo CD would refuse, or one funade cannot run; the message starts with the field path."""


_f = fields.Fields(ApplicationError)
_mapping, _opt_mapping, _list, _str = _f.mapping, _f.opt_mapping, _f.items, _f.text


class PropagationPolicy(enum.StrEnum):
    """``PrunePropagationPolicy``: how pruned objects' dependents are deleted."""

    FOREGROUND = "foreground"
    BACKGROUND = "background"
    ORPHAN = "orphan"


# ---------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Subscription:
    """One notification subscription: send ``trigger`` events to ``recipients`` over ``service``.

    ``trigger`` is None for ``subscribe.<service>``: the service's default triggers apply.
    A subscription without recipients (a webhook service) has one empty recipient, as in
    notifications-engine.
    """

    trigger: str | None
    service: str
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class Kustomize:
    """``source.kustomize``: the overrides funade passes to its Kustomize build."""

    images: tuple[str, ...] = ()
    name_prefix: str = ""
    name_suffix: str = ""
    common_labels: Mapping[str, str] = field(default_factory=dict)
    common_annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Source:
    """``spec.source``: a path in a git repository at a revision."""

    repo_url: str
    target_revision: str = "HEAD"
    path: str = "."
    recurse: bool = False
    kustomize: Kustomize | None = None


@dataclass(frozen=True)
class Destination:
    """``spec.destination``: a cluster by ``server`` URL or ``name``, and the default namespace."""

    server: str | None = None
    name: str | None = None
    namespace: str | None = None

    @property
    def target(self) -> str:
        """The funade target: ``local`` for Argo's in-cluster destination, else the server or name as given."""
        if self.server is not None:
            return LOCAL_TARGET if self.server.rstrip("/") == IN_CLUSTER_SERVER else self.server
        assert self.name is not None
        return LOCAL_TARGET if self.name == IN_CLUSTER_NAME else self.name


@dataclass(frozen=True)
class Automated:
    """``syncPolicy.automated``; every flag defaults to false, ``enabled`` to true."""

    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    enabled: bool = True


@dataclass(frozen=True)
class SyncOptions:
    """``syncPolicy.syncOptions`` read into flags; ``raw`` keeps the strings as written."""

    create_namespace: bool = False
    prune_last: bool = False
    prune_propagation_policy: PropagationPolicy = PropagationPolicy.FOREGROUND
    apply_out_of_sync_only: bool = False
    respect_ignore_differences: bool = False
    validate: bool = True
    server_side_apply: bool = False
    client_side_apply_migration: bool = True
    replace: bool = False
    force: bool = False
    skip_dry_run_on_missing_resource: bool = False
    fail_on_shared_resource: bool = False
    raw: tuple[str, ...] = ()


@dataclass(frozen=True)
class Backoff:
    """``retry.backoff`` in seconds; Argo's defaults are 5 s, factor 2, at most 3 m."""

    duration: float = 5.0
    factor: int = 2
    max_duration: float = 180.0


@dataclass(frozen=True)
class RetryPolicy:
    """``syncPolicy.retry``: ``limit`` retries after the first attempt; negative means unlimited."""

    limit: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    refresh: bool = False

    @property
    def unlimited(self) -> bool:
        """True when a negative limit asks for retries without end."""
        return self.limit < 0


@dataclass(frozen=True)
class ManagedNamespaceMetadata:
    """``syncPolicy.managedNamespaceMetadata``: labels and annotations for a namespace funade creates."""

    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SyncPolicy:
    """``spec.syncPolicy``; the default value is a manual sync without retries."""

    automated: Automated | None = None
    options: SyncOptions = field(default_factory=SyncOptions)
    retry: RetryPolicy | None = None
    managed_namespace_metadata: ManagedNamespaceMetadata | None = None

    @property
    def auto_sync(self) -> bool:
        """True when ``automated`` is set and not ``enabled: false``."""
        return self.automated is not None and self.automated.enabled

    @property
    def effective_retry(self) -> RetryPolicy | None:
        """The retry policy a sync started by the controller gets.

        ``retry`` when set; otherwise Argo's built-in five retries for automated sync and
        none for manual sync.
        """
        if self.retry is not None:
            return self.retry
        return RetryPolicy(limit=DEFAULT_AUTOMATED_RETRY_LIMIT) if self.auto_sync else None


@dataclass(frozen=True)
class IgnoreDifference:
    """``spec.ignoreDifferences[]``: fields of matching objects the diff leaves out.

    Empty ``group`` is the core group; ``*`` matches any group or kind. ``name`` and
    ``namespace`` match exactly when set (they are not globs).
    """

    kind: str
    group: str = ""
    name: str | None = None
    namespace: str | None = None
    json_pointers: tuple[str, ...] = ()
    jq_path_expressions: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


@dataclass(frozen=True)
class InfoItem:
    """``spec.info[]``: a name and value shown with the app."""

    name: str
    value: str


@dataclass(frozen=True)
class Application:
    """An ``argoproj.io/v1alpha1`` Application with Argo's defaults applied.

    ``warnings`` lists what was read but ignored (``"<path>: not supported, ignored"``);
    it takes no part in equality, so ``parse(app.to_dict()) == app``.
    """

    name: str
    source: Source
    destination: Destination
    namespace: str = DEFAULT_NAMESPACE
    project: str = "default"
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    revision_history_limit: int = DEFAULT_REVISION_HISTORY_LIMIT
    info: tuple[InfoItem, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    finalizers: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def target(self) -> str:
        """The funade target the app deploys to (see :attr:`Destination.target`)."""
        return self.destination.target

    @property
    def automated(self) -> Automated | None:
        """The automated sync settings when automatic sync is on, else None."""
        return self.sync_policy.automated if self.sync_policy.auto_sync else None

    @property
    def auto_sync(self) -> bool:
        """True when the controller syncs the app without being asked."""
        return self.sync_policy.auto_sync

    @property
    def auto_prune(self) -> bool:
        """True when an automatic sync deletes objects no longer in git."""
        return self.automated is not None and self.automated.prune

    @property
    def self_heal(self) -> bool:
        """True when drift in the live state is synced away without a new commit."""
        return self.automated is not None and self.automated.self_heal

    @property
    def allow_empty(self) -> bool:
        """True when an automatic sync may prune every object of the app."""
        return self.automated is not None and self.automated.allow_empty

    @property
    def subscriptions(self) -> tuple[Subscription, ...]:
        """Notification subscriptions from the annotations, sorted by trigger and service."""
        return parse_subscriptions(self.annotations)

    @property
    def cascade(self) -> PropagationPolicy | None:
        """How deleting the app deletes its objects: from the resources finalizer, None without one."""
        if BACKGROUND_FINALIZER in self.finalizers:
            return PropagationPolicy.BACKGROUND
        if RESOURCES_FINALIZER in self.finalizers or FOREGROUND_FINALIZER in self.finalizers:
            return PropagationPolicy.FOREGROUND
        return None

    def to_dict(self) -> dict[str, object]:
        """The Application as an Argo CD document, defaults written out; :func:`parse` reads it back equal."""
        metadata: dict[str, object] = {"name": self.name, "namespace": self.namespace}
        if self.labels:
            metadata["labels"] = dict(self.labels)
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        if self.finalizers:
            metadata["finalizers"] = list(self.finalizers)
        spec: dict[str, object] = {
            "project": self.project,
            "source": _source_dict(self.source),
            "destination": _destination_dict(self.destination),
            "revisionHistoryLimit": self.revision_history_limit,
        }
        policy = _sync_policy_dict(self.sync_policy)
        if policy:
            spec["syncPolicy"] = policy
        if self.ignore_differences:
            spec["ignoreDifferences"] = [_ignore_dict(rule) for rule in self.ignore_differences]
        if self.info:
            spec["info"] = [{"name": item.name, "value": item.value} for item in self.info]
        return {"apiVersion": API_VERSION, "kind": "Application", "metadata": metadata, "spec": spec}


# ---------------------------------------------------------------------------- retries


def should_retry(policy: RetryPolicy | None, retries_done: int) -> bool:
    """Whether a failed sync is retried after ``retries_done`` retries (Argo: ``count < limit || limit < 0``)."""
    if policy is None:
        return False
    return policy.limit < 0 or retries_done < policy.limit


def retry_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` = retries already made).

    Argo's ``RetryStrategy.NextRetryAt``: ``duration * factor ** attempt``, capped at
    ``maxDuration`` when that is positive. The first retry waits ``duration``; with the
    defaults the waits are 5, 10, 20, 40, 80, 160, 180, 180… seconds.

    Raises:
        ValueError: ``attempt`` is negative.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    backoff = policy.backoff
    try:
        wait = backoff.duration * float(backoff.factor) ** attempt
    except OverflowError:
        wait = float("inf")
    if backoff.max_duration > 0:
        wait = min(backoff.max_duration, wait)
    return max(0.0, wait)


def parse_duration_seconds(value: object, where: str) -> float:
    """A backoff duration: digits are seconds, else Go syntax (``5s``, ``3m``, ``1h30m``, ``500ms``).

    Argo's ``parseStringToDuration`` tries ``strconv.Atoi`` first, then ``time.ParseDuration``.

    Raises:
        ApplicationError: not a string, or neither form; the message starts with ``where``.
    """
    if not isinstance(value, str):
        raise ApplicationError(f'{where}: expected a duration string such as "5s", got {value!r}')
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(int(text))
    body = text.lstrip("+-")
    negative = text.startswith("-")
    if body == "0":
        return 0.0
    seconds = 0.0
    at = 0
    while at < len(body):
        m = _GO_DURATION_PART.match(body, at)
        if m is None:
            break
        seconds += float(m.group(1)) * _GO_UNITS[m.group(2)]
        at = m.end()
    if not body or at != len(body):
        raise ApplicationError(f"{where}: invalid duration {value!r} (use seconds or Go syntax such as 5s, 3m, 1h30m)")
    return -seconds if negative else seconds


# ---------------------------------------------------------------------------- notifications


def parse_subscriptions(annotations: Mapping[str, str]) -> tuple[Subscription, ...]:
    """Notification subscriptions in ``annotations``, sorted by trigger and service.

    ``notifications.argoproj.io/subscribe.<trigger>.<service>: <r1>;<r2>`` as
    notifications-engine reads it: the suffix is split on ``.``, the first part is the
    trigger and the second the service (a single part is the service, with the default
    triggers); recipients are split on ``;`` and trimmed, and an empty value is one empty
    recipient. The YAML list under ``notifications.argoproj.io/subscriptions`` (``trigger:
    [..]``, ``destinations: [{service, recipients}]``) adds one subscription per trigger and
    destination; an unreadable value adds none.
    """
    found: list[Subscription] = []
    for key, value in annotations.items():
        if key.startswith(_SUBSCRIBE_PREFIX):
            parts = key[len(_SUBSCRIBE_PREFIX) :].split(".")
            trigger: str | None = parts[0] if len(parts) >= 2 else None
            service = parts[1] if len(parts) >= 2 else parts[0]
            recipients = ("",) if value == "" else tuple(r.strip() for r in value.split(";") if r.strip())
            found.append(Subscription(trigger, service, recipients))
        elif key.startswith(_SUBSCRIPTIONS_KEY):
            found.extend(_yaml_subscriptions(value))
    return tuple(sorted(found, key=lambda s: (s.trigger or "", s.service, s.recipients)))


def _yaml_subscriptions(value: str) -> list[Subscription]:
    try:
        loaded = yaml.safe_load(value) if value else None
    except yaml.YAMLError:
        return []
    out: list[Subscription] = []
    for entry in loaded if isinstance(loaded, list) else []:
        if not isinstance(entry, Mapping):
            continue
        triggers: list[str | None] = [t for t in entry.get("trigger") or [] if isinstance(t, str)]
        if not triggers:
            triggers = [None]
        for dest in entry.get("destinations") or []:
            if not isinstance(dest, Mapping) or not isinstance(dest.get("service"), str):
                continue
            recipients = tuple(str(r) for r in dest.get("recipients") or [])
            out.extend(Subscription(t, str(dest["service"]), recipients) for t in triggers)
    return out


# ---------------------------------------------------------------------------- parsing helpers


def _opt_str(raw: Mapping[str, object], key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    return _str(value, f"{where}.{key}")


def _bool(raw: Mapping[str, object], key: str, where: str, default: bool) -> bool:
    value = raw.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApplicationError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def _int(raw: Mapping[str, object], key: str, where: str, default: int, *, minimum: int | None = None) -> int:
    value = raw.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApplicationError(f"{where}.{key}: expected an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ApplicationError(f"{where}.{key}: must be >= {minimum}, got {value}")
    return value


def _str_map(value: object, where: str) -> dict[str, str]:
    if value is None:
        return {}
    out: dict[str, str] = {}
    for key, item in _mapping(value, where).items():
        if not isinstance(item, str):
            raise ApplicationError(f"{where}.{key}: expected a string, got {item!r}")
        out[str(key)] = item
    return out


def _str_list(value: object, where: str) -> tuple[str, ...]:
    out: list[str] = []
    for i, item in enumerate(_list(value, where)):
        out.append(_str(item, f"{where}[{i}]"))
    return tuple(out)


def _unknown(raw: Mapping[str, object], known: Sequence[str], where: str, warnings: list[str]) -> None:
    for key in raw:
        if key not in known:
            warnings.append(f"{where}.{key}: not supported, ignored")


def _refuse(raw: Mapping[str, object], refused: Mapping[str, str], where: str) -> None:
    for key, reason in refused.items():
        if raw.get(key) not in (None, {}, [], ""):
            raise ApplicationError(f"{where}.{key}: {reason}")


# ---------------------------------------------------------------------------- parsing


_SOURCE_KEYS = ("repoURL", "targetRevision", "path", "directory", "kustomize", "ref", "name")
_SOURCE_REFUSED = {
    "helm": "Helm sources are not supported (render the chart into manifests, or use Kustomize)",
    "chart": "Helm chart repositories are not supported",
    "plugin": "config management plugins are not supported",
}
_DIRECTORY_REFUSED = {
    "jsonnet": "Jsonnet is not supported",
    "include": "directory include globs are not supported",
    "exclude": "directory exclude globs are not supported",
}
_KUSTOMIZE_KEYS = ("images", "namePrefix", "nameSuffix", "commonLabels", "commonAnnotations", "version")
_KUSTOMIZE_REFUSED = dict.fromkeys(
    (
        "namespace",
        "replicas",
        "patches",
        "components",
        "forceCommonLabels",
        "forceCommonAnnotations",
        "commonAnnotationsEnvsubst",
        "labelWithoutSelector",
        "labelIncludeTemplates",
        "apiVersions",
        "kubeVersion",
        "ignoreMissingComponents",
    ),
    "not supported; put it in the kustomization.yaml instead",
)
_SPEC_KEYS = (
    "project",
    "source",
    "sources",
    "destination",
    "syncPolicy",
    "ignoreDifferences",
    "revisionHistoryLimit",
    "info",
)
_SPEC_REFUSED = {"sourceHydrator": "source hydration is not supported"}
_OPTION_NAMES = (
    "ApplyOutOfSyncOnly",
    "ClientSideApplyMigration",
    "CreateNamespace",
    "FailOnSharedResource",
    "Force",
    "PruneLast",
    "PrunePropagationPolicy",
    "Replace",
    "RespectIgnoreDifferences",
    "ServerSideApply",
    "SkipDryRunOnMissingResource",
    "Validate",
)


def parse(doc: Mapping[str, object]) -> Application:
    """Read an Application document (as loaded from YAML), apply Argo's defaults and check it.

    Raises:
        ApplicationError: the message starts with the offending field, e.g.
            ``spec.source.repoURL: expected a non-empty string, got None``.
    """
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "Application":
        raise ApplicationError(
            f"kind: expected {API_VERSION} Application, got {doc.get('apiVersion')} {doc.get('kind')}"
        )
    warnings: list[str] = []
    meta = _mapping(doc.get("metadata"), "metadata")
    name = _str(meta.get("name"), "metadata.name")
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        raise ApplicationError(f"metadata.name: {name!r} is not a valid name (lowercase letters, digits, '-' and '.')")
    namespace = _opt_str(meta, "namespace", "metadata") or DEFAULT_NAMESPACE
    _check_namespace(namespace, "metadata.namespace")
    labels = _str_map(meta.get("labels"), "metadata.labels")
    annotations = _str_map(meta.get("annotations"), "metadata.annotations")
    finalizers = _str_list(meta.get("finalizers"), "metadata.finalizers")
    if doc.get("operation") is not None:
        warnings.append("operation: not supported, ignored (start a sync through funade instead)")

    spec = _mapping(doc.get("spec"), "spec")
    _refuse(spec, _SPEC_REFUSED, "spec")
    _unknown(spec, (*_SPEC_KEYS, *_SPEC_REFUSED), "spec", warnings)
    source = _parse_sources(spec, warnings)
    project = _opt_str(spec, "project", "spec") or "default"
    destination = _parse_destination(spec.get("destination"))
    policy_raw = _opt_mapping(spec, "syncPolicy", "spec")
    policy = SyncPolicy() if policy_raw is None else _parse_sync_policy(policy_raw, warnings)
    ignores = tuple(
        _parse_ignore(item, f"spec.ignoreDifferences[{i}]", warnings)
        for i, item in enumerate(_list(spec.get("ignoreDifferences"), "spec.ignoreDifferences"))
    )
    history = _int(spec, "revisionHistoryLimit", "spec", DEFAULT_REVISION_HISTORY_LIMIT, minimum=0)
    info: list[InfoItem] = []
    for i, item in enumerate(_list(spec.get("info"), "spec.info")):
        entry = _mapping(item, f"spec.info[{i}]")
        value = entry.get("value", "")
        if not isinstance(value, str):
            raise ApplicationError(f"spec.info[{i}].value: expected a string, got {value!r}")
        info.append(InfoItem(_str(entry.get("name"), f"spec.info[{i}].name"), value))
    return Application(
        name=name,
        namespace=namespace,
        source=source,
        destination=destination,
        project=project,
        sync_policy=policy,
        ignore_differences=ignores,
        revision_history_limit=history,
        info=tuple(info),
        labels=labels,
        annotations=annotations,
        finalizers=finalizers,
        warnings=tuple(warnings),
    )


def _check_namespace(value: str, where: str) -> None:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ApplicationError(f"{where}: {value!r} is not a valid namespace name")


def _parse_sources(spec: Mapping[str, object], warnings: list[str]) -> Source:
    sources = _list(spec.get("sources"), "spec.sources")
    if len(sources) > 1:
        raise ApplicationError(
            f"spec.sources: multiple sources ({len(sources)}) are not supported; use one spec.source"
        )
    if sources:
        if spec.get("source") is not None:
            warnings.append("spec.source: not supported, ignored (spec.sources takes precedence, as in Argo CD)")
        return _parse_source(sources[0], "spec.sources[0]", warnings, lone=True)
    if spec.get("source") is None:
        raise ApplicationError("spec.source: required (a repoURL, targetRevision and path)")
    return _parse_source(spec.get("source"), "spec.source", warnings)


def _parse_source(value: object, where: str, warnings: list[str], *, lone: bool = False) -> Source:
    raw = _mapping(value, where)
    _refuse(raw, _SOURCE_REFUSED, where)
    _unknown(raw, (*_SOURCE_KEYS, *_SOURCE_REFUSED), where, warnings)
    if lone and raw.get("ref"):
        warnings.append(f"{where}.ref: not supported, ignored (it only matters with several sources)")
    repo_url = _str(raw.get("repoURL"), f"{where}.repoURL")
    revision = _opt_str(raw, "targetRevision", where) or "HEAD"
    path = raw.get("path")
    if path is None or path == "":
        path = "."
    if not isinstance(path, str):
        raise ApplicationError(f"{where}.path: expected a string, got {path!r}")
    normalized = posixpath.normpath(path.lstrip("/"))
    if normalized == ".." or normalized.startswith("../"):
        raise ApplicationError(f"{where}.path: {path!r} leaves the repository")
    recurse = False
    directory = _opt_mapping(raw, "directory", where)
    if directory is not None:
        _refuse(directory, _DIRECTORY_REFUSED, f"{where}.directory")
        _unknown(directory, ("recurse", *_DIRECTORY_REFUSED), f"{where}.directory", warnings)
        recurse = _bool(directory, "recurse", f"{where}.directory", False)
    kustomize: Kustomize | None = None
    kustomize_raw = _opt_mapping(raw, "kustomize", where)
    if kustomize_raw is not None:
        at = f"{where}.kustomize"
        _refuse(kustomize_raw, _KUSTOMIZE_REFUSED, at)
        _unknown(kustomize_raw, (*_KUSTOMIZE_KEYS, *_KUSTOMIZE_REFUSED), at, warnings)
        if kustomize_raw.get("version"):
            warnings.append(f"{at}.version: not supported, ignored (funade runs its own kustomize)")
        kustomize = Kustomize(
            images=_str_list(kustomize_raw.get("images"), f"{at}.images"),
            name_prefix=_opt_str(kustomize_raw, "namePrefix", at) or "",
            name_suffix=_opt_str(kustomize_raw, "nameSuffix", at) or "",
            common_labels=_str_map(kustomize_raw.get("commonLabels"), f"{at}.commonLabels"),
            common_annotations=_str_map(kustomize_raw.get("commonAnnotations"), f"{at}.commonAnnotations"),
        )
    return Source(repo_url=repo_url, target_revision=revision, path=path, recurse=recurse, kustomize=kustomize)


def _parse_destination(value: object) -> Destination:
    raw = _mapping(value, "spec.destination")
    server = _opt_str(raw, "server", "spec.destination")
    name = _opt_str(raw, "name", "spec.destination")
    if server is not None and name is not None:
        raise ApplicationError("spec.destination: set server or name, not both (Argo CD refuses both)")
    if server is None and name is None:
        raise ApplicationError("spec.destination: server or name is required")
    namespace = _opt_str(raw, "namespace", "spec.destination")
    if namespace is not None:
        _check_namespace(namespace, "spec.destination.namespace")
    return Destination(server=server, name=name, namespace=namespace)


def _parse_sync_policy(raw: Mapping[str, object], warnings: list[str]) -> SyncPolicy:
    where = "spec.syncPolicy"
    _unknown(raw, ("automated", "syncOptions", "retry", "managedNamespaceMetadata"), where, warnings)
    automated: Automated | None = None
    if "automated" in raw:
        # ``automated: {}`` and a bare ``automated:`` both turn automatic sync on.
        body = raw.get("automated") or {}
        auto = _mapping(body, f"{where}.automated")
        at = f"{where}.automated"
        _unknown(auto, ("prune", "selfHeal", "allowEmpty", "enabled"), at, warnings)
        automated = Automated(
            prune=_bool(auto, "prune", at, False),
            self_heal=_bool(auto, "selfHeal", at, False),
            allow_empty=_bool(auto, "allowEmpty", at, False),
            enabled=_bool(auto, "enabled", at, True),
        )
    options = _parse_sync_options(raw.get("syncOptions"), f"{where}.syncOptions", warnings)
    retry: RetryPolicy | None = None
    retry_raw = _opt_mapping(raw, "retry", where)
    if retry_raw is not None:
        retry = _parse_retry(retry_raw, f"{where}.retry", warnings)
    managed: ManagedNamespaceMetadata | None = None
    if "managedNamespaceMetadata" in raw:
        at = f"{where}.managedNamespaceMetadata"
        body = _mapping(raw.get("managedNamespaceMetadata") or {}, at)
        _unknown(body, ("labels", "annotations"), at, warnings)
        managed = ManagedNamespaceMetadata(
            labels=_str_map(body.get("labels"), f"{at}.labels"),
            annotations=_str_map(body.get("annotations"), f"{at}.annotations"),
        )
    return SyncPolicy(automated=automated, options=options, retry=retry, managed_namespace_metadata=managed)


def _parse_sync_options(value: object, where: str, warnings: list[str]) -> SyncOptions:
    flags: dict[str, bool] = {}
    policy = PropagationPolicy.FOREGROUND
    seen: dict[str, int] = {}
    raw: list[str] = []
    for i, item in enumerate(_list(value, where)):
        at = f"{where}[{i}]"
        text = _str(item, at)
        raw.append(text)
        key, sep, setting = text.partition("=")
        key, setting = key.strip(), setting.strip()
        if not sep:
            raise ApplicationError(f"{at}: {text!r} is not Key=Value")
        if key not in _OPTION_NAMES:
            raise ApplicationError(f"{at}: unknown sync option {key!r} (known: {', '.join(sorted(_OPTION_NAMES))})")
        if key in seen:
            raise ApplicationError(f"{at}: {key} is already set at {where}[{seen[key]}]")
        seen[key] = i
        if key == "PrunePropagationPolicy":
            try:
                policy = PropagationPolicy(setting)
            except ValueError:
                raise ApplicationError(f"{at}: {text!r}: use foreground, background or orphan") from None
            continue
        if setting not in ("true", "false"):
            raise ApplicationError(f"{at}: {text!r}: expected {key}=true or {key}=false")
        flags[key] = setting == "true"
        if key == "ServerSideApply" and setting == "true":
            warnings.append(f"{at}: ServerSideApply=true is recorded; only targets with server-side apply honour it")
    return SyncOptions(
        create_namespace=flags.get("CreateNamespace", False),
        prune_last=flags.get("PruneLast", False),
        prune_propagation_policy=policy,
        apply_out_of_sync_only=flags.get("ApplyOutOfSyncOnly", False),
        respect_ignore_differences=flags.get("RespectIgnoreDifferences", False),
        validate=flags.get("Validate", True),
        server_side_apply=flags.get("ServerSideApply", False),
        client_side_apply_migration=flags.get("ClientSideApplyMigration", True),
        replace=flags.get("Replace", False),
        force=flags.get("Force", False),
        skip_dry_run_on_missing_resource=flags.get("SkipDryRunOnMissingResource", False),
        fail_on_shared_resource=flags.get("FailOnSharedResource", False),
        raw=tuple(raw),
    )


def _parse_retry(raw: Mapping[str, object], where: str, warnings: list[str]) -> RetryPolicy:
    _unknown(raw, ("limit", "backoff", "refresh"), where, warnings)
    limit = _int(raw, "limit", where, 0)
    refresh = _bool(raw, "refresh", where, False)
    backoff = Backoff()
    body = _opt_mapping(raw, "backoff", where)
    if body is not None:
        at = f"{where}.backoff"
        _unknown(body, ("duration", "factor", "maxDuration"), at, warnings)
        duration = backoff.duration
        if body.get("duration") not in (None, ""):
            duration = parse_duration_seconds(body.get("duration"), f"{at}.duration")
            if duration < 0:
                raise ApplicationError(f"{at}.duration: must not be negative")
        max_duration = backoff.max_duration
        if body.get("maxDuration") not in (None, ""):
            max_duration = parse_duration_seconds(body.get("maxDuration"), f"{at}.maxDuration")
        factor = _int(body, "factor", at, backoff.factor)
        backoff = Backoff(duration=duration, factor=factor, max_duration=max_duration)
    return RetryPolicy(limit=limit, backoff=backoff, refresh=refresh)


def _parse_ignore(value: object, where: str, warnings: list[str]) -> IgnoreDifference:
    raw = _mapping(value, where)
    known = ("group", "kind", "name", "namespace", "jsonPointers", "jqPathExpressions", "managedFieldsManagers")
    _unknown(raw, known, where, warnings)
    kind = _str(raw.get("kind"), f"{where}.kind")
    group = raw.get("group") or ""
    if not isinstance(group, str):
        raise ApplicationError(f"{where}.group: expected a string, got {group!r}")
    pointers = _str_list(raw.get("jsonPointers"), f"{where}.jsonPointers")
    for i, pointer in enumerate(pointers):
        if not pointer.startswith("/"):
            raise ApplicationError(f"{where}.jsonPointers[{i}]: {pointer!r} is not a JSON pointer (starts with /)")
    expressions = _str_list(raw.get("jqPathExpressions"), f"{where}.jqPathExpressions")
    for i, expression in enumerate(expressions):
        try:
            jq.compile(expression)
        except jq.JqError as exc:
            raise ApplicationError(f"{where}.jqPathExpressions[{i}]: {exc}") from None
    managers = _str_list(raw.get("managedFieldsManagers"), f"{where}.managedFieldsManagers")
    if managers:
        warnings.append(f"{where}.managedFieldsManagers: not supported, ignored (funade does not track field managers)")
    return IgnoreDifference(
        kind=kind,
        group=group,
        name=_opt_str(raw, "name", where),
        namespace=_opt_str(raw, "namespace", where),
        json_pointers=pointers,
        jq_path_expressions=expressions,
        managed_fields_managers=managers,
    )


# ---------------------------------------------------------------------------- to_dict


def _source_dict(source: Source) -> dict[str, object]:
    out: dict[str, object] = {
        "repoURL": source.repo_url,
        "targetRevision": source.target_revision,
        "path": source.path,
    }
    if source.recurse:
        out["directory"] = {"recurse": True}
    if source.kustomize is not None:
        k = source.kustomize
        body: dict[str, object] = {}
        if k.images:
            body["images"] = list(k.images)
        if k.name_prefix:
            body["namePrefix"] = k.name_prefix
        if k.name_suffix:
            body["nameSuffix"] = k.name_suffix
        if k.common_labels:
            body["commonLabels"] = dict(k.common_labels)
        if k.common_annotations:
            body["commonAnnotations"] = dict(k.common_annotations)
        out["kustomize"] = body
    return out


def _destination_dict(destination: Destination) -> dict[str, object]:
    out: dict[str, object] = {}
    if destination.server is not None:
        out["server"] = destination.server
    if destination.name is not None:
        out["name"] = destination.name
    if destination.namespace is not None:
        out["namespace"] = destination.namespace
    return out


def _sync_policy_dict(policy: SyncPolicy) -> dict[str, object]:
    out: dict[str, object] = {}
    if policy.automated is not None:
        a = policy.automated
        out["automated"] = {
            "prune": a.prune,
            "selfHeal": a.self_heal,
            "allowEmpty": a.allow_empty,
            "enabled": a.enabled,
        }
    if policy.options.raw:
        out["syncOptions"] = list(policy.options.raw)
    if policy.retry is not None:
        r = policy.retry
        out["retry"] = {
            "limit": r.limit,
            "refresh": r.refresh,
            "backoff": {
                "duration": _seconds_text(r.backoff.duration),
                "factor": r.backoff.factor,
                "maxDuration": _seconds_text(r.backoff.max_duration),
            },
        }
    if policy.managed_namespace_metadata is not None:
        m = policy.managed_namespace_metadata
        out["managedNamespaceMetadata"] = {"labels": dict(m.labels), "annotations": dict(m.annotations)}
    return out


def _seconds_text(seconds: float) -> str:
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.9f}".rstrip("0").rstrip(".") + "s"


def _ignore_dict(rule: IgnoreDifference) -> dict[str, object]:
    out: dict[str, object] = {"group": rule.group, "kind": rule.kind}
    if rule.name is not None:
        out["name"] = rule.name
    if rule.namespace is not None:
        out["namespace"] = rule.namespace
    if rule.json_pointers:
        out["jsonPointers"] = list(rule.json_pointers)
    if rule.jq_path_expressions:
        out["jqPathExpressions"] = list(rule.jq_path_expressions)
    if rule.managed_fields_managers:
        out["managedFieldsManagers"] = list(rule.managed_fields_managers)
    return out
