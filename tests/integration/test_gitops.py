"""GitOps for real: a git repository made here, the shop's Kustomize base, Applications synced to the local target.

An automated Application (prune + selfHeal) follows commits announced by a signed GitHub
webhook; a resource removed from git is pruned; a broken kustomization is a
ComparisonError that deletes nothing; a Deployment deleted by hand comes back; a rollback
syncs the previous revision and suspends auto-sync until it is switched on again; an
ApplicationSet makes dev / staging / production with production on manual sync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.integration.conftest import Funade

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
SHOP = Path(__file__).resolve().parents[2] / "examples" / "shop" / "base"
SECRET = "it-webhook-secret"


class Repo:
    """A git repository with the shop's base and one overlay per namespace."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        shutil.copytree(SHOP, root / "base")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-c", "user.name=it", "-c", "user.email=it@example.com", *args],
            cwd=self.root, capture_output=True, text=True, check=True,
        )  # fmt: skip
        return done.stdout.strip()

    def overlay(self, namespace: str, tag: str = "1.0.0", path: str | None = None, **extra: Any) -> str:
        path = path or f"overlays/{namespace}"
        target = self.root / path
        target.mkdir(parents=True, exist_ok=True)
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "namespace": namespace,
            "resources": [os.path.relpath(self.root / "base", target)],
            "secretGenerator": [{"name": "shop-db", "literals": ["password=it"]}],
            "images": [{"name": "funade-testapp", "newTag": tag}],
            **extra,
        }
        (target / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return path

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def url(self) -> str:
        return f"file://{self.root}"


def application(name: str, repo: Repo, path: str, namespace: str, automated: bool = True) -> Obj:
    policy: Obj = {"syncOptions": ["PruneLast=true"]}
    if automated:
        policy["automated"] = {"prune": True, "selfHeal": True}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            "syncPolicy": policy,
        },
    }


def app_status(funade: Funade, name: str) -> Obj:
    return dict(funade.get(f"/v1/apps/{name}").get("status") or {})


def synced_healthy(funade: Funade, name: str, revision: str, ns: str, timeout: float = 120) -> Obj:
    def ready() -> Obj | None:
        status = app_status(funade, name)
        sync, health = status.get("sync") or {}, status.get("health") or {}
        ok = sync.get("status") == "Synced" and sync.get("revision") == revision and health.get("status") == "Healthy"
        return status if ok else None

    try:
        return funade.wait_until(ready, timeout, f"app {name} Synced and Healthy at {revision[:7]}", namespace=ns)
    except pytest.fail.Exception as exc:
        shown = funade.cli("app", "get", name)
        raise AssertionError(f"{exc}\n$ funade app get {name}\n{shown.output}") from None


def push(funade: Funade, repo: Repo, before: str, after: str, files: list[str], secret: str = SECRET) -> httpx.Response:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": before,
            "after": after,
            "repository": {"clone_url": repo.url, "html_url": repo.url, "default_branch": "main"},
            "commits": [{"id": after, "added": [], "removed": [], "modified": files}],
            "head_commit": {"id": after},
        }
    ).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": signature, "Content-Type": "application/json"}
    return funade.http.post("/api/webhook", content=body, headers=headers)


def image_of(funade: Funade, ns: str) -> str:
    deployment = funade.deployment(ns, "shop")
    return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])


