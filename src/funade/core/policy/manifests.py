"""Manifest policy: Pod Security Standards and the seed's deployment anti-patterns as rules.

A manifest that breaks the namespace's Pod Security level is refused by the API server;
one that ships ``:latest``, no limits, a literal password, no probes or a single replica
is accepted and fails later, in production. These rules catch both before ``apply``.
Every rule is a pure function over loaded :class:`~funade.core.manifests.Document`
values: per pod template (Pod, Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
CronJob, ReplicationController, Argo ``Rollout``) and across the whole set (a
PodDisruptionBudget, a NetworkPolicy or a HorizontalPodAutoscaler that covers a workload).

Each rule names the equivalent check of kube-score, Polaris, kube-linter and Checkov,
so a team moving from one of them can map its ignore lists.

Ignores (on the object's own ``metadata.annotations``)::

    funade.io/ignore-checks: "FUN-K8S-025,FUN-K8S-026"
    funade.io/ignore-reason: "batch worker: no HTTP endpoint to probe"

An ignore without a reason is not honoured and is itself a finding (FUN-K8S-090).

Namespaces: an object without ``metadata.namespace`` is taken to be in whatever
namespace it is applied to, so presence checks (PDB, NetworkPolicy, HPA) compare
namespaces only when both objects name one.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from funade.core import selectors
from funade.core.manifests import Document, format_path
from funade.core.policy import Finding, Rule, Severity

__all__ = [
    "IGNORE_CHECKS",
    "IGNORE_REASON",
    "RULES",
    "ManifestFinding",
    "ManifestRule",
    "Peers",
    "Profile",
    "check",
    "pod_templates",
    "rule",
]

IGNORE_CHECKS = "funade.io/ignore-checks"
IGNORE_REASON = "funade.io/ignore-reason"

Path = tuple[str | int, ...]
Obj = Mapping[str, Any]


class Profile(enum.StrEnum):
    """Which rule set applies: ``production`` adds availability and image-pinning rules."""

    DEFAULT = "default"
    PRODUCTION = "production"


@dataclass(frozen=True)
class Peers:
    """The same check in other tools (empty when the tool has none)."""

    kube_score: str = ""
    polaris: str = ""
    kube_linter: str = ""
    checkov: str = ""

    def items(self) -> list[tuple[str, str]]:
        """(tool, check) pairs for the tools that have one."""
        pairs = [
            ("kube-score", self.kube_score),
            ("polaris", self.polaris),
            ("kube-linter", self.kube_linter),
            ("checkov", self.checkov),
        ]
        return [(tool, check) for tool, check in pairs if check]


@dataclass(frozen=True)
class ManifestRule(Rule):
    """A manifest rule: :class:`Rule` plus where it comes from, its peers and its profiles.

    Attributes:
        control: the Pod Security Standards control or seed section it enforces.
        peers: the equivalent checks in kube-score, Polaris, kube-linter and Checkov.
        production_only: the rule runs only under :attr:`Profile.PRODUCTION`.
    """

    control: str = ""
    peers: Peers = field(default_factory=Peers)
    production_only: bool = False


@dataclass(frozen=True)
class ManifestFinding(Finding):
    """A :class:`Finding` about one field of one object in one file.

    Attributes:
        source: the file (or ``<stdin>``, or ``DIR (kustomize)``) the object came from.
        object: ``Kind namespace/name`` (``Kind name`` without a namespace).
        path: the field, as Kubernetes prints it (``spec.template.spec.containers[0].image``).
    """

    source: str
    object: str
    path: str


def _rules(*specs: ManifestRule) -> dict[str, ManifestRule]:
    return {spec.id: spec for spec in specs}


_BASELINE = "Pod Security Standards (baseline)"
_RESTRICTED = "Pod Security Standards (restricted)"
_REFUSED = " A namespace labelled pod-security.kubernetes.io/enforce: {level} refuses such pods (seed 9.1)."

RULES: dict[str, ManifestRule] = _rules(
    # -- Pod Security Standards, baseline ---------------------------------------------------
    ManifestRule(
        "FUN-K8S-001",
        Severity.ERROR,
        "Windows HostProcess container",
        "windowsOptions.hostProcess is true: the container runs as a process on the Windows host."
        + _REFUSED.format(level="baseline"),
        "Remove securityContext.windowsOptions.hostProcess (or set it to false) on the pod and its containers.",
        control=f"{_BASELINE}: HostProcess",
    ),
    ManifestRule(
        "FUN-K8S-002",
        Severity.ERROR,
        "Host namespaces shared",
        "hostNetwork, hostPID or hostIPC is true: the pod shares the node's namespaces."
        + _REFUSED.format(level="baseline"),
        "Remove spec.hostNetwork, spec.hostPID and spec.hostIPC (or set them to false).",
        control=f"{_BASELINE}: Host Namespaces",
        peers=Peers(
            polaris="hostNetworkSet, hostPIDSet, hostIPCSet",
            kube_linter="host-network, host-pid, host-ipc",
            checkov="CKV_K8S_19, CKV_K8S_17, CKV_K8S_18",
        ),
    ),
    ManifestRule(
        "FUN-K8S-003",
        Severity.ERROR,
        "Privileged container",
        "securityContext.privileged is true: the container has every device and capability of the node."
        + _REFUSED.format(level="baseline"),
        "Remove securityContext.privileged (or set it to false); add only the capability the process needs.",
        control=f"{_BASELINE}: Privileged Containers",
        peers=Peers(
            kube_score="container-security-context-privileged",
            polaris="runAsPrivileged",
            kube_linter="privileged-container",
            checkov="CKV_K8S_16",
        ),
    ),
    ManifestRule(
        "FUN-K8S-004",
        Severity.ERROR,
        "Capabilities added beyond the baseline set",
        "capabilities.add names a capability outside AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, "
        "MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT." + _REFUSED.format(level="baseline"),
        "Remove the capability from securityContext.capabilities.add; redesign what needs it (or run it in a "
        "namespace with the privileged level, on purpose).",
        control=f"{_BASELINE}: Capabilities",
        peers=Peers(polaris="dangerousCapabilities, insecureCapabilities", checkov="CKV_K8S_25"),
    ),
    ManifestRule(
        "FUN-K8S-005",
        Severity.ERROR,
        "hostPath volume",
        "A volume mounts a path of the node's filesystem." + _REFUSED.format(level="baseline"),
        "Use an emptyDir, a configMap/secret or a persistentVolumeClaim instead of hostPath.",
        control=f"{_BASELINE}: HostPath Volumes",
        peers=Peers(kube_linter="sensitive-host-mounts (sensitive paths only)"),
    ),
    ManifestRule(
        "FUN-K8S-006",
        Severity.ERROR,
        "hostPort set",
        "A container port sets hostPort, binding the node's port." + _REFUSED.format(level="baseline"),
        "Remove ports[].hostPort (or set it to 0) and expose the port with a Service.",
        control=f"{_BASELINE}: Host Ports",
        peers=Peers(polaris="hostPortSet", checkov="CKV_K8S_26"),
    ),
    ManifestRule(
        "FUN-K8S-007",
        Severity.ERROR,
        "AppArmor profile overridden",
        "appArmorProfile.type (or the container.apparmor.security.beta.kubernetes.io annotation) is neither "
        "RuntimeDefault nor Localhost, e.g. Unconfined." + _REFUSED.format(level="baseline"),
        "Leave the AppArmor profile unset, or set appArmorProfile.type to RuntimeDefault or Localhost.",
        control=f"{_BASELINE}: AppArmor",
    ),
    ManifestRule(
        "FUN-K8S-008",
        Severity.ERROR,
        "Custom SELinux options",
        "seLinuxOptions sets a user or role, or a type other than container_t, container_init_t, "
        "container_kvm_t or container_engine_t." + _REFUSED.format(level="baseline"),
        "Remove seLinuxOptions.user and .role, and leave .type unset or one of the container_* types.",
        control=f"{_BASELINE}: SELinux",
    ),
    ManifestRule(
        "FUN-K8S-009",
        Severity.ERROR,
        "Unmasked /proc mount",
        "securityContext.procMount is not Default: /proc is mounted without the runtime's masks."
        + _REFUSED.format(level="baseline"),
        "Remove securityContext.procMount (or set it to Default).",
        control=f"{_BASELINE}: /proc Mount Type",
        peers=Peers(kube_linter="unsafe-proc-mount"),
    ),
    ManifestRule(
        "FUN-K8S-010",
        Severity.ERROR,
        "Seccomp Unconfined",
        "seccompProfile.type is Unconfined: every system call is allowed." + _REFUSED.format(level="baseline"),
        "Set seccompProfile.type to RuntimeDefault (or Localhost with a reviewed profile).",
        control=f"{_BASELINE}: Seccomp",
    ),
    ManifestRule(
        "FUN-K8S-011",
        Severity.ERROR,
        "Unsafe sysctl",
        "spec.securityContext.sysctls names a sysctl outside the safe, namespaced set."
        + _REFUSED.format(level="baseline"),
        "Keep only kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, "
        "net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, "
        "net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl and "
        "net.ipv4.tcp_keepalive_probes.",
        control=f"{_BASELINE}: Sysctls",
        peers=Peers(kube_linter="unsafe-sysctls"),
    ),
    # -- Pod Security Standards, restricted -------------------------------------------------
    ManifestRule(
        "FUN-K8S-012",
        Severity.ERROR,
        "Volume type not allowed by restricted",
        "A volume is not one of configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, "
        "projected or secret." + _REFUSED.format(level="restricted"),
        "Reach the storage through a persistentVolumeClaim (the PersistentVolume holds the nfs/iscsi/… source).",
        control=f"{_RESTRICTED}: Volume Types",
    ),
    ManifestRule(
        "FUN-K8S-013",
        Severity.ERROR,
        "Privilege escalation allowed",
        "securityContext.allowPrivilegeEscalation is not false, so setuid binaries can gain privileges."
        + _REFUSED.format(level="restricted"),
        "Set securityContext.allowPrivilegeEscalation: false on every container (init and ephemeral too).",
        control=f"{_RESTRICTED}: Privilege Escalation",
        peers=Peers(
            polaris="privilegeEscalationAllowed", kube_linter="privilege-escalation-container", checkov="CKV_K8S_20"
        ),
    ),
    ManifestRule(
        "FUN-K8S-014",
        Severity.ERROR,
        "May run as root (runAsNonRoot not true)",
        "Neither the pod nor the container sets securityContext.runAsNonRoot: true (or a container sets it "
        "to false), so an image whose user is root runs as root." + _REFUSED.format(level="restricted"),
        "Set spec.securityContext.runAsNonRoot: true (and a non-zero runAsUser), and give the image a "
        "numeric non-root USER.",
        control=f"{_RESTRICTED}: Running as Non-root",
        peers=Peers(
            kube_score="container-security-context-user-group-id",
            polaris="runAsRootAllowed",
            kube_linter="run-as-non-root",
            checkov="CKV_K8S_23",
        ),
    ),
    ManifestRule(
        "FUN-K8S-015",
        Severity.ERROR,
        "Runs as root (runAsUser: 0)",
        "securityContext.runAsUser is 0." + _REFUSED.format(level="restricted"),
        "Set runAsUser to a non-zero uid (the seed uses 1001), or remove it and use the image's non-root USER.",
        control=f"{_RESTRICTED}: Running as Non-root user",
        peers=Peers(
            kube_score="container-security-context-user-group-id",
            polaris="runAsRootAllowed",
            kube_linter="run-as-non-root",
            checkov="CKV_K8S_23 (CKV_K8S_40 for a high uid)",
        ),
    ),
    ManifestRule(
        "FUN-K8S-016",
        Severity.ERROR,
        "No seccomp profile",
        "seccompProfile.type is set neither on the pod nor on the container; restricted requires "
        "RuntimeDefault or Localhost." + _REFUSED.format(level="restricted"),
        "Set spec.securityContext.seccompProfile.type: RuntimeDefault.",
        control=f"{_RESTRICTED}: Seccomp",
        peers=Peers(kube_score="container-seccomp-profile", checkov="CKV_K8S_31"),
    ),
    ManifestRule(
        "FUN-K8S-017",
        Severity.ERROR,
        "Capabilities not dropped",
        "capabilities.drop does not include ALL, or capabilities.add names something other than "
        "NET_BIND_SERVICE." + _REFUSED.format(level="restricted"),
        "Set securityContext.capabilities.drop: [ALL] on every container and add back at most NET_BIND_SERVICE.",
        control=f"{_RESTRICTED}: Capabilities",
        peers=Peers(checkov="CKV_K8S_37 (CKV_K8S_28 for NET_RAW)"),
    ),
    # -- the seed's anti-patterns (section 11) and runtime security (section 9) ---------------
    ManifestRule(
        "FUN-K8S-020",
        Severity.ERROR,
        "Image :latest or untagged",
        "The image has no tag, or the tag latest, and no digest: what runs is unknown and a rollback "
        "cannot return to it (seed 11, anti-pattern 1).",
        "Use the git SHA or a semantic version tag set by CI (ghcr.io/myorg/myapp:v1.2.3), or pin a digest.",
        control="seed 11: anti-pattern 1",
        peers=Peers(
            kube_score="container-image-tag", polaris="tagNotSpecified", kube_linter="latest-tag", checkov="CKV_K8S_14"
        ),
    ),
    ManifestRule(
        "FUN-K8S-021",
        Severity.WARNING,
        "Image tag may move (production)",
        "The image is pinned neither by digest nor by an immutable tag (a full semantic version like v1.2.3, "
        "or a git SHA): a tag like 1.2, stable or main can point at another image tomorrow.",
        "Deploy by digest (image@sha256:…) or by the full version / git SHA tag CI produced.",
        control="seed 11: anti-pattern 1 (production profile)",
        peers=Peers(checkov="CKV_K8S_43"),
        production_only=True,
    ),
    ManifestRule(
        "FUN-K8S-022",
        Severity.WARNING,
        "Resource requests missing",
        "The container sets no cpu or memory request, so the scheduler places it blind (seed 11, anti-pattern 2).",
        "Set resources.requests.cpu and resources.requests.memory (the seed: 100m / 128Mi).",
        control="seed 11: anti-pattern 2",
        peers=Peers(
            kube_score="container-resources",
            polaris="cpuRequestsMissing, memoryRequestsMissing",
            kube_linter="unset-cpu-requirements, unset-memory-requirements",
            checkov="CKV_K8S_10, CKV_K8S_12",
        ),
    ),
    ManifestRule(
        "FUN-K8S-023",
        Severity.WARNING,
        "Resource limits missing",
        "The container sets no cpu or memory limit, so a leak can starve the whole node (seed 11, anti-pattern 2).",
        "Set resources.limits.cpu and resources.limits.memory (the seed: 500m / 512Mi).",
        control="seed 11: anti-pattern 2",
        peers=Peers(
            kube_score="container-resources",
            polaris="cpuLimitsMissing, memoryLimitsMissing",
            kube_linter="unset-cpu-requirements, unset-memory-requirements",
            checkov="CKV_K8S_11, CKV_K8S_13",
        ),
    ),
    ManifestRule(
        "FUN-K8S-024",
        Severity.ERROR,
        "Literal secret in env",
        "An env variable whose name looks secret (PASSWORD, SECRET, TOKEN, KEY, CREDENTIAL …) has a literal "
        "value, or a value is a URL with a password in it: it is readable by anyone who can read the "
        "manifest or the git history (seed 11, anti-pattern 3).",
        "Move the value into a Secret (ideally synced by External Secrets) and use env[].valueFrom.secretKeyRef.",
        control="seed 11: anti-pattern 3",
        peers=Peers(
            polaris="sensitiveContainerEnvVar", kube_linter="env-var-secret", checkov="CKV_K8S_35; CKV_SECRET_*"
        ),
    ),
    ManifestRule(
        "FUN-K8S-025",
        Severity.WARNING,
        "Readiness probe missing",
        "Without a readinessProbe, traffic reaches the pod before it can serve and keeps reaching it when it "
        "hangs (seed 11, anti-pattern 4).",
        "Add readinessProbe (httpGet on the app's readiness endpoint, periodSeconds 10, failureThreshold 3).",
        control="seed 11: anti-pattern 4",
        peers=Peers(
            kube_score="pod-probes",
            polaris="readinessProbeMissing",
            kube_linter="no-readiness-probe",
            checkov="CKV_K8S_9",
        ),
    ),
    ManifestRule(
        "FUN-K8S-026",
        Severity.WARNING,
        "Liveness probe missing",
        "Without a livenessProbe, a hung process is never restarted (seed 11, anti-pattern 4).",
        "Add livenessProbe (httpGet on a liveness endpoint distinct from readiness, periodSeconds 30).",
        control="seed 11: anti-pattern 4",
        peers=Peers(
            kube_score="pod-probes",
            polaris="livenessProbeMissing",
            kube_linter="no-liveness-probe",
            checkov="CKV_K8S_8",
        ),
    ),
    ManifestRule(
        "FUN-K8S-027",
        Severity.INFO,
        "Startup probe missing",
        "Without a startupProbe, a slow start is judged by the liveness probe and can be killed in a loop "
        "(seed 11, anti-pattern 4).",
        "Add startupProbe (the seed: failureThreshold 30, periodSeconds 2).",
        control="seed 11: anti-pattern 4",
    ),
    ManifestRule(
        "FUN-K8S-028",
        Severity.WARNING,
        "Writable root filesystem",
        "securityContext.readOnlyRootFilesystem is not true, so a compromise can rewrite the image's files (seed 9.1).",
        "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where the app writes "
        "(/tmp, caches), as the seed's pod-security.yaml does.",
        control="seed 9.1",
        peers=Peers(
            kube_score="container-security-context-readonlyrootfilesystem",
            polaris="notReadOnlyRootFilesystem",
            kube_linter="no-read-only-root-fs",
            checkov="CKV_K8S_22",
        ),
    ),
    ManifestRule(
        "FUN-K8S-029",
        Severity.WARNING,
        "No NetworkPolicy selects the pods",
        "No NetworkPolicy in the manifests selects the workload's pods, so they accept traffic from anywhere "
        "(seed 9.2).",
        "Add a NetworkPolicy whose podSelector matches the pod labels, with Ingress and Egress policy types.",
        control="seed 9.2",
        peers=Peers(
            kube_score="pod-networkpolicy",
            polaris="missingNetworkPolicy",
            kube_linter="non-isolated-pod",
            checkov="CKV2_K8S_6",
        ),
    ),
    ManifestRule(
        "FUN-K8S-030",
        Severity.ERROR,
        "Fewer than 3 replicas (production)",
        "The workload runs fewer than 3 replicas (an unset replicas means 1) and no HorizontalPodAutoscaler "
        "keeps at least 3: a restart or a node drain takes the service down (seed 11, anti-pattern 5).",
        "Set spec.replicas: 3 or more (or an HPA with minReplicas: 3).",
        control="seed 11: anti-pattern 5 (production profile)",
        peers=Peers(
            kube_score="deployment-replicas (min 2)",
            polaris="deploymentMissingReplicas",
            kube_linter="minimum-three-replicas",
        ),
        production_only=True,
    ),
    ManifestRule(
        "FUN-K8S-031",
        Severity.WARNING,
        "No PodDisruptionBudget (production)",
        "No PodDisruptionBudget in the manifests selects the workload's pods, so a node drain may evict "
        "them all at once (seed 11, anti-pattern 5).",
        "Add a PodDisruptionBudget selecting the pod labels (the seed: minAvailable: 2).",
        control="seed 11: anti-pattern 5 (production profile)",
        peers=Peers(
            kube_score="deployment-has-poddisruptionbudget, statefulset-has-poddisruptionbudget",
            polaris="missingPodDisruptionBudget",
        ),
        production_only=True,
    ),
    ManifestRule(
        "FUN-K8S-032",
        Severity.WARNING,
        "No topologySpreadConstraints (production)",
        "The pod template has no topologySpreadConstraints, so all replicas may land in one zone or on one "
        "node (seed 11, anti-pattern 5).",
        "Add topologySpreadConstraints (maxSkew: 1, topologyKey: topology.kubernetes.io/zone, "
        "whenUnsatisfiable: DoNotSchedule, labelSelector matching the pods).",
        control="seed 11: anti-pattern 5 (production profile)",
        peers=Peers(
            kube_score="pod-topology-spread-constraints",
            polaris="topologySpreadConstraint",
            kube_linter="no-anti-affinity (anti-affinity instead)",
        ),
        production_only=True,
    ),
    # -- ignores --------------------------------------------------------------------------------
    ManifestRule(
        "FUN-K8S-090",
        Severity.ERROR,
        "Ignore without a reason",
        f"The object sets {IGNORE_CHECKS} without {IGNORE_REASON}; the ignore is not honoured.",
        f'Add {IGNORE_REASON}: "why these checks do not apply" beside {IGNORE_CHECKS}.',
        control="funade",
    ),
    ManifestRule(
        "FUN-K8S-091",
        Severity.WARNING,
        "Ignore names an unknown check",
        f"{IGNORE_CHECKS} names an id that is not a funade manifest rule (a typo silences nothing).",
        "Use the ids `funade policy check` prints (FUN-K8S-0NN), comma-separated.",
        control="funade",
    ),
)

_UNIGNORABLE = frozenset({"FUN-K8S-090", "FUN-K8S-091"})


def rule(rule_id: str) -> ManifestRule:
    """The manifest rule ``rule_id`` (KeyError for an unknown id)."""
    return RULES[rule_id]


# -- pod templates ------------------------------------------------------------------------------

# kind -> path of the pod template's metadata/spec parent
_TEMPLATE_PATHS: dict[str, Path] = {
    "Deployment": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "Job": ("spec", "template"),
    "Rollout": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
_REPLICATED = frozenset({"Deployment", "ReplicaSet", "ReplicationController", "StatefulSet", "Rollout"})
_BATCH = frozenset({"Job", "CronJob"})
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class PodTemplate:
    """The pod part of one object: its spec, labels and annotations, and where they live."""

    doc: Document
    spec: Obj
    spec_path: Path
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    annotations_path: Path


def _map(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _get(obj: Any, path: Sequence[str | int]) -> Any:
    for part in path:
        if isinstance(part, int):
            if not isinstance(obj, list) or part >= len(obj):
                return None
            obj = obj[part]
        else:
            if not isinstance(obj, Mapping):
                return None
            obj = obj.get(part)
    return obj


def _strings(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in _map(value).items()}


def pod_templates(doc: Document) -> PodTemplate | None:
    """The pod template of a workload document (the Pod itself for ``kind: Pod``), else None."""
    if doc.kind == "Pod":
        base: Path = ()
    elif doc.kind in _TEMPLATE_PATHS:
        base = _TEMPLATE_PATHS[doc.kind]
    else:
        return None
    template = _map(_get(doc.obj, base)) if base else _map(doc.obj)
    metadata = _map(template.get("metadata"))
    return PodTemplate(
        doc=doc,
        spec=_map(template.get("spec")),
        spec_path=(*base, "spec"),
        labels=_strings(metadata.get("labels")),
        annotations=_strings(metadata.get("annotations")),
        annotations_path=(*base, "metadata", "annotations"),
    )


def _namespace(doc: Document) -> str | None:
    value = _map(doc.obj.get("metadata")).get("namespace")
    return value if isinstance(value, str) and value else None


def _display(doc: Document) -> str:
    namespace = _namespace(doc)
    return f"{doc.kind} {namespace}/{doc.name}" if namespace else f"{doc.kind} {doc.name}"


@dataclass(frozen=True)
class _Container:
    spec: Obj
    path: Path
    name: str
    kind: str  # "containers" | "initContainers" | "ephemeralContainers"


def _containers(pod: PodTemplate) -> Iterator[_Container]:
    for kind in _CONTAINER_LISTS:
        for index, raw in enumerate(_list(pod.spec.get(kind))):
            container = _map(raw)
            yield _Container(container, (*pod.spec_path, kind, index), str(container.get("name", index)), kind)


# -- findings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hit:
    """A rule's raw finding before it is tied to a file and line."""

    rule: str
    path: Path
    message: str


