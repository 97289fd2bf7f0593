"""Pure pod rules the kubelet applies: users, environment expansion, phase and conditions.

The local runtime gathers facts from Docker; these functions decide what the facts mean
in Kubernetes terms, so the rules can be tested without a container in sight.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "ConfigError",
    "conditions",
    "container_env",
    "container_user",
    "effective_ids",
    "expand",
    "expand_command",
    "non_root_violation",
    "phase",
]

Obj = dict[str, Any]


def effective_ids(
    pod_sc: Mapping[str, Any] | None, sc: Mapping[str, Any] | None
) -> tuple[int | None, int | None, bool]:
    """The (runAsUser, runAsGroup, runAsNonRoot) a container runs with.

    The container's securityContext wins over the pod's, field by field.
    """
    pod_sc = pod_sc or {}
    sc = sc or {}

    def pick(field: str) -> Any:
        value = sc.get(field)
        return pod_sc.get(field) if value is None else value

    user, group = pick("runAsUser"), pick("runAsGroup")
    return (
        None if user is None else int(user),
        None if group is None else int(group),
        bool(pick("runAsNonRoot")),
    )


def non_root_violation(run_as_user: int | None, image_user: str) -> str | None:
    """Why runAsNonRoot refuses to start the container, or None when it may start.

    Mirrors the kubelet's ``verifyRunAsNonRoot``: an explicit runAsUser decides; else the
    image's USER must be a non-zero numeric uid.
    """
    if run_as_user is not None:
        if run_as_user == 0:
            return "container's runAsUser breaks non-root policy"
        return None
    user = image_user.split(":", 1)[0].strip()
    if user in ("", "0"):
        return "container has runAsNonRoot and image will run as root"
    if not user.isdigit():
        return f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root"
    return None


_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(value: str, env: Mapping[str, str]) -> str:
    """Expand ``$(VAR)`` references as Kubernetes does for env, command and args.

    ``$$`` escapes a dollar; a reference to an unknown variable is left as written.
    """

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return env.get(name, match.group(0))

    return _REF.sub(sub, value)


def phase(restart_policy: str, init_done: bool, statuses: Sequence[Obj]) -> str:
    """Pod phase from its container statuses, as the kubelet's ``getPhase`` decides.

    A container that waits without ever having run keeps the pod Pending; one that waits
    to restart counts as stopped.
    """
    if not init_done or not statuses:
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for status in statuses:
        state = status.get("state", {})
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"].get("exitCode") == 0
        elif (status.get("lastState") or {}).get("terminated"):
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if restart_policy == "Always":
        return "Running"
    if stopped == succeeded:
        return "Succeeded"
    return "Running" if restart_policy == "OnFailure" else "Failed"


def conditions(init_done: bool, statuses: Sequence[Obj], previous: Sequence[Obj], now: str) -> list[Obj]:
    """PodScheduled, Initialized, ContainersReady and Ready, keeping transition times."""
    ready = bool(statuses) and all(s.get("ready") for s in statuses)
    not_ready = [s["name"] for s in statuses if not s.get("ready")]
    reason_ready = "" if ready else "ContainersNotReady"
    message = "" if ready else f"containers with unready status: [{' '.join(not_ready)}]"
    wanted = [
        ("PodScheduled", True, "", ""),
        (
            "Initialized",
            init_done,
            "" if init_done else "ContainersNotInitialized",
            "" if init_done else "containers with incomplete status",
        ),
        ("ContainersReady", ready, reason_ready, message),
        ("Ready", ready, reason_ready, message),
    ]
    before = {c["type"]: c for c in previous}
    result: list[Obj] = []
    for kind, ok, reason, msg in wanted:
        status = "True" if ok else "False"
        old = before.get(kind)
        since = old["lastTransitionTime"] if old and old.get("status") == status else now
        cond: Obj = {"type": kind, "status": status, "lastTransitionTime": since}
        if reason:
            cond["reason"] = reason
        if msg:
            cond["message"] = msg
        result.append(cond)
    return result


class ConfigError(ValueError):
    """A container cannot be configured yet: the kubelet's CreateContainerConfigError."""


