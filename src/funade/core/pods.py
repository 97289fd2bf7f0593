"""Pure pod rules the kubelet applies: users, environment expansion, phase and conditions.

The local runtime gathers facts from Docker; these functions decide what the facts mean
in Kubernetes terms, so the rules can be tested without a container in sight.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "conditions",
    "effective_ids",
    "expand",
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