def test_an_automated_app_follows_git_prunes_heals_and_rolls_back(funade: Funade, ns: str, tmp_path: Path) -> None:
    (funade.home / "webhook.yaml").write_text(yaml.safe_dump({"github": SECRET}))
    repo = Repo(tmp_path / "repo")
    path = repo.overlay(ns)
    first = repo.commit("shop 1.0.0")
    name = f"shop-{ns}"[:50]
    r = funade.cli("app", "create", "-f", str(funade.write(application(name, repo, path, ns))))
    assert r.code == 0, r.output
    status = synced_healthy(funade, name, first, ns)
    assert image_of(funade, ns) == "funade-testapp:1.0.0"
    kinds = {(row["kind"], row["name"]) for row in status["resources"]}
    assert {("Deployment", "shop"), ("Service", "shop"), ("PodDisruptionBudget", "shop")} <= kinds
    listing = funade.cli("app", "list")
    assert name in listing.stdout and "Synced" in listing.stdout and "Healthy" in listing.stdout, listing.output

    # A commit, announced by a signed webhook: synced within seconds, not at the next poll.
    repo.overlay(ns, tag="2.0.0")
    second = repo.commit("shop 2.0.0")
    response = push(funade, repo, first, second, [f"{path}/kustomization.yaml"])
    assert response.status_code == 200 and name in response.json()["refreshed"], response.text
    synced_healthy(funade, name, second, ns)
    assert image_of(funade, ns) == "funade-testapp:2.0.0"

    # A wrongly signed webhook is refused.
    bad = push(funade, repo, first, second, [f"{path}/kustomization.yaml"], secret="not-the-secret")
    assert bad.status_code == 401, bad.text

    # A resource removed from git is pruned.
    kustomization = yaml.safe_load((repo.root / "base" / "kustomization.yaml").read_text())
    kustomization["resources"].remove("pdb.yaml")
    (repo.root / "base" / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    third = repo.commit("no PDB")
    assert push(funade, repo, second, third, ["base/kustomization.yaml"]).status_code == 200
    synced_healthy(funade, name, third, ns)
    assert funade.find("PodDisruptionBudget", ns, "shop") is None

    # A broken kustomization: ComparisonError, nothing deleted.
    (repo.root / path / "kustomization.yaml").write_text("resources: [../../base\n  broken: [")
    broken = repo.commit("broken")
    refreshed = funade.cli("app", "refresh", name)
    assert refreshed.code == 1 and "ComparisonError" in refreshed.stderr, refreshed.output
    status = funade.wait_until(
        lambda: (s := app_status(funade, name)).get("conditions") and s, 60, "a ComparisonError", namespace=ns
    )
    assert status["conditions"][0]["type"] == "ComparisonError", status
    assert "invalid kustomization" in status["conditions"][0]["message"].lower(), status
    assert funade.find("Deployment", ns, "shop") is not None and funade.find("Service", ns, "shop") is not None
    repo.git("revert", "--no-edit", broken)
    fixed = repo.git("rev-parse", "HEAD")
    assert funade.cli("app", "refresh", name).code == 0
    synced_healthy(funade, name, fixed, ns)

    # Self-heal: a Deployment deleted by hand comes back.
    assert funade.cli("delete", "deployment", "shop", "-n", ns).code == 0
    funade.wait_until(lambda: funade.find("Deployment", ns, "shop") is not None, 30, "shop re-created", namespace=ns)
    synced_healthy(funade, name, fixed, ns)

    # Rollback with auto-sync on: the earlier revision, and auto-sync suspended until switched on again.
    history = app_status(funade, name)["history"]
    assert [h["revision"] for h in history][-1] == fixed
    target = next(h for h in history if h["revision"] == first)
    r = funade.cli("app", "rollback", name, str(target["id"]), timeout=300)
    assert r.code == 0, r.output
    assert "auto-sync is suspended" in r.stderr, r.output
    funade.wait_until(lambda: image_of(funade, ns) == "funade-testapp:1.0.0", 60, "1.0.0 again", namespace=ns)
    # Git still says 2.0.0: OutOfSync, and it stays so for passes after (auto-sync is suspended).
    funade.wait_until(lambda: app_status(funade, name)["sync"]["status"] == "OutOfSync", 30, "OutOfSync", namespace=ns)
    seen = app_status(funade, name)["reconciledAt"]
    funade.wait_until(lambda: app_status(funade, name)["reconciledAt"] > seen, 30, "another comparison", namespace=ns)
    assert image_of(funade, ns) == "funade-testapp:1.0.0"
    shown = funade.cli("app", "get", name)
    assert "auto-sync suspended" in shown.stdout, shown.output
    assert funade.cli("app", "set", name, "--sync-policy", "automated").code == 0
    synced_healthy(funade, name, fixed, ns)
    assert image_of(funade, ns) == "funade-testapp:2.0.0"

    # app get -o json has Argo CD's layout.
    got = json.loads(funade.cli("app", "get", name, "-o", "json").stdout)
    assert got["status"]["sync"]["status"] == "Synced" and got["status"]["health"]["status"] == "Healthy"
    assert got["status"]["operationState"]["phase"] == "Succeeded"
    r = funade.cli("app", "delete", name)
    assert r.code == 0, r.output
    funade.wait_until(lambda: funade.find("Deployment", ns, "shop") is None, 30, "cascade delete", namespace=ns)


def test_a_gated_namespace_refuses_a_sync_until_the_commit_carries_an_override(
    funade: Funade, ns: str, tmp_path: Path
) -> None:
    profile = {"funade.io/policy-profile": "production"}
    gated: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "annotations": profile}}
    assert funade.apply("default", gated).code == 0
    repo = Repo(tmp_path / "repo")
    path = repo.overlay(ns)  # the shop's base runs 2 replicas: production's FUN-K8S-030 wants 3
    repo.commit("shop 1.0.0")
    name = f"gate-{ns}"[:50]
    assert funade.cli("app", "create", "-f", str(funade.write(application(name, repo, path, ns)))).code == 0

    def refused() -> Obj | None:
        operation = app_status(funade, name).get("operationState") or {}
        return operation if operation.get("phase") == "Failed" else None

    operation = funade.wait_until(refused, 60, "the gate refuses the auto-sync", namespace=ns)
    assert "refused by the gate" in operation["message"] and "FUN-K8S-030" in operation["message"], operation
    assert funade.find("Deployment", ns, "shop") is None and funade.find("Service", ns, "shop") is None

    # The exception is reviewed in git like any change: the Deployment carries its own override.
    reason = {"funade.io/gate-override": "2 replicas until Q3, OPS-7"}
    override = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop", "annotations": reason}}
    repo.overlay(ns, patches=[{"target": {"kind": "Deployment", "name": "shop"}, "patch": yaml.safe_dump(override)}])
    excused = repo.commit("shop: gate override")
    assert funade.cli("app", "refresh", name).code == 0
    synced_healthy(funade, name, excused, ns)
    audit = funade.cli("audit", "-n", ns, "-o", "json")
    assert audit.code == 0, audit.output
    (entry,) = [e for e in json.loads(audit.stdout) if e["action"] == "gate-override"]
    assert entry["actor"] == f"application/{name}@{excused[:12]}" and entry["objects"] == ["Deployment/shop"]
    assert entry["reason"] == "funade.io/gate-override on Deployment/shop: 2 replicas until Q3, OPS-7"
    assert any("FUN-K8S-030" in d for d in entry["details"]), entry
    assert funade.cli("app", "delete", name).code == 0


