"""What of a pod spec the local target honours, ignores or refuses.

The local target runs pods on one Docker Engine. Scheduling hints (node selectors,
affinity, tolerations) mean nothing on one machine and are ignored with a warning;
fields whose meaning it cannot give (host networking, persistent volumes, gRPC probes)
are refused at apply time with the field's path, instead of being silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Finding", "check_object"]

Obj = dict[str, Any]

# Pod spec fields with no effect on a single Docker host: accepted, reported once.
_IGNORED_POD_FIELDS = {
    "nodeSelector": "there is one node",
    "nodeName": "there is one node",
    "affinity": "there is one node",
    "tolerations": "there is one node",
    "topologySpreadConstraints": "there is one node",
    "schedulerName": "there is no scheduler",
    "schedulingGates": "there is no scheduler",
    "priorityClassName": "there is no preemption",
    "priority": "there is no preemption",
    "preemptionPolicy": "there is no preemption",
    "serviceAccountName": "there is no Kubernetes API to call",
    "serviceAccount": "there is no Kubernetes API to call",
    "automountServiceAccountToken": "there is no Kubernetes API to call",
    "imagePullSecrets": "images are pulled with Docker's own credentials",
    "runtimeClassName": "Docker's default runtime runs every pod",
    "overhead": "there is no scheduler",
    "readinessGates": "no controller sets custom conditions",
    "dnsConfig": "pods use Docker's embedded DNS",
    "hostUsers": "user namespaces follow Docker's configuration",
    "resourceClaims": "there is no dynamic resource allocation",
    "os": "containers run on this host's OS",
}
# Fields funade cannot honour; running the pod without them would change its meaning.
_REFUSED_POD_FIELDS = {
    "hostNetwork": "pods cannot share the host's network namespace on the local target",
    "hostPID": "pods cannot share the host's PID namespace on the local target",
    "hostIPC": "pods cannot share the host's IPC namespace on the local target",
    "ephemeralContainers": "ephemeral containers are not supported on the local target",
    "activeDeadlineSeconds": "activeDeadlineSeconds is not supported on the local target",
}
_DEFAULTS = {"schedulerName": "default-scheduler", "dnsPolicy": "ClusterFirst", "enableServiceLinks": True}
_SUPPORTED_VOLUMES = ("emptyDir", "configMap", "secret")


@dataclass(frozen=True)
class Finding:
    """One field the local target refuses (error) or ignores (warning)."""

    path: str
    message: str
    error: bool

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def _pod_spec_path(obj: Obj) -> tuple[str, Obj] | None:
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return "spec", spec
    if kind in ("Deployment", "ReplicaSet"):
        return "spec.template.spec", (spec.get("template") or {}).get("spec") or {}
    return None


def check_object(obj: Obj) -> list[Finding]:
    """Findings for one object (only pods and pod templates have any)."""
    found = _pod_spec_path(obj)
    if found is None:
        return []
    base, spec = found
    return list(_pod_findings(base, spec))


def _pod_findings(base: str, spec: Obj) -> Iterator[Finding]:
    for field, why in _REFUSED_POD_FIELDS.items():
        if spec.get(field):
            yield Finding(f"{base}.{field}", why, True)
    for field, why in _IGNORED_POD_FIELDS.items():
        if spec.get(field) not in (None, [], {}, _DEFAULTS.get(field)):
            yield Finding(f"{base}.{field}", f"ignored on the local target: {why}", False)
    if spec.get("dnsPolicy") not in (None, "ClusterFirst"):
        yield Finding(f"{base}.dnsPolicy", "ignored on the local target: pods use Docker's embedded DNS", False)
    pod_sc = spec.get("securityContext") or {}
    if pod_sc.get("sysctls"):
        yield Finding(f"{base}.securityContext.sysctls", "sysctls are not supported on the local target", True)
    yield from _seccomp(f"{base}.securityContext", pod_sc)
    for i, volume in enumerate(spec.get("volumes") or []):
        sources = [k for k in volume if k != "name"]
        for source in sources:
            if source not in _SUPPORTED_VOLUMES:
                yield Finding(
                    f"{base}.volumes[{i}].{source}",
                    f"{source} volumes are not supported on the local target (use emptyDir, configMap or secret)",
                    True,
                )
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            yield from _container_findings(f"{base}.{group}[{i}]", container, group == "initContainers")


def _seccomp(path: str, sc: Obj) -> Iterator[Finding]:
    profile = (sc.get("seccompProfile") or {}).get("type")
    if profile == "Localhost":
        yield Finding(
            f"{path}.seccompProfile", "Localhost seccomp profiles are not supported on the local target", True
        )


def _container_findings(path: str, container: Obj, init: bool) -> Iterator[Finding]:
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if (container.get(probe) or {}).get("grpc") is not None:
            yield Finding(f"{path}.{probe}.grpc", "gRPC probes are not supported on the local target", True)
    lifecycle = container.get("lifecycle") or {}
    for hook in ("preStop", "postStart"):
        if ((lifecycle.get(hook) or {}).get("tcpSocket")) is not None:
            yield Finding(f"{path}.lifecycle.{hook}.tcpSocket", "tcpSocket handlers are deprecated and not run", True)
    if init and container.get("restartPolicy"):
        yield Finding(f"{path}.restartPolicy", "sidecar (restartable init) containers are not supported", True)
    for i, var in enumerate(container.get("env") or []):
        if "resourceFieldRef" in (var.get("valueFrom") or {}):
            yield Finding(
                f"{path}.env[{i}].valueFrom.resourceFieldRef",
                "resourceFieldRef is not supported on the local target",
                True,
            )
    for i, mount in enumerate(container.get("volumeMounts") or []):
        for field in ("subPathExpr", "mountPropagation", "recursiveReadOnly"):
            if mount.get(field) not in (None, "None", "Disabled"):
                yield Finding(
                    f"{path}.volumeMounts[{i}].{field}", f"{field} is not supported on the local target", True
                )
    for i, port in enumerate(container.get("ports") or []):
        if port.get("hostPort"):
            yield Finding(
                f"{path}.ports[{i}].hostPort",
                "hostPort is not supported on the local target (pods are reachable on their IP)",
                True,
            )
    sc = container.get("securityContext") or {}
    yield from _seccomp(f"{path}.securityContext", sc)
    if sc.get("procMount") not in (None, "Default"):
        yield Finding(f"{path}.securityContext.procMount", "procMount is not supported on the local target", True)
