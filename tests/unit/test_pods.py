"""Pod rules must match the kubelet: security identities, $(VAR) expansion, phase, conditions.

Facts: ``securitycontext.DetermineEffectiveSecurityContext`` and ``verifyRunAsNonRoot``
(pkg/kubelet/kuberuntime), ``third_party/forked/golang/expansion``, ``getPhase``
(pkg/kubelet/kubelet_pods.go) and the Pod lifecycle documentation.
"""

from __future__ import annotations

from typing import Any

import pytest

from funade.core import pods

pytestmark = pytest.mark.unit

Obj = dict[str, Any]

# --- effective_ids -----------------------------------------------------------------------


def test_effective_ids_without_security_contexts() -> None:
    assert pods.effective_ids(None, None) == (None, None, False)
    assert pods.effective_ids({}, {}) == (None, None, False)


def test_effective_ids_take_the_pod_fields() -> None:
    pod_sc = {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True}
    assert pods.effective_ids(pod_sc, None) == (1000, 3000, True)


def test_container_overrides_the_pod_field_by_field() -> None:
    pod_sc = {"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True}

    assert pods.effective_ids(pod_sc, {"runAsUser": 2000}) == (2000, 3000, True)
    assert pods.effective_ids(pod_sc, {"runAsGroup": 4000}) == (1000, 4000, True)
    assert pods.effective_ids(pod_sc, {"runAsNonRoot": False}) == (1000, 3000, False)


def test_container_zero_overrides_pod_user() -> None:
    # 0 is a value, not "unset": a container may ask for root explicitly.
    assert pods.effective_ids({"runAsUser": 1000, "runAsGroup": 1000}, {"runAsUser": 0, "runAsGroup": 0}) == (
        0,
        0,
        False,
    )


def test_container_fields_apply_without_a_pod_security_context() -> None:
    assert pods.effective_ids(None, {"runAsUser": 1001, "runAsNonRoot": True}) == (1001, None, True)


# --- non_root_violation --------------------------------------------------------------------


def test_explicit_run_as_user_zero_breaks_non_root() -> None:
    assert pods.non_root_violation(0, "1001") == "container's runAsUser breaks non-root policy"


def test_explicit_non_zero_run_as_user_wins_over_a_root_image() -> None:
    assert pods.non_root_violation(1001, "") is None
    assert pods.non_root_violation(1001, "root") is None
    assert pods.non_root_violation(1001, "0:0") is None


@pytest.mark.parametrize("image_user", ["", "0", "0:0", "0:1001"])
def test_image_running_as_root_is_refused(image_user: str) -> None:
    assert pods.non_root_violation(None, image_user) == "container has runAsNonRoot and image will run as root"


def test_image_user_root_by_name_is_refused() -> None:
    assert pods.non_root_violation(None, "root") is not None


def test_image_user_root_by_name_is_reported_as_non_numeric() -> None:
    message = pods.non_root_violation(None, "root")
    assert message is not None
    assert "non-numeric user (root)" in message


@pytest.mark.parametrize("image_user", ["app", "app:app", "nobody"])
def test_non_numeric_image_user_cannot_be_verified(image_user: str) -> None:
    name = image_user.split(":", maxsplit=1)[0]
    assert pods.non_root_violation(None, image_user) == (
        f"container has runAsNonRoot and image has non-numeric user ({name}), cannot verify user is non-root"
    )


@pytest.mark.parametrize("image_user", ["1001", "1001:1001", "1001:0", "65534"])
def test_numeric_non_zero_image_user_may_start(image_user: str) -> None:
    assert pods.non_root_violation(None, image_user) is None


# --- expand --------------------------------------------------------------------------------

ENV = {"NAME": "web", "PORT": "8080", "EMPTY": "", "my.var-1": "dotted", "DOLLAR": "$(NAME)"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(NAME)", "web"),
        ("http://$(NAME):$(PORT)/", "http://web:8080/"),
        ("$(EMPTY)x", "x"),
        ("$(my.var-1)", "dotted"),
        ("$(UNKNOWN)", "$(UNKNOWN)"),  # unknown references are left as written
        ("a $(UNKNOWN) b $(NAME)", "a $(UNKNOWN) b web"),
        ("$$(NAME)", "$(NAME)"),  # $$ escapes the reference
        ("$$", "$"),
        ("$$$(NAME)", "$web"),
        ("$$$$", "$$"),
        ("price: 5$", "price: 5$"),  # a lone $ is kept
        ("$NAME", "$NAME"),  # only $(...) is a reference
        ("$(NAME", "$(NAME"),  # incomplete reference
        ("$()", "$()"),
        ("$(DOLLAR)", "$(NAME)"),  # values are not expanded again
        ("no references", "no references"),
        ("", ""),
    ],
)
def test_expand(value: str, expected: str) -> None:
    assert pods.expand(value, ENV) == expected


