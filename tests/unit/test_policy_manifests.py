"""Unit tests of the manifest policy: PSS controls, the seed's anti-patterns, profiles, ignores and reports."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from funade.cli import policy as policy_cli
from funade.cli.main import app
from funade.core import manifests
from funade.core.policy import Severity
from funade.core.policy import manifests as rules
from funade.core.policy.manifests import Profile

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "policy"
SEED = [FIXTURES / f"seed-{name}.yaml" for name in ("deployment", "pod-security", "pdb", "network-policy")]

# A pod that passes every default-profile rule; each PSS test breaks one field of a copy.
CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": "ghcr.io/myorg/myapp:v1.2.3",
    "securityContext": {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 3000}},
    "livenessProbe": {"httpGet": {"path": "/live", "port": 3000}},
    "startupProbe": {"httpGet": {"path": "/health", "port": 3000}},
}
POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "labels": {"app": "p"}},
    "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1001, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [CONTAINER],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    },
}
NETPOL: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "all"},
    "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
}


def doc(obj: dict[str, Any]) -> manifests.Document:
    return manifests.Document(obj=obj, source="test.yaml")


def pod(**changes: Any) -> dict[str, Any]:
    """The compliant pod with dotted-path changes: ``pod(**{"spec.hostPID": True})``."""
    obj = copy.deepcopy(POD)
    for dotted, value in changes.items():
        target: Any = obj
        parts = [int(p) if p.isdigit() else p for p in dotted.split(".")]
        for part in parts[:-1]:
            target = target[part] if isinstance(part, int) else target.setdefault(part, {})
        target[parts[-1]] = value
    return obj


def ids(*objs: dict[str, Any], profile: Profile = Profile.DEFAULT) -> set[str]:
    return {f.rule for f in rules.check([doc(o) for o in (*objs, NETPOL)], profile)}


def load(*paths: Path) -> list[manifests.Document]:
    return [d for p in paths for d in manifests.load_documents(p.read_text(), str(p))]


def test_compliant_pod_has_no_findings() -> None:
    assert ids(pod()) == set()


# -- Pod Security Standards: each control fails and passes ------------------------------------------

C = "spec.containers.0.securityContext"
PSS_CASES = [
    # (rule, failing change, passing change)
    ("FUN-K8S-001", {"spec.securityContext.windowsOptions": {"hostProcess": True}}, {f"{C}.windowsOptions": {}}),
    ("FUN-K8S-001", {f"{C}.windowsOptions": {"hostProcess": True}}, {f"{C}.windowsOptions": {"hostProcess": False}}),
    ("FUN-K8S-002", {"spec.hostNetwork": True}, {"spec.hostNetwork": False}),
    ("FUN-K8S-002", {"spec.hostPID": True}, {"spec.hostPID": False}),
    ("FUN-K8S-002", {"spec.hostIPC": True}, {"spec.hostIPC": False}),
    ("FUN-K8S-003", {f"{C}.privileged": True}, {f"{C}.privileged": False}),
    (
        "FUN-K8S-004",
        {f"{C}.capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}},
        {f"{C}.capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    ),
    (
        "FUN-K8S-005",
        {"spec.volumes": [{"name": "h", "hostPath": {"path": "/var/run/docker.sock"}}]},
        {"spec.volumes": [{"name": "h", "emptyDir": {}}]},
    ),
    (
        "FUN-K8S-006",
        {"spec.containers.0.ports": [{"containerPort": 80, "hostPort": 8080}]},
        {"spec.containers.0.ports": [{"containerPort": 80, "hostPort": 0}]},
    ),
    ("FUN-K8S-007", {"spec.securityContext.appArmorProfile": {"type": "Unconfined"}}, {}),
    ("FUN-K8S-007", {f"{C}.appArmorProfile": {"type": "Unconfined"}}, {f"{C}.appArmorProfile": {"type": "Localhost"}}),
    (
        "FUN-K8S-007",
        {"metadata.annotations": {"container.apparmor.security.beta.kubernetes.io/app": "unconfined"}},
        {"metadata.annotations": {"container.apparmor.security.beta.kubernetes.io/app": "runtime/default"}},
    ),
    ("FUN-K8S-008", {f"{C}.seLinuxOptions": {"type": "spc_t"}}, {f"{C}.seLinuxOptions": {"type": "container_t"}}),
    ("FUN-K8S-008", {"spec.securityContext.seLinuxOptions": {"user": "system_u"}}, {f"{C}.seLinuxOptions": {}}),
    ("FUN-K8S-009", {f"{C}.procMount": "Unmasked"}, {f"{C}.procMount": "Default"}),
    (
        "FUN-K8S-010",
        {"spec.securityContext.seccompProfile": {"type": "Unconfined"}},
        {"spec.securityContext.seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}},
    ),
    (
        "FUN-K8S-010",
        {f"{C}.seccompProfile": {"type": "Unconfined"}},
        {f"{C}.seccompProfile": {"type": "RuntimeDefault"}},
    ),
    (
        "FUN-K8S-011",
        {"spec.securityContext.sysctls": [{"name": "kernel.msgmax", "value": "1"}]},
        {"spec.securityContext.sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}]},
    ),
    (
        "FUN-K8S-012",
        {"spec.volumes": [{"name": "n", "nfs": {"server": "nfs", "path": "/"}}]},
        {"spec.volumes": [{"name": "n", "persistentVolumeClaim": {"claimName": "data"}}]},
    ),
    ("FUN-K8S-013", {f"{C}.allowPrivilegeEscalation": True}, {f"{C}.allowPrivilegeEscalation": False}),
    ("FUN-K8S-013", {f"{C}.allowPrivilegeEscalation": None}, {}),
    ("FUN-K8S-014", {"spec.securityContext.runAsNonRoot": None}, {f"{C}.runAsNonRoot": True}),
    ("FUN-K8S-014", {f"{C}.runAsNonRoot": False}, {f"{C}.runAsNonRoot": True}),
    ("FUN-K8S-015", {"spec.securityContext.runAsUser": 0}, {"spec.securityContext.runAsUser": 1001}),
    ("FUN-K8S-015", {f"{C}.runAsUser": 0}, {f"{C}.runAsUser": 10001}),
    ("FUN-K8S-016", {"spec.securityContext.seccompProfile": None}, {f"{C}.seccompProfile": {"type": "RuntimeDefault"}}),
    ("FUN-K8S-017", {f"{C}.capabilities": {"drop": ["NET_RAW"]}}, {f"{C}.capabilities": {"drop": ["ALL"]}}),
    (
        "FUN-K8S-017",
        {f"{C}.capabilities": {"drop": ["ALL"], "add": ["CHOWN"]}},
        {f"{C}.capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
    ),
]


@pytest.mark.parametrize(("rule_id", "bad", "good"), PSS_CASES)
def test_pss_control_fails_and_passes(rule_id: str, bad: dict[str, Any], good: dict[str, Any]) -> None:
    # None in a change means "unset": remove the key after applying the change.
    def build(changes: dict[str, Any]) -> dict[str, Any]:
        obj = pod(**{k: v for k, v in changes.items() if v is not None})
        for dotted in (k for k, v in changes.items() if v is None):
            *parents, last = [int(p) if p.isdigit() else p for p in dotted.split(".")]
            target: Any = obj
            for part in parents:
                target = target[part]
            target.pop(last, None)
        return obj

    assert rule_id in ids(build(bad))
    assert ids(build(good)) == set()


def test_pss_covers_init_and_ephemeral_containers() -> None:
    bad = {**CONTAINER, "name": "init", "securityContext": {"privileged": True}}
    obj = pod(
        **{"spec.initContainers": [bad], "spec.ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]}
    )
    found = rules.check([doc(obj), doc(NETPOL)])
    paths = {(f.rule, f.path) for f in found}
    assert ("FUN-K8S-003", "spec.initContainers[0].securityContext.privileged") in paths
    assert ("FUN-K8S-013", "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation") in paths


def test_each_problem_reported_once() -> None:
    # hostPath is baseline's (005), not also restricted's volume rule (012); SYS_ADMIN is 004, not 017.
    assert ids(pod(**{"spec.volumes": [{"name": "h", "hostPath": {"path": "/"}}]})) == {"FUN-K8S-005"}
    caps = {f"{C}.capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}
    assert ids(pod(**caps)) == {"FUN-K8S-004"}


@pytest.mark.parametrize(
    ("kind", "wrap"),
    [
        ("Deployment", lambda t: {"replicas": 3, "selector": {"matchLabels": {"app": "p"}}, "template": t}),
        ("StatefulSet", lambda t: {"replicas": 3, "serviceName": "p", "template": t}),
        ("DaemonSet", lambda t: {"template": t}),
        ("ReplicaSet", lambda t: {"replicas": 3, "template": t}),
        ("Job", lambda t: {"template": t}),
        ("CronJob", lambda t: {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": t}}}),
    ],
)
def test_pod_templates_of_every_workload_kind(kind: str, wrap: Any) -> None:
    template = {"metadata": {"labels": {"app": "p"}}, "spec": pod(**{f"{C}.privileged": True})["spec"]}
    obj = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "w"}, "spec": wrap(template)}
    found = [f for f in rules.check([doc(obj), doc(NETPOL)]) if f.rule == "FUN-K8S-003"]
    assert len(found) == 1
    assert found[0].path.endswith("template.spec.containers[0].securityContext.privileged")
    assert found[0].object == f"{kind} w"


# -- the seed's anti-patterns (section 11 bad examples) --------------------------------------------------


def fixture_ids(name: str, profile: Profile = Profile.DEFAULT) -> dict[str, list[rules.ManifestFinding]]:
    out: dict[str, list[rules.ManifestFinding]] = {}
    for f in rules.check(load(FIXTURES / name), profile):
        out.setdefault(f.rule, []).append(f)
    return out


def test_bad_latest_tag() -> None:
    found = fixture_ids("bad-latest.yaml")["FUN-K8S-020"]
    assert [f.path for f in found] == [
        "spec.template.spec.containers[0].image",
        "spec.template.spec.containers[1].image",
    ]
    assert "uses the tag latest" in found[0].message and "has no tag" in found[1].message
    assert found[0].line == 16 and found[0].severity is Severity.ERROR


def test_bad_no_resources() -> None:
    found = fixture_ids("bad-no-resources.yaml")
    assert "FUN-K8S-022" in found and "FUN-K8S-023" in found
    assert found["FUN-K8S-022"][0].path == "spec.containers[0].resources.requests"


def test_bad_secret_env() -> None:
    found = fixture_ids("bad-secret-env.yaml")["FUN-K8S-024"]
    assert [f.path for f in found] == ["spec.containers[0].env[0].value", "spec.containers[0].env[1].value"]
    assert "DATABASE_URL holds a URL with a password" in found[0].message
    assert "API_TOKEN has a literal value" in found[1].message


@pytest.mark.parametrize(
    ("name", "value", "caught"),
    [
        ("DB_PASSWORD", "hunter2", True),
        ("AWS_SECRET_ACCESS_KEY", "abc", True),
        ("GITHUB_TOKEN", "ghp_x", True),
        ("STRIPE_APIKEY", "sk_live", True),
        ("REDIS_URL", "redis://:pw@cache:6379", True),
        ("NODE_ENV", "production", False),
        ("DATABASE_URL", "postgresql://db:5432/mydb", False),
        ("DB_PASSWORD", "$(FROM_OTHER_VAR)", False),
        ("DB_PASSWORD", "", False),
    ],
)
def test_secret_env_names_and_values(name: str, value: str, caught: bool) -> None:
    obj = pod(**{"spec.containers.0.env": [{"name": name, "value": value}]})
    assert ("FUN-K8S-024" in ids(obj)) is caught


def test_bad_no_probes() -> None:
    found = fixture_ids("bad-no-probes.yaml")
    assert {"FUN-K8S-025", "FUN-K8S-026", "FUN-K8S-027"} <= set(found)
    assert found["FUN-K8S-025"][0].severity is Severity.WARNING
    assert found["FUN-K8S-027"][0].severity is Severity.INFO


def test_jobs_need_no_probes() -> None:
    template = {"metadata": {"labels": {"app": "p"}}, "spec": pod(**{"spec.containers.0.readinessProbe": None})["spec"]}
    del template["spec"]["containers"][0]["readinessProbe"]
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": {"template": template}}
    assert ids(job) == set()


def test_bad_single_replica_production_only() -> None:
    default = fixture_ids("bad-single-replica.yaml")
    production = fixture_ids("bad-single-replica.yaml", Profile.PRODUCTION)
    assert not {"FUN-K8S-030", "FUN-K8S-031", "FUN-K8S-032"} & set(default)
    assert {"FUN-K8S-030", "FUN-K8S-031", "FUN-K8S-032"} <= set(production)
    assert production["FUN-K8S-030"][0].message.endswith("spec.replicas is 1")
    assert production["FUN-K8S-030"][0].line == 7


def deployment(replicas: int | None = 3, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    template = {"metadata": {"labels": labels or {"app": "p"}}, "spec": copy.deepcopy(POD["spec"]) | spec}
    body: dict[str, Any] = {"selector": {"matchLabels": labels or {"app": "p"}}, "template": template}
    if replicas is not None:
        body["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": body}


SPREAD = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule"}]
PDB = {
    "apiVersion": "policy/v1",
    "kind": "PodDisruptionBudget",
    "metadata": {"name": "d"},
    "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "p"}}},
}


def test_production_availability_rules() -> None:
    good = deployment(topologySpreadConstraints=SPREAD)
    assert ids(good, PDB, profile=Profile.PRODUCTION) == set()
    assert ids(deployment(replicas=None, topologySpreadConstraints=SPREAD), PDB, profile=Profile.PRODUCTION) == {
        "FUN-K8S-030"
    }
    other_pdb = copy.deepcopy(PDB)
    other_pdb["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert ids(good, other_pdb, profile=Profile.PRODUCTION) == {"FUN-K8S-031"}
    assert ids(deployment(), PDB, profile=Profile.PRODUCTION) == {"FUN-K8S-032"}


def test_hpa_min_replicas_counts() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "d"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "d"}, "minReplicas": 3, "maxReplicas": 10},
    }
    one = deployment(replicas=1, topologySpreadConstraints=SPREAD)
    assert ids(one, PDB, hpa, profile=Profile.PRODUCTION) == set()
    hpa["spec"]["minReplicas"] = 2
    assert ids(one, PDB, hpa, profile=Profile.PRODUCTION) == {"FUN-K8S-030"}


def test_network_policy_must_select_the_pods() -> None:
    objs = [doc(pod())]
    assert {f.rule for f in rules.check(objs)} == {"FUN-K8S-029"}
    scoped = copy.deepcopy(NETPOL) | {"spec": {"podSelector": {"matchLabels": {"app": "other"}}}}
    assert {f.rule for f in rules.check([*objs, doc(scoped)])} == {"FUN-K8S-029"}
    other_ns = copy.deepcopy(NETPOL)
    other_ns["metadata"]["namespace"] = "b"
    in_a = pod(**{"metadata.namespace": "a"})
    assert {f.rule for f in rules.check([doc(in_a), doc(other_ns)])} == {"FUN-K8S-029"}


@pytest.mark.parametrize(
    ("image", "caught"),
    [
        ("ghcr.io/myorg/myapp:v1.2.3", False),
        ("ghcr.io/myorg/myapp:1.2.3-rc.1", False),
        ("ghcr.io/myorg/myapp:a1b2c3d", False),
        ("ghcr.io/myorg/myapp:sha-a1b2c3d", False),
        ("ghcr.io/myorg/myapp@sha256:" + "0" * 64, False),
        ("localhost:5000/myapp:stable@sha256:" + "0" * 64, False),
        ("ghcr.io/myorg/myapp:1.2", True),
        ("ghcr.io/myorg/myapp:main", True),
        ("localhost:5000/myapp:stable", True),
    ],
)
def test_production_image_pinning(image: str, caught: bool) -> None:
    obj = pod(**{"spec.containers.0.image": image})
    assert ("FUN-K8S-021" in ids(obj, profile=Profile.PRODUCTION)) is caught
    assert "FUN-K8S-021" not in ids(obj)


def test_registry_port_is_not_a_tag() -> None:
    assert "FUN-K8S-020" in ids(pod(**{"spec.containers.0.image": "localhost:5000/myapp"}))


# -- the seed's own files -------------------------------------------------------------------------------


def test_seed_base_under_production_profile() -> None:
    """What the seed's base manifests produce, and why (each a real gap in the seed).

    deployment.yaml sets runAsNonRoot/runAsUser but no seccompProfile, no allowPrivilegeEscalation
    and no capabilities.drop, so the seed's own `production` namespace (enforce: restricted) would
    refuse its pods; it also leaves the root filesystem writable and has no topologySpreadConstraints
    (the seed's section 11 good example has them). Its image tag abc1234 is a git SHA, which seed 11
    calls good, so FUN-K8S-021 does not fire. pod-security.yaml's Pod passes every PSS control but,
    as a securityContext illustration, sets no resources, no probes and no labels (so no
    NetworkPolicy selects it).
    """
    found = {(Path(f.source).name, f.rule) for f in rules.check(load(*SEED), Profile.PRODUCTION)}
    assert found == {
        ("seed-deployment.yaml", "FUN-K8S-013"),
        ("seed-deployment.yaml", "FUN-K8S-016"),
        ("seed-deployment.yaml", "FUN-K8S-017"),
        ("seed-deployment.yaml", "FUN-K8S-028"),
        ("seed-deployment.yaml", "FUN-K8S-032"),
        ("seed-pod-security.yaml", "FUN-K8S-022"),
        ("seed-pod-security.yaml", "FUN-K8S-023"),
        ("seed-pod-security.yaml", "FUN-K8S-025"),
        ("seed-pod-security.yaml", "FUN-K8S-026"),
        ("seed-pod-security.yaml", "FUN-K8S-027"),
        ("seed-pod-security.yaml", "FUN-K8S-029"),
    }


def test_seed_pod_security_passes_every_pss_control() -> None:
    pss = {f"FUN-K8S-{n:03d}" for n in range(1, 18)}
    assert not {f.rule for f in rules.check(load(FIXTURES / "seed-pod-security.yaml"))} & pss


def test_seed_corrected_passes_production() -> None:
    files = [FIXTURES / "good-production.yaml", FIXTURES / "seed-pdb.yaml", FIXTURES / "seed-network-policy.yaml"]
    assert rules.check(load(*files), Profile.PRODUCTION) == []


# -- ignores -------------------------------------------------------------------------------------------------


def test_ignore_with_reason() -> None:
    obj = pod(**{"spec.hostNetwork": True})
    obj["metadata"]["annotations"] = {
        rules.IGNORE_CHECKS: "FUN-K8S-002, fun-k8s-029",
        rules.IGNORE_REASON: "node exporter needs the host network",
    }
    assert {f.rule for f in rules.check([doc(obj)])} == set()


def test_ignore_without_reason_is_not_honoured() -> None:
    obj = pod(**{"spec.hostNetwork": True})
    obj["metadata"]["annotations"] = {rules.IGNORE_CHECKS: "FUN-K8S-002"}
    found = rules.check([doc(obj), doc(NETPOL)])
    assert {f.rule for f in found} == {"FUN-K8S-002", "FUN-K8S-090"}
    missing = next(f for f in found if f.rule == "FUN-K8S-090")
    assert missing.path == "metadata.annotations[funade.io/ignore-checks]"
    assert missing.severity is Severity.ERROR


def test_ignore_unknown_id_and_unignorable() -> None:
    obj = pod()
    obj["metadata"]["annotations"] = {rules.IGNORE_CHECKS: "FUN-K8S-999,FUN-K8S-091", rules.IGNORE_REASON: "x"}
    assert {f.rule for f in rules.check([doc(obj), doc(NETPOL)])} == {"FUN-K8S-091"}


def test_every_rule_is_described() -> None:
    for spec in rules.RULES.values():
        assert spec.id.startswith("FUN-K8S-") and spec.title and spec.description and spec.fix and spec.control
    assert rules.rule("FUN-K8S-020").peers.items() == [
        ("kube-score", "container-image-tag"),
        ("polaris", "tagNotSpecified"),
        ("kube-linter", "latest-tag"),
        ("checkov", "CKV_K8S_14"),
    ]


# -- the command and its reports ---------------------------------------------------------------------------

runner = CliRunner()


def run(*args: str) -> Any:
    return runner.invoke(app, ["policy", "check", *args])


def test_cli_exit_codes_and_threshold() -> None:
    bad = str(FIXTURES / "bad-no-probes.yaml")
    assert run("-f", bad).exit_code == 1
    good = [str(FIXTURES / n) for n in ("good-production.yaml", "seed-pdb.yaml", "seed-network-policy.yaml")]
    args = [a for path in good for a in ("-f", path)]
    result = run(*args, "--profile", "production", "--failure-threshold", "info")
    assert result.exit_code == 0, result.output
    assert "no findings" in result.output
    # the seed's Pod: warnings and one info, no error
    seed_pod = str(FIXTURES / "seed-pod-security.yaml")
    assert run("-f", seed_pod, "--failure-threshold", "error").exit_code == 0
    assert run("-f", seed_pod, "--failure-threshold", "warning").exit_code == 1


def test_cli_usage_errors(tmp_path: Path) -> None:
    missing = run("-f", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 2 and "nope.yaml" in missing.output
    assert run("-f", str(FIXTURES / "bad-latest.yaml"), "--profile", "staging").exit_code == 2
    assert run("-f", str(FIXTURES / "bad-latest.yaml"), "-t", "fatal").exit_code == 2
    assert run("-f", str(FIXTURES / "bad-latest.yaml"), "-o", "xml").exit_code == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: [\n")
    result = run("-f", str(broken))
    assert result.exit_code == 2 and "broken.yaml" in result.output
    unreadable = tmp_path / "binary.yaml"
    unreadable.write_bytes(b"\xff\xfe\x00")
    result = run("-f", str(unreadable))
    assert result.exit_code == 2 and "binary.yaml" in result.output


def test_cli_directory_and_json() -> None:
    result = run("-f", str(FIXTURES), "-o", "json", "--profile", "production")
    assert result.exit_code == 1
    data = json.loads(result.output)
    entry = next(e for e in data if e["rule"] == "FUN-K8S-020")
    assert set(entry) == {"file", "line", "object", "field", "rule", "level", "message", "fix", "peers"}
    assert entry["object"] == "Deployment latest-app" and entry["peers"]["checkov"] == "CKV_K8S_14"


def test_sarif_structure() -> None:
    found = rules.check(load(FIXTURES / "bad-secret-env.yaml"))
    log = policy_cli.to_sarif(found)
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run_,) = log["runs"]
    driver = run_["tool"]["driver"]
    rule_ids = [r["id"] for r in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids)) == len({f.rule for f in found})
    for result in run_["results"]:
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in {"error", "warning", "note"}
        location = result["locations"][0]
        assert location["physicalLocation"]["artifactLocation"]["uri"].endswith("bad-secret-env.yaml")
        assert location["physicalLocation"]["region"]["startLine"] >= 1
    secret = next(r for r in run_["results"] if r["ruleId"] == "FUN-K8S-024")
    assert secret["locations"][0]["logicalLocations"][0]["name"] == "spec.containers[0].env[0].value"
    assert secret["locations"][0]["physicalLocation"]["region"]["startLine"] == 12
    descriptor = driver["rules"][rule_ids.index("FUN-K8S-024")]
    assert descriptor["properties"]["peers"]["polaris"] == "sensitiveContainerEnvVar"
    assert descriptor["defaultConfiguration"]["level"] == "error"


def test_table_output() -> None:
    result = run("-f", str(FIXTURES / "bad-latest.yaml"))
    assert "FUN-K8S-020" in result.output and "bad-latest.yaml:16" in result.output
    assert "at or above the failure threshold (warning)" in result.output
