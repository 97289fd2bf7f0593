"""Git repositories as GitOps sources: resolving revisions, checkouts, changed paths, redaction.

Real ``git`` in temporary directories (local paths and ``file://`` URLs); no network.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

from funade.adapters import gitsource
from funade.adapters.gitsource import GitSource, SourceError, redact
from funade.adapters.gitsource_fake import FakeGitSource
from funade.core.gitops.appset import RepoView

pytestmark = pytest.mark.unit


class Repo:
    """A work tree to commit to, standing in for the remote."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True)
        self.git("init", "--quiet", "--initial-branch=main")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    def commit(self, files: Mapping[str, str | None], message: str = "change") -> str:
        for name, content in files.items():
            target = self.path / name
            if content is None:
                self.git("rm", "--quiet", name)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            self.git("add", name)
        self.git("commit", "--quiet", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo(tmp_path / "remote")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(tmp_path: Path, clock: Clock) -> GitSource:
    return GitSource(tmp_path / "cache", fetch_interval=10.0, timeout=30.0, clock=clock)


# --- resolve -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_resolves_head_branch_tags_and_shas(repo: Repo, source: GitSource, as_url: bool) -> None:
    first = repo.commit({"app/deploy.yaml": "a: 1\n"})
    repo.git("tag", "v1")
    repo.git("tag", "-a", "v1-annotated", "-m", "release")
    repo.git("checkout", "--quiet", "-b", "dev")
    second = repo.commit({"app/deploy.yaml": "a: 2\n"})
    repo.git("checkout", "--quiet", "main")
    url = repo.path.as_uri() if as_url else str(repo.path)

    assert source.resolve(url, "HEAD") == first
    assert source.resolve(url) == first
    assert source.resolve(url, "main") == first
    assert source.resolve(url, "dev") == second
    assert source.resolve(url, "refs/heads/dev") == second
    assert source.resolve(url, "v1") == first
    assert source.resolve(url, "v1-annotated") == first  # peeled to the commit, not the tag object
    assert source.resolve(url, second) == second
    assert source.resolve(url, second[:8]) == second
    assert source.resolve(url, second[:8].upper()) == second


def test_head_follows_the_remote_default_branch(repo: Repo, source: GitSource) -> None:
    repo.commit({"a.yaml": "a: 1\n"})
    repo.git("checkout", "--quiet", "-b", "trunk")
    trunk = repo.commit({"a.yaml": "a: 2\n"})
    assert source.resolve(str(repo.path), "HEAD") == trunk  # the remote's HEAD is now trunk


def test_a_branch_wins_over_a_tag_of_the_same_name(repo: Repo, source: GitSource) -> None:
    tagged = repo.commit({"a.yaml": "a: 1\n"})
    repo.git("tag", "release")
    repo.git("checkout", "--quiet", "-b", "release")
    branch = repo.commit({"a.yaml": "a: 2\n"})
    assert branch != tagged
    assert source.resolve(str(repo.path), "release") == branch


def test_fetches_at_most_once_per_interval_unless_refreshed(repo: Repo, source: GitSource, clock: Clock) -> None:
    first = repo.commit({"a.yaml": "a: 1\n"})
    url = str(repo.path)
    assert source.resolve(url, "main") == first
    second = repo.commit({"a.yaml": "a: 2\n"})

    assert source.resolve(url, "main") == first  # fetched a moment ago: the mirror answers
    assert source.fetches == 1
    assert source.resolve(url, "main", refresh=True) == second
    assert source.fetches == 2
    third = repo.commit({"a.yaml": "a: 3\n"})
    clock.now += 10.0
    assert source.resolve(url, "main") == third
    assert source.fetches == 3


def test_a_known_full_sha_needs_no_fetch(repo: Repo, source: GitSource, clock: Clock) -> None:
    sha = repo.commit({"a.yaml": "a: 1\n"})
    url = str(repo.path)
    source.resolve(url, "main")
    clock.now += 100.0
    assert source.resolve(url, sha) == sha
    assert source.fetches == 1


def test_a_new_tag_is_found_even_right_after_a_fetch(repo: Repo, source: GitSource) -> None:
    sha = repo.commit({"a.yaml": "a: 1\n"})
    url = str(repo.path)
    source.resolve(url, "main")
    repo.git("tag", "v2")
    assert source.resolve(url, "v2") == sha  # not in the mirror yet: fetched once more


def test_a_commit_no_branch_reaches_is_fetched_by_sha(repo: Repo, source: GitSource) -> None:
    repo.commit({"a.yaml": "a: 1\n"})
    tree = repo.git("rev-parse", "HEAD^{tree}")
    orphan = repo.git("commit-tree", "-m", "pull request head", tree)
    repo.git("update-ref", "refs/pull/1/head", orphan)
    assert source.resolve(str(repo.path), orphan) == orphan


def test_deleted_tags_are_pruned(repo: Repo, source: GitSource) -> None:
    repo.commit({"a.yaml": "a: 1\n"})
    repo.git("tag", "v1")
    url = str(repo.path)
    source.resolve(url, "v1")
    repo.git("tag", "-d", "v1")
    with pytest.raises(SourceError, match="revision v1 not found"):
        source.resolve(url, "v1", refresh=True)


def test_missing_revision_names_revision_and_repository(repo: Repo, source: GitSource) -> None:
    repo.commit({"a.yaml": "a: 1\n"})
    with pytest.raises(SourceError) as caught:
        source.resolve(str(repo.path), "v9")
    assert str(caught.value) == f"revision v9 not found in {repo.path}"


@pytest.mark.parametrize("revision", ["--upload-pack=touch /tmp/x", "main..dev", "main~1", "HEAD^", "a b", "x:y"])
def test_revisions_that_are_options_or_expressions_are_refused(repo: Repo, source: GitSource, revision: str) -> None:
    repo.commit({"a.yaml": "a: 1\n"})
    with pytest.raises(SourceError, match="not a valid branch, tag or commit name"):
        source.resolve(str(repo.path), revision)


def test_an_unreachable_repository_is_named(tmp_path: Path, source: GitSource) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(SourceError) as caught:
        source.resolve(str(missing), "main")
    message = str(caught.value)
    assert message.startswith(f"repository {missing} unreachable: ")
    assert "does not appear to be a git repository" in message


def test_an_empty_repository_has_no_head(repo: Repo, source: GitSource) -> None:
    with pytest.raises(SourceError, match="has no commits on its default branch"):
        source.resolve(str(repo.path), "HEAD")


def test_credentials_never_appear_in_errors(source: GitSource) -> None:
    url = "https://user:secret@127.0.0.1:1/x.git"  # nothing listens on port 1: refused at once
    with pytest.raises(SourceError) as caught:
        source.resolve(url, "main")
    message = str(caught.value)
    assert "secret" not in message
    assert "user:" not in message
    assert message.startswith("repository https://***@127.0.0.1:1/x.git unreachable: ")


def test_concurrent_resolves_share_one_fetch(repo: Repo, source: GitSource) -> None:
    sha = repo.commit({"a.yaml": "a: 1\n"})
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(source.resolve(str(repo.path), "main"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [sha] * 8
    assert source.fetches == 1


def test_the_mirror_is_shared_across_credentials_and_kept_by_name(tmp_path: Path, source: GitSource) -> None:
    remote = gitsource._Remote.parse("https://user:secret@example.com/org/x.git")
    plain = gitsource._Remote.parse("https://example.com/org/x.git")
    assert remote.key == plain.key
    assert remote.url == "https://example.com/org/x.git"
    assert remote.auth_header == "Authorization: Basic dXNlcjpzZWNyZXQ="
    assert source._mirror(remote) == source._mirror(plain)
    assert source._mirror(remote).name.startswith("x-")


# --- redact ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:secret@host/x.git", "https://***@host/x.git"),
        ("https://ghp_token@github.com/org/x.git", "https://***@github.com/org/x.git"),
        ("http://u:p%40ss@host:8080/x", "http://***@host:8080/x"),
        ("ssh://git@host/org/x.git", "ssh://git@host/org/x.git"),
        ("ssh://git:pw@host/org/x.git", "ssh://***@host/org/x.git"),
        ("git@github.com:org/x.git", "git@github.com:org/x.git"),
        ("https://host/x.git", "https://host/x.git"),
        ("fatal: unable to access 'https://a:b@h/x/': refused", "fatal: unable to access 'https://***@h/x/': refused"),
    ],
)
def test_redact(url: str, shown: str) -> None:
    assert redact(url) == shown


# --- checkout --------------------------------------------------------------------------


def test_checkout_writes_a_read_only_tree_once(repo: Repo, source: GitSource, tmp_path: Path) -> None:
    sha = repo.commit({"app/deploy.yaml": "a: 1\n", "README.md": "hi\n"})
    url = str(repo.path)
    tree = source.checkout(url, "main")

    assert tree == tmp_path / "cache" / "trees" / sha
    assert (tree / "app" / "deploy.yaml").read_text() == "a: 1\n"
    assert not (tree / ".git").exists()
    assert (tree / "README.md").stat().st_mode & 0o222 == 0
    marker = tree / "app" / "marker"  # proves the second checkout reuses the directory
    marker.write_text("kept")
    assert source.checkout(url, sha) == tree
    assert marker.read_text() == "kept"
    assert [p.name for p in tree.parent.iterdir()] == [sha]  # no temporary left behind


def test_a_failed_checkout_leaves_no_tree(
    repo: Repo, source: GitSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = repo.commit({"a.yaml": "a: 1\n"})

    def crash(root: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(gitsource, "_make_read_only", crash)
    with pytest.raises(OSError, match="disk full"):
        source.checkout(str(repo.path), sha)
    assert list((tmp_path / "cache" / "trees").iterdir()) == []
    monkeypatch.undo()
    assert (source.checkout(str(repo.path), sha) / "a.yaml").read_text() == "a: 1\n"


def test_stale_temporary_trees_are_removed_on_start(tmp_path: Path) -> None:
    leftover = tmp_path / "cache" / "trees" / ".tmp-abc-123"
    leftover.mkdir(parents=True)
    (leftover / "half.yaml").write_text("x")
    os.utime(leftover, (0.0, 0.0))
    GitSource(tmp_path / "cache")
    assert not leftover.exists()


# --- changed paths and reading ---------------------------------------------------------


def test_changed_paths_include_both_sides_of_a_rename(repo: Repo, source: GitSource) -> None:
    old = repo.commit({"a/one.yaml": "one\n", "a/two.yaml": "two\n", "b/keep.yaml": "keep\n", "c/gone.yaml": "x\n"})
    repo.git("mv", "a/two.yaml", "b/two.yaml")
    new = repo.commit({"a/one.yaml": "ONE\n", "c/gone.yaml": None, "d/new.yaml": "new\n"})
    url = str(repo.path)

    assert source.changed_paths(url, old, new) == {
        "a/one.yaml",
        "a/two.yaml",
        "b/two.yaml",
        "c/gone.yaml",
        "d/new.yaml",
    }
    assert source.changed_paths(url, new, new) == set()
    assert source.changed_paths(url, None, new) == {"a/one.yaml", "b/keep.yaml", "b/two.yaml", "d/new.yaml"}


def test_repo_view_lists_and_reads_at_a_branch(repo: Repo, source: GitSource) -> None:
    sha = repo.commit({"apps/web/deploy.yaml": "web\n", "apps/api/config.json": "{}", "top.yaml": "t\n"})
    url = str(repo.path)
    view: RepoView = source

    assert view.commit_sha(url, "main") == sha

    assert source.list_files(url, "main") == ["apps/api/config.json", "apps/web/deploy.yaml", "top.yaml"]
    assert source.list_dirs(url, "main") == ["apps", "apps/api", "apps/web"]
    assert source.read(url, "main", "apps/web/deploy.yaml") == b"web\n"
    assert source.read(url, "main", "./apps/../top.yaml") == b"t\n"
    with pytest.raises(SourceError, match=r"file apps/nope\.yaml not found in"):
        source.read(url, "main", "apps/nope.yaml")
    with pytest.raises(SourceError, match="not inside the repository"):
        source.read(url, "main", "../etc/passwd")


# --- the fake --------------------------------------------------------------------------


def test_fake_behaves_like_the_real_source(tmp_path: Path) -> None:
    fake = FakeGitSource(tmp_path / "fake")
    view: RepoView = fake
    url = "https://user:secret@git.example/org/apps.git"
    first = fake.commit(url, {"apps/web/deploy.yaml": "a: 1\n", "README.md": "x"})
    fake.tag(url, "v1", first)
    second = fake.commit(url, {"apps/web/deploy.yaml": "a: 2\n", "README.md": None}, branch="main")

    assert fake.resolve(url) == second
    assert fake.resolve(url, "v1") == first
    assert fake.resolve(url, first[:7]) == first
    assert fake.changed_paths(url, first, second) == {"apps/web/deploy.yaml", "README.md"}
    assert view.list_dirs(url, "main") == ["apps", "apps/web"]
    assert view.commit_sha(url, "main") == second
    assert fake.read(url, "v1", "README.md") == b"x"
    tree = fake.checkout(url, "v1")
    assert (tree / "apps/web/deploy.yaml").read_text() == "a: 1\n"
    assert fake.checkout(url, first) == tree
    assert fake.checkouts == 1
    with pytest.raises(SourceError, match="revision v9 not found"):
        fake.resolve(url, "v9")
    fake.set_reachable(url, False)
    with pytest.raises(SourceError) as caught:
        fake.resolve(url)
    assert "secret" not in str(caught.value)
    assert "unreachable" in str(caught.value)