def migration(script: str) -> Obj:
    """An Argo CD PreSync hook of kind Job: the database migration before the new release."""
    container = {"name": "migrate", "image": "funade-testapp:1.0.0", "command": ["/bin/sh", "-c", script]}
    annotations = {"argocd.argoproj.io/hook": "PreSync", "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "annotations": annotations},
        "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
    }


def test_a_presync_job_hook_runs_before_the_release_and_a_failing_one_stops_it(
    funade: Funade, ns: str, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    path = repo.overlay(ns)
    kustomization = yaml.safe_load((repo.root / path / "kustomization.yaml").read_text())
    kustomization["resources"].append("migrate.yaml")
    (repo.root / path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (repo.root / path / "migrate.yaml").write_text(yaml.safe_dump(migration("echo schema v1")))
    first = repo.commit("shop 1.0.0 with its migration")
    name = f"hook-{ns}"[:50]
    assert funade.cli("app", "create", "-f", str(funade.write(application(name, repo, path, ns)))).code == 0
    synced_healthy(funade, name, first, ns)
    job = funade.obj("Job", ns, "migrate")
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"]["conditions"]), job["status"]
    assert image_of(funade, ns) == "funade-testapp:1.0.0"

    # The next release's migration fails: the sync stops in PreSync, the Deployment keeps 1.0.0.
    kustomization["images"] = [{"name": "funade-testapp", "newTag": "2.0.0"}]
    (repo.root / path / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    (repo.root / path / "migrate.yaml").write_text(yaml.safe_dump(migration("echo schema v2 failed; exit 1")))
    repo.commit("shop 2.0.0 with a broken migration")
    assert funade.cli("app", "refresh", name).code == 0

    def failed() -> Obj | None:
        operation = app_status(funade, name).get("operationState") or {}
        return operation if operation.get("phase") == "Failed" else None

    operation = funade.wait_until(failed, 90, "the sync stopped by its hook", namespace=ns)
    assert "migrate" in operation["message"] and "Failed" in operation["message"], operation
    assert image_of(funade, ns) == "funade-testapp:1.0.0"
    assert funade.cli("app", "delete", name).code == 0


def test_an_applicationset_makes_one_app_per_environment_with_production_manual(
    funade: Funade, ns: str, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "repo")
    envs = {"dev": f"{ns}-dev"[:60], "prod": f"{ns}-prod"[:60]}
    for env, namespace in envs.items():
        repo.overlay(namespace, path=f"overlays/{env}")
    head = repo.commit("two environments")
    appset = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": f"set-{ns}"[:50], "namespace": "argocd"},
        "spec": {
            "generators": [
                {
                    "list": {
                        "elements": [
                            {"env": "dev", "ns": envs["dev"], "auto": "true"},
                            {"env": "prod", "ns": envs["prod"], "auto": "false"},
                        ]
                    }
                }
            ],
            "goTemplate": True,
            "template": {
                "metadata": {"name": f"{ns[:30]}-{{{{.env}}}}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo.url, "targetRevision": "main", "path": "overlays/{{.env}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.ns}}"},
                },
            },
        },
    }
    # Automated for dev only (automated.enabled from the element), and the namespaces made by the sync.
    appset["spec"]["template"]["spec"]["syncPolicy"] = {
        "automated": {"prune": True, "selfHeal": True, "enabled": "{{.auto}}"},
        "syncOptions": ["CreateNamespace=true"],
    }
    r = funade.cli("app", "create", "-f", str(funade.write(appset)))
    assert r.code == 0, r.output
    dev, prod = f"{ns[:30]}-dev", f"{ns[:30]}-prod"
    synced_healthy(funade, dev, head, envs["dev"])
    funade.wait_until(
        lambda: (app_status(funade, prod).get("sync") or {}).get("status") == "OutOfSync", 60, "prod compared"
    )
    assert funade.find("Deployment", envs["prod"], "shop") is None  # manual: nothing until someone syncs
    r = funade.cli("app", "sync", prod, timeout=300)
    assert r.code == 0, r.output
    synced_healthy(funade, prod, head, envs["prod"])
    assert funade.http.delete(f"/v1/objects/ApplicationSet/argocd/{appset['metadata']['name']}").status_code == 200
    for app in (dev, prod):
        assert funade.cli("app", "delete", app).code == 0
    for namespace in envs.values():
        assert funade.cli("delete", "namespace", namespace, timeout=60).code == 0


SEED_APPSET = Path(__file__).resolve().parents[1] / "unit" / "gitops" / "fixtures" / "applicationset.yaml"


def test_the_seeds_applicationset_drives_three_environments_on_the_local_target(
    funade: Funade, ns: str, tmp_path: Path
) -> None:
    """The seed's file unchanged but for the repository URL: its three clusters mapped to the local target."""
    envs = {env: f"{ns[:40]}-{env}" for env in ("development", "staging", "production")}
    repo = Repo(tmp_path / "repo")
    for env, namespace in envs.items():
        repo.overlay(namespace, path=f"k8s/overlays/{env}")
    repo.commit("three environments")
    repo.git("branch", "develop")
    appset = yaml.safe_load(SEED_APPSET.read_text())
    appset["metadata"]["name"] = f"seed-{ns}"[:50]
    appset["spec"]["template"]["spec"]["source"]["repoURL"] = repo.url
    # Namespaces the seed's apps deploy to ('{{env}}'), made unique for this test server.
    appset["spec"]["template"]["spec"]["destination"]["namespace"] = f"{ns[:40]}-{{{{env}}}}"
    appset["spec"]["template"]["metadata"]["name"] = f"{ns[:30]}-{{{{env}}}}"
    clusters = {e["cluster"]: "local" for e in appset["spec"]["generators"][0]["list"]["elements"]}
    (funade.home / "targets.yaml").write_text(yaml.safe_dump({"servers": clusters}))
    for namespace in envs.values():
        assert (
            funade.cli(
                "apply",
                "-f",
                "-",
                input=yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}),
            ).code
            == 0
        )
    try:
        r = funade.cli("app", "create", "-f", str(funade.write(appset)))
        assert r.code == 0, r.output
        develop = repo.git("rev-parse", "develop")
        for env, namespace in envs.items():
            synced_healthy(funade, f"{ns[:30]}-{env}", develop, namespace)
        # As in Argo CD, the seed's `autoSync: false` leaves `automated` in place (prune and selfHeal off):
        # production syncs too. `app get` shows the policy the file really gives.
        prod = funade.get(f"/v1/apps/{ns[:30]}-production")
        automated = prod["spec"]["syncPolicy"]["automated"]
        assert (automated["prune"], automated["selfHeal"], automated.get("enabled", True)) == (False, False, True)
    finally:
        funade.http.delete(f"/v1/objects/ApplicationSet/argocd/{appset['metadata']['name']}")
        for env in envs:
            funade.cli("app", "delete", f"{ns[:30]}-{env}")
        for namespace in envs.values():
            funade.cli("delete", "namespace", namespace, timeout=60)
        (funade.home / "targets.yaml").unlink()