_Check = Callable[[PodTemplate], Iterator[_Hit]]


def _sc(obj: Obj) -> Obj:
    return _map(obj.get("securityContext"))


# -- baseline checks -------------------------------------------------------------------------------


def _check_host_process(pod: PodTemplate) -> Iterator[_Hit]:
    if _get(_sc(pod.spec), ("windowsOptions", "hostProcess")) is True:
        path = (*pod.spec_path, "securityContext", "windowsOptions", "hostProcess")
        yield _Hit("FUN-K8S-001", path, f"{format_path(path)} is true")
    for c in _containers(pod):
        if _get(_sc(c.spec), ("windowsOptions", "hostProcess")) is True:
            path = (*c.path, "securityContext", "windowsOptions", "hostProcess")
            yield _Hit("FUN-K8S-001", path, f"container {c.name}: {format_path(path)} is true")


def _check_host_namespaces(pod: PodTemplate) -> Iterator[_Hit]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(key) is True:
            path = (*pod.spec_path, key)
            yield _Hit("FUN-K8S-002", path, f"{format_path(path)} is true")


def _check_privileged(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        if _sc(c.spec).get("privileged") is True:
            path = (*c.path, "securityContext", "privileged")
            yield _Hit("FUN-K8S-003", path, f"container {c.name}: {format_path(path)} is true")


_BASELINE_CAPS = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)


