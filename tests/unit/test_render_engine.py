"""Rendering an app source at a commit: plain directories, kustomize with overrides, the cache, deps.

Plain-directory behaviour follows Argo CD's repo server (``findManifests``: recurse
only when asked, a file that does not parse is an error when it looks like a manifest
and skipped otherwise); overrides follow ``kustomize edit set image|nameprefix|namesuffix``
and ``kustomize edit add label|annotation``. Kustomize is the real one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from funade.adapters import kustomize
from funade.adapters.gitsource import GitSource
from funade.adapters.gitsource_fake import FakeGitSource
from funade.engine import render
from funade.engine.render import REMOTE, Renderer, RenderError, RenderSpec, SourceType, affected

pytestmark = pytest.mark.unit

REPO = "https://git.example/org/apps.git"


def _has_kustomize() -> bool:
    try:
        kustomize.command()
    except kustomize.KustomizeError:
        return False
    return True


needs_kustomize = pytest.mark.skipif(not _has_kustomize(), reason="kustomize (or kubectl) is not installed")


def configmap(name: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def kustomization(**fields: Any) -> str:
    return yaml.safe_dump(fields, sort_keys=False)


KUSTOMIZE_REPO: Mapping[str, str] = {
    "base/deploy.yaml": DEPLOYMENT,
    "base/kustomization.yaml": kustomization(resources=["deploy.yaml"]),
    "components/debug/kustomization.yaml": yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "commonAnnotations": {"debug": "on"}}
    ),
    "overlays/prod/kustomization.yaml": kustomization(
        resources=["../../base", "../../shared"],
        components=["../../components/debug"],
        configMapGenerator=[{"name": "settings", "files": ["conf=settings.ini"]}],
        commonLabels={"env": "prod"},
    ),
    "overlays/prod/settings.ini": "level=info\n",
    "shared/kustomization.yaml": kustomization(resources=["ns.yaml"]),
    "shared/ns.yaml": yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}}),
    "unrelated/other.yaml": configmap("other"),
}


@pytest.fixture
def fake(tmp_path: Path) -> FakeGitSource:
    return FakeGitSource(tmp_path / "trees")


def renderer_for(source: FakeGitSource | GitSource, **kwargs: Any) -> Renderer:
    return Renderer(source, kustomize=kustomize.render, **kwargs)


def named(objects: list[dict[str, Any]]) -> list[str]:
    return [f"{obj['kind']}/{obj['metadata']['name']}" for obj in objects]


# --- plain directories -------------------------------------------------------------------


def test_a_plain_directory_renders_its_files_in_walk_order(fake: FakeGitSource) -> None:
    sha = fake.commit(
        REPO,
        {
            "app/b.yaml": configmap("b") + "---\n" + configmap("b2"),
            "app/a.yml": configmap("a"),
            "app/c.json": '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}',
            "app/notes.txt": "not a manifest",
            "app/sub/d.yaml": configmap("d"),
            "other/e.yaml": configmap("e"),
        },
    )
    rendered = renderer_for(fake).render(RenderSpec(REPO, "app"), sha)

    assert named(rendered.objects) == ["ConfigMap/a", "ConfigMap/b", "ConfigMap/b2", "ConfigMap/c"]
    assert rendered.source_type is SourceType.DIRECTORY
    assert rendered.deps == frozenset({"app/*"})
    assert rendered.commit == sha


def test_recursion_reads_subdirectories_in_go_walk_order(fake: FakeGitSource) -> None:
    sha = fake.commit(
        REPO,
        {"app/b.yaml": configmap("b-file"), "app/b/x.yaml": configmap("b-dir"), "app/a/y.yaml": configmap("a-dir")},
    )
    rendered = renderer_for(fake).render(RenderSpec(REPO, "app", directory_recurse=True), sha)

    assert named(rendered.objects) == ["ConfigMap/a-dir", "ConfigMap/b-dir", "ConfigMap/b-file"]
    assert rendered.deps == frozenset({"app"})


def test_the_repository_root_is_an_app_path(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"root.yaml": configmap("root"), "sub/x.yaml": configmap("x")})
    rendered = renderer_for(fake).render(RenderSpec(REPO, ""), sha)
    assert named(rendered.objects) == ["ConfigMap/root"]
    assert rendered.deps == frozenset({"*"})


def test_invalid_yaml_that_looks_like_a_manifest_names_file_and_line(fake: FakeGitSource) -> None:
    broken = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: [unclosed\n"
    sha = fake.commit(REPO, {"app/good.yaml": configmap("good"), "app/broken.yaml": broken})
    with pytest.raises(RenderError) as caught:
        renderer_for(fake).render(RenderSpec(REPO, "app"), sha)
    message = str(caught.value)
    assert message.startswith(f"app path app at {sha[:12]}: app/broken.yaml:")
    assert "invalid YAML" in message


def test_invalid_json_is_always_an_error(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/package.json": '{"name": "x"}'})
    with pytest.raises(RenderError, match=r"app/package\.json"):
        renderer_for(fake).render(RenderSpec(REPO, "app"), sha)


def test_yaml_that_is_not_a_manifest_is_skipped_and_reported(fake: FakeGitSource) -> None:
    sha = fake.commit(
        REPO,
        {"app/values.yaml": "replicas: 3\nimage: [a, b\n", "app/ci.yml": "on: push\n", "app/cm.yaml": configmap("x")},
    )
    rendered = renderer_for(fake).render(RenderSpec(REPO, "app"), sha)
    assert named(rendered.objects) == ["ConfigMap/x"]
    assert [entry.split(":")[0] for entry in rendered.skipped] == ["app/ci.yml", "app/values.yaml"]


def test_an_empty_directory_renders_no_objects(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/README.md": "nothing to deploy"})
    rendered = renderer_for(fake).render(RenderSpec(REPO, "app"), sha)
    assert rendered.objects == []


def test_a_missing_app_path_is_an_error(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/a.yaml": configmap("a")})
    with pytest.raises(RenderError, match=f"app path apps/web at {sha[:12]}: no such directory"):
        renderer_for(fake).render(RenderSpec(REPO, "apps/web"), sha)


def test_jsonnet_is_refused_by_name(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/main.jsonnet": "{}"})
    with pytest.raises(RenderError, match=r"app/main\.jsonnet: jsonnet is not supported"):
        renderer_for(fake).render(RenderSpec(REPO, "app"), sha)


def test_a_symlink_out_of_the_repository_is_refused(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/a.yaml": configmap("a")})
    tree = fake.checkout(REPO, sha)
    (tree / "app" / "leak.yaml").symlink_to("/etc/hostname")
    with pytest.raises(RenderError, match=r"app/leak\.yaml: symlink points outside the repository"):
        renderer_for(fake).render(RenderSpec(REPO, "app"), sha)


def test_app_paths_cannot_leave_the_repository() -> None:
    with pytest.raises(ValueError, match="leaves the repository"):
        RenderSpec(REPO, "../secrets")
    assert RenderSpec(REPO, "/apps//web/").path == "apps/web"
    assert RenderSpec(REPO, "").path == "."


# --- kustomize -------------------------------------------------------------------------


@needs_kustomize
def test_kustomize_overlay_with_overrides_from_a_real_repository(tmp_path: Path) -> None:
    work = tmp_path / "remote"
    work.mkdir()
    for name, content in KUSTOMIZE_REPO.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "--quiet", "--initial-branch=main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "apps"], check=True)
    source = GitSource(tmp_path / "cache")
    sha = source.resolve(str(work), "main")
    renderer = Renderer(source, kustomize=kustomize.render, work_dir=tmp_path / "cache")
    spec = RenderSpec(
        str(work),
        "overlays/prod",
        images=("nginx=registry.example/nginx:2.0",),
        name_prefix="prod-",
        common_annotations={"team": "web"},
    )

    rendered = renderer.render(spec, sha)

    by_kind = {obj["kind"]: obj for obj in rendered.objects}
    assert rendered.source_type is SourceType.KUSTOMIZE
    assert sorted(by_kind) == ["ConfigMap", "Deployment", "Namespace"]
    deployment = by_kind["Deployment"]
    assert deployment["metadata"]["name"] == "prod-web"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/nginx:2.0"
    assert deployment["metadata"]["labels"] == {"env": "prod"}
    assert deployment["metadata"]["annotations"] == {"debug": "on", "team": "web"}
    assert by_kind["ConfigMap"]["metadata"]["name"].startswith("prod-settings-")
    assert rendered.deps == frozenset({"overlays/prod", "base", "components/debug", "shared"})
    cached = source.checkout(str(work), sha) / "overlays/prod/kustomization.yaml"
    assert cached.read_text() == KUSTOMIZE_REPO["overlays/prod/kustomization.yaml"]  # edits went to a copy
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.startswith("funade-render-")] == []


@needs_kustomize
def test_kustomize_without_overrides_builds_the_cached_tree(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, dict(KUSTOMIZE_REPO))
    rendered = renderer_for(fake).render(RenderSpec(REPO, "base"), sha)
    assert named(rendered.objects) == ["Deployment/web"]
    assert rendered.deps == frozenset({"base"})


@needs_kustomize
def test_kustomize_failure_names_the_app_and_hides_temporary_paths(fake: FakeGitSource, tmp_path: Path) -> None:
    sha = fake.commit(REPO, {"app/kustomization.yaml": kustomization(resources=["missing.yaml"])})
    renderer = renderer_for(fake, work_dir=tmp_path)
    with pytest.raises(RenderError) as caught:
        renderer.render(RenderSpec(REPO, "app", name_prefix="x-"), sha)
    message = str(caught.value)
    assert message.startswith(f"app path app at {sha[:12]}: kustomize build failed: ")
    assert "missing.yaml" in message
    assert str(tmp_path) not in message


def test_kustomization_without_kustomize_configured_is_an_error(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/kustomization.yaml": kustomization(resources=[])})
    with pytest.raises(RenderError, match="no kustomize is configured"):
        Renderer(fake).render(RenderSpec(REPO, "app"), sha)


def test_a_label_already_set_needs_force(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/kustomization.yaml": kustomization(commonLabels={"env": "dev"})})
    spec = RenderSpec(REPO, "app", common_labels={"env": "prod"})
    with pytest.raises(RenderError, match="label env already in kustomization file"):
        renderer_for(fake).render(spec, sha)


# --- kustomize edit semantics (pure) -----------------------------------------------------


@pytest.mark.parametrize(
    ("existing", "args", "expected"),
    [
        ([], ["nginx:1.27"], [{"name": "nginx", "newTag": "1.27"}]),
        ([], ["nginx=reg/nginx:2"], [{"name": "nginx", "newName": "reg/nginx", "newTag": "2"}]),
        ([], ["nginx=reg/nginx"], [{"name": "nginx", "newName": "reg/nginx"}]),
        ([], ["nginx@sha256:abc"], [{"name": "nginx", "digest": "sha256:abc"}]),
        ([], ["nginx=reg/nginx@sha256:abc"], [{"name": "nginx", "newName": "reg/nginx", "digest": "sha256:abc"}]),
        ([], ["localhost:5000/app=reg/app:1"], [{"name": "localhost:5000/app", "newName": "reg/app", "newTag": "1"}]),
        ([], ["app=localhost:5000/app"], [{"name": "app", "newName": "localhost:5000/app"}]),
        # an override replaces the whole entry of that name…
        ([{"name": "nginx", "newName": "reg/nginx", "newTag": "1"}], ["nginx:2"], [{"name": "nginx", "newTag": "2"}]),
        # …unless "*" keeps a part of it
        (
            [{"name": "nginx", "newName": "reg/nginx", "newTag": "1"}],
            ["nginx=*:2"],
            [{"name": "nginx", "newName": "reg/nginx", "newTag": "2"}],
        ),
        # entries not named stay, and the list is sorted by name
        (
            [{"name": "zeta", "newTag": "9"}],
            ["alpha:1"],
            [{"name": "alpha", "newTag": "1"}, {"name": "zeta", "newTag": "9"}],
        ),
    ],
)
def test_set_image_matches_kustomize_edit(
    existing: list[dict[str, str]], args: list[str], expected: list[dict[str, str]]
) -> None:
    data = render.edit_kustomization({"images": existing}, RenderSpec(REPO, images=tuple(args)))
    assert data["images"] == expected


def test_an_image_override_kustomize_rejects_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid image override 'nginx'"):
        render.edit_kustomization({}, RenderSpec(REPO, images=("nginx",)))


def test_prefix_suffix_labels_and_annotations_are_written_like_kustomize_edit() -> None:
    original = {"resources": ["a.yaml"], "namePrefix": "old-", "commonLabels": {"env": "dev", "team": "a"}}
    spec = RenderSpec(
        REPO,
        name_prefix="new-",
        name_suffix="-v2",
        common_labels={"env": "prod"},
        force_common_labels=True,
        common_annotations={"owner": "ops"},
    )
    edited = render.edit_kustomization(original, spec)
    assert edited == {
        "resources": ["a.yaml"],
        "namePrefix": "new-",
        "nameSuffix": "-v2",
        "commonLabels": {"env": "prod", "team": "a"},
        "commonAnnotations": {"owner": "ops"},
    }
    assert original["commonLabels"] == {"env": "dev", "team": "a"}  # not modified


# --- dependencies ------------------------------------------------------------------------


def test_remote_bases_and_helm_charts_always_re_render(fake: FakeGitSource) -> None:
    sha = fake.commit(
        REPO,
        {
            "app/kustomization.yaml": kustomization(
                resources=["github.com/org/repo//deploy?ref=v1", "local.yaml", "../lib"]
            ),
            "app/local.yaml": configmap("a"),
            "lib/kustomization.yaml": kustomization(resources=["https://example.com/x.yaml"]),
            "chart/kustomization.yaml": kustomization(helmCharts=[{"name": "x", "repo": "https://charts"}]),
        },
    )
    tree = fake.checkout(REPO, sha)
    assert render.kustomize_dependencies(tree, "app") == frozenset({"app", "lib", REMOTE})
    assert render.kustomize_dependencies(tree, "chart") == frozenset({"chart", REMOTE})


def test_a_missing_referenced_path_is_still_a_dependency(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/kustomization.yaml": kustomization(resources=["../common/later.yaml"])})
    assert render.kustomize_dependencies(fake.checkout(REPO, sha), "app") == frozenset({"app", "common/later.yaml"})


@pytest.mark.parametrize(
    ("deps", "changed", "expected"),
    [
        ({"overlays/prod", "base"}, {"base/deploy.yaml"}, True),
        ({"overlays/prod", "base"}, {"overlays/prod/kustomization.yaml"}, True),
        ({"overlays/prod", "base"}, {"overlays/staging/kustomization.yaml"}, False),
        ({"overlays/prod", "base"}, {"base2/x.yaml", "overlays/production/x.yaml"}, False),
        ({"shared/ns.yaml"}, {"shared/ns.yaml"}, True),
        ({"shared/ns.yaml"}, {"shared/other.yaml"}, False),
        ({"app/*"}, {"app/new.yaml"}, True),
        ({"app/*"}, {"app/sub/x.yaml"}, False),
        ({"*"}, {"top.yaml"}, True),
        ({"*"}, {"dir/x.yaml"}, False),
        ({"."}, {"anything/at/all"}, True),
        ({REMOTE, "app"}, set(), True),
        ({"app"}, set(), False),
    ],
)
def test_affected(deps: set[str], changed: set[str], expected: bool) -> None:
    assert affected(deps, changed) is expected


# --- the cache ---------------------------------------------------------------------------


def test_a_cache_hit_does_not_render_again(fake: FakeGitSource) -> None:
    sha = fake.commit(REPO, {"app/a.yaml": configmap("a")})
    renderer = renderer_for(fake)
    spec = RenderSpec(REPO, "app")

    first = renderer.render(spec, sha)
    first.objects[0]["metadata"]["name"] = "mutated by the caller"
    second = renderer.render(RenderSpec(REPO, "app/"), sha)  # the same spec, spelled differently

    assert renderer.renders == 1
    assert renderer.hits == 1
    assert named(second.objects) == ["ConfigMap/a"]
    renderer.render(RenderSpec(REPO, "app", directory_recurse=True), sha)
    assert renderer.renders == 2
    renderer.render(spec, sha, refresh=True)
    assert renderer.renders == 3


def test_the_cache_keeps_the_most_recently_used(fake: FakeGitSource) -> None:
    first = fake.commit(REPO, {"app/a.yaml": configmap("a")})
    second = fake.commit(REPO, {"app/a.yaml": configmap("b")})
    renderer = renderer_for(fake, cache_size=1)
    spec = RenderSpec(REPO, "app")
    renderer.render(spec, first)
    renderer.render(spec, second)
    renderer.render(spec, second)
    renderer.render(spec, first)
    assert (renderer.renders, renderer.hits) == (3, 1)


def test_labels_given_in_any_order_share_a_cache_entry() -> None:
    one = RenderSpec(REPO, common_labels={"a": "1", "b": "2"})
    two = RenderSpec(REPO, common_labels={"b": "2", "a": "1"})
    assert one == two
    assert hash(one) == hash(two)
    assert one != RenderSpec(REPO, common_labels={"a": "1", "b": "3"})
    assert one != RenderSpec(REPO, common_annotations={"a": "1", "b": "2"})


def test_a_branch_name_is_not_a_cache_key(fake: FakeGitSource) -> None:
    with pytest.raises(ValueError, match="full SHA"):
        renderer_for(fake).render(RenderSpec(REPO), "main")


# --- Application sources -----------------------------------------------------------------


def test_spec_from_an_argo_cd_source() -> None:
    spec = RenderSpec.from_source(
        {
            "repoURL": REPO,
            "targetRevision": "HEAD",
            "path": "overlays/prod",
            "kustomize": {
                "images": ["nginx:1.27"],
                "namePrefix": "p-",
                "commonLabels": {"team": "web"},
                "forceCommonLabels": True,
            },
        }
    )
    assert spec == RenderSpec(
        REPO,
        "overlays/prod",
        images=("nginx:1.27",),
        name_prefix="p-",
        common_labels={"team": "web"},
        force_common_labels=True,
    )
    assert RenderSpec.from_source({"repoURL": REPO, "directory": {"recurse": True, "jsonnet": {}}}).directory_recurse


def test_unsupported_source_features_are_named() -> None:
    with pytest.raises(RenderError) as caught:
        RenderSpec.from_source(
            {"repoURL": REPO, "helm": {"valueFiles": ["v.yaml"]}, "kustomize": {"patches": [{"path": "p.yaml"}]}}
        )
    assert str(caught.value).startswith("spec.source.helm, spec.source.kustomize.patches: not supported")
