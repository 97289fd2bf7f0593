"""What the local target refuses or ignores in a pod spec, by field path."""

from __future__ import annotations

from typing import Any

import pytest

from funade.core import localtarget

pytestmark = pytest.mark.unit

Obj = dict[str, Any]


def deployment(pod: Obj, container: Obj | None = None) -> Obj:
    spec = {"containers": [{"name": "app", "image": "app:1", **(container or {})}], **pod}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": spec}},
    }


def paths(obj: Obj, error: bool) -> list[str]:
    return [f.path for f in localtarget.check_object(obj) if f.error is error]


def test_a_plain_pod_spec_has_no_findings() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "containers": [{"name": "c", "image": "i"}],
            "schedulerName": "default-scheduler",
            "dnsPolicy": "ClusterFirst",
            "enableServiceLinks": True,
        },
    }
    assert localtarget.check_object(pod) == []


def test_scheduling_hints_are_ignored_with_a_warning() -> None:
    obj = deployment({"nodeSelector": {"disk": "ssd"}, "serviceAccountName": "myapp", "tolerations": [{"key": "k"}]})
    assert paths(obj, error=False) == [
        "spec.template.spec.nodeSelector",
        "spec.template.spec.tolerations",
        "spec.template.spec.serviceAccountName",
    ]
    assert paths(obj, error=True) == []


def test_what_cannot_be_honoured_is_refused_by_path() -> None:
    obj = deployment(
        {
            "hostNetwork": True,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "x"}}, {"name": "ok", "emptyDir": {}}],
        },
        {
            "readinessProbe": {"grpc": {"port": 9000}},
            "env": [{"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}],
            "ports": [{"containerPort": 80, "hostPort": 8080}],
        },
    )
    assert paths(obj, error=True) == [
        "spec.template.spec.hostNetwork",
        "spec.template.spec.volumes[0].persistentVolumeClaim",
        "spec.template.spec.containers[0].readinessProbe.grpc",
        "spec.template.spec.containers[0].env[0].valueFrom.resourceFieldRef",
        "spec.template.spec.containers[0].ports[0].hostPort",
    ]


def test_other_kinds_have_no_findings() -> None:
    assert localtarget.check_object({"kind": "Service", "spec": {"hostNetwork": True}}) == []