def _cap(value: Any) -> str:
    """A capability name as the Pod Security admission compares it: exactly as written."""
    return str(value)


def _added(c: _Container) -> list[tuple[int, str]]:
    return [(i, _cap(v)) for i, v in enumerate(_list(_get(_sc(c.spec), ("capabilities", "add"))))]


def _check_capabilities_baseline(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        bad = [(i, cap) for i, cap in _added(c) if cap not in _BASELINE_CAPS]
        if bad:
            path = (*c.path, "securityContext", "capabilities", "add", bad[0][0])
            names = ", ".join(cap for _, cap in bad)
            yield _Hit("FUN-K8S-004", path, f"container {c.name}: capabilities.add has {names}")


def _check_host_path(pod: PodTemplate) -> Iterator[_Hit]:
    for index, raw in enumerate(_list(pod.spec.get("volumes"))):
        volume = _map(raw)
        if volume.get("hostPath") is not None:
            path = (*pod.spec_path, "volumes", index, "hostPath")
            where = _get(volume, ("hostPath", "path"))
            yield _Hit("FUN-K8S-005", path, f"volume {volume.get('name', index)} mounts hostPath {where}")


def _check_host_ports(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        for index, raw in enumerate(_list(c.spec.get("ports"))):
            host_port = _map(raw).get("hostPort")
            if host_port not in (None, 0):
                path = (*c.path, "ports", index, "hostPort")
                yield _Hit("FUN-K8S-006", path, f"container {c.name}: {format_path(path)} is {host_port}")


_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _check_apparmor(pod: PodTemplate) -> Iterator[_Hit]:
    allowed = (None, "RuntimeDefault", "Localhost")
    profile = _get(_sc(pod.spec), ("appArmorProfile", "type"))
    if profile not in allowed:
        path = (*pod.spec_path, "securityContext", "appArmorProfile", "type")
        yield _Hit("FUN-K8S-007", path, f"{format_path(path)} is {profile}")
    for c in _containers(pod):
        profile = _get(_sc(c.spec), ("appArmorProfile", "type"))
        if profile not in allowed:
            path = (*c.path, "securityContext", "appArmorProfile", "type")
            yield _Hit("FUN-K8S-007", path, f"container {c.name}: {format_path(path)} is {profile}")
    for key, value in pod.annotations.items():
        if key.startswith(_APPARMOR_ANNOTATION) and value != "runtime/default" and not value.startswith("localhost/"):
            path = (*pod.annotations_path, key)
            yield _Hit("FUN-K8S-007", path, f"{format_path(path)} is {value}")


_SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"})


def _selinux_problems(options: Obj) -> list[str]:
    problems = []
    if options.get("type") is not None and options.get("type") not in _SELINUX_TYPES:
        problems.append(f"type {options.get('type')}")
    problems += [f"{key} {options[key]}" for key in ("user", "role") if options.get(key) not in (None, "")]
    return problems


def _check_selinux(pod: PodTemplate) -> Iterator[_Hit]:
    problems = _selinux_problems(_map(_sc(pod.spec).get("seLinuxOptions")))
    if problems:
        path = (*pod.spec_path, "securityContext", "seLinuxOptions")
        yield _Hit("FUN-K8S-008", path, f"{format_path(path)} sets {', '.join(problems)}")
    for c in _containers(pod):
        problems = _selinux_problems(_map(_sc(c.spec).get("seLinuxOptions")))
        if problems:
            path = (*c.path, "securityContext", "seLinuxOptions")
            yield _Hit("FUN-K8S-008", path, f"container {c.name}: {format_path(path)} sets {', '.join(problems)}")


def _check_proc_mount(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        value = _sc(c.spec).get("procMount")
        if value not in (None, "Default"):
            path = (*c.path, "securityContext", "procMount")
            yield _Hit("FUN-K8S-009", path, f"container {c.name}: {format_path(path)} is {value}")


def _check_seccomp_unconfined(pod: PodTemplate) -> Iterator[_Hit]:
    if _get(_sc(pod.spec), ("seccompProfile", "type")) == "Unconfined":
        path = (*pod.spec_path, "securityContext", "seccompProfile", "type")
        yield _Hit("FUN-K8S-010", path, f"{format_path(path)} is Unconfined")
    for c in _containers(pod):
        if _get(_sc(c.spec), ("seccompProfile", "type")) == "Unconfined":
            path = (*c.path, "securityContext", "seccompProfile", "type")
            yield _Hit("FUN-K8S-010", path, f"container {c.name}: {format_path(path)} is Unconfined")


_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)


def _check_sysctls(pod: PodTemplate) -> Iterator[_Hit]:
    for index, raw in enumerate(_list(_sc(pod.spec).get("sysctls"))):
        name = _map(raw).get("name")
        if name not in _SAFE_SYSCTLS:
            path = (*pod.spec_path, "securityContext", "sysctls", index, "name")
            yield _Hit("FUN-K8S-011", path, f"{format_path(path)} is {name}, not a safe sysctl")


# -- restricted checks ------------------------------------------------------------------------------

_RESTRICTED_VOLUMES = frozenset(
    {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
)


def _check_volume_types(pod: PodTemplate) -> Iterator[_Hit]:
    for index, raw in enumerate(_list(pod.spec.get("volumes"))):
        volume = _map(raw)
        # hostPath is the baseline rule's (FUN-K8S-005); report each problem once.
        kinds = [k for k, v in volume.items() if k != "name" and v is not None and k not in _RESTRICTED_VOLUMES]
        kinds = [k for k in kinds if k != "hostPath"]
        if kinds:
            path = (*pod.spec_path, "volumes", index, kinds[0])
            yield _Hit("FUN-K8S-012", path, f"volume {volume.get('name', index)} is of type {', '.join(kinds)}")


def _check_privilege_escalation(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        value = _sc(c.spec).get("allowPrivilegeEscalation")
        if value is not False:
            path = (*c.path, "securityContext", "allowPrivilegeEscalation")
            state = "is not set" if value is None else f"is {value}"
            yield _Hit("FUN-K8S-013", path, f"container {c.name}: {format_path(path)} {state}")


def _check_run_as_non_root(pod: PodTemplate) -> Iterator[_Hit]:
    pod_level = _sc(pod.spec).get("runAsNonRoot")
    if pod_level is False:
        path = (*pod.spec_path, "securityContext", "runAsNonRoot")
        yield _Hit("FUN-K8S-014", path, f"{format_path(path)} is false")
    for c in _containers(pod):
        value = _sc(c.spec).get("runAsNonRoot")
        path = (*c.path, "securityContext", "runAsNonRoot")
        if value is False:
            yield _Hit("FUN-K8S-014", path, f"container {c.name}: {format_path(path)} is false")
        elif value is None and pod_level is not True:
            yield _Hit(
                "FUN-K8S-014",
                path,
                f"container {c.name}: runAsNonRoot is set neither on the container nor in "
                f"{format_path((*pod.spec_path, 'securityContext'))}",
            )


def _check_run_as_user(pod: PodTemplate) -> Iterator[_Hit]:
    if _sc(pod.spec).get("runAsUser") == 0:
        path = (*pod.spec_path, "securityContext", "runAsUser")
        yield _Hit("FUN-K8S-015", path, f"{format_path(path)} is 0 (root)")
    for c in _containers(pod):
        if _sc(c.spec).get("runAsUser") == 0:
            path = (*c.path, "securityContext", "runAsUser")
            yield _Hit("FUN-K8S-015", path, f"container {c.name}: {format_path(path)} is 0 (root)")


def _check_seccomp_set(pod: PodTemplate) -> Iterator[_Hit]:
    if _get(_sc(pod.spec), ("seccompProfile", "type")) is not None:
        return  # RuntimeDefault/Localhost pass; Unconfined is FUN-K8S-010's
    for c in _containers(pod):
        if _get(_sc(c.spec), ("seccompProfile", "type")) is None:
            path = (*c.path, "securityContext", "seccompProfile", "type")
            yield _Hit(
                "FUN-K8S-016",
                path,
                f"container {c.name}: seccompProfile.type is set neither on the container nor in "
                f"{format_path((*pod.spec_path, 'securityContext'))}",
            )


def _check_capabilities_restricted(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        caps = _map(_sc(c.spec).get("capabilities"))
        drop = [_cap(v) for v in _list(caps.get("drop"))]
        if "ALL" not in drop:
            path = (*c.path, "securityContext", "capabilities", "drop")
            yield _Hit("FUN-K8S-017", path, f"container {c.name}: capabilities.drop does not include ALL")
        # capabilities outside the baseline set are FUN-K8S-004's
        extra = [(i, cap) for i, cap in _added(c) if cap in _BASELINE_CAPS and cap != "NET_BIND_SERVICE"]
        if extra:
            path = (*c.path, "securityContext", "capabilities", "add", extra[0][0])
            names = ", ".join(cap for _, cap in extra)
            yield _Hit(
                "FUN-K8S-017", path, f"container {c.name}: capabilities.add has {names} (only NET_BIND_SERVICE allowed)"
            )


# -- anti-patterns --------------------------------------------------------------------------------

_SEMVER = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
# A git SHA tag as CI sets it (docker/metadata-action's type=sha gives sha-<7 hex>).
_GIT_SHA = re.compile(r"^(?:sha-)?[0-9a-f]{7,40}$")


def _image_parts(image: str) -> tuple[str | None, str | None]:
    """(tag, digest) of an image reference; a colon before the last ``/`` is a registry port."""
    name, _, digest = image.partition("@")
    slash, colon = name.rfind("/"), name.rfind(":")
    tag = name[colon + 1 :] if colon > slash else None
    return tag, digest or None


def _check_latest(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        image = c.spec.get("image")
        if not isinstance(image, str) or not image:
            continue
        tag, digest = _image_parts(image)
        if digest is None and tag in (None, "latest"):
            path = (*c.path, "image")
            what = "has no tag" if tag is None else "uses the tag latest"
            yield _Hit("FUN-K8S-020", path, f"container {c.name}: image {image} {what}")


def _check_pinned(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        image = c.spec.get("image")
        if not isinstance(image, str) or not image:
            continue
        tag, digest = _image_parts(image)
        if digest is not None or tag in (None, "latest"):
            continue  # pinned, or FUN-K8S-020's
        if not (_SEMVER.match(tag) or _GIT_SHA.match(tag)):
            path = (*c.path, "image")
            yield _Hit(
                "FUN-K8S-021",
                path,
                f"container {c.name}: image {image}: tag {tag} is neither a full version, a git SHA nor a digest",
            )


def _app_containers(pod: PodTemplate) -> Iterator[_Container]:
    return (c for c in _containers(pod) if c.kind == "containers")


def _check_resources(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        if c.kind == "ephemeralContainers":
            continue  # ephemeral containers cannot set resources
        resources = _map(c.spec.get("resources"))
        for rule_id, key in (("FUN-K8S-022", "requests"), ("FUN-K8S-023", "limits")):
            values = _map(resources.get(key))
            missing = [r for r in ("cpu", "memory") if values.get(r) in (None, "")]
            if missing:
                path = (*c.path, "resources", key)
                yield _Hit(rule_id, path, f"container {c.name}: {format_path(path)} has no {' or '.join(missing)}")


_SECRET_WORDS = frozenset(
    {
        "PASSWORD",
        "PASSWD",
        "PASS",
        "PWD",
        "SECRET",
        "TOKEN",
        "KEY",
        "APIKEY",
        "CREDENTIAL",
        "CREDENTIALS",
        "PRIVATE",
        "AUTH",
        "DSN",
    }
)
_PASSWORD_IN_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@")


def _secret_name(name: str) -> bool:
    words = set(re.split(r"[^A-Za-z0-9]+", name.upper()))
    return bool(words & _SECRET_WORDS) or any(w.endswith(("PASSWORD", "SECRET", "TOKEN", "APIKEY")) for w in words)


def _check_env_secrets(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        for index, raw in enumerate(_list(c.spec.get("env"))):
            env = _map(raw)
            name, value = str(env.get("name", "")), env.get("value")
            if not isinstance(value, str) or not value or value.startswith("$("):
                continue
            path = (*c.path, "env", index, "value")
            if _PASSWORD_IN_URL.match(value):
                yield _Hit("FUN-K8S-024", path, f"container {c.name}: env {name} holds a URL with a password")
            elif _secret_name(name):
                yield _Hit("FUN-K8S-024", path, f"container {c.name}: env {name} has a literal value")


def _check_probes(pod: PodTemplate) -> Iterator[_Hit]:
    if pod.doc.kind in _BATCH:
        return  # a run-to-completion pod serves no traffic and is not restarted on liveness
    for c in _app_containers(pod):
        for rule_id, key in (
            ("FUN-K8S-025", "readinessProbe"),
            ("FUN-K8S-026", "livenessProbe"),
            ("FUN-K8S-027", "startupProbe"),
        ):
            if not c.spec.get(key):
                yield _Hit(rule_id, (*c.path, key), f"container {c.name} has no {key}")


def _check_read_only_root(pod: PodTemplate) -> Iterator[_Hit]:
    for c in _containers(pod):
        if c.kind == "ephemeralContainers":
            continue
        value = _sc(c.spec).get("readOnlyRootFilesystem")
        if value is not True:
            path = (*c.path, "securityContext", "readOnlyRootFilesystem")
            state = "is not set" if value is None else f"is {value}"
            yield _Hit("FUN-K8S-028", path, f"container {c.name}: {format_path(path)} {state}")


def _check_spread(pod: PodTemplate) -> Iterator[_Hit]:
    if pod.doc.kind in _REPLICATED and not _list(pod.spec.get("topologySpreadConstraints")):
        path = (*pod.spec_path, "topologySpreadConstraints")
        yield _Hit("FUN-K8S-032", path, f"{format_path(path)} is not set")


_POD_CHECKS: tuple[_Check, ...] = (
    _check_host_process,
    _check_host_namespaces,
    _check_privileged,
    _check_capabilities_baseline,
    _check_host_path,
    _check_host_ports,
    _check_apparmor,
    _check_selinux,
    _check_proc_mount,
    _check_seccomp_unconfined,
    _check_sysctls,
    _check_volume_types,
    _check_privilege_escalation,
    _check_run_as_non_root,
    _check_run_as_user,
    _check_seccomp_set,
    _check_capabilities_restricted,
    _check_latest,
    _check_pinned,
    _check_resources,
    _check_env_secrets,
    _check_probes,
    _check_read_only_root,
    _check_spread,
)


# -- checks across the set ---------------------------------------------------------------------------


def _same_namespace(a: Document, b: Document) -> bool:
    na, nb = _namespace(a), _namespace(b)
    return na is None or nb is None or na == nb


def _selects(selector: Any, labels: Mapping[str, str]) -> bool:
    if not isinstance(selector, Mapping):
        return False
    try:
        return selectors.matches(selector, labels)
    except ValueError:
        return False


def _check_set(pod: PodTemplate, others: Sequence[Document]) -> Iterator[_Hit]:
    doc = pod.doc
    policies = [o for o in others if o.kind == "NetworkPolicy" and _same_namespace(o, doc)]
    if not any(_selects(_get(o.obj, ("spec", "podSelector")), pod.labels) for o in policies):
        path = (*pod.annotations_path[:-1], "labels")
        labels = ", ".join(f"{k}={v}" for k, v in pod.labels.items()) or "no labels"
        yield _Hit("FUN-K8S-029", path, f"no NetworkPolicy selects the pods ({labels})")
    if doc.kind not in _REPLICATED:
        return
    budgets = [o for o in others if o.kind == "PodDisruptionBudget" and _same_namespace(o, doc)]
    if not any(_selects(_get(o.obj, ("spec", "selector")), pod.labels) for o in budgets):
        path = (*pod.annotations_path[:-1], "labels")
        yield _Hit("FUN-K8S-031", path, "no PodDisruptionBudget selects the pods")
    replicas = doc.obj.get("spec", {}).get("replicas") if isinstance(doc.obj.get("spec"), Mapping) else None
    count = replicas if isinstance(replicas, int) else 1
    floor = max(
        (
            _get(o.obj, ("spec", "minReplicas")) or 1
            for o in others
            if o.kind == "HorizontalPodAutoscaler"
            and _same_namespace(o, doc)
            and _get(o.obj, ("spec", "scaleTargetRef", "kind")) == doc.kind
            and _get(o.obj, ("spec", "scaleTargetRef", "name")) == doc.name
        ),
        default=None,
    )
    if isinstance(floor, int) and floor >= 3:
        return
    if count < 3:
        what = f"spec.replicas is {replicas}" if isinstance(replicas, int) else "spec.replicas is not set (1)"
        extra = f"; the HorizontalPodAutoscaler's minReplicas is {floor}" if floor is not None else ""
        yield _Hit("FUN-K8S-030", ("spec", "replicas"), f"{what}{extra}")


# -- ignores ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ignores:
    ids: frozenset[str]
    hits: tuple[_Hit, ...]


def _ignores(doc: Document) -> _Ignores:
    annotations = _strings(_map(doc.obj.get("metadata")).get("annotations"))
    raw = annotations.get(IGNORE_CHECKS)
    if raw is None:
        return _Ignores(frozenset(), ())
    path: Path = ("metadata", "annotations", IGNORE_CHECKS)
    ids = [part.strip().upper() for part in raw.split(",") if part.strip()]
    hits: list[_Hit] = []
    unknown = [i for i in ids if i not in RULES]
    if unknown:
        hits.append(_Hit("FUN-K8S-091", path, f"{IGNORE_CHECKS} names unknown checks: {', '.join(unknown)}"))
    if not annotations.get(IGNORE_REASON, "").strip():
        hits.append(
            _Hit("FUN-K8S-090", path, f"{IGNORE_CHECKS} ({', '.join(ids)}) has no {IGNORE_REASON}; not honoured")
        )
        return _Ignores(frozenset(), tuple(hits))
    return _Ignores(frozenset(ids) - _UNIGNORABLE, tuple(hits))


# -- entry point -------------------------------------------------------------------------------------


def _finding(doc: Document, hit: _Hit) -> ManifestFinding:
    spec = RULES[hit.rule]
    return ManifestFinding(
        rule=hit.rule,
        severity=spec.severity,
        line=doc.line_of(hit.path),
        message=f"{_display(doc)}: {hit.message}",
        fix=spec.fix,
        source=doc.source,
        object=_display(doc),
        path=format_path(hit.path),
    )


def _enabled(rule_id: str, profile: Profile) -> bool:
    return profile is Profile.PRODUCTION or not RULES[rule_id].production_only


def check(documents: Sequence[Document], profile: Profile = Profile.DEFAULT) -> list[ManifestFinding]:
    """Every finding for a set of manifests, in file order.

    Args:
        documents: all the objects checked together (presence rules look across them).
        profile: ``production`` adds FUN-K8S-021 and FUN-K8S-030 to FUN-K8S-032.

    Returns:
        The findings the objects' ignore annotations leave, ordered by source, line and rule.
    """
    findings: list[ManifestFinding] = []
    for doc in documents:
        ignores = _ignores(doc)
        hits: list[_Hit] = list(ignores.hits)
        pod = pod_templates(doc)
        if pod is not None:
            for run in _POD_CHECKS:
                hits += run(pod)
            hits += _check_set(pod, documents)
        for hit in hits:
            if _enabled(hit.rule, profile) and hit.rule not in ignores.ids:
                findings.append(_finding(doc, hit))
    order = {source: i for i, source in enumerate(dict.fromkeys(d.source for d in documents))}
    findings.sort(key=lambda f: (order.get(f.source, 0), f.line, f.severity.rank, f.rule))
    return findings
