"""Integration tests of `funade image build`: the real CLI, real git and the real Docker Engine.

Every image is built FROM scratch with busybox copied into the context (nothing is pulled),
under a repository named ``funade-it-build-<random>`` that the fixture removes afterwards.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from funade.adapters import git

pytestmark = pytest.mark.integration

FUNADE = str(Path(sys.executable).parent / "funade")
BUSYBOX = Path("/bin/busybox")

SIMPLE = """\
FROM scratch
COPY busybox /bin/busybox
"""

TWO_STAGE = """\
FROM scratch AS base
COPY busybox /bin/busybox

FROM base AS final
ARG GREETING=hello
RUN ["/bin/busybox", "sh", "-c", "echo $GREETING > /greeting"]
"""

FAILING = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "false"]
"""


def sh(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True, timeout=120).stdout


def commit(repo: Path, message: str = "change") -> None:
    sh("git", "add", "-A", cwd=repo)
    sh("git", "commit", "-q", "-m", message, cwd=repo)


class Project:
    def __init__(self, path: Path, name: str) -> None:
        self.path = path
        self.name = name

    def write(self, dockerfile: str) -> None:
        (self.path / "Dockerfile").write_text(dockerfile)
        commit(self.path)

    def build(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [FUNADE, "image", "build", str(self.path), "--repo", self.name, *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def build_json(self, *args: str) -> dict[str, Any]:
        result = self.build("-o", "json", *args)
        assert result.returncode == 0, result.stderr
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    @property
    def sha(self) -> str:
        return git.head_sha(self.path)

    def tags(self) -> set[str]:
        out = sh("docker", "images", "--format", "{{.Tag}}", self.name)
        return set(out.split())


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    if shutil.which("docker") is None or not BUSYBOX.is_file():
        pytest.skip("needs the docker CLI and /bin/busybox (busybox-static)")
    path = tmp_path / "app"
    path.mkdir()
    sh("git", "init", "-q", "-b", "main", cwd=path)
    sh("git", "config", "user.email", "it@funade.test", cwd=path)
    sh("git", "config", "user.name", "funade it", cwd=path)
    shutil.copy(BUSYBOX, path / "busybox")
    (path / "Dockerfile").write_text(SIMPLE)
    (path / ".dockerignore").write_text(".git\n")
    commit(path, "init")
    name = f"funade-it-build-{uuid.uuid4().hex[:8]}"
    yield Project(path, name)
    ids = sh("docker", "images", "-q", name).split()
    if ids:
        subprocess.run(["docker", "rmi", "-f", *sorted(set(ids))], capture_output=True, check=False, timeout=120)


def test_build_tags_labels_and_size_report(project: Project) -> None:
    sh("git", "remote", "add", "origin", "https://ci:s3cret@git.example.com/acme/app.git", cwd=project.path)
    result = project.build()
    assert result.returncode == 0, result.stderr
    sha = project.sha
    assert project.tags() == {f"sha-{sha[:7]}", "latest"}
    labels = json.loads(sh("docker", "inspect", "--format", "{{json .Config.Labels}}", f"{project.name}:latest"))
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.source"] == "https://git.example.com/acme/app.git"
    assert labels["org.opencontainers.image.version"] == f"sha-{sha[:7]}"
    assert labels["org.opencontainers.image.created"].endswith("Z")
    out = result.stdout
    assert "base  scratch" in out
    copy_lines = [line for line in out.splitlines() if "COPY file:" in line and "in /bin/busybox" in line]
    assert len(copy_lines) == 1, out
    assert "MB" in copy_lines[0]
    assert "total " in out
    assert "step 2/" in result.stderr  # progress went to stderr

    document = project.build_json()
    layers = document["layers"]
    copy = next(layer for layer in layers if layer["instruction"].startswith("COPY"))
    size = BUSYBOX.stat().st_size
    assert abs(copy["size"] - size) < size * 0.05
    assert document["total"] == sum(layer["size"] for layer in layers)
    assert set(document["tags"]) == {f"{project.name}:sha-{sha[:7]}", f"{project.name}:latest"}


def test_target_and_build_arg(project: Project) -> None:
    project.write(TWO_STAGE)
    built = project.build("--build-arg", "GREETING=ahoy", "-t", "final")
    assert built.returncode == 0, built.stderr
    out = sh("docker", "run", "--rm", "--entrypoint", "/bin/busybox", f"{project.name}:final", "cat", "/greeting")
    assert out.strip() == "ahoy"

    base = project.build_json("--target", "base", "-t", "base")
    instructions = [layer["instruction"] for layer in base["layers"]]
    assert not any("greeting" in text for text in instructions)
    probe = subprocess.run(
        ["docker", "run", "--rm", "--entrypoint", "/bin/busybox", f"{project.name}:base", "cat", "/greeting"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode != 0


def test_dirty_tree_is_refused_unless_allowed(project: Project) -> None:
    (project.path / "notes.txt").write_text("wip")
    (project.path / "Dockerfile").write_text(SIMPLE + "# changed\n")
    refused = project.build()
    assert refused.returncode == 1
    assert "uncommitted changes" in refused.stderr
    assert "notes.txt" in refused.stderr and "Dockerfile" in refused.stderr
    assert "--allow-dirty" in refused.stderr
    assert project.tags() == set()

    allowed = project.build("--allow-dirty")
    assert allowed.returncode == 0, allowed.stderr
    assert f"sha-{project.sha[:7]}" in project.tags()


def test_ignored_files_do_not_make_the_tree_dirty(project: Project) -> None:
    (project.path / ".gitignore").write_text("*.log\n")
    commit(project.path)
    (project.path / "debug.log").write_text("x")
    assert git.dirty_paths(project.path) == ()
    assert project.build().returncode == 0


def test_failing_run_names_the_step(project: Project) -> None:
    project.write(FAILING)
    result = project.build()
    assert result.returncode == 1
    assert "build failed: step 3/" in result.stderr
    assert "RUN" in result.stderr and "non-zero code" in result.stderr


def test_latest_only_on_the_default_branch(project: Project) -> None:
    sh("git", "checkout", "-q", "-b", "feature", cwd=project.path)
    document = project.build_json()
    sha = project.sha
    assert document["tags"] == [f"{project.name}:sha-{sha[:7]}"]

    document = project.build_json("--default-branch", "feature", "--sha-format", "short")
    assert document["tags"] == [f"{project.name}:{sha[:7]}", f"{project.name}:latest"]


def test_release_tag_gives_the_version(project: Project) -> None:
    sh("git", "tag", "v1.2.3", cwd=project.path)
    sh("git", "checkout", "-q", "--detach", "v1.2.3", cwd=project.path)
    document = project.build_json()
    sha = project.sha
    assert document["tags"] == [f"{project.name}:1.2.3", f"{project.name}:sha-{sha[:7]}"]
    assert document["labels"]["org.opencontainers.image.version"] == "1.2.3"


def test_outside_git_needs_allow_dirty(project: Project, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    shutil.copy(BUSYBOX, plain / "busybox")
    (plain / "Dockerfile").write_text(SIMPLE)
    args = [FUNADE, "image", "build", str(plain), "--repo", project.name]
    refused = subprocess.run(args, check=False, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1
    assert "not in a git repository" in refused.stderr
    allowed = subprocess.run(
        [*args, "--allow-dirty", "-t", "local"], check=False, capture_output=True, text=True, timeout=300
    )
    assert allowed.returncode == 0, allowed.stderr
    assert project.tags() == {"sha-unknown", "local"}
