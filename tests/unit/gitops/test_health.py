"""Health per kind must match gitops-engine ``pkg/health`` and Argo CD's built-in Lua checks.

Each case mirrors a branch of the Go (health_deployment.go, health_pod.go, health_pvc.go,
health_job.go, health_hpa.go, health_statefulset.go, health_daemonset.go, health_service.go,
health_ingress.go, health_apiservice.go, health_argo.go) or of
``resource_customizations/argoproj.io/Rollout/health.lua`` and ``batch/CronJob/health.lua``,
and uses the status shapes funade's local controllers write (controller/workloads.py,
kubelet.py, rollouts.py). The aggregate order is gitops-engine's ``healthOrder``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from funade.core import revisions
from funade.core.gitops import health
from funade.core.gitops.health import Health, HealthStatus

pytestmark = pytest.mark.unit

Obj = dict[str, Any]
H, P, D, S, M, U = (
    HealthStatus.HEALTHY,
    HealthStatus.PROGRESSING,
    HealthStatus.DEGRADED,
    HealthStatus.SUSPENDED,
    HealthStatus.MISSING,
    HealthStatus.UNKNOWN,
)


def obj(api: str, kind: str, spec: Obj | None = None, status: Obj | None = None, **meta: Any) -> Obj:
    result: Obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "web", "namespace": "default", **meta}}
    if spec is not None:
        result["spec"] = spec
    if status is not None:
        result["status"] = status
    return result


def assess(o: Obj, **kw: Any) -> Health:
    result = health.assess(o, **kw)
    assert result is not None
    return result


# --- Deployment -----------------------------------------------------------------------------------


def deployment(desired: int = 3, generation: int = 2, paused: bool = False, **status: Any) -> Obj:
    base = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "readyReplicas": 3, "availableReplicas": 3}
    return obj(
        "apps/v1", "Deployment", {"replicas": desired, "paused": paused}, {**base, **status}, generation=generation
    )


def test_deployment_rolled_out_is_healthy() -> None:
    assert assess(deployment()) == Health(H)


def test_paused_deployment_is_suspended_before_anything_else() -> None:
    assert assess(deployment(paused=True, observedGeneration=1)) == Health(S, "Deployment is paused")


def test_deployment_not_yet_observed_is_progressing() -> None:
    result = assess(deployment(observedGeneration=1))
    assert result.status is P and "observed deployment generation less than desired generation" in result.message


def test_a_new_deployment_without_status_is_progressing() -> None:
    assert assess(obj("apps/v1", "Deployment", {"replicas": 1}, generation=1)).status is P


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ({"updatedReplicas": 1}, "Waiting for rollout to finish: 1 out of 3 new replicas have been updated..."),
        ({"replicas": 5}, "Waiting for rollout to finish: 2 old replicas are pending termination..."),
        ({"availableReplicas": 2}, "Waiting for rollout to finish: 2 of 3 updated replicas are available..."),
    ],
)
def test_deployment_progressing_messages(status: Obj, message: str) -> None:
    assert assess(deployment(**status)) == Health(P, message)


def test_progress_deadline_exceeded_as_the_local_controller_writes_it_is_degraded() -> None:
    now = time.time()
    old = revisions.progressing_condition(
        rs_name="web-abc",
        complete=False,
        created=True,
        progressed=True,
        paused=False,
        deadline_seconds=600,
        now_ts=now - 700,
        now=revisions.rfc3339(now - 700),
        old=None,
    )
    stuck = revisions.progressing_condition(
        rs_name="web-abc",
        complete=False,
        created=False,
        progressed=False,
        paused=False,
        deadline_seconds=600,
        now_ts=now,
        now=revisions.rfc3339(now),
        old=old,
    )
    assert stuck["reason"] == "ProgressDeadlineExceeded"
    result = assess(deployment(updatedReplicas=1, conditions=[stuck]))
    assert result == Health(D, 'Deployment "web" exceeded its progress deadline')


def test_a_deployment_the_local_target_rolled_back_is_healthy_and_says_so() -> None:
    rolled = {"type": "RolledBack", "status": "True", "message": "revision 3 failed; rolled back to revision 2"}
    assert assess(deployment(conditions=[rolled])) == Health(H, "revision 3 failed; rolled back to revision 2")


# --- ReplicaSet, StatefulSet, DaemonSet ----------------------------------------------------------------


def replicaset(replicas: int = 2, **status: Any) -> Obj:
    # The shape controller/workloads.py writes for a ReplicaSet.
    base = {
        "replicas": 2,
        "fullyLabeledReplicas": 2,
        "readyReplicas": 2,
        "availableReplicas": 2,
        "observedGeneration": 1,
    }
    return obj("apps/v1", "ReplicaSet", {"replicas": replicas}, {**base, **status}, generation=1)


def test_replicaset() -> None:
    assert assess(replicaset()).status is H
    assert assess(replicaset(availableReplicas=1)) == Health(
        P, "Waiting for rollout to finish: 1 out of 2 new replicas are available..."
    )
    assert assess(replicaset(observedGeneration=0)).status is P
    failure = {"type": "ReplicaFailure", "status": "True", "message": "pods forbidden: quota"}
    assert assess(replicaset(availableReplicas=0, conditions=[failure])) == Health(D, "pods forbidden: quota")


def statefulset(spec: Obj | None = None, **status: Any) -> Obj:
    base = {
        "observedGeneration": 1,
        "readyReplicas": 3,
        "updatedReplicas": 3,
        "currentReplicas": 3,
        "currentRevision": "db-1",
        "updateRevision": "db-1",
    }
    return obj("apps/v1", "StatefulSet", {"replicas": 3, **(spec or {})}, {**base, **status}, generation=1)


def test_statefulset() -> None:
    assert assess(statefulset()).status is H
    assert assess(statefulset(observedGeneration=0)) == Health(
        P, "Waiting for statefulset spec update to be observed..."
    )
    assert assess(statefulset(readyReplicas=1)) == Health(P, "Waiting for 2 pods to be ready...")
    assert assess(statefulset(updateRevision="db-2")).status is P
    partitioned = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}}
    assert assess(statefulset(partitioned, updatedReplicas=1)).status is P
    assert assess(statefulset(partitioned, updatedReplicas=2, updateRevision="db-2")).status is H
    on_delete = {"updateStrategy": {"type": "OnDelete"}}
    assert assess(statefulset(on_delete, updateRevision="db-2")) == Health(H, "statefulset has 3 ready pods")


def test_daemonset() -> None:
    base = {"observedGeneration": 1, "desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2}
    assert assess(obj("apps/v1", "DaemonSet", {}, base, generation=1)).status is H
    assert assess(obj("apps/v1", "DaemonSet", {}, {**base, "updatedNumberScheduled": 1}, generation=1)).status is P
    assert assess(obj("apps/v1", "DaemonSet", {}, {**base, "numberAvailable": 1}, generation=1)).status is P
    on_delete = {"updateStrategy": {"type": "OnDelete"}}
    assert (
        assess(obj("apps/v1", "DaemonSet", on_delete, {**base, "updatedNumberScheduled": 0}, generation=1)).status is H
    )
    assert assess(obj("apps/v1", "DaemonSet", {}, base, generation=2)).status is P


# --- Pod ---------------------------------------------------------------------------------------------


def pod(phase: str, *containers: Obj, policy: str = "Always", ready: bool = False, message: str = "") -> Obj:
    status: Obj = {
        "phase": phase,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        "containerStatuses": list(containers),
    }
    if message:
        status["message"] = message
    return obj("v1", "Pod", {"restartPolicy": policy, "containers": [{"name": "app", "image": "app:1"}]}, status)


def waiting(reason: str, message: str = "") -> Obj:
    state: Obj = {"reason": reason}
    if message:
        state["message"] = message
    # kubelet.py writes lastState {} when there was no earlier run
    return {"name": "app", "ready": False, "restartCount": 0, "state": {"waiting": state}, "lastState": {}}


def running(last_exit: int | None = None) -> Obj:
    last = {} if last_exit is None else {"terminated": {"exitCode": last_exit, "reason": "Error"}}
    return {"name": "app", "ready": True, "state": {"running": {"startedAt": "x"}}, "lastState": last}


def terminated(code: int, reason: str = "Error", message: str = "", name: str = "app") -> Obj:
    term: Obj = {"exitCode": code, "reason": reason}
    if message:
        term["message"] = message
    return {"name": name, "state": {"terminated": term}, "lastState": {}}


@pytest.mark.parametrize(
    "reason",
    ["CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError", "RunContainerError"],
)
def test_waiting_errors_degrade_a_restarting_pod(reason: str) -> None:
    result = assess(pod("Pending", waiting(reason, f"{reason} because")))
    assert result == Health(D, f"{reason} because")


def test_only_err_error_and_backoff_reasons_count_as_errors() -> None:
    # gitops-engine matches prefix "Err" or suffix "Error"/"BackOff"; InvalidImageName is neither.
    assert assess(pod("Pending", waiting("InvalidImageName"))).status is P


def test_waiting_errors_do_not_fail_a_hook_pod_that_never_restarts() -> None:
    assert assess(pod("Pending", waiting("ImagePullBackOff"), policy="Never")).status is P


def test_container_creating_is_progressing() -> None:
    assert assess(pod("Pending", waiting("ContainerCreating"))).status is P


def test_running_pods() -> None:
    assert assess(pod("Running", running(), ready=True)).status is H
    assert assess(pod("Running", running())).status is P  # not ready yet; lastState {} is no termination
    assert assess(pod("Running", running(last_exit=1))).status is D  # not ready after a crash
    assert assess(pod("Running", running(), policy="Never", ready=True)).status is P
    assert assess(pod("Running", running(), policy="OnFailure", ready=True)).status is P


def test_finished_pods() -> None:
    assert assess(pod("Succeeded", terminated(0, "Completed"), policy="Never")).status is H
    assert assess(pod("Failed", terminated(3), policy="Never", message="Evicted")) == Health(D, "Evicted")
    assert assess(pod("Failed", terminated(3), policy="Never")) == Health(D, 'container "app" failed with exit code 3')
    assert assess(pod("Failed", terminated(137, "OOMKilled"), policy="Never")) == Health(D, "OOMKilled")
    assert assess(pod("Failed", terminated(1, message="boom"), policy="Never")) == Health(D, "boom")


def test_an_unknown_pod_phase_is_unknown() -> None:
    assert assess(pod("Unknown")).status is U


# --- Service, Ingress, PVC ---------------------------------------------------------------------------------


def test_services() -> None:
    assert assess(obj("v1", "Service", {"type": "ClusterIP"})).status is H
    load_balancer = obj("v1", "Service", {"type": "LoadBalancer"})
    assert assess(load_balancer).status is P
    assert assess(load_balancer, local=True).status is H
    served = obj("v1", "Service", {"type": "LoadBalancer"}, {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})
    assert assess(served).status is H


@pytest.mark.parametrize("api", ["networking.k8s.io/v1", "extensions/v1beta1"])
def test_ingress(api: str) -> None:
    assert assess(obj(api, "Ingress", {})).status is P
    assert assess(obj(api, "Ingress", {}, {"loadBalancer": {"ingress": [{"hostname": "lb"}]}})).status is H


@pytest.mark.parametrize(
    ("phase", "annotations", "expected"),
    [
        ("Bound", {}, Health(H)),
        ("Pending", {}, Health(H, "Waiting for consumer")),
        ("Pending", {"volume.beta.kubernetes.io/storage-provisioner": "csi"}, Health(P, "Provisioning volume")),
        ("Lost", {}, Health(D)),
        (None, {}, Health(U)),
    ],
)
def test_pvc(phase: str | None, annotations: Obj, expected: Health) -> None:
    pvc = obj("v1", "PersistentVolumeClaim", {}, {"phase": phase} if phase else {}, annotations=annotations)
    assert assess(pvc) == expected


# --- Job, CronJob, HPA, APIService ------------------------------------------------------------------------


def test_jobs() -> None:
    assert assess(obj("batch/v1", "Job", {}, {"active": 1})).status is P
    complete = [{"type": "Complete", "status": "True", "message": "done"}]
    assert assess(obj("batch/v1", "Job", {}, {"conditions": complete})) == Health(H, "done")
    failed = [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]
    assert assess(obj("batch/v1", "Job", {}, {"conditions": failed})) == Health(D, "BackoffLimitExceeded")
    suspended = [{"type": "Suspended", "status": "True"}]
    result = assess(obj("batch/v1", "Job", {}, {"conditions": suspended}))
    assert (result.status, result.aggregate_as) == (S, H)


def test_cronjobs() -> None:
    def cron(spec: Obj | None = None, **status: Any) -> Health:
        return assess(obj("batch/v1", "CronJob", spec or {}, status))

    assert cron(active=[{"name": "j"}]).status is P
    assert cron() == Health(H, "CronJob has never run")
    ok = cron(lastScheduleTime="2024-01-01T00:00:00Z", lastSuccessfulTime="2024-01-01T00:01:00Z")
    assert ok == Health(H, "CronJob has run successfully")
    assert cron(lastScheduleTime="2024-01-02T00:00:00Z", lastSuccessfulTime="2024-01-01T00:01:00Z").status is D
    assert cron(lastScheduleTime="2024-01-02T00:00:00Z").status is D
    assert cron({"suspend": True}).status is S


def test_hpa_v2_conditions() -> None:
    def hpa(*conditions: Obj) -> Health:
        return assess(obj("autoscaling/v2", "HorizontalPodAutoscaler", {}, {"conditions": list(conditions)}))

    assert hpa() == Health(P, "Waiting to Autoscale")
    assert hpa({"type": "AbleToScale", "status": "True", "message": "ok"}) == Health(H, "ok")
    bad = {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "no metrics"}
    assert hpa(bad, {"type": "AbleToScale", "status": "True"}) == Health(D, "no metrics")
    assert hpa({"type": "ScalingLimited", "status": "False"}).status is P


def test_hpa_v1_reads_the_conditions_annotation() -> None:
    key = "autoscaling.alpha.kubernetes.io/conditions"
    assert assess(obj("autoscaling/v1", "HorizontalPodAutoscaler", {}, {})).status is P
    healthy = obj(
        "autoscaling/v1",
        "HorizontalPodAutoscaler",
        {},
        {},
        annotations={key: '[{"type":"AbleToScale","status":"True"}]'},
    )
    assert assess(healthy).status is H
    broken = obj("autoscaling/v1", "HorizontalPodAutoscaler", {}, {}, annotations={key: "not json"})
    assert assess(broken).status is U


def test_apiservice() -> None:
    api = "apiregistration.k8s.io/v1"
    assert assess(obj(api, "APIService", {}, {})) == Health(P, "Waiting to be processed")
    up = {"conditions": [{"type": "Available", "status": "True", "reason": "Passed", "message": "all checks passed"}]}
    assert assess(obj(api, "APIService", {}, up)) == Health(H, "Passed: all checks passed")
    down = {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints", "message": "x"}]}
    assert assess(obj(api, "APIService", {}, down)).status is P


# --- Argo kinds -------------------------------------------------------------------------------------------


def rollout(spec: Obj | None = None, generation: int = 2, **status: Any) -> Obj:
    return obj(
        "argoproj.io/v1alpha1", "Rollout", {"replicas": 3, **(spec or {})}, status or None, generation=generation
    )


def test_rollout_waits_for_its_spec_to_be_observed() -> None:
    assert assess(rollout()).status is P
    # funade's controller writes observedGeneration as a string, as Argo Rollouts does.
    assert assess(rollout(observedGeneration="1", phase="Healthy")).status is P
    assert assess(rollout(observedGeneration="2", phase="Healthy")).status is H
    # Older Argo Rollouts wrote a hash: not comparable, so not checked.
    assert assess(rollout(observedGeneration="7f9c", phase="Healthy")).status is H


@pytest.mark.parametrize(("phase", "expected"), [("Healthy", H), ("Progressing", P), ("Paused", S), ("Degraded", D)])
def test_rollout_phase_mapping(phase: str, expected: HealthStatus) -> None:
    assert assess(rollout(observedGeneration="2", phase=phase, message="m")) == Health(expected, "m")


def test_an_aborted_rollout_is_degraded() -> None:
    aborted = {"type": "Progressing", "status": "False", "reason": "RolloutAborted", "message": "Rollout aborted"}
    assert assess(rollout(observedGeneration="2", phase="Progressing", conditions=[aborted])) == Health(
        D, "Rollout aborted"
    )
    funade = rollout(observedGeneration="2", phase="Paused", abort=True, message="aborted: running the stable revision")
    assert assess(funade) == Health(D, "aborted: running the stable revision")
    invalid = {"type": "InvalidSpec", "status": "True", "message": "bad"}
    assert assess(rollout(observedGeneration="2", conditions=[invalid])) == Health(D, "bad")


def test_rollout_without_phase_uses_the_lua_rules() -> None:
    base = {
        "observedGeneration": "2",
        "currentPodHash": "new",
        "replicas": 3,
        "updatedReplicas": 3,
        "availableReplicas": 3,
    }
    canary = {"strategy": {"canary": {"steps": []}}}
    blue_green = {"strategy": {"blueGreen": {"activeService": "a"}}}
    assert assess(rollout(canary, **base, pauseConditions=[{"reason": "CanaryPauseStep"}])).status is S
    assert assess(rollout(canary, **base)).message == "Waiting for rollout to finish steps"
    assert assess(rollout(canary, **base, stableRS="new")).status is H
    assert assess(rollout(canary, **{**base, "replicas": 4}, stableRS="new")).status is P
    assert assess(rollout(canary, **{**base, "updatedReplicas": 1})).status is P
    assert assess(rollout(blue_green, **base, blueGreen={"activeSelector": "old"})).message == (
        "active service cutover pending"
    )
    assert assess(rollout(blue_green, **base, blueGreen={"activeSelector": "new"}, stableRS="new")).status is H
    assert assess(rollout(canary, observedGeneration="2")).status is P  # no currentPodHash yet


def test_argo_workflow() -> None:
    def workflow(phase: str) -> HealthStatus:
        return assess(obj("argoproj.io/v1alpha1", "Workflow", {}, {"phase": phase})).status

    assert [workflow(p) for p in ("Running", "Succeeded", "Failed", "Error", "Weird")] == [P, H, D, D, U]


# --- kinds without health, deletion ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "kind"),
    [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Namespace"),
        ("example.com/v1", "Deployment"),
        ("v1", "ServiceAccount"),
    ],
)
def test_kinds_without_a_health_check_have_no_health(api: str, kind: str) -> None:
    assert health.assess(obj(api, kind, {})) is None


def test_an_object_being_deleted_is_progressing() -> None:
    gone = obj("v1", "ConfigMap", {}, deletionTimestamp="2024-01-01T00:00:00Z")
    assert health.assess(gone) == Health(P, "Pending deletion")
    hook = pod("Succeeded", terminated(0, "Completed"), policy="Never")
    hook["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z", finalizers=[health.HOOK_FINALIZER])
    assert assess(hook).status is H  # only the hook finalizer holds it: assess the hook itself


# --- aggregation -----------------------------------------------------------------------------------------------


def test_order_is_gitops_engines() -> None:
    assert health.ORDER == (H, S, P, M, D, U)
    assert health.is_worse(H, S) and health.is_worse(S, P) and health.is_worse(P, M)
    assert health.is_worse(M, D) and health.is_worse(D, U)
    assert not health.is_worse(D, P) and not health.is_worse(H, H)


def test_aggregate_worst_wins_and_none_does_not_count() -> None:
    assert health.aggregate([]) == Health(H)
    assert health.aggregate([None, Health(H)]) == Health(H)
    assert health.aggregate([Health(P, "a"), Health(S), Health(D, "b"), Health(M)]) == Health(D, "b")
    assert health.aggregate([Health(D, "first"), Health(D, "second")]).message == "first"
    assert health.aggregate([Health(S, aggregate_as=H), Health(H)]).status is H
    assert health.aggregate([Health(U), Health(D)]).status is U


def test_app_health_follows_argo_cd_rules() -> None:
    cm = obj("v1", "ConfigMap", {})
    dep = deployment()
    assert health.app_health([(cm, None), (dep, dep)]).status is H  # a missing ConfigMap has no health
    assert health.app_health([(dep, None)]).status is M
    broken = deployment(updatedReplicas=1)
    assert health.app_health([(broken, broken), (dep, None)]).status is M
    ignored = obj("apps/v1", "Deployment", {}, annotations={health.IGNORE_HEALTHCHECK_ANNOTATION: "true"})
    assert health.app_health([(ignored, None)]).status is H
    hook = pod("Failed", terminated(1), policy="Never")
    hook["metadata"]["annotations"] = {"argocd.argoproj.io/hook": "PreSync"}
    assert health.app_health([(None, hook)]).status is H
    skipped = obj("apps/v1", "Deployment", {}, annotations={"argocd.argoproj.io/hook": "Skip"})
    assert health.app_health([(skipped, None)]).status is H
    suspended_job = obj("batch/v1", "Job", {}, {"conditions": [{"type": "Suspended", "status": "True"}]})
    assert health.app_health([(suspended_job, suspended_job)]).status is H
    load_balancer = obj("v1", "Service", {"type": "LoadBalancer"})
    assert health.app_health([(load_balancer, load_balancer)]).status is P
    assert health.app_health([(load_balancer, load_balancer)], local=True).status is H


def test_has_health_check() -> None:
    assert health.has_health_check("apps/v1", "Deployment")
    assert health.has_health_check("v1", "Service")
    assert health.has_health_check("argoproj.io/v1alpha1", "Rollout")
    assert not health.has_health_check("v1", "ConfigMap")
    assert not health.has_health_check("example.com/v1", "Deployment")
