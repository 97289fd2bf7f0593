"""Typed Kubernetes objects for the kinds the local target runs, validated like the API server.

The local target interprets Kubernetes objects itself, so it has to accept exactly
what a cluster accepts and fill in the same defaults: a typo such as ``imagee`` must
fail like ``kubectl apply --validate=strict`` does, and an omitted ``periodSeconds``
must mean 10 seconds. The pydantic models here use Kubernetes' camelCase field names,
forbid unknown fields, apply the API server's defaults (``imagePullPolicy``, probe
timings, rolling-update surge...) and its validation rules (names, selectors,
volume references, ports).

Kinds funade does not run (HorizontalPodAutoscaler, Rollout, any CRD...) are kept as
:class:`GenericObject`: stored and listed, never dropped. A Service is a GenericObject
too; :mod:`funade.core.services` validates the parts the local target serves.

Use :func:`parse` on a plain mapping, :func:`parse_document` on a loaded
:class:`~funade.core.manifests.Document` (errors then carry file, line and field),
and :func:`to_dict` for the stored form.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self, TypeAlias, cast

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from funade.core import intstr, quantity, selectors
from funade.core.manifests import Document, FieldError, error_from_validation

__all__ = [
    "CLUSTER_SCOPED",
    "RUNNABLE_KINDS",
    "TYPED_KINDS",
    "AppArmorProfile",
    "Capabilities",
    "ConfigMap",
    "ConfigMapEnvSource",
    "ConfigMapKeySelector",
    "ConfigMapVolumeSource",
    "Container",
    "ContainerPort",
    "ContainerResizePolicy",
    "Deployment",
    "DeploymentSpec",
    "DeploymentStrategy",
    "EmptyDirVolumeSource",
    "EnvFromSource",
    "EnvVar",
    "EnvVarSource",
    "ExecAction",
    "GRPCAction",
    "GenericObject",
    "HTTPGetAction",
    "HTTPHeader",
    "HostAlias",
    "HostPathVolumeSource",
    "KeyToPath",
    "KubeObject",
    "LabelSelector",
    "LabelSelectorRequirement",
    "Lifecycle",
    "LifecycleHandler",
    "LocalObjectReference",
    "Namespace",
    "NamespaceSpec",
    "ObjectFieldSelector",
    "ObjectMeta",
    "OwnerReference",
    "PersistentVolumeClaimVolumeSource",
    "Pod",
    "PodOS",
    "PodReadinessGate",
    "PodSecurityContext",
    "PodSpec",
    "PodTemplateSpec",
    "Probe",
    "ReplicaSet",
    "ReplicaSetSpec",
    "ResourceFieldSelector",
    "ResourceRequirements",
    "RollingUpdateDeployment",
    "SELinuxOptions",
    "SeccompProfile",
    "Secret",
    "SecretEnvSource",
    "SecretKeySelector",
    "SecretVolumeSource",
    "SecurityContext",
    "SleepAction",
    "Sysctl",
    "TCPSocketAction",
    "Volume",
    "VolumeDevice",
    "VolumeMount",
    "WindowsSecurityContextOptions",
    "default_pull_policy",
    "dns1123_label_error",
    "dns1123_subdomain_error",
    "parse",
    "parse_document",
    "split_image",
    "to_dict",
]

# --- name rules ----------------------------------------------------------------------

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_IANA_SVC_NAME = re.compile(r"[-a-z0-9]+")
_ENV_VAR_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_MAX_CONFIG_BYTES = 1024 * 1024


CLUSTER_SCOPED = frozenset(
    {
        "APIService",
        "ClusterAnalysisTemplate",
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "Namespace",
        "Node",
        "PersistentVolume",
        "PodSecurityPolicy",
        "PriorityClass",
        "RuntimeClass",
        "StorageClass",
        "ValidatingWebhookConfiguration",
    }
)
"""Kinds without a namespace (what API discovery would say; the local target has a fixed list)."""


def dns1123_label_error(value: str) -> str | None:
    """Return why ``value`` is not an RFC 1123 label (≤ 63 chars), or None."""
    if len(value) > 63:
        return f'invalid value "{value}": must be no more than 63 characters'
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            f'invalid value "{value}": a lowercase RFC 1123 label must consist of lower case '
            "alphanumeric characters or '-', and must start and end with an alphanumeric "
            "character (e.g. 'my-name', or '123-abc')"
        )
    return None


def dns1123_subdomain_error(value: str) -> str | None:
    """Return why ``value`` is not an RFC 1123 subdomain (≤ 253 chars), or None."""
    if len(value) > 253:
        return f'invalid value "{value}": must be no more than 253 characters'
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        return (
            f'invalid value "{value}": a lowercase RFC 1123 subdomain must consist of lower '
            "case alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character (e.g. 'example.com')"
        )
    return None


def _path_segment_error(value: str) -> str | None:
    """The minimal rule the API server applies to every name (used for other kinds)."""
    if value in (".", ".."):
        return f'invalid value "{value}": may not be "." or ".."'
    for bad in ("/", "%"):
        if bad in value:
            return f'invalid value "{value}": may not contain "{bad}"'
    return None


def _port_name_error(value: str) -> str | None:
    if len(value) > 15:
        return f'invalid value "{value}": must be no more than 15 characters'
    if not _IANA_SVC_NAME.fullmatch(value):
        return f"invalid value \"{value}\": must contain only lowercase alphanumeric characters or '-'"
    if not re.search(r"[a-z]", value):
        return f'invalid value "{value}": must contain at least one letter (a-z)'
    if "--" in value:
        return f'invalid value "{value}": must not contain consecutive hyphens'
    if value.startswith("-") or value.endswith("-"):
        return f'invalid value "{value}": must not begin or end with a hyphen'
    return None


def _config_key_error(key: str) -> str | None:
    if len(key) > 253:
        return f'invalid key "{key}": must be no more than 253 characters'
    if not _CONFIG_KEY.fullmatch(key):
        return f"invalid key \"{key}\": a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    if key in (".", "..") or key.startswith(".."):
        return f'invalid key "{key}": must not be "." or ".." and must not start with ".."'
    return None


def _check(error: str | None) -> None:
    if error is not None:
        raise ValueError(error)


# --- field types ---------------------------------------------------------------------


def _quantity_value(value: Any) -> Any:
    """Validate a quantity and keep it as the string the user wrote."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return value  # the str validator reports the wrong type
    quantity.parse_quantity(value)
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int) else repr(value)


