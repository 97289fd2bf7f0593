"""What people read must look like kubectl: tables, ages, rollout status and describe text.

Facts: kubectl's pod printer (``printPod`` in pkg/printers/internalversion/printers.go),
``duration.HumanDuration`` (k8s.io/apimachinery/pkg/util/duration) and
``kubectl rollout status`` (``DeploymentStatusViewer``). Renderables are printed on an
in-memory console of fixed width.
"""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from rich.console import Console, RenderableType

from funade.cli import render

pytestmark = pytest.mark.unit

Obj = dict[str, Any]

NOW = 1714557600.0  # 2024-05-01T10:00:00Z
CREATED = "2024-05-01T10:00:00Z"


def _text(renderable: RenderableType) -> str:
    out = io.StringIO()
    console = Console(width=120, file=out, force_terminal=False, color_system=None)
    console.print(renderable)
    return out.getvalue()


def _rows(renderable: RenderableType) -> list[list[str]]:
    """The printed lines split into cells (cells here never contain spaces)."""
    return [line.split() for line in _text(renderable).splitlines() if line.strip()]


def _long_ago() -> str:
    """A creation time whose AGE reads "10d" whatever the clock says."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 10 * 86400 - 3600))


# --- age -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (192, "3m12s"),
        (599, "9m59s"),
        (600, "10m"),
        (2 * 3600 + 59 * 60, "179m"),
        (3 * 3600, "3h"),
        (5 * 3600, "5h"),
        (47 * 3600 + 3599, "47h"),
        (2 * 86400, "2d"),
        (30 * 86400, "30d"),
    ],
)
def test_age(seconds: int, expected: str) -> None:
    assert render.age(CREATED, now=NOW + seconds) == expected


def test_age_unknown_and_clock_skew() -> None:
    assert render.age(None, now=NOW) == "<unknown>"
    assert render.age("", now=NOW) == "<unknown>"
    assert render.age(CREATED, now=NOW - 1) == "0s"


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (180, "3m"),
        (5 * 3600 + 30 * 60, "5h30m"),
        (2 * 86400 + 5 * 3600, "2d5h"),
        (3 * 365 * 86400, "3y"),
    ],
)
def test_age_matches_kubectl_human_duration(seconds: int, expected: str) -> None:
    assert render.age(CREATED, now=NOW + seconds) == expected


# --- pods --------------------------------------------------------------------------------------


def _pod(name: str, phase: str, statuses: list[Obj], **extra: Any) -> Obj:
    pod: Obj = {
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": _long_ago()},
        "spec": {"containers": [{"name": s["name"], "image": "app:1"} for s in statuses] or [{"name": "app"}]},
        "status": {"phase": phase, "containerStatuses": statuses, "podIP": "10.0.0.7"},
    }
    for key, value in extra.items():
        if key == "deletionTimestamp":
            pod["metadata"][key] = value
        else:
            pod["status"][key] = value
    return pod


RUNNING = {"name": "app", "ready": True, "restartCount": 0, "state": {"running": {"startedAt": CREATED}}}
CRASHING = {
    "name": "app",
    "ready": False,
    "restartCount": 5,
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s restarting failed container"}},
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": CREATED}},
}
PULL_FAILED = {
    "name": "app",
    "ready": False,
    "restartCount": 0,
    "state": {"waiting": {"reason": "ErrImagePull", "message": "manifest unknown"}},
}
CREATING = {"name": "app", "ready": False, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
COMPLETED = {
    "name": "app",
    "ready": False,
    "restartCount": 0,
    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
}


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        (_pod("a", "Running", [RUNNING]), ("1/1", "Running", 0)),
        (_pod("b", "Running", [CRASHING]), ("0/1", "CrashLoopBackOff", 5)),
        (_pod("c", "Pending", [PULL_FAILED]), ("0/1", "ErrImagePull", 0)),
        (_pod("d", "Pending", [CREATING]), ("0/1", "ContainerCreating", 0)),
        (_pod("e", "Succeeded", [COMPLETED]), ("0/1", "Completed", 0)),
        (_pod("f", "Running", [RUNNING], deletionTimestamp=CREATED), ("1/1", "Terminating", 0)),
        (_pod("g", "Running", [RUNNING, {**CRASHING, "name": "side"}]), ("1/2", "CrashLoopBackOff", 5)),
        (_pod("h", "Pending", []), ("0/1", "Pending", 0)),
    ],
)
def test_pod_summary(pod: Obj, expected: tuple[str, str, int]) -> None:
    assert render.pod_summary(pod) == expected


def test_pod_summary_counts_spec_containers_before_statuses_exist() -> None:
    pod = _pod("x", "Pending", [])
    pod["spec"]["containers"] = [{"name": "app"}, {"name": "side"}]

    assert render.pod_summary(pod) == ("0/2", "Pending", 0)


def test_pod_summary_init_containers() -> None:
    waiting = {"name": "app", "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
    crashing_init = _pod("i", "Pending", [waiting], initContainerStatuses=[{**CRASHING, "name": "migrate"}])
    running_init = _pod(
        "j", "Pending", [waiting], initContainerStatuses=[{"name": "migrate", "state": {"running": {}}}]
    )

    assert render.pod_summary(crashing_init)[1] == "Init:CrashLoopBackOff"
    assert render.pod_summary(running_init)[1] == "Init:0/1"


def test_pod_summary_second_of_two_init_containers_running() -> None:
    waiting = {"name": "app", "ready": False, "state": {"waiting": {"reason": "PodInitializing"}}}
    pod = _pod(
        "k",
        "Pending",
        [waiting],
        initContainerStatuses=[
            {"name": "fetch", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "migrate", "state": {"running": {}}},
        ],
    )
    pod["spec"]["initContainers"] = [{"name": "fetch"}, {"name": "migrate"}]

    assert render.pod_summary(pod)[1] == "Init:1/2"


def test_pod_table_rows() -> None:
    items = [
        _pod("web-1", "Running", [RUNNING]),
        _pod("web-2", "Running", [CRASHING]),
        _pod("web-3", "Running", [RUNNING], deletionTimestamp=CREATED),
        _pod("web-4", "Pending", [PULL_FAILED]),
    ]

    rows = _rows(render.object_table("Pod", items))

    assert rows == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web-1", "1/1", "Running", "0", "10d"],
        ["web-2", "0/1", "CrashLoopBackOff", "5", "10d"],
        ["web-3", "1/1", "Terminating", "0", "10d"],
        ["web-4", "0/1", "ErrImagePull", "0", "10d"],
    ]


def test_pod_table_wide_and_all_namespaces() -> None:
    pending = _pod("web-2", "Pending", [CREATING])
    pending["status"].pop("podIP")

    rows = _rows(render.object_table("Pod", [_pod("web-1", "Running", [RUNNING]), pending], True, True))

    assert rows[0] == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert rows[1] == ["default", "web-1", "1/1", "Running", "0", "10d", "10.0.0.7", "local"]
    assert rows[2] == ["default", "web-2", "0/1", "ContainerCreating", "0", "10d", "<none>", "local"]


# --- deployments and other kinds ----------------------------------------------------------------


def _deployment(status: Obj | None = None, **spec: Any) -> Obj:
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 2, "creationTimestamp": _long_ago()},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.25"}, {"name": "log", "image": "busybox"}]},
            },
            **spec,
        },
        "status": {"observedGeneration": 2, **(status or {})},
    }


def test_deployment_rows() -> None:
    rolling = _deployment({"readyReplicas": 2, "updatedReplicas": 1, "availableReplicas": 2})
    rolling["metadata"]["name"] = "api"
    done = _deployment({"readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3})
    empty = _deployment(None)
    empty["metadata"]["name"] = "new"

    rows = _rows(render.object_table("Deployment", [rolling, done, empty]))

    assert rows == [
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        ["api", "2/3", "1", "2", "10d"],
        ["web", "3/3", "3", "3", "10d"],
        ["new", "0/3", "0", "0", "10d"],
    ]


def test_deployment_rows_wide() -> None:
    dep = _deployment({"readyReplicas": 3, "updatedReplicas": 3, "availableReplicas": 3})

    rows = _rows(render.object_table("Deployment", [dep], wide=True))

    assert rows[0] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[1] == ["web", "3/3", "3", "3", "10d", "app,log", "nginx:1.25,busybox", "app=web"]


def test_replicaset_configmap_secret_and_namespace_rows() -> None:
    created = _long_ago()
    rs = {
        "metadata": {
            "name": "web-5d8f7c9b6d",
            "creationTimestamp": created,
            "annotations": {"deployment.kubernetes.io/revision": "4"},
        },
        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.25"}]}}},
        "status": {"replicas": 3, "readyReplicas": 2},
    }
    cm = {"metadata": {"name": "settings", "creationTimestamp": created}, "data": {"a": "1", "b": "2"}}
    secret = {"metadata": {"name": "token", "creationTimestamp": created}, "data": {"t": "eA=="}}
    ns = {"metadata": {"name": "prod", "creationTimestamp": created}}

    assert _rows(render.object_table("ReplicaSet", [rs], wide=True))[1] == [
        "web-5d8f7c9b6d",
        "3",
        "3",
        "2",
        "10d",
        "4",
        "nginx:1.25",
    ]
    assert _rows(render.object_table("ConfigMap", [cm])) == [["NAME", "DATA", "AGE"], ["settings", "2", "10d"]]
    assert _rows(render.object_table("Secret", [secret]))[1] == ["token", "Opaque", "1", "10d"]
    assert _rows(render.object_table("Namespace", [ns]))[1] == ["prod", "Active", "10d"]


def test_events_table() -> None:
    events = [
        {
            "time": NOW - 30,
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "kind": "Deployment",
            "name": "web",
            "message": "Scaled up replica set web-abc to 3",
            "count": 1,
        },
        {
            "time": NOW - 5,
            "type": "Warning",
            "reason": "BackOff",
            "kind": "Pod",
            "name": "web-abc-1",
            "message": "Back-off restarting failed container",
            "count": 4,
        },
    ]

    text = _text(render.events_table(events, now=NOW))

    lines = [line.rstrip().split(None, 4) for line in text.splitlines()]
    assert lines[0][:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert lines[1] == ["30s", "Normal", "ScalingReplicaSet", "deployment/web", "Scaled up replica set web-abc to 3"]
    assert lines[2] == ["5s", "Warning", "BackOff", "pod/web-abc-1", "Back-off restarting failed container (x4)"]


def test_history_table() -> None:
    items = [
        {"revision": 1, "replicaSet": "web-a", "images": ["nginx:1.24"], "healthy": True, "changeCause": None},
        {"revision": 2, "replicaSet": "web-b", "images": ["nginx:1.25", "busybox"], "changeCause": "bump"},
    ]

    rows = _rows(render.history_table(items))

    assert rows == [
        ["REVISION", "REPLICASET", "IMAGES", "HEALTHY", "CHANGE-CAUSE"],
        ["1", "web-a", "nginx:1.24", "yes", "<none>"],
        ["2", "web-b", "nginx:1.25,busybox", "-", "bump"],
    ]


# --- rollout_outcome --------------------------------------------------------------------------


def _cond(kind: str, status: str, reason: str, message: str = "") -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def test_rollout_done() -> None:
    dep = _deployment({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3})

    assert render.rollout_outcome(dep) == ("done", 'deployment "web" successfully rolled out')


def test_rollout_waits_for_the_spec_to_be_observed() -> None:
    dep = _deployment({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "observedGeneration": 1})

    assert render.rollout_outcome(dep) == ("waiting", 'Waiting for deployment "web" spec update to be observed...')


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (
            {"replicas": 4, "updatedReplicas": 1, "availableReplicas": 3},
            'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...',
        ),
        (
            {"replicas": 4, "updatedReplicas": 3, "availableReplicas": 3},
            'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...',
        ),
        (
            {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 2},
            'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...',
        ),
    ],
)
def test_rollout_waiting(status: Obj, message: str) -> None:
    assert render.rollout_outcome(_deployment(status)) == ("waiting", message)


def test_rollout_waiting_while_paused() -> None:
    dep = _deployment({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}, paused=True)

    outcome, message = render.rollout_outcome(dep)

    assert outcome == "waiting"
    assert "paused" in message
    assert "rollout resume deployment/web" in message


def test_rollout_failed_on_progress_deadline_exceeded() -> None:
    dep = _deployment(
        {
            "replicas": 4,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [
                _cond("Available", "False", "MinimumReplicasUnavailable"),
                _cond("Progressing", "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-b" has timed out'),
            ],
        }
    )

    assert render.rollout_outcome(dep) == ("failed", 'deployment "web" exceeded its progress deadline')


def test_rollout_not_failed_while_progressing() -> None:
    dep = _deployment(
        {
            "replicas": 4,
            "updatedReplicas": 2,
            "availableReplicas": 2,
            "conditions": [_cond("Progressing", "True", "ReplicaSetUpdated")],
        }
    )

    assert render.rollout_outcome(dep)[0] == "waiting"


ROLLED_BACK = _cond("RolledBack", "True", "TooManyFailedPods", "revision 3 failed; rolled back to revision 2")


def test_rollout_rolledback_once_the_rollback_completed() -> None:
    dep = _deployment({"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "conditions": [ROLLED_BACK]})

    assert render.rollout_outcome(dep) == (
        "rolledback",
        'deployment "web" was rolled back: revision 3 failed; rolled back to revision 2',
    )


def test_rollout_waiting_while_the_rollback_runs() -> None:
    dep = _deployment({"replicas": 4, "updatedReplicas": 2, "availableReplicas": 1, "conditions": [ROLLED_BACK]})

    outcome, message = render.rollout_outcome(dep)

    assert outcome == "waiting"
    assert message.startswith('Rolling back deployment "web": revision 3 failed')
    assert "(1 of 3 available)" in message


def test_rollout_line_names_what_pods_wait_for() -> None:
    dep = _deployment({"currentRevision": 4, "updatedReplicas": 1, "readyReplicas": 2, "availableReplicas": 2})
    pods = [_pod("web-1", "Running", [RUNNING]), _pod("web-2", "Running", [CRASHING])]

    text = " ".join(_text(render.rollout_line(dep, pods)).split())  # the last column wraps

    assert text.startswith("REVISION DESIRED UPDATED READY AVAILABLE WAITING FOR 4 3 1 2 2 ")
    assert "web-2 CrashLoopBackOff: back-off 2m40s restarting failed container (restarts 5)" in text
    assert "web-1" not in text


# --- describe --------------------------------------------------------------------------------


def test_describe_deployment_with_conditions_and_events() -> None:
    dep = _deployment(
        {
            "replicas": 3,
            "updatedReplicas": 3,
            "availableReplicas": 3,
            "currentRevision": 2,
            "conditions": [
                _cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                _cond(
                    "Progressing", "True", "NewReplicaSetAvailable", 'ReplicaSet "web-b" has successfully progressed.'
                ),
            ],
        },
        strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
    )
    dep["metadata"]["labels"] = {"app": "web"}
    events = [
        {"type": "Normal", "reason": "ScalingReplicaSet", "message": "Scaled up replica set web-b to 3", "count": 1},
        {"type": "Warning", "reason": "BackOff", "message": "Back-off restarting failed container", "count": 3},
    ]

    text = render.describe(dep, events)

    assert "Name:         web" in text
    assert "Namespace:    default" in text
    assert "Kind:         Deployment" in text
    assert "Labels:       app=web" in text
    assert "Replicas:     3 desired | 3 updated | 3 total | 3 available | 0 unavailable" in text
    assert "Strategy:     RollingUpdate" in text
    assert "RollingUpdateStrategy: 0 max unavailable, 1 max surge" in text
    assert "Container:    app  image nginx:1.25" in text
    assert "Conditions:" in text
    assert "Available        True    MinimumReplicasAvailable — Deployment has minimum availability." in text
    assert 'Progressing      True    NewReplicaSetAvailable — ReplicaSet "web-b" has successfully progressed.' in text
    assert "Events:\n" in text
    assert "Normal   ScalingReplicaSet    Scaled up replica set web-b to 3" in text
    assert "Warning  BackOff              Back-off restarting failed container (x3)" in text
    assert text.index("Conditions:") < text.index("Events:")


def test_describe_without_events() -> None:
    text = render.describe(_deployment({}), [])

    assert text.endswith("Events:  <none>")
    assert "Conditions:" not in text


def test_describe_keeps_the_last_fifteen_events() -> None:
    events = [{"type": "Normal", "reason": "R", "message": f"event {i}"} for i in range(20)]

    text = render.describe(_deployment({}), events)

    assert "event 4\n" not in text
    assert "event 5" in text
    assert text.endswith("event 19")


def test_describe_pod() -> None:
    pod = _pod("web-2", "Running", [CRASHING])
    pod["status"]["conditions"] = [
        _cond("Ready", "False", "ContainersNotReady", "containers with unready status: [app]")
    ]

    text = render.describe(pod, [])

    assert "Kind:         Pod" in text
    assert "Status:       CrashLoopBackOff" in text
    assert "IP:           10.0.0.7" in text
    assert "Container app: waiting (CrashLoopBackOff), ready=False, restarts=5" in text
    assert "  Message: back-off 2m40s restarting failed container" in text
    assert f"  Last state: terminated (Error), exit code 1, finished {CREATED}" in text
    assert "Ready            False   ContainersNotReady — containers with unready status: [app]" in text


def test_hpa_job_and_cronjob_rows_read_like_kubectl() -> None:
    created = _long_ago()
    cpu = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    hpa = {
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "creationTimestamp": created},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "web"},
            "minReplicas": 3,
            "maxReplicas": 10,
            "metrics": [cpu],
        },
        "status": {
            "currentReplicas": 4,
            "currentMetrics": [
                {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 35}}}
            ],
        },
    }
    assert _rows(render.object_table("HorizontalPodAutoscaler", [hpa]))[1] == [
        "web", "Deployment/web", "cpu:", "35%/70%", "3", "10", "4", "10d",
    ]  # fmt: skip
    unmeasured = {**hpa, "status": {}}
    assert "cpu: <unknown>/70%" in _text(render.object_table("HorizontalPodAutoscaler", [unmeasured]))
    v1 = {**hpa, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 3,
                          "targetCPUUtilizationPercentage": 80}, "status": {}}  # fmt: skip
    assert "cpu: <unknown>/80%" in _text(render.object_table("HorizontalPodAutoscaler", [v1]))

    done = {"type": "Complete", "status": "True"}
    job = {
        "kind": "Job",
        "metadata": {"name": "migrate", "creationTimestamp": created},
        "spec": {"completions": 3},
        "status": {
            "succeeded": 3,
            "startTime": "2024-05-01T09:00:00Z",
            "completionTime": "2024-05-01T09:00:42Z",
            "conditions": [done],
        },
    }
    assert _rows(render.object_table("Job", [job]))[1] == ["migrate", "Complete", "3/3", "42s", "10d"]
    queue = {**job, "spec": {"parallelism": 2}, "status": {"succeeded": 0}}
    assert _rows(render.object_table("Job", [queue]))[1][:3] == ["migrate", "Running", "0/1"]
    text = render.describe({**job, "metadata": {**job["metadata"], "namespace": "shop"}}, [])
    assert "Status:       Complete, 3/3 completions, duration 42s" in text

    cron = {
        "kind": "CronJob",
        "metadata": {"name": "cleanup", "creationTimestamp": created},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin"},
        "status": {"active": [{"name": "cleanup-1"}]},
    }
    assert _rows(render.object_table("CronJob", [cron])) == [
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST", "SCHEDULE", "AGE"],
        ["cleanup", "0", "3", "*", "*", "*", "Europe/Berlin", "False", "1", "<none>", "10d"],
    ]