@pytest.mark.parametrize("name", ["-FOO", ".FOO"])
def test_expand_names_kubernetes_accepts(name: str) -> None:
    assert pods.expand(f"$({name})", {name: "value"}) == "value"


# --- phase ---------------------------------------------------------------------------------

RUNNING: Obj = {"name": "app", "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}}, "restartCount": 0}
NEVER_STARTED: Obj = {"name": "app", "state": {"waiting": {"reason": "ErrImagePull"}}, "restartCount": 0}
CRASH_LOOP: Obj = {
    "name": "app",
    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}},
    "restartCount": 3,
}


def _terminated(code: int, name: str = "app") -> Obj:
    reason = "Completed" if code == 0 else "Error"
    return {"name": name, "state": {"terminated": {"exitCode": code, "reason": reason}}, "restartCount": 0}


POLICIES = ["Always", "OnFailure", "Never"]


@pytest.mark.parametrize("policy", POLICIES)
def test_phase_pending_before_initialisation_or_without_statuses(policy: str) -> None:
    assert pods.phase(policy, False, [RUNNING]) == "Pending"
    assert pods.phase(policy, True, []) == "Pending"


@pytest.mark.parametrize("policy", POLICIES)
def test_phase_pending_while_a_container_never_started(policy: str) -> None:
    assert pods.phase(policy, True, [NEVER_STARTED]) == "Pending"


@pytest.mark.parametrize("policy", POLICIES)
def test_phase_running_while_a_container_runs(policy: str) -> None:
    assert pods.phase(policy, True, [RUNNING]) == "Running"
    assert pods.phase(policy, True, [RUNNING, {**_terminated(0), "name": "side"}]) == "Running"


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("Always", "Running"), ("OnFailure", "Succeeded"), ("Never", "Succeeded")],
)
def test_phase_when_every_container_succeeded(policy: str, expected: str) -> None:
    assert pods.phase(policy, True, [_terminated(0), _terminated(0, "side")]) == expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("Always", "Running"), ("OnFailure", "Running"), ("Never", "Failed")],
)
def test_phase_when_a_container_failed(policy: str, expected: str) -> None:
    assert pods.phase(policy, True, [_terminated(0), _terminated(1, "side")]) == expected
    assert pods.phase(policy, True, [_terminated(137)]) == expected


@pytest.mark.parametrize("policy", ["Always", "OnFailure"])
def test_phase_running_while_backing_off_after_a_run(policy: str) -> None:
    assert pods.phase(policy, True, [CRASH_LOOP]) == "Running"


@pytest.mark.parametrize("policy", POLICIES)
def test_phase_pending_when_one_container_runs_and_another_never_started(policy: str) -> None:
    sidecar = {**NEVER_STARTED, "name": "sidecar"}
    assert pods.phase(policy, True, [RUNNING, sidecar]) == "Pending"


# --- conditions ----------------------------------------------------------------------------

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T10:05:00Z"


def _by_type(conditions: list[Obj]) -> dict[str, Obj]:
    return {c["type"]: c for c in conditions}


def test_conditions_of_a_ready_pod() -> None:
    statuses = [{"name": "app", "ready": True}, {"name": "side", "ready": True}]

    conds = pods.conditions(True, statuses, [], T0)

    assert [c["type"] for c in conds] == ["PodScheduled", "Initialized", "ContainersReady", "Ready"]
    for cond in conds:
        assert cond["status"] == "True"
        assert cond["lastTransitionTime"] == T0
        assert "reason" not in cond
        assert "message" not in cond


def test_conditions_of_an_unready_pod_name_the_unready_containers() -> None:
    statuses = [{"name": "app", "ready": False}, {"name": "side", "ready": True}, {"name": "log", "ready": False}]

    conds = _by_type(pods.conditions(True, statuses, [], T0))

    for kind in ("ContainersReady", "Ready"):
        assert conds[kind]["status"] == "False"
        assert conds[kind]["reason"] == "ContainersNotReady"
        assert conds[kind]["message"] == "containers with unready status: [app log]"
    assert conds["PodScheduled"]["status"] == "True"
    assert conds["Initialized"]["status"] == "True"


def test_conditions_while_initialising() -> None:
    conds = _by_type(pods.conditions(False, [{"name": "app", "ready": False}], [], T0))

    assert conds["Initialized"]["status"] == "False"
    assert conds["Initialized"]["reason"] == "ContainersNotInitialized"
    assert conds["Ready"]["status"] == "False"