def _non_negative_quantity(value: str) -> str:
    if quantity.parse_quantity(value) < 0:
        raise ValueError(f'invalid value "{value}": must be greater than or equal to 0')
    return value


Quantity = Annotated[str, BeforeValidator(_quantity_value), AfterValidator(_non_negative_quantity)]
"""A non-negative resource quantity, stored as written (``"500m"``, ``"1Gi"``, ``"2"``)."""


def _int_or_string(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"must be an integer or a string, got {value!r}")
    return value


IntOrString = Annotated[int | str, BeforeValidator(_int_or_string)]


def _port_ref(value: int | str) -> int | str:
    if isinstance(value, int):
        if not 1 <= value <= 65535:
            raise ValueError(f"invalid value {value}: must be between 1 and 65535, inclusive")
        return value
    _check(_port_name_error(value))
    return value


PortRef = Annotated[int | str, BeforeValidator(_int_or_string), AfterValidator(_port_ref)]
"""A port number (1–65535) or the name of a container port."""

PortNumber = Annotated[int, Field(ge=1, le=65535)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveInt = Annotated[int, Field(ge=1)]
FileMode = Annotated[int, Field(ge=0, le=0o777)]
Loose = dict[str, Any]
"""A field funade stores and passes on without interpreting it."""


class _Model(BaseModel):
    """Kubernetes field names, strict JSON types, unknown fields rejected, immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
        strict=True,
    )


def _exactly_one(model: BaseModel, names: tuple[str, ...], none: str, many: str) -> None:
    """Require exactly one of the fields ``names`` to be set (handlers, sources)."""
    present = [name for name in names if getattr(model, name) is not None]
    if not present:
        raise ValueError(none)
    if len(present) > 1:
        alias = type(model).model_fields[present[1]].alias or present[1]
        raise FieldError((alias,), many)


# --- metadata ------------------------------------------------------------------------


class OwnerReference(_Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(_Model):
    """``metadata``: identity, labels and bookkeeping. ``namespace`` stays None when unset."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    self_link: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None
    finalizers: list[str] | None = None
    managed_fields: list[Loose] | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.namespace is not None and (error := dns1123_label_error(self.namespace)):
            raise FieldError(("namespace",), error)
        for key, value in (self.labels or {}).items():
            if error := selectors.label_key_error(key):
                raise FieldError(("labels", key), error)
            if error := selectors.label_value_error(value):
                raise FieldError(("labels", key), error)
        total = 0
        for key, value in (self.annotations or {}).items():
            if error := selectors.label_key_error(key):
                raise FieldError(("annotations", key), error)
            total += len(key) + len(value)
        if total > 256 * 1024:
            raise FieldError(("annotations",), "must have at most 262144 bytes")
        return self


class LabelSelectorRequirement(_Model):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _check(selectors.label_key_error(self.key))
        if self.operator in ("In", "NotIn") and not self.values:
            raise FieldError(("values",), "must be specified when `operator` is 'In' or 'NotIn'")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise FieldError(("values",), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
        for index, value in enumerate(self.values or ()):
            if error := selectors.label_value_error(value):
                raise FieldError(("values", index), error)
        return self


class LabelSelector(_Model):
    """``matchLabels`` and ``matchExpressions``, ANDed; empty selects everything."""

    match_labels: dict[str, str] | None = None
    match_expressions: list[LabelSelectorRequirement] | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        for key, value in (self.match_labels or {}).items():
            if error := selectors.label_key_error(key) or selectors.label_value_error(value):
                raise FieldError(("matchLabels", key), error)
        return self

    @property
    def empty(self) -> bool:
        """True when the selector has no requirement at all."""
        return not self.match_labels and not self.match_expressions

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Tell whether ``labels`` are selected."""
        return selectors.matches(self, labels)

    def __str__(self) -> str:
        return selectors.selector_string(self)


# --- containers ----------------------------------------------------------------------


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """Split an image reference into ``(repository, tag, digest)``.

    A colon only starts a tag after the last ``/``: in ``localhost:5000/app`` it
    introduces the registry port, so that image has no tag.
    """
    name, at, digest = image.partition("@")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1 :]
    return name, tag, (digest if at else None)


def default_pull_policy(image: str) -> Literal["Always", "IfNotPresent"]:
    """Kubernetes' default ``imagePullPolicy``: Always for ``:latest`` or untagged images.

    An image pinned by digest without a tag is IfNotPresent.
    """
    _, tag, digest = split_image(image)
    if tag == "latest" or (tag is None and digest is None):
        return "Always"
    return "IfNotPresent"


class ContainerPort(_Model):
    name: str | None = None
    container_port: PortNumber
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    host_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.name is not None and (error := _port_name_error(self.name)):
            raise FieldError(("name",), error)
        return self


class ObjectFieldSelector(_Model):
    api_version: str = "v1"
    field_path: str


class ResourceFieldSelector(_Model):
    container_name: str | None = None
    resource: str
    divisor: Quantity | None = None


class ConfigMapKeySelector(_Model):
    name: str
    key: str
    optional: bool | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if error := _config_key_error(self.key):
            raise FieldError(("key",), error)
        return self


class SecretKeySelector(ConfigMapKeySelector):
    pass


class EnvVarSource(_Model):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _exactly_one(
            self,
            ("field_ref", "resource_field_ref", "config_map_key_ref", "secret_key_ref"),
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            "may not have more than one field specified at a time",
        )
        return self


class EnvVar(_Model):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if not self.name:
            raise FieldError(("name",), "name is required")
        if not _ENV_VAR_NAME.fullmatch(self.name):
            raise FieldError(
                ("name",),
                f'invalid value "{self.name}": a valid environment variable name must consist '
                "of alphabetic characters, digits, '_', '-', or '.', and must not start with "
                "a digit",
            )
        if self.value and self.value_from is not None:
            raise FieldError(("valueFrom",), "may not be specified when `value` is not empty")
        return self


class ConfigMapEnvSource(_Model):
    name: str
    optional: bool | None = None


class SecretEnvSource(ConfigMapEnvSource):
    pass


class EnvFromSource(_Model):
    prefix: str | None = None
    config_map_ref: ConfigMapEnvSource | None = None
    secret_ref: SecretEnvSource | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _exactly_one(
            self,
            ("config_map_ref", "secret_ref"),
            "must specify one of: `configMapRef` or `secretRef`",
            "may not have more than one field specified at a time",
        )
        return self


_STANDARD_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})


def _resource_name_error(name: str) -> str | None:
    if name in _STANDARD_RESOURCES or name.startswith("hugepages-"):
        return None
    if "/" in name and selectors.label_key_error(name) is None:
        return None  # an extended resource such as nvidia.com/gpu
    return f'invalid resource name "{name}": must be a standard resource for containers'


class ResourceRequirements(_Model):
    limits: dict[str, Quantity] | None = None
    requests: dict[str, Quantity] | None = None
    claims: list[Loose] | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        for field_name, values in (("limits", self.limits), ("requests", self.requests)):
            for name in values or {}:
                if error := _resource_name_error(name):
                    raise FieldError((field_name, name), error)
        limits = self.limits or {}
        for name, request in (self.requests or {}).items():
            limit = limits.get(name)
            if limit is not None and quantity.parse_quantity(request) > quantity.parse_quantity(limit):
                raise FieldError(("requests", name), f"must be less than or equal to {name} limit of {limit}")
        return self


class ContainerResizePolicy(_Model):
    resource_name: str
    restart_policy: Literal["NotRequired", "RestartContainer"]


class VolumeMount(_Model):
    name: str
    mount_path: str
    read_only: bool | None = None
    recursive_read_only: Literal["Disabled", "IfPossible", "Enabled"] | None = None
    sub_path: str | None = None
    mount_propagation: Literal["None", "HostToContainer", "Bidirectional"] | None = None
    sub_path_expr: str | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if not self.mount_path:
            raise FieldError(("mountPath",), "mountPath is required")
        if self.sub_path and self.sub_path_expr:
            raise FieldError(("subPathExpr",), "subPathExpr and subPath are mutually exclusive")
        if self.sub_path:
            if self.sub_path.startswith("/"):
                raise FieldError(("subPath",), "must be a relative path")
            if ".." in self.sub_path.split("/"):
                raise FieldError(("subPath",), "must not contain '..'")
        return self


class VolumeDevice(_Model):
    name: str
    device_path: str


class ExecAction(_Model):
    command: list[str] | None = None


class HTTPHeader(_Model):
    name: str
    value: str


class HTTPGetAction(_Model):
    path: str = "/"
    port: PortRef
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    http_headers: list[HTTPHeader] | None = None


class TCPSocketAction(_Model):
    port: PortRef
    host: str | None = None


class GRPCAction(_Model):
    port: PortNumber
    service: str | None = None


class SleepAction(_Model):
    seconds: PositiveInt


_PROBE_DEFAULTS = {
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "successThreshold": 1,
    "failureThreshold": 3,
}


class Probe(_Model):
    """A liveness, readiness or startup check: exactly one handler plus timings."""

    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    grpc: GRPCAction | None = None
    initial_delay_seconds: NonNegativeInt = 0
    timeout_seconds: PositiveInt = 1
    period_seconds: PositiveInt = 10
    success_threshold: PositiveInt = 1
    failure_threshold: PositiveInt = 3
    termination_grace_period_seconds: PositiveInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _zero_means_default(cls, data: Any) -> Any:
        # SetDefaults_Probe treats an explicit 0 like an omitted value.
        if isinstance(data, dict) and any(data.get(k) == 0 for k in _PROBE_DEFAULTS):
            data = dict(data)
            for key, default in _PROBE_DEFAULTS.items():
                value = data.get(key)
                if value == 0 and not isinstance(value, bool):
                    data[key] = default
        return data

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _exactly_one(
            self,
            ("exec", "http_get", "tcp_socket", "grpc"),
            "must specify a handler type (exec, httpGet, tcpSocket or grpc)",
            "may not specify more than 1 handler type",
        )
        return self


class LifecycleHandler(_Model):
    exec: ExecAction | None = None
    http_get: HTTPGetAction | None = None
    tcp_socket: TCPSocketAction | None = None
    sleep: SleepAction | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _exactly_one(
            self,
            ("exec", "http_get", "tcp_socket", "sleep"),
            "must specify a handler type (exec, httpGet, tcpSocket or sleep)",
            "may not specify more than 1 handler type",
        )
        return self


class Lifecycle(_Model):
    post_start: LifecycleHandler | None = None
    pre_stop: LifecycleHandler | None = None


class Capabilities(_Model):
    add: list[str] | None = None
    drop: list[str] | None = None


class SeccompProfile(_Model):
    type: Literal["RuntimeDefault", "Unconfined", "Localhost"]
    localhost_profile: str | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.type == "Localhost" and not self.localhost_profile:
            raise FieldError(("localhostProfile",), "must be set when seccomp type is Localhost")
        if self.type != "Localhost" and self.localhost_profile is not None:
            raise FieldError(("localhostProfile",), "can only be set when seccomp type is Localhost")
        return self


class AppArmorProfile(SeccompProfile):
    pass


class SELinuxOptions(_Model):
    user: str | None = None
    role: str | None = None
    type: str | None = None
    level: str | None = None


class WindowsSecurityContextOptions(_Model):
    gmsa_credential_spec_name: str | None = None
    gmsa_credential_spec: str | None = None
    run_as_user_name: str | None = None
    host_process: bool | None = None


class SecurityContext(_Model):
    """A container's ``securityContext``."""

    capabilities: Capabilities | None = None
    privileged: bool | None = None
    se_linux_options: SELinuxOptions | None = None
    windows_options: WindowsSecurityContextOptions | None = None
    run_as_user: NonNegativeInt | None = None
    run_as_group: NonNegativeInt | None = None
    run_as_non_root: bool | None = None
    read_only_root_filesystem: bool | None = None
    allow_privilege_escalation: bool | None = None
    proc_mount: Literal["Default", "Unmasked"] | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.allow_privilege_escalation is False and self.privileged:
            raise FieldError(
                ("allowPrivilegeEscalation",),
                "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
            )
        return self


class Container(_Model):
    """A container of a pod (``containers`` or ``initContainers``).

    ``imagePullPolicy`` defaults as in Kubernetes: ``Always`` for ``:latest`` or
    untagged images, ``IfNotPresent`` otherwise. ``restartPolicy: Always`` is only
    allowed on init containers (sidecars).
    """

    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    ports: list[ContainerPort] | None = None
    env_from: list[EnvFromSource] | None = None
    env: list[EnvVar] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: list[ContainerResizePolicy] | None = None
    restart_policy: Literal["Always"] | None = None
    volume_mounts: list[VolumeMount] | None = None
    volume_devices: list[VolumeDevice] | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    termination_message_path: str = "/dev/termination-log"
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] = "File"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    security_context: SecurityContext | None = None
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_pull_policy(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        image = data.get("image")
        if "imagePullPolicy" in data or "image_pull_policy" in data or not isinstance(image, str):
            return data
        return {**data, "imagePullPolicy": default_pull_policy(image)}

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if error := dns1123_label_error(self.name):
            raise FieldError(("name",), error)
        if not self.image:
            raise FieldError(("image",), "image is required")
        if self.image != self.image.strip():
            raise FieldError(("image",), "must not have leading or trailing whitespace")
        port_names: set[str] = set()
        for index, port in enumerate(self.ports or ()):
            if port.name is not None:
                if port.name in port_names:
                    raise FieldError(("ports", index, "name"), f'duplicate port name "{port.name}"')
                port_names.add(port.name)
        mount_paths: set[str] = set()
        for index, mount in enumerate(self.volume_mounts or ()):
            if mount.mount_path in mount_paths:
                raise FieldError(
                    ("volumeMounts", index, "mountPath"),
                    f'duplicate mount path "{mount.mount_path}": must be unique',
                )
            mount_paths.add(mount.mount_path)
        for field_name, probe in (
            ("livenessProbe", self.liveness_probe),
            ("startupProbe", self.startup_probe),
        ):
            if probe is not None and probe.success_threshold != 1:
                raise FieldError((field_name, "successThreshold"), "must be 1")
        return self


# --- volumes ---------------------------------------------------------------------------


class KeyToPath(_Model):
    key: str
    path: str
    mode: FileMode | None = None


class ConfigMapVolumeSource(_Model):
    name: str
    items: list[KeyToPath] | None = None
    default_mode: FileMode = 0o644
    optional: bool | None = None


class SecretVolumeSource(_Model):
    secret_name: str
    items: list[KeyToPath] | None = None
    default_mode: FileMode = 0o644
    optional: bool | None = None


class EmptyDirVolumeSource(_Model):
    medium: str = ""
    size_limit: Quantity | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.medium not in ("", "Memory", "HugePages") and not self.medium.startswith("HugePages-"):
            raise FieldError(
                ("medium",),
                f'Unsupported value: "{self.medium}": supported values: "", "Memory"',
            )
        return self


class HostPathVolumeSource(_Model):
    path: str
    type: (
        Literal[
            "",
            "DirectoryOrCreate",
            "Directory",
            "FileOrCreate",
            "File",
            "Socket",
            "CharDevice",
            "BlockDevice",
        ]
        | None
    ) = None


class PersistentVolumeClaimVolumeSource(_Model):
    claim_name: str
    read_only: bool | None = None


class Volume(_Model):
    """A pod volume: a name plus exactly one source (emptyDir when none is given).

    emptyDir, configMap, secret, hostPath and persistentVolumeClaim are typed; the
    other sources are kept as given, and the runtime decides what it supports.
    """

    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    projected: Loose | None = None
    downward_api: Loose | None = Field(default=None, alias="downwardAPI")
    csi: Loose | None = None
    ephemeral: Loose | None = None
    nfs: Loose | None = None
    iscsi: Loose | None = None
    fc: Loose | None = None
    rbd: Loose | None = None
    cephfs: Loose | None = None
    cinder: Loose | None = None
    flocker: Loose | None = None
    glusterfs: Loose | None = None
    git_repo: Loose | None = None
    flex_volume: Loose | None = None
    quobyte: Loose | None = None
    storageos: Loose | None = None
    azure_disk: Loose | None = None
    azure_file: Loose | None = None
    vsphere_volume: Loose | None = None
    gce_persistent_disk: Loose | None = None
    aws_elastic_block_store: Loose | None = None
    photon_persistent_disk: Loose | None = None
    portworx_volume: Loose | None = None
    scale_io: Loose | None = Field(default=None, alias="scaleIO")

    @model_validator(mode="before")
    @classmethod
    def _default_empty_dir(cls, data: Any) -> Any:
        # SetDefaults_Volume: a volume without a source is an emptyDir.
        if isinstance(data, dict) and set(data) <= {"name"}:
            return {**data, "emptyDir": {}}
        return data

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if error := dns1123_label_error(self.name):
            raise FieldError(("name",), error)
        _exactly_one(
            self,
            _VOLUME_SOURCES,
            "must specify a volume type",
            "may not specify more than 1 volume type",
        )
        return self

    @property
    def source(self) -> str:
        """The Kubernetes name of the volume's source (``emptyDir``, ``configMap``...)."""
        for name in _VOLUME_SOURCES:
            if getattr(self, name) is not None:
                return type(self).model_fields[name].alias or name
        return ""  # pragma: no cover - validation guarantees one source


_VOLUME_SOURCES = tuple(name for name in Volume.model_fields if name != "name")


# --- pods ---------------------------------------------------------------------------------


class Sysctl(_Model):
    name: str
    value: str


class PodSecurityContext(_Model):
    """A pod's ``securityContext`` (defaults for all its containers)."""

    se_linux_options: SELinuxOptions | None = None
    windows_options: WindowsSecurityContextOptions | None = None
    run_as_user: NonNegativeInt | None = None
    run_as_group: NonNegativeInt | None = None
    run_as_non_root: bool | None = None
    supplemental_groups: list[NonNegativeInt] | None = None
    fs_group: NonNegativeInt | None = None
    sysctls: list[Sysctl] | None = None
    fs_group_change_policy: Literal["OnRootMismatch", "Always"] | None = None
    seccomp_profile: SeccompProfile | None = None
    app_armor_profile: AppArmorProfile | None = None


class LocalObjectReference(_Model):
    name: str | None = None


class HostAlias(_Model):
    ip: str
    hostnames: list[str] | None = None


class PodReadinessGate(_Model):
    condition_type: str


class PodOS(_Model):
    name: str


class PodSpec(_Model):
    """A pod's ``spec``: every field of Kubernetes 1.30 is accepted.

    The fields the local target acts on are typed; scheduling-only fields
    (affinity, tolerations, topologySpreadConstraints...) are kept as given.
    """

    volumes: list[Volume] | None = None
    init_containers: list[Container] | None = None
    containers: list[Container]
    ephemeral_containers: list[Loose] | None = None
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    termination_grace_period_seconds: NonNegativeInt = 30
    active_deadline_seconds: PositiveInt | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] = "ClusterFirst"
    node_selector: dict[str, str] | None = None
    service_account_name: str | None = None
    service_account: str | None = None
    automount_service_account_token: bool | None = None
    node_name: str | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    share_process_namespace: bool | None = None
    security_context: PodSecurityContext | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    hostname: str | None = None
    subdomain: str | None = None
    affinity: Loose | None = None
    scheduler_name: str = "default-scheduler"
    tolerations: list[Loose] | None = None
    host_aliases: list[HostAlias] | None = None
    priority_class_name: str | None = None
    priority: int | None = None
    dns_config: Loose | None = None
    readiness_gates: list[PodReadinessGate] | None = None
    runtime_class_name: str | None = None
    enable_service_links: bool = True
    preemption_policy: Literal["PreemptLowerPriority", "Never"] | None = None
    overhead: dict[str, Quantity] | None = None
    topology_spread_constraints: list[Loose] | None = None
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    os: PodOS | None = None
    host_users: bool | None = None
    scheduling_gates: list[Loose] | None = None
    resource_claims: list[Loose] | None = None

    @property
    def all_containers(self) -> tuple[Container, ...]:
        """Init containers, then regular containers."""
        return (*(self.init_containers or ()), *self.containers)

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if not self.containers:
            raise FieldError(("containers",), "at least one container is required")
        self._validate_names()
        self._validate_init_containers()
        volumes = {volume.name for volume in self.volumes or ()}
        host_ports: set[tuple[str, str, int]] = set()
        for group, containers in self._groups():
            for index, container in enumerate(containers):
                for m, mount in enumerate(container.volume_mounts or ()):
                    if mount.name not in volumes:
                        raise FieldError(
                            (group, index, "volumeMounts", m, "name"),
                            f'volume "{mount.name}" is not declared in spec.volumes',
                        )
                for p, port in enumerate(container.ports or ()):
                    if self.host_network and port.host_port not in (None, port.container_port):
                        raise FieldError(
                            (group, index, "ports", p, "hostPort"),
                            "must match `containerPort` when `hostNetwork` is true",
                        )
                    if group == "containers" and port.host_port:
                        key = (port.host_ip or "", port.protocol, port.host_port)
                        if key in host_ports:
                            raise FieldError(
                                (group, index, "ports", p, "hostPort"),
                                f'duplicate host port "{port.host_port}/{port.protocol}"',
                            )
                        host_ports.add(key)
        for field_name, value in (
            ("hostname", self.hostname),
            ("subdomain", self.subdomain),
        ):
            if value is not None and (error := dns1123_label_error(value)):
                raise FieldError((field_name,), error)
        for field_name, value in (
            ("serviceAccountName", self.service_account_name),
            ("priorityClassName", self.priority_class_name),
        ):
            if value and (error := dns1123_subdomain_error(value)):
                raise FieldError((field_name,), error)
        if self.dns_policy == "None" and self.dns_config is None:
            raise FieldError(("dnsConfig",), "must provide `dnsConfig` when `dnsPolicy` is None")
        return self

    def _groups(self) -> tuple[tuple[str, list[Container]], ...]:
        return (("initContainers", self.init_containers or []), ("containers", self.containers))

    def _validate_names(self) -> None:
        seen: set[str] = set()
        for group, containers in self._groups():
            for index, container in enumerate(containers):
                if container.name in seen:
                    raise FieldError((group, index, "name"), f'duplicate container name "{container.name}"')
                seen.add(container.name)
        volume_names: set[str] = set()
        for index, volume in enumerate(self.volumes or ()):
            if volume.name in volume_names:
                raise FieldError(("volumes", index, "name"), f'duplicate volume name "{volume.name}"')
            volume_names.add(volume.name)

    def _validate_init_containers(self) -> None:
        for index, container in enumerate(self.containers):
            if container.restart_policy is not None:
                raise FieldError(
                    ("containers", index, "restartPolicy"),
                    "may not be set for non-init containers",
                )
        for index, container in enumerate(self.init_containers or ()):
            if container.restart_policy == "Always":
                continue  # a sidecar may have probes and lifecycle hooks
            for field_name, value in (
                ("lifecycle", container.lifecycle),
                ("livenessProbe", container.liveness_probe),
                ("readinessProbe", container.readiness_probe),
                ("startupProbe", container.startup_probe),
            ):
                if value is not None:
                    raise FieldError(
                        ("initContainers", index, field_name),
                        "may not be set for init containers without restartPolicy=Always",
                    )


class PodTemplateSpec(_Model):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


# --- top-level kinds -----------------------------------------------------------------------


class _Object(_Model):
    """Fields and name rules shared by every typed kind."""

    api_version: str
    kind: str
    metadata: ObjectMeta

    @model_validator(mode="after")
    def _validate_name(self) -> Self:
        meta = self.metadata
        if meta.name is None and meta.generate_name is None:
            raise FieldError(("metadata", "name"), "name or generateName is required")
        if meta.name is not None and (error := self.name_error(meta.name)):
            raise FieldError(("metadata", "name"), error)
        return self

    @classmethod
    def name_error(cls, name: str) -> str | None:
        """Return why ``name`` is not a valid name for this kind, or None."""
        return dns1123_subdomain_error(name)

    @property
    def name(self) -> str:
        """``metadata.name`` (``""`` when only ``generateName`` is set)."""
        return self.metadata.name or ""


class NamespaceSpec(_Model):
    finalizers: list[str] | None = None


class Namespace(_Object):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Namespace"] = "Namespace"
    spec: NamespaceSpec | None = None
    status: Loose | None = None

    @classmethod
    def name_error(cls, name: str) -> str | None:
        """Namespace names are RFC 1123 labels."""
        return dns1123_label_error(name)


def _validate_config_keys(data: Mapping[str, str] | None, field_name: str) -> int:
    """Check keys; return the payload size in bytes."""
    size = 0
    for key, value in (data or {}).items():
        if error := _config_key_error(key):
            raise FieldError((field_name, key), error)
        size += len(key) + len(value)
    return size


class ConfigMap(_Object):
    api_version: Literal["v1"] = "v1"
    kind: Literal["ConfigMap"] = "ConfigMap"
    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None

    @model_validator(mode="after")
    def _validate(self) -> Self:
        size = _validate_config_keys(self.data, "data")
        size += _validate_config_keys(self.binary_data, "binaryData")
        for key, value in (self.binary_data or {}).items():
            _decode_base64(value, ("binaryData", key))
            if key in (self.data or {}):
                raise FieldError(("binaryData", key), f'duplicate of key "{key}" in data: must be unique')
        if size > _MAX_CONFIG_BYTES:
            raise FieldError(("data",), f"must have at most {_MAX_CONFIG_BYTES} bytes")
        return self


def _unwrap(value: Any) -> Any:
    return value.replace("\r", "").replace("\n", "") if isinstance(value, str) else value


def _decode_base64(value: str, path: tuple[str, ...]) -> bytes:
    # Go's decoder, which the API server uses for []byte, skips line breaks.
    try:
        return base64.b64decode(_unwrap(value), validate=True)
    except (binascii.Error, ValueError):
        raise FieldError(path, "illegal base64 data: must be base64-encoded") from None


_SECRET_REQUIRED_KEYS: Mapping[str, tuple[str, ...]] = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


class Secret(_Object):
    """A Secret. ``stringData`` is merged into ``data`` (base64) on parse, as the API does."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Secret"] = "Secret"
    type: str = "Opaque"
    data: dict[str, str] | None = None
    immutable: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _merge_string_data(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        merged = data.get("data")
        if isinstance(merged, dict):
            # Line-wrapped base64 is valid input; the stored form is unwrapped, as the API's.
            merged = {k: _unwrap(v) for k, v in merged.items()}
            data["data"] = merged
        string_data = data.pop("stringData", None)
        if string_data is None:
            return data
        if not isinstance(string_data, dict):
            raise FieldError(("stringData",), "must be a mapping of keys to strings")
        if merged is None:
            merged = {}
        if not isinstance(merged, dict):
            return data  # "data" reports its own type error
        for key, value in string_data.items():
            if not isinstance(value, str):
                raise FieldError(("stringData", key), "Input should be a valid string")
            merged[key] = base64.b64encode(value.encode()).decode("ascii")
        data["data"] = merged
        return data

    @model_validator(mode="after")
    def _validate(self) -> Self:
        size = _validate_config_keys(self.data, "data")
        decoded = self.decoded()
        if size > _MAX_CONFIG_BYTES:
            raise FieldError(("data",), f"must have at most {_MAX_CONFIG_BYTES} bytes")
        for key in _SECRET_REQUIRED_KEYS.get(self.type, ()):
            if key not in decoded:
                raise FieldError(("data", key), f'"{key}" is required for type {self.type}')
        if self.type == "kubernetes.io/basic-auth" and not ({"username", "password"} & decoded.keys()):
            raise FieldError(("data",), "must contain username or password for basic-auth")
        return self

    def decoded(self) -> dict[str, bytes]:
        """The secret's values, base64-decoded."""
        return {k: _decode_base64(v, ("data", k)) for k, v in (self.data or {}).items()}


class Pod(_Object):
    """A Pod. If a container sets limits but no requests, requests default to the limits."""

    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    spec: PodSpec
    status: Loose | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_requests(cls, data: Any) -> Any:
        # SetDefaults_Pod (pods only, not templates): requests default to limits.
        if not isinstance(data, dict) or not isinstance(data.get("spec"), dict):
            return data
        spec = dict(data["spec"])
        changed = False
        for group in ("initContainers", "containers"):
            containers = spec.get(group)
            if not isinstance(containers, list):
                continue
            updated = [_requests_from_limits(c) for c in containers]
            if any(new is not old for new, old in zip(updated, containers, strict=True)):
                spec[group] = updated
                changed = True
        return {**data, "spec": spec} if changed else data


def _requests_from_limits(container: Any) -> Any:
    if not isinstance(container, dict):
        return container
    resources = container.get("resources")
    if not isinstance(resources, dict):
        return container
    limits = resources.get("limits")
    requests = resources.get("requests")
    if requests is None:
        requests = {}
    if not isinstance(limits, dict) or not isinstance(requests, dict):
        return container
    missing = {k: v for k, v in limits.items() if k not in requests}
    if not missing:
        return container
    return {**container, "resources": {**resources, "requests": {**requests, **missing}}}


def _validate_workload(selector: LabelSelector, template: PodTemplateSpec, kind: str) -> None:
    """Rules Deployments and ReplicaSets share (ValidatePodTemplateSpecForReplicaSet)."""
    if selector.empty:
        raise FieldError(("selector",), f"empty selector is invalid for {kind.lower()}")
    if not selector.matches(template.metadata.labels or {}):
        raise FieldError(("template", "metadata", "labels"), "selector does not match template labels")
    if template.spec.restart_policy != "Always":
        raise FieldError(
            ("template", "spec", "restartPolicy"),
            f'Unsupported value: "{template.spec.restart_policy}": supported values: "Always"',
        )
    if template.spec.active_deadline_seconds is not None:
        raise FieldError(
            ("template", "spec", "activeDeadlineSeconds"),
            f"activeDeadlineSeconds in {kind} is not supported",
        )


def _rolling_value(value: intstr.IntOrString, path: tuple[str, ...]) -> int | None:
    """Validate a maxSurge/maxUnavailable value; return its number (int or percent)."""
    try:
        intstr.validate(value)
    except ValueError as exc:
        raise FieldError(path, str(exc)) from None
    return value if isinstance(value, int) else intstr.parse_percent(value)


class RollingUpdateDeployment(_Model):
    max_unavailable: IntOrString = "25%"
    max_surge: IntOrString = "25%"

    @model_validator(mode="after")
    def _validate(self) -> Self:
        unavailable = _rolling_value(self.max_unavailable, ("maxUnavailable",))
        surge = _rolling_value(self.max_surge, ("maxSurge",))
        if unavailable == 0 and surge == 0:
            raise FieldError(("maxUnavailable",), "may not be 0 when `maxSurge` is 0")
        if isinstance(self.max_unavailable, str) and (unavailable or 0) > 100:
            raise FieldError(("maxUnavailable",), "must not be greater than 100%")
        return self


class DeploymentStrategy(_Model):
    """RollingUpdate (default, 25%/25%) or Recreate (no ``rollingUpdate`` allowed)."""

    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_rolling_update(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type", "RollingUpdate") != "RollingUpdate":
            return data
        for key in ("rollingUpdate", "rolling_update"):
            if data.get(key) is not None:
                return data
        data = {k: v for k, v in data.items() if k not in ("rollingUpdate", "rolling_update")}
        return {**data, "rollingUpdate": {}}

    @model_validator(mode="after")
    def _validate(self) -> Self:
        if self.type == "Recreate" and self.rolling_update is not None:
            raise FieldError(("rollingUpdate",), "may not be specified when strategy `type` is 'Recreate'")
        return self


class DeploymentSpec(_Model):
    replicas: NonNegativeInt = 1
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    min_ready_seconds: NonNegativeInt = 0
    revision_history_limit: NonNegativeInt = 10
    paused: bool = False
    progress_deadline_seconds: NonNegativeInt = 600

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _validate_workload(self.selector, self.template, "Deployment")
        if self.progress_deadline_seconds <= self.min_ready_seconds:
            raise FieldError(("progressDeadlineSeconds",), "must be greater than minReadySeconds")
        return self


class Deployment(_Object):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    spec: DeploymentSpec
    status: Loose | None = None


class ReplicaSetSpec(_Model):
    replicas: NonNegativeInt = 1
    min_ready_seconds: NonNegativeInt = 0
    selector: LabelSelector
    template: PodTemplateSpec

    @model_validator(mode="after")
    def _validate(self) -> Self:
        _validate_workload(self.selector, self.template, "ReplicaSet")
        return self


class ReplicaSet(_Object):
    """A ReplicaSet; funade also uses these as a Deployment's revisions."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    spec: ReplicaSetSpec
    status: Loose | None = None


class GenericObject(BaseModel):
    """Any kind funade does not run: header typed, everything else kept as given.

    The other top-level fields (``spec``, ``data``...) are in :attr:`rest`.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        frozen=True,
        strict=True,
    )

    api_version: str
    kind: str
    metadata: ObjectMeta

    @model_validator(mode="after")
    def _validate_name(self) -> Self:
        meta = self.metadata
        if meta.name is None and meta.generate_name is None:
            raise FieldError(("metadata", "name"), "name or generateName is required")
        if meta.name is not None and (error := _path_segment_error(meta.name)):
            raise FieldError(("metadata", "name"), error)
        return self

    @property
    def name(self) -> str:
        """``metadata.name`` (``""`` when only ``generateName`` is set)."""
        return self.metadata.name or ""

    @property
    def rest(self) -> dict[str, Any]:
        """The top-level fields other than apiVersion, kind and metadata."""
        return dict(self.model_extra or {})

    @property
    def spec(self) -> dict[str, Any]:
        """``spec`` when it is a mapping, else ``{}``."""
        spec = (self.model_extra or {}).get("spec")
        return spec if isinstance(spec, dict) else {}


KubeObject: TypeAlias = Namespace | ConfigMap | Secret | Pod | Deployment | ReplicaSet | GenericObject
"""Every value :func:`parse` can return."""

_TYPED: dict[str, tuple[str, type[_Object]]] = {
    "Namespace": ("v1", Namespace),
    "ConfigMap": ("v1", ConfigMap),
    "Secret": ("v1", Secret),
    "Pod": ("v1", Pod),
    "Deployment": ("apps/v1", Deployment),
    "ReplicaSet": ("apps/v1", ReplicaSet),
}

TYPED_KINDS: Mapping[str, str] = {kind: version for kind, (version, _) in _TYPED.items()}
"""kind → the apiVersion funade understands for it."""

RUNNABLE_KINDS: frozenset[str] = frozenset(_TYPED) | {
    "Service",
    "Job",
    "CronJob",
    "HorizontalPodAutoscaler",
    "TrafficSplit",
    "VirtualService",
    "DestinationRule",
    "Rollout",
    "AnalysisTemplate",
    "ClusterAnalysisTemplate",
    "AnalysisRun",
    "Application",
    "ApplicationSet",
}
"""Kinds the local target runs or serves (Services, autoscalers, the routing objects and the Argo
kinds are GenericObjects here; core.services, core.autoscaling, core.istio, core.rollout,
core.analysis and core.gitops validate them); every other kind is stored and listed only."""


def _builtin_group(api_version: object) -> bool:
    """Tell whether ``api_version`` belongs to a Kubernetes built-in API group."""
    if not isinstance(api_version, str):
        return True
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def parse(obj: Mapping[str, Any]) -> KubeObject:
    """Validate a Kubernetes object and return its typed model.

    Kinds in :data:`TYPED_KINDS` get their model; any other kind (and a custom
    resource that shares a name with a built-in kind, e.g. ``Deployment`` in
    ``example.com/v1``) becomes a :class:`GenericObject`.

    Raises:
        pydantic.ValidationError: the object is invalid (a ``ValueError``).
        FieldError: a built-in kind with an apiVersion funade does not know, such as
            ``Deployment: unknown apiVersion apps/v1beta1 (expected apps/v1)``.
    """
    kind = obj.get("kind")
    api_version = obj.get("apiVersion")
    entry = _TYPED.get(kind) if isinstance(kind, str) else None
    if entry is not None:
        expected, model = entry
        if api_version == expected:
            return cast(KubeObject, model.model_validate(obj, by_alias=True, by_name=False))
        if _builtin_group(api_version):
            raise FieldError(("apiVersion",), f"{kind}: unknown apiVersion {api_version} (expected {expected})")
    return GenericObject.model_validate(obj, by_alias=True, by_name=False)


def parse_document(doc: Document) -> KubeObject:
    """:func:`parse` a loaded document; errors become ManifestError with file and line.

    Raises:
        ManifestError: naming the source, the line and the path of the failing field.
    """
    try:
        return parse(doc.obj)
    except ValidationError as exc:
        raise error_from_validation(doc, exc) from None
    except FieldError as exc:
        raise doc.error(exc.message, exc.path) from None


def to_dict(obj: BaseModel) -> dict[str, Any]:
    """Serialize to the stored form: Kubernetes field names, defaults kept, None dropped.

    A :class:`GenericObject` keeps its other fields exactly as they were given.
    """
    if isinstance(obj, GenericObject):
        head = obj.model_dump(
            by_alias=True,
            exclude_none=True,
            mode="json",
            include={"api_version", "kind", "metadata"},
        )
        return {**head, **copy.deepcopy(obj.model_extra or {})}
    return obj.model_dump(by_alias=True, exclude_none=True, mode="json")