Lookup = Callable[[str, str], Obj | None]
"""Finds a ConfigMap or Secret of the pod's namespace: (kind, name) → object or None."""


def container_user(pod: Obj, container: Obj, image_user: str) -> str | None:
    """The Docker ``user`` of a container, after the runAsNonRoot check.

    Raises:
        ConfigError: runAsNonRoot is set and the container would run as root.
    """
    meta = pod["metadata"]
    uid, gid, non_root = effective_ids(pod["spec"].get("securityContext"), container.get("securityContext"))
    if non_root:
        problem = non_root_violation(uid, image_user)
        if problem:
            where = (
                f'(pod: "{meta["name"]}_{meta["namespace"]}({meta.get("uid", "")})", container: {container["name"]})'
            )
            raise ConfigError(f"{problem} {where}")
    if uid is not None:
        return f"{uid}:{gid}" if gid is not None else str(uid)
    if gid is not None:
        return f"{image_user.split(':', 1)[0] or '0'}:{gid}"
    return None


def _decoded(secret: Obj, key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode(errors="replace")


def container_env(pod: Obj, container: Obj, pod_ip: str, lookup: Lookup) -> dict[str, str]:
    """A container's environment: envFrom, then env (values, $(VAR), valueFrom), then HOSTNAME.

    Raises:
        ConfigError: a referenced ConfigMap, Secret or key is missing (and not optional),
            or a valueFrom the local target cannot resolve.
    """
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for field, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
            if field not in source:
                continue
            ref = source[field]
            found = lookup(kind, ref["name"])
            if found is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            data = found.get("data") or {}
            if kind == "Secret":
                env.update({prefix + k: _decoded(found, k) for k in data})
            else:
                env.update({prefix + k: str(v) for k, v in data.items()})
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(str(var.get("value", "")), env)
            continue
        value = _value_from(pod, name, var["valueFrom"], pod_ip, lookup)
        if value is not None:
            env[name] = value
    env.setdefault("HOSTNAME", pod["metadata"]["name"])
    return env


def _value_from(pod: Obj, name: str, value_from: Obj, pod_ip: str, lookup: Lookup) -> str | None:
    meta = pod["metadata"]
    ns = meta["namespace"]
    for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
        if field not in value_from:
            continue
        ref = value_from[field]
        found = lookup(kind, ref["name"])
        if found is None or ref["key"] not in (found.get("data") or {}):
            if ref.get("optional"):
                return None
            if found is None:
                raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
        return _decoded(found, ref["key"]) if kind == "Secret" else str(found["data"][ref["key"]])
    if "fieldRef" in value_from:
        path = value_from["fieldRef"]["fieldPath"]
        simple = {
            "metadata.name": meta["name"],
            "metadata.namespace": ns,
            "metadata.uid": meta.get("uid", ""),
            "status.podIP": pod_ip,
            "status.podIPs": pod_ip,
            "status.hostIP": "127.0.0.1",
            "spec.nodeName": "local",
            "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
        }
        if path in simple:
            return str(simple[path])
        for prefix, source in (
            ("metadata.labels", meta.get("labels") or {}),
            ("metadata.annotations", meta.get("annotations") or {}),
        ):
            if path.startswith(prefix + "['") and path.endswith("']"):
                return str(source.get(path[len(prefix) + 2 : -2], ""))
        raise ConfigError(f"unsupported fieldRef {path!r} for env {name}")
    if "resourceFieldRef" in value_from:
        raise ConfigError(f"resourceFieldRef for env {name} is not supported on the local target")
    raise ConfigError(f"env {name}: empty valueFrom")


def expand_command(container: Obj, env: Mapping[str, str]) -> Obj:
    """A copy of the container with ``$(VAR)`` expanded in command and args."""
    expanded = dict(container)
    for field in ("command", "args"):
        if container.get(field):
            expanded[field] = [expand(str(a), env) for a in container[field]]
    return expanded
