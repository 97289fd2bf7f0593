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
    if user in ("", "root", "0"):
        return "container has runAsNonRoot and image will run as root"
    if not user.isdigit():
        return f"container has runAsNonRoot and image has non-numeric user ({user}), cannot verify user is non-root"
    return None


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")


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
    """Pod phase from its container statuses (Pending, Running, Succeeded, Failed)."""
    if not init_done or not statuses:
        return "Pending"
    states = [s.get("state", {}) for s in statuses]
    if any("running" in st for st in states):
        return "Running"
    terminated = [st["terminated"] for st in states if "terminated" in st]
    if len(terminated) == len(states):
        if all(t.get("exitCode") == 0 for t in terminated):
            return "Succeeded" if restart_policy != "Always" else "Running"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    # Some containers wait: they never ran (Pending) or are backing off after a run.
    if any(s.get("restartCount", 0) > 0 or ("lastState" in s and s["lastState"]) for s in statuses):
        return "Running"
    return "Pending"


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
