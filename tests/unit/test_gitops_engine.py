"""GitOps compare/sync and the Application controller over a fake git source and a real SQLite store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.adapters.gitsource_fake import FakeGitSource
from funade.adapters.store.sqlite import SqliteStore
from funade.controller.apps import SUSPENDED, AppController
from funade.core.gitops import diff, plan
from funade.core.ports import ObjectKey
from funade.engine.gitops import Apps
from funade.engine.render import Renderer

pytestmark = pytest.mark.unit
Obj = dict[str, Any]
REPO = "https://git.example.com/shop.git"


def configmap(name: str, value: str = "1") -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"v": value}})


def application(name: str = "web", path: str = "web", *, automated: bool = True, self_heal: bool = True) -> Obj:
    policy: Obj = {}
    if automated:
        policy["automated"] = {"prune": True, "selfHeal": self_heal}
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "source": {"repoURL": REPO, "targetRevision": "main", "path": path},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
            "syncPolicy": policy,
        },
    }


class World:
    def __init__(self, tmp_path: Path) -> None:
        self.store = SqliteStore(tmp_path / "db")
        self.store.put_many(
            [
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}},
            ]
        )
        self.git = FakeGitSource(tmp_path / "trees")
        self.renderer = Renderer(self.git)
        self.apps = Apps(self.store, self.git, self.renderer)

    def app(self, obj: Obj) -> Obj:
        ((stored, _),) = self.store.put_many([obj])
        return stored

    def current(self, name: str = "web") -> Obj:
        found = self.store.get(ObjectKey("Application", "argocd", name))
        assert found is not None
        return found

    def configmaps(self) -> dict[str, str]:
        return {o["metadata"]["name"]: o["data"]["v"] for o in self.store.list_objects("ConfigMap", "default")}


async def _settle(controller: AppController, n: int) -> None:
    """``n`` controller passes, each waiting for the syncs and notifications it started."""
    for _ in range(n):
        await controller.reconcile()
        for state in controller._state.values():
            if state.task is not None:
                await state.task
        await asyncio.gather(*controller._sending)


@pytest.fixture
def w(tmp_path: Path) -> World:
    return World(tmp_path)


def test_compare_then_sync_creates_what_git_has_and_labels_it(w: World) -> None:
    head = w.git.commit(REPO, {"web/a.yaml": configmap("a"), "web/b.yaml": configmap("b")})
    obj = w.app(application())
    comparison = w.apps.compare(obj)
    assert comparison.revision == head and not comparison.error
    assert comparison.sync is diff.SyncStatus.OUT_OF_SYNC
    assert [r["health"]["status"] for r in comparison.resources()] == ["Missing", "Missing"]
    operation = asyncio.run(w.apps.sync(comparison, prune=True))
    assert operation.phase is plan.OperationPhase.SUCCEEDED, operation.message
    assert w.configmaps() == {"a": "1", "b": "1"}
    stored = w.store.get(ObjectKey("ConfigMap", "default", "a"))
    assert stored is not None and stored["metadata"]["labels"][diff.TRACKING_LABEL] == "web"
    assert w.apps.compare(obj).sync is diff.SyncStatus.SYNCED


def test_prune_only_with_permission_and_never_after_a_render_error(w: World) -> None:
    w.git.commit(REPO, {"web/a.yaml": configmap("a"), "web/b.yaml": configmap("b")})
    obj = w.app(application())
    asyncio.run(w.apps.sync(w.apps.compare(obj), prune=True))
    w.git.commit(REPO, {"web/b.yaml": None})
    comparison = w.apps.compare(obj)
    (gone,) = [d for d in comparison.diffs if d.requires_pruning]
    assert gone.key.name == "b"
    operation = asyncio.run(w.apps.sync(comparison, prune=False))
    assert "b" in w.configmaps()  # not allowed to prune: skipped, kept
    assert any(r.status is plan.ResultCode.PRUNE_SKIPPED for r in operation.results)
    # A broken manifest: ComparisonError, and the sync refuses without touching anything.
    w.git.commit(REPO, {"web/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: [oops"})
    broken = w.apps.compare(obj)
    assert broken.error and "web/a.yaml" in broken.error
    operation = asyncio.run(w.apps.sync(broken, prune=True))
    assert operation.phase is plan.OperationPhase.ERROR and "ComparisonError" in operation.message
    assert set(w.configmaps()) == {"a", "b"}


def test_an_empty_render_is_an_error_unless_allow_empty(w: World) -> None:
    w.git.commit(REPO, {"web/README.md": "nothing here"})
    obj = w.app(application())
    assert "rendered no manifests" in w.apps.compare(obj).error
    allowed = application()
    allowed["spec"]["syncPolicy"]["automated"]["allowEmpty"] = True
    assert not w.apps.compare(w.app(allowed)).error


def test_an_unreachable_repository_is_a_comparison_error(w: World) -> None:
    w.git.commit(REPO, {"web/a.yaml": configmap("a")})
    obj = w.app(application())
    w.git.set_reachable(REPO, False)
    comparison = w.apps.compare(obj, refresh=True)
    assert comparison.error and "git.example.com" in comparison.error


def test_a_push_rerenders_only_the_apps_whose_paths_it_touches(w: World) -> None:
    w.git.commit(REPO, {f"app{i}/cm.yaml": configmap(f"c{i}") for i in range(5)})
    objs = [w.app(application(f"app{i}", f"app{i}")) for i in range(5)]
    for obj in objs:
        w.apps.compare(obj)
    assert w.renderer.renders == 5
    head = w.git.commit(REPO, {"app3/cm.yaml": configmap("c3", "2")})
    comparisons = [w.apps.compare(obj) for obj in objs]
    assert w.renderer.renders == 6  # only app3 rendered again
    assert w.apps.reused == 4
    assert all(c.revision == head for c in comparisons)
    assert comparisons[3].desired[0]["data"] == {"v": "2"}


def test_ignore_differences_and_self_heal_through_the_controller(w: World) -> None:
    w.git.commit(REPO, {"web/a.yaml": configmap("a")})
    w.app(application())
    controller = AppController(w.store, w.apps)

    asyncio.run(_settle(controller, 2))
    status = w.current()["status"]
    assert status["sync"]["status"] == "Synced" and status["operationState"]["phase"] == "Succeeded"
    assert [h["id"] for h in status["history"]] == [0]
    # Drift: changed by hand, put back at the next pass (selfHeal).
    cm = w.store.get(ObjectKey("ConfigMap", "default", "a"))
    assert cm is not None
    cm["data"]["v"] = "hand-edited"
    w.store.put_many([cm])
    asyncio.run(_settle(controller, 2))
    assert w.configmaps() == {"a": "1"}


def test_rollback_suspends_auto_sync(w: World) -> None:
    w.git.commit(REPO, {"web/a.yaml": configmap("a", "1")})
    w.app(application())
    controller = AppController(w.store, w.apps)

    asyncio.run(_settle(controller, 3))
    w.git.commit(REPO, {"web/a.yaml": configmap("a", "2")})
    controller.refresh("web")
    asyncio.run(_settle(controller, 3))
    assert w.configmaps() == {"a": "2"}
    first = w.current()["status"]["history"][0]["revision"]
    obj = w.current()
    obj["metadata"].setdefault("annotations", {})[SUSPENDED] = "rollback"
    w.store.put_many([obj])

    async def rollback() -> None:
        controller.start_sync(w.current(), prune=True, revision=first, initiated_by="rollback")
        await _settle(controller, 3)

    asyncio.run(rollback())
    assert w.configmaps() == {"a": "1"}  # and auto-sync does not undo the rollback
    assert w.current()["status"]["sync"]["status"] == "OutOfSync"


def test_subscribers_hear_about_a_successful_sync_once(w: World) -> None:
    from funade.adapters.notify import RecordingSender

    w.git.commit(REPO, {"web/a.yaml": configmap("a")})
    obj = application()
    obj["metadata"]["annotations"] = {
        "notifications.argoproj.io/subscribe.on-sync-succeeded.slack": "deployments",
        "notifications.argoproj.io/subscribe.on-sync-failed.slack": "deployments-alerts",
    }
    w.app(obj)
    sender = RecordingSender()
    controller = AppController(w.store, w.apps, sender=sender)

    asyncio.run(_settle(controller, 4))
    assert [(n.trigger.value, d.recipient) for n, d in sender.sent] == [("on-sync-succeeded", "deployments")]
    assert "web" in sender.sent[0][0].title or "web" in sender.sent[0][0].text


def test_a_sync_the_deploy_gate_refuses_applies_nothing(w: World) -> None:
    from funade.engine.workloads import WorkloadError

    seen: list[list[str]] = []
    actors: list[str] = []

    async def gate(objs: list[Obj], namespace: str, actor: str) -> None:
        seen.append(sorted(o["metadata"]["name"] for o in objs))
        actors.append(actor)
        raise WorkloadError("refused by the gate of namespace default (nothing was applied):\n  - a: latest tag", 422)

    apps = Apps(w.store, w.git, w.renderer, gate=gate)
    w.git.commit(REPO, {"web/a.yaml": configmap("a"), "web/b.yaml": configmap("b")})
    operation = asyncio.run(apps.sync(apps.compare(w.app(application())), prune=True))
    assert operation.phase is plan.OperationPhase.FAILED and "refused by the gate" in operation.message
    assert seen == [["a", "b"]]  # the whole sync is checked at once, before the first wave
    assert actors == [f"application/web@{operation.revision[:12]}"]  # named in the audit log of an override
    assert w.configmaps() == {}


def test_a_destination_cluster_must_be_mapped_to_a_target(w: World) -> None:
    w.git.commit(REPO, {"web/a.yaml": configmap("a")})
    obj = application()
    obj["spec"]["destination"] = {"server": "https://prod-cluster.example.com", "namespace": "default"}
    stored = w.app(obj)
    comparison = w.apps.compare(stored)
    assert "https://prod-cluster.example.com is not a known target" in comparison.error
    assert "targets.yaml" in comparison.error
    mapped = Apps(w.store, w.git, w.renderer, targets=lambda: {"https://prod-cluster.example.com": "local"})
    assert not mapped.compare(stored).error


def test_self_heal_goes_on_while_git_is_unreachable(w: World) -> None:
    """Drift is healed from the last rendered revision; an unreachable repository does not stop it."""
    w.git.commit(REPO, {"web/a.yaml": configmap("a")})
    w.app(application())
    controller = AppController(w.store, w.apps)

    asyncio.run(_settle(controller, 2))
    assert w.configmaps() == {"a": "1"}
    w.git.set_reachable(REPO, False)
    w.store.delete(ObjectKey("ConfigMap", "default", "a"))
    asyncio.run(_settle(controller, 2))
    assert w.configmaps() == {"a": "1"}
    assert w.current()["status"]["operationState"]["phase"] == "Succeeded"
