"""The deploy gate: scan results and policy decide, per namespace, before anything is stored."""

from __future__ import annotations

from typing import Any

import pytest

from funade.core.policy.manifests import Profile
from funade.core.vuln.osv import Level
from funade.engine import gate

pytestmark = pytest.mark.unit


def namespace(**annotations: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod", "annotations": annotations}}


def pod(image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def test_gates_come_from_namespace_annotations() -> None:
    assert not gate.Gate.of(None, "dev").active
    rules = gate.Gate.of(namespace(**{"funade.io/scan-gate": "high", "funade.io/policy-profile": "production"}), "prod")
    assert (rules.severity, rules.profile) == (Level.HIGH, Profile.PRODUCTION)
    with pytest.raises(gate.GateError, match="scan-gate: 'severe'"):
        gate.Gate.of(namespace(**{"funade.io/scan-gate": "severe"}), "prod")


def test_the_scan_gate_refuses_unscanned_images_and_blocking_findings() -> None:
    rules = gate.Gate("prod", severity=Level.HIGH)
    scans = {
        "r/app:clean": {"findings": [{"id": "GHSA-1", "severity": "MEDIUM"}]},
        "r/app:bad": {"findings": [{"id": "DSA-1", "severity": "CRITICAL"}, {"id": "DSA-2", "severity": "HIGH"}]},
        "r/app:unscanned": None,
    }
    assert gate.refusals(rules, [pod("r/app:clean")], scans) == []
    (bad,) = gate.refusals(rules, [pod("r/app:bad")], scans)
    assert bad.obj == "Pod/web" and "2 finding(s) at or above HIGH (DSA-1, DSA-2)" in bad.message
    (unscanned,) = gate.refusals(rules, [pod("r/app:unscanned")], scans)
    assert "has no scan result" in unscanned.message and unscanned.override is None
    assert gate.refusals(gate.Gate("dev"), [pod("r/app:bad")], scans) == []


def test_the_policy_gate_refuses_errors_of_its_profile() -> None:
    reasons = [
        r.message for r in gate.refusals(gate.Gate("prod", profile=Profile.PRODUCTION), [pod("r/app:latest")], {})
    ]
    assert any("FUN-K8S-020" in r for r in reasons)  # the latest tag
    assert any("FUN-K8S-014" in r or "FUN-K8S-013" in r for r in reasons)  # restricted Pod Security


def test_each_refusal_names_its_object_and_carries_that_objects_own_override() -> None:
    rules = gate.Gate("prod", severity=Level.HIGH, profile=Profile.PRODUCTION)
    scans = {"r/app:bad": {"findings": [{"id": "DSA-1", "severity": "CRITICAL"}]}, "r/app:1.0": {"findings": []}}
    excused = pod("r/app:bad")
    excused["metadata"].update(name="hotfix", annotations={gate.OVERRIDE_ANNOTATION: "  CVE fix ships Monday  "})
    plain = pod("r/app:1.0")
    found = gate.refusals(rules, [excused, plain], scans)
    assert {r.obj for r in found} == {"Pod/hotfix", "Pod/web"}
    assert {r.override for r in found if r.obj == "Pod/hotfix"} == {"CVE fix ships Monday"}
    assert {r.override for r in found if r.obj == "Pod/web"} == {None}  # the other pod is not excused
    assert any("DSA-1" in r.message for r in found if r.obj == "Pod/hotfix")
    blank = pod("r/app:bad")
    blank["metadata"]["annotations"] = {gate.OVERRIDE_ANNOTATION: " "}
    assert {r.override for r in gate.refusals(rules, [blank], scans)} == {None}  # an empty reason excuses nothing


def test_images_of_every_workload_shape() -> None:
    cron = {
        "kind": "CronJob",
        "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"image": "a"}]}}}}},
    }
    deploy = {
        "kind": "Deployment",
        "spec": {"template": {"spec": {"initContainers": [{"image": "i"}], "containers": [{"image": "b"}]}}},
    }
    assert (
        gate.images_of(cron) == ["a"]
        and gate.images_of(deploy) == ["i", "b"]
        and gate.images_of({"kind": "Service"}) == []
    )
