"""Turning API objects into what people read: kubectl-style tables, describe text, progress.

Pure functions from dictionaries to rich renderables or strings, tested on an in-memory
console; the commands only fetch and print.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table
from rich.text import Text

from funade.core import revisions

__all__ = [
    "age",
    "audit_table",
    "describe",
    "events_table",
    "history_table",
    "object_table",
    "pod_summary",
    "rollout_line",
    "rollout_outcome",
]

Obj = dict[str, Any]


def age(timestamp: str | None, now: float | None = None) -> str:
    """kubectl's short age (``HumanDuration``): 45s, 3m12s, 5h30m, 2d5h, 3y."""
    if not timestamp:
        return "<unknown>"
    then = revisions.parse_time(timestamp)
    seconds = int((now if now is not None else time.time()) - then)
    if seconds < -1:
        return "<invalid>"
    seconds = max(0, seconds)
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m" + (f"{seconds % 60}s" if seconds % 60 else "")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h" + (f"{minutes % 60}m" if minutes % 60 else "")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d" + (f"{hours % 24}h" if hours % 24 else "")
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        return f"{days // 365}y" + (f"{days % 365}d" if days % 365 else "")
    return f"{days // 365}y"


def pod_summary(pod: Obj) -> tuple[str, str, int]:
    """(READY, STATUS, RESTARTS) as kubectl shows them."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or containers)
    ready = sum(1 for c in containers if c.get("ready"))
    restarts = sum(int(c.get("restartCount", 0)) for c in containers)
    reason = status.get("phase", "Pending")
    inits = status.get("initContainerStatuses") or []
    total_inits = len((pod.get("spec") or {}).get("initContainers") or inits)
    for index, init in enumerate(inits):
        waiting = init.get("state", {}).get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
            break
        if "running" in init.get("state", {}) or waiting:
            reason = f"Init:{index}/{total_inits}"
            break
    else:
        for c in containers:
            state = c.get("state", {})
            if "waiting" in state and state["waiting"].get("reason") not in (None, "ContainerCreating"):
                reason = state["waiting"]["reason"]
            elif "waiting" in state and reason == "Pending":
                reason = state["waiting"].get("reason") or reason
            elif "terminated" in state:
                reason = state["terminated"].get("reason") or "Terminated"
    if pod.get("metadata", {}).get("deletionTimestamp"):
        reason = "Terminating"
    return f"{ready}/{total}", reason, restarts


def _deployment_row(obj: Obj, wide: bool) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    row = [
        obj["metadata"]["name"],
        f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
        str(status.get("updatedReplicas", 0)),
        str(status.get("availableReplicas", 0)),
        age(obj["metadata"].get("creationTimestamp")),
    ]
    if wide:
        containers = spec.get("template", {}).get("spec", {}).get("containers", [])
        row += [
            ",".join(c["name"] for c in containers),
            ",".join(c["image"] for c in containers),
            ",".join(f"{k}={v}" for k, v in (spec.get("selector", {}).get("matchLabels") or {}).items()),
        ]
    return row


def _service_row(obj: Obj, wide: bool) -> list[str]:
    """kubectl's columns; every port is served on 127.0.0.1, at PORT:LOCALPORT."""
    spec = obj.get("spec") or {}
    local = (obj.get("status") or {}).get("localTarget") or {}
    ports = ",".join(
        f"{p['port']}:{p['localPort']}/{p.get('protocol', 'TCP')}"
        if p.get("localPort")
        else f"{p['port']}/{p.get('protocol', 'TCP')}"
        for p in local.get("ports") or spec.get("ports") or []
    )
    row = [
        obj["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        "127.0.0.1",
        "<none>" if spec.get("type", "ClusterIP") == "ClusterIP" else "127.0.0.1",
        ports or "<none>",
        age(obj["metadata"].get("creationTimestamp")),
    ]
    if wide:
        row.append(",".join(f"{k}={v}" for k, v in (spec.get("selector") or {}).items()) or "<none>")
    return row


def _job_row(obj: Obj) -> list[str]:
    """kubectl's columns: STATUS (Running, Complete, Failed, Suspended), COMPLETIONS, DURATION."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    true = {c.get("type") for c in status.get("conditions") or [] if c.get("status") == "True"}
    state = next((t for t in ("Failed", "Complete", "Suspended") if t in true), "Running")
    succeeded = int(status.get("succeeded", 0))
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    else:
        completions = f"{succeeded}/1 of {spec.get('parallelism', 1)}"
    duration = ""
    if status.get("startTime"):
        end = revisions.parse_time(status["completionTime"]) if status.get("completionTime") else time.time()
        duration = age(status["startTime"], end)
    return [obj["metadata"]["name"], state, completions, duration, age(obj["metadata"].get("creationTimestamp"))]


def _metric_source(metric: Obj) -> Obj:
    """The ``resource`` / ``containerResource`` part of an HPA metric (spec or status)."""
    return dict(metric.get("resource") or metric.get("containerResource") or {})


def _hpa_row(obj: Obj) -> list[str]:
    """kubectl's columns: REFERENCE, TARGETS as ``cpu: 35%/70%`` (``<unknown>`` before a measurement)."""
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    current = {
        _metric_source(m).get("name"): _metric_source(m).get("current") or {}
        for m in status.get("currentMetrics") or []
    }
    metrics = spec.get("metrics") or []
    if "targetCPUUtilizationPercentage" in spec:  # autoscaling/v1
        target = {"averageUtilization": spec["targetCPUUtilizationPercentage"]}
        metrics = [{"type": "Resource", "resource": {"name": "cpu", "target": target}}]
    targets = []
    for metric in metrics:
        name = _metric_source(metric).get("name") or metric.get("type", "?")
        target, value = _metric_source(metric).get("target") or {}, current.get(name) or {}
        if "averageUtilization" in target:
            shown = f"{value['averageUtilization']}%" if "averageUtilization" in value else "<unknown>"
            targets.append(f"{name}: {shown}/{target['averageUtilization']}%")
        else:
            wanted = target.get("averageValue", target.get("value", "?"))
            targets.append(f"{name}: {value.get('averageValue', '<unknown>')}/{wanted}")
    return [
        obj["metadata"]["name"],
        f"{ref.get('kind', '?')}/{ref.get('name', '?')}",
        ", ".join(targets) or "<none>",
        str(spec.get("minReplicas", 1)),
        str(spec.get("maxReplicas", "?")),
        str(status.get("currentReplicas", 0)),
        age(obj["metadata"].get("creationTimestamp")),
    ]


def endpoints_text(obj: Obj) -> str:
    """``IP:PORT (state)`` for each endpoint, as `funade get endpoints` shows them."""
    items = ((obj.get("status") or {}).get("localTarget") or {}).get("endpoints") or []
    text = ", ".join(
        f"{e['ip']}:{e['targetPort']}" + ("" if e["state"] == "ready" else f" ({e['state']})") for e in items
    )
    return text or "<none>"


def object_table(kind: str, items: list[Obj], wide: bool = False, all_namespaces: bool = False) -> Table:
    """The table `funade get KIND` prints."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    ns_col = ["NAMESPACE"] if all_namespaces else []
    if kind == "Pod":
        columns = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"] + (["IP", "NODE"] if wide else [])
    elif kind == "Deployment":
        columns = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"] + (
            ["CONTAINERS", "IMAGES", "SELECTOR"] if wide else []
        )
    elif kind == "ReplicaSet":
        columns = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"] + (["REVISION", "IMAGES"] if wide else [])
    elif kind in ("ConfigMap", "Secret"):
        columns = ["NAME"] + (["TYPE"] if kind == "Secret" else []) + ["DATA", "AGE"]
    elif kind == "Namespace":
        columns = ["NAME", "STATUS", "AGE"]
    elif kind == "Service":
        columns = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"] + (["SELECTOR"] if wide else [])
    elif kind == "Endpoints":
        columns = ["NAME", "ENDPOINTS", "AGE"]
    elif kind == "HorizontalPodAutoscaler":
        columns = ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    elif kind == "Job":
        columns = ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    elif kind == "CronJob":
        columns = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    else:
        columns = ["NAME", "STATUS", "AGE"]
    for column in ns_col + columns:
        table.add_column(column, no_wrap=True)
    for obj in items:
        meta = obj["metadata"]
        prefix = [meta.get("namespace", "")] if all_namespaces else []
        created = meta.get("creationTimestamp")
        if kind == "Pod":
            ready, status, restarts = pod_summary(obj)
            row = [meta["name"], ready, status, str(restarts), age(created)]
            if wide:
                row += [obj.get("status", {}).get("podIP") or "<none>", "local"]
        elif kind == "Deployment":
            row = _deployment_row(obj, wide)
        elif kind == "ReplicaSet":
            rs_status = obj.get("status") or {}
            row = [
                meta["name"],
                str(obj["spec"].get("replicas", 0)),
                str(rs_status.get("replicas", 0)),
                str(rs_status.get("readyReplicas", 0)),
                age(created),
            ]
            if wide:
                row += [
                    (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", ""),
                    ",".join(c["image"] for c in obj["spec"]["template"]["spec"]["containers"]),
                ]
        elif kind in ("ConfigMap", "Secret"):
            data = len(obj.get("data") or {}) + len(obj.get("binaryData") or {})
            row = [meta["name"]] + ([obj.get("type", "Opaque")] if kind == "Secret" else []) + [str(data), age(created)]
        elif kind == "Namespace":
            row = [meta["name"], "Active", age(created)]
        elif kind == "Service":
            row = _service_row(obj, wide)
        elif kind == "Endpoints":
            row = [meta["name"], endpoints_text(obj), age(created)]
        elif kind == "HorizontalPodAutoscaler":
            row = _hpa_row(obj)
        elif kind == "Job":
            row = _job_row(obj)
        elif kind == "CronJob":
            spec, cron_status = obj.get("spec") or {}, obj.get("status") or {}
            last = cron_status.get("lastScheduleTime")
            row = [
                meta["name"],
                str(spec.get("schedule", "")),
                str(spec.get("timeZone") or "<none>"),
                str(bool(spec.get("suspend", False))),
                str(len(cron_status.get("active") or [])),
                age(last) if last else "<none>",
                age(created),
            ]
        else:
            row = [meta["name"], (obj.get("status") or {}).get("localTarget", ""), age(created)]
        table.add_row(*(prefix + row))
    return table


def events_table(events: list[Obj], now: float | None = None) -> Table:
    """`funade events`: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"):
        table.add_column(column, no_wrap=column != "MESSAGE")
    current = now if now is not None else time.time()
    for e in events:
        seen = revisions.rfc3339(e["time"])
        count = f" (x{e['count']})" if e.get("count", 1) > 1 else ""
        style = "yellow" if e["type"] == "Warning" else ""
        table.add_row(
            age(seen, current),
            Text(e["type"], style=style),
            e["reason"],
            f"{e['kind'].lower()}/{e['name']}",
            e["message"] + count,
        )
    return table


def audit_table(entries: list[Obj]) -> Table:
    """`funade audit`: TIME, ACTOR, ACTION, NAMESPACE, OBJECTS, REASON and what was overridden."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("TIME", "ACTOR", "ACTION", "NAMESPACE", "OBJECTS", "REASON"):
        table.add_column(column, no_wrap=column not in ("OBJECTS", "REASON"))
    for e in entries:
        details = "".join(f"\n  - {d}" for d in e.get("details") or [])
        table.add_row(
            revisions.rfc3339(e["time"]),
            e["actor"],
            Text(e["action"], style="yellow"),
            e["namespace"],
            ", ".join(e.get("objects") or []),
            Text(e["reason"]) + Text(details, style="dim"),
        )
    return table


def history_table(items: list[Obj]) -> Table:
    """`funade rollout history`."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("REVISION", "REPLICASET", "IMAGES", "HEALTHY", "CHANGE-CAUSE"):
        table.add_column(column, no_wrap=True)
    for item in items:
        table.add_row(
            str(item["revision"]),
            item["replicaSet"],
            ",".join(item["images"]),
            "yes" if item.get("healthy") else "-",
            item.get("changeCause") or "<none>",
        )
    return table


def _condition(obj: Obj, kind: str) -> Obj | None:
    conditions: list[Obj] = (obj.get("status") or {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == kind), None)


def rollout_outcome(deployment: Obj) -> tuple[str, str]:
    """Where a rollout stands: ("done" | "failed" | "rolledback" | "waiting", message).

    Mirrors ``kubectl rollout status``; a rollback funade made counts as a failure.
    """
    name = deployment["metadata"]["name"]
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(deployment["metadata"].get("generation", 1)):
        return "waiting", f'Waiting for deployment "{name}" spec update to be observed...'
    rolled_back = _condition(deployment, "RolledBack")
    progressing = _condition(deployment, "Progressing")
    updated = int(status.get("updatedReplicas", 0))
    replicas = int(status.get("replicas", 0))
    available = int(status.get("availableReplicas", 0))
    complete = updated >= desired and replicas == updated and available >= updated
    if rolled_back is not None:
        if complete:
            return "rolledback", f'deployment "{name}" was rolled back: {rolled_back["message"]}'
        return "waiting", (
            f'Rolling back deployment "{name}": {rolled_back["message"]} ({available} of {desired} available)'
        )
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return "failed", f'deployment "{name}" exceeded its progress deadline'
    if spec.get("paused"):
        return "waiting", f'deployment "{name}" is paused; resume it with `funade rollout resume deployment/{name}`'
    if updated < desired:
        return "waiting", (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{updated} out of {desired} new replicas have been updated..."
        )
    if replicas > updated:
        return "waiting", (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{replicas - updated} old replicas are pending termination..."
        )
    if available < updated:
        return "waiting", (
            f'Waiting for deployment "{name}" rollout to finish: '
            f"{available} of {updated} updated replicas are available..."
        )
    return "done", f'deployment "{name}" successfully rolled out'


def rollout_line(deployment: Obj, pods: list[Obj]) -> Table:
    """A live view of a rollout: counts per revision and what each unready pod waits for."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("REVISION", "DESIRED", "UPDATED", "READY", "AVAILABLE", "WAITING FOR"):
        table.add_column(column, no_wrap=column != "WAITING FOR")
    waiting = []
    for pod in pods:
        _, state, restarts = pod_summary(pod)
        if state != "Running" or not all(
            c.get("ready") for c in (pod.get("status") or {}).get("containerStatuses", [])
        ):
            detail = state
            for c in (pod.get("status") or {}).get("containerStatuses", []):
                msg = (c.get("state", {}).get("waiting") or {}).get("message")
                if msg:
                    detail += f": {msg[:80]}"
                    break
            if restarts:
                detail += f" (restarts {restarts})"
            waiting.append(f"{pod['metadata']['name']} {detail}")
    table.add_row(
        str(status.get("currentRevision", "-")),
        str(spec.get("replicas", 1)),
        str(status.get("updatedReplicas", 0)),
        str(status.get("readyReplicas", 0)),
        str(status.get("availableReplicas", 0)),
        "; ".join(waiting[:3]) or "-",
    )
    return table


def probe_line(probe: Obj) -> str:
    """A probe as kubectl describes it: ``http-get http://:8080/ready delay=0s timeout=1s period=10s …``."""
    if "httpGet" in probe:
        h = probe["httpGet"]
        how = (
            f"http-get {str(h.get('scheme', 'HTTP')).lower()}://{h.get('host', '')}:{h.get('port')}{h.get('path', '/')}"
        )
    elif "tcpSocket" in probe:
        how = f"tcp-socket :{probe['tcpSocket'].get('port')}"
    elif "exec" in probe:
        how = f"exec {probe['exec'].get('command')}"
    else:
        how = "grpc"
    return (
        f"{how} delay={probe.get('initialDelaySeconds', 0)}s timeout={probe.get('timeoutSeconds', 1)}s "
        f"period={probe.get('periodSeconds', 10)}s #success={probe.get('successThreshold', 1)} "
        f"#failure={probe.get('failureThreshold', 3)}"
    )


def _container_spec_lines(container: Obj) -> list[str]:
    if not container:
        return []
    lines = [f"  Image:      {container.get('image')}"]
    ports = ", ".join(
        f"{p['containerPort']}/{p.get('protocol', 'TCP')}" + (f" ({p['name']})" if p.get("name") else "")
        for p in container.get("ports") or []
    )
    if ports:
        lines.append(f"  Ports:      {ports}")
    resources = container.get("resources") or {}
    for kind in ("limits", "requests"):
        if resources.get(kind):
            values = ", ".join(f"{k}={v}" for k, v in resources[kind].items())
            lines.append(f"  {kind.capitalize() + ':':<11} {values}")
    for field, label in (("startupProbe", "Startup"), ("readinessProbe", "Readiness"), ("livenessProbe", "Liveness")):
        if container.get(field):
            lines.append(f"  {label + ':':<11} {probe_line(container[field])}")
    for mount in container.get("volumeMounts") or []:
        mode = "ro" if mount.get("readOnly") else "rw"
        lines.append(f"  Mount:      {mount['mountPath']} from {mount['name']} ({mode})")
    return lines


def describe(obj: Obj, events: list[Obj]) -> str:
    """`funade describe`: the object's key fields, conditions and recent events."""
    meta = obj["metadata"]
    lines = [f"Name:         {meta['name']}"]
    if meta.get("namespace"):
        lines.append(f"Namespace:    {meta['namespace']}")
    lines.append(f"Kind:         {obj['kind']}")
    if meta.get("labels"):
        lines.append("Labels:       " + "\n              ".join(f"{k}={v}" for k, v in meta["labels"].items()))
    if meta.get("annotations"):
        lines.append("Annotations:  " + "\n              ".join(f"{k}: {v}" for k, v in meta["annotations"].items()))
    lines.append(f"Created:      {meta.get('creationTimestamp', '<unknown>')}")
    status = obj.get("status") or {}
    spec = obj.get("spec") or {}
    if obj["kind"] == "Deployment":
        lines.append(
            f"Replicas:     {spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
            f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
            f"{status.get('unavailableReplicas', 0)} unavailable"
        )
        strategy = spec.get("strategy") or {}
        lines.append(f"Strategy:     {strategy.get('type', 'RollingUpdate')}")
        if strategy.get("rollingUpdate"):
            ru = strategy["rollingUpdate"]
            lines.append(
                f"RollingUpdateStrategy: {ru.get('maxUnavailable', '25%')} max unavailable, "
                f"{ru.get('maxSurge', '25%')} max surge"
            )
        lines.append(f"Revision:     {status.get('currentRevision', '-')}")
        for c in spec.get("template", {}).get("spec", {}).get("containers", []):
            lines.append(f"Container:    {c['name']}  image {c['image']}")
    if obj["kind"] == "Pod":
        lines.append(f"Status:       {pod_summary(obj)[1]}")
        lines.append(f"IP:           {status.get('podIP') or '<none>'}")
        specs = {c["name"]: c for c in spec.get("containers", [])}
        for c in status.get("containerStatuses", []):
            state = next(iter(c.get("state", {}) or {"unknown": {}}))
            detail = c["state"].get(state, {}) if c.get("state") else {}
            reason = detail.get("reason", "")
            lines.append(
                f"Container {c['name']}: {state}{' (' + reason + ')' if reason else ''}, "
                f"ready={c.get('ready')}, restarts={c.get('restartCount', 0)}"
            )
            if detail.get("message"):
                lines.append(f"  Message: {detail['message']}")
            last = c.get("lastState") or {}
            if "terminated" in last:
                t = last["terminated"]
                lines.append(
                    f"  Last state: terminated ({t.get('reason')}), exit code {t.get('exitCode')}, "
                    f"finished {t.get('finishedAt')}"
                )
            lines += _container_spec_lines(specs.get(c["name"], {}))
    if obj["kind"] == "HorizontalPodAutoscaler":
        _, reference, targets, low, high, _, _ = _hpa_row(obj)
        lines.append(f"Reference:    {reference}")
        lines.append(f"Metrics:      {targets}  (current/target)")
        lines.append(f"Min/Max:      {low} / {high} replicas")
        lines.append(
            f"Replicas:     {status.get('currentReplicas', 0)} current / {status.get('desiredReplicas', 0)} desired"
            + (f", last scaled {status['lastScaleTime']}" if status.get("lastScaleTime") else "")
        )
    if obj["kind"] == "Job":
        _, state, completions, duration, _ = _job_row(obj)
        lines.append(f"Status:       {state}, {completions} completions, duration {duration or '-'}")
        lines.append(
            f"Pods:         {status.get('active', 0)} active / {status.get('succeeded', 0)} succeeded / "
            f"{status.get('failed', 0)} failed (backoffLimit {spec.get('backoffLimit', 6)})"
        )
        if status.get("completedIndexes"):
            lines.append(f"Completed:    indexes {status['completedIndexes']}")
    if obj["kind"] == "CronJob":
        lines.append(f"Schedule:     {spec.get('schedule')} ({spec.get('timeZone') or 'UTC'})")
        lines.append(
            f"Policy:       concurrency {spec.get('concurrencyPolicy', 'Allow')}, suspend {spec.get('suspend', False)}"
        )
        lines.append(f"Last run:     {status.get('lastScheduleTime', '<none>')}, last success "
                     f"{status.get('lastSuccessfulTime', '<none>')}")  # fmt: skip
        lines += [f"Active job:   {ref.get('name')}" for ref in status.get("active") or []]
    if status.get("localTarget"):
        lines.append(f"Status:       {status['localTarget']}")
    conditions = status.get("conditions") or []
    if conditions:
        lines.append("Conditions:")
        for cond in conditions:
            reason = cond.get("reason", "")
            lines.append(
                f"  {cond['type']:<16} {cond['status']:<7} {reason}"
                + (f" — {cond['message']}" if cond.get("message") else "")
            )
    lines.append("Events:" + ("  <none>" if not events else ""))
    for e in events[-15:]:
        count = f" (x{e['count']})" if e.get("count", 1) > 1 else ""
        lines.append(f"  {e['type']:<8} {e['reason']:<20} {e['message']}{count}")
    return "\n".join(lines)