def test_conditions_without_container_statuses_are_not_ready() -> None:
    conds = _by_type(pods.conditions(True, [], [], T0))

    assert conds["Ready"]["status"] == "False"
    assert conds["ContainersReady"]["status"] == "False"


def test_transition_times_are_kept_while_status_does_not_change() -> None:
    statuses = [{"name": "app", "ready": False}]
    first = pods.conditions(True, statuses, [], T0)

    second = pods.conditions(True, statuses, first, T1)

    assert all(c["lastTransitionTime"] == T0 for c in second)
    assert second == first


def test_transition_times_reset_when_status_changes() -> None:
    first = pods.conditions(True, [{"name": "app", "ready": False}], [], T0)

    second = _by_type(pods.conditions(True, [{"name": "app", "ready": True}], first, T1))

    assert second["Ready"]["status"] == "True"
    assert second["Ready"]["lastTransitionTime"] == T1
    assert second["ContainersReady"]["lastTransitionTime"] == T1
    assert "reason" not in second["Ready"]
    # Unchanged conditions keep their time.
    assert second["PodScheduled"]["lastTransitionTime"] == T0
    assert second["Initialized"]["lastTransitionTime"] == T0


def test_initialized_transition_time_moves_when_init_finishes() -> None:
    first = pods.conditions(False, [{"name": "app", "ready": False}], [], T0)

    second = _by_type(pods.conditions(True, [{"name": "app", "ready": False}], first, T1))

    assert second["Initialized"] == {"type": "Initialized", "status": "True", "lastTransitionTime": T1}
    assert second["Ready"]["lastTransitionTime"] == T0


# -- container_env / container_user / expand_command ------------------------------------------


def _env_pod(container: dict[str, object], security: dict[str, object] | None = None) -> dict[str, object]:
    return {
        "metadata": {"name": "web-1", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"}},
        "spec": {"containers": [container], "securityContext": security or {}},
    }


_OBJECTS = {
    ("ConfigMap", "cfg"): {"data": {"mode": "fast", "size": "3"}},
    ("Secret", "sec"): {"data": {"password": "czNjcmV0"}},  # base64 of s3cret
}


def _lookup(kind: str, name: str) -> dict[str, object] | None:
    return _OBJECTS.get((kind, name))


def test_container_env_resolves_every_source_in_order() -> None:
    container = {
        "name": "app",
        "envFrom": [{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"}, {"secretRef": {"name": "sec"}}],
        "env": [
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(IP):8080/$(MODE)"},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}},
        ],
    }
    env = pods.container_env(_env_pod(container), container, "10.0.0.7", _lookup)
    assert env == {
        "CFG_mode": "fast",
        "CFG_size": "3",
        "password": "s3cret",
        "MODE": "fast",
        "PASS": "s3cret",
        "ME": "web-1",
        "IP": "10.0.0.7",
        "APP": "web",
        "URL": "http://10.0.0.7:8080/fast",
        "HOSTNAME": "web-1",
    }


@pytest.mark.parametrize(
    ("value_from", "message"),
    [
        ({"secretKeyRef": {"name": "nope", "key": "k"}}, 'secret "nope" not found'),
        ({"configMapKeyRef": {"name": "cfg", "key": "nope"}}, "couldn't find key nope in ConfigMap shop/cfg"),
        ({"fieldRef": {"fieldPath": "spec.nodeSelector"}}, "unsupported fieldRef"),
    ],
)
def test_container_env_names_what_is_missing(value_from: dict[str, object], message: str) -> None:
    container = {"name": "app", "env": [{"name": "X", "valueFrom": value_from}]}
    with pytest.raises(pods.ConfigError, match=message):
        pods.container_env(_env_pod(container), container, "", _lookup)


def test_container_user_applies_security_context_and_non_root() -> None:
    container: dict[str, object] = {"name": "app"}
    assert pods.container_user(_env_pod(container), container, "") is None
    assert pods.container_user(_env_pod(container, {"runAsUser": 1001}), container, "") == "1001"
    assert pods.container_user(_env_pod(container, {"runAsGroup": 5}), container, "app:7") == "app:5"
    with pytest.raises(pods.ConfigError, match="image will run as root"):
        pods.container_user(_env_pod(container, {"runAsNonRoot": True}), container, "")


def test_expand_command_copies_the_container() -> None:
    container = {"name": "app", "command": ["/bin/echo", "$(GREETING)"], "args": ["$$(literal)"]}
    expanded = pods.expand_command(container, {"GREETING": "hi"})
    assert (expanded["command"], expanded["args"]) == (["/bin/echo", "hi"], ["$(literal)"])
    assert container["command"] == ["/bin/echo", "$(GREETING)"]
