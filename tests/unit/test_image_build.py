"""Unit tests of the build pieces: the Engine's progress stream, the size report, the context tar,
the build plan (tags, labels, refusals) and the build run against a fake builder."""

from __future__ import annotations

import asyncio
import io
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from funade.adapters import buildcontext
from funade.adapters.docker import FakeBuilder
from funade.cli import image
from funade.core import imagebuild
from funade.core.imagebuild import BuildImageId, BuildOutput, BuildStep, Layer
from funade.core.tagging import GitState
from funade.engine import build as build_engine

pytestmark = pytest.mark.unit

SHA = "0123456789abcdef0123456789abcdef01234567"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


# -- the progress stream ----------------------------------------------------------------------------


def test_stream_turns_messages_into_steps_lines_and_the_image_id() -> None:
    stream = imagebuild.BuildStream()
    events = [
        *stream.feed({"stream": "Step 1/2 : FROM scratch\n"}),
        *stream.feed({"stream": " ---> \n"}),
        *stream.feed({"stream": "Step 2/2 : COPY a /a"}),  # a line split across messages
        *stream.feed({"stream": "\n ---> 1234\n"}),
        *stream.feed({"aux": {"ID": "sha256:abc"}}),
        *stream.feed({"status": "Downloading", "id": "layer1", "progress": "[==>  ]"}),
        *stream.feed({"stream": "Successfully built abc"}),
        *stream.flush(),
    ]
    assert events == [
        BuildStep(1, 2, "FROM scratch"),
        BuildOutput(" ---> "),
        BuildStep(2, 2, "COPY a /a"),
        BuildOutput(" ---> 1234"),
        BuildImageId("sha256:abc"),
        BuildOutput("layer1: Downloading [==>  ]"),
        BuildOutput("Successfully built abc"),
    ]
    assert stream.image_id == "sha256:abc"


def test_stream_error_names_the_failing_step() -> None:
    stream = imagebuild.BuildStream()
    stream.feed({"stream": "Step 3/4 : RUN false\n"})
    with pytest.raises(imagebuild.BuildError) as caught:
        stream.feed(
            {
                "errorDetail": {"code": 1, "message": "The command '/bin/sh -c false' returned a non-zero code: 1"},
                "error": "The command '/bin/sh -c false' returned a non-zero code: 1",
            }
        )
    assert caught.value.step == BuildStep(3, 4, "RUN false")
    assert str(caught.value) == (
        "step 3/4: RUN false failed: The command '/bin/sh -c false' returned a non-zero code: 1"
    )


def test_stream_error_before_any_step() -> None:
    with pytest.raises(imagebuild.BuildError, match=r"^dockerfile parse error$"):
        imagebuild.BuildStream().feed({"error": "dockerfile parse error"})


# -- the size report --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("created_by", "expected"),
    [
        ("/bin/sh -c #(nop) COPY file:abc in /bin/busybox ", "COPY file:abc in /bin/busybox"),
        ('/bin/sh -c #(nop)  CMD ["sh"]', 'CMD ["sh"]'),
        ("/bin/sh -c apk add curl", "RUN apk add curl"),
        ("/bin/busybox true", "/bin/busybox true"),
    ],
)
def test_instruction(created_by: str, expected: str) -> None:
    assert imagebuild.instruction(created_by) == expected


def test_size_report_is_oldest_first_with_base_from_tags() -> None:
    history = [
        Layer("sha256:c", "/bin/sh -c #(nop) CMD x", 0, ("app:1",)),
        Layer("sha256:b", "/bin/sh -c #(nop) COPY file:x in /x", 100, ()),
        Layer("sha256:a", "/bin/sh -c #(nop) ADD file:y in /", 900, ("alpine:3.19",)),
        Layer("<missing>", "/bin/sh -c #(nop) ADD file:z in /", 0, ()),
    ]
    report = imagebuild.size_report(history)
    assert [layer.id for layer in report.layers] == ["<missing>", "sha256:a", "sha256:b", "sha256:c"]
    assert report.total == 1000
    assert report.base == "alpine:3.19"
    assert imagebuild.size_report(history[:2]).base == "scratch"


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0B"), (999, "999B"), (1000, "1kB"), (1982256, "1.98MB"), (812_000, "812kB")]
)
def test_human_size(size: int, text: str) -> None:
    assert imagebuild.human_size(size) == text


# -- the context --------------------------------------------------------------------------------------


def make_tree(root: Path, files: Sequence[str]) -> None:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)


def test_context_honours_dockerignore(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        [
            "Dockerfile",
            "app.py",
            ".env",
            ".git/HEAD",
            "node_modules/x/index.js",
            "docs/a.md",
            "docs/keep.md",
            "src/pkg/mod.py",
            "src/pkg/mod.pyc",
            "build/out/x.o",
        ],
    )
    (tmp_path / ".dockerignore").write_text(
        "# comment\n.git\n.env*\nnode_modules\ndocs\n!docs/keep.md\n**/*.pyc\n/build\nDockerfile\n"
    )
    assert buildcontext.included(tmp_path) == [
        ".dockerignore",
        "Dockerfile",  # always sent, like the docker CLI does
        "app.py",
        "docs/keep.md",
        "src",
        "src/pkg",
        "src/pkg/mod.py",
    ]


def test_context_without_dockerignore_sends_everything(tmp_path: Path) -> None:
    make_tree(tmp_path, ["Dockerfile", "a/b"])
    assert buildcontext.included(tmp_path) == ["Dockerfile", "a", "a/b"]


def test_pack_tars_the_context_and_keeps_symlinks(tmp_path: Path) -> None:
    make_tree(tmp_path, ["Dockerfile", "bin/tool", "secret"])
    (tmp_path / "link").symlink_to("bin/tool")
    (tmp_path / ".dockerignore").write_text("secret\n")
    packed = buildcontext.pack(tmp_path, tmp_path / "Dockerfile")
    assert packed.dockerfile == "Dockerfile"
    with tarfile.open(fileobj=io.BytesIO(packed.tar)) as tar:
        members = {member.name: member for member in tar.getmembers()}
        assert sorted(members) == [".dockerignore", "Dockerfile", "bin", "bin/tool", "link"]
        assert members["link"].issym() and members["link"].linkname == "bin/tool"
        assert members["bin/tool"].uid == 0
        extracted = tar.extractfile("bin/tool")
        assert extracted is not None and extracted.read() == b"bin/tool"


def test_pack_adds_a_dockerfile_from_outside_the_context(tmp_path: Path) -> None:
    context = tmp_path / "ctx"
    make_tree(context, ["a"])
    outside = tmp_path / "build.Dockerfile"
    outside.write_text("FROM scratch\n")
    packed = buildcontext.pack(context, outside)
    assert packed.dockerfile == buildcontext.OUTSIDE_DOCKERFILE
    with tarfile.open(fileobj=io.BytesIO(packed.tar)) as tar:
        member = tar.extractfile(buildcontext.OUTSIDE_DOCKERFILE)
        assert member is not None and member.read() == b"FROM scratch\n"


# -- the plan -------------------------------------------------------------------------------------------


def git(branch: str | None = "main", dirty: tuple[str, ...] = (), tags: tuple[str, ...] = ()) -> GitState:
    return GitState(sha=SHA, branch=branch, tags_at_head=tags, remote_url="https://x@h/r.git", dirty_paths=dirty)


def test_plan_tags_and_labels() -> None:
    request = build_engine.BuildRequest(repository="app", extra_tags=("dev", "localhost:5000/app:ci"))
    plan = build_engine.plan(request, git(tags=("v1.0.0",)), NOW)
    assert plan.refs == ("app:1.0.0", "app:sha-0123456", "app:latest", "app:dev", "localhost:5000/app:ci")
    assert plan.labels["org.opencontainers.image.version"] == "1.0.0"
    assert plan.labels["org.opencontainers.image.source"] == "https://h/r.git"
    assert plan.labels["org.opencontainers.image.created"] == "2026-03-04T05:06:07Z"


def test_plan_refuses_a_dirty_tree_listing_paths() -> None:
    dirty = tuple(f"f{i}" for i in range(7))
    with pytest.raises(build_engine.BuildRefused, match=r"\(f0, f1, f2, f3, f4 and 2 more\).*--allow-dirty"):
        build_engine.plan(build_engine.BuildRequest(repository="app"), git(dirty=dirty), NOW)
    allowed = build_engine.plan(build_engine.BuildRequest(repository="app", allow_dirty=True), git(dirty=dirty), NOW)
    assert allowed.tags == ("sha-0123456", "latest")


def test_plan_outside_git_needs_allow_dirty() -> None:
    with pytest.raises(build_engine.BuildRefused, match="not in a git repository"):
        build_engine.plan(build_engine.BuildRequest(repository="app"), None, NOW)
    plan = build_engine.plan(
        build_engine.BuildRequest(repository="app", allow_dirty=True, extra_tags=("x",)), None, NOW
    )
    assert plan.refs == ("app:sha-unknown", "app:x")
    assert "org.opencontainers.image.revision" not in plan.labels


@pytest.mark.parametrize(("repository", "tag"), [("App", "x"), ("app", "-bad")])
def test_plan_refuses_bad_names(repository: str, tag: str) -> None:
    with pytest.raises(build_engine.BuildRefused, match="invalid"):
        build_engine.plan(build_engine.BuildRequest(repository=repository, extra_tags=(tag,)), git(), NOW)


# -- the run, against a fake builder ------------------------------------------------------------------


def test_run_forwards_events_and_reports_layers() -> None:
    builder = FakeBuilder(
        [{"stream": "Step 1/1 : COPY a /a\n"}, {"aux": {"ID": "sha256:img"}}],
        [Layer("sha256:img", "/bin/sh -c #(nop) COPY file:x in /a ", 42, ("app:sha-0123456",))],
    )
    plan = build_engine.plan(
        build_engine.BuildRequest(repository="app", target="final", build_args={"N": "1"}), git(), NOW
    )
    seen: list[imagebuild.BuildEvent] = []
    result = asyncio.run(build_engine.run(plan, b"tar", "Dockerfile", builder, seen.append))
    assert result.image_id == "sha256:img"
    assert result.report.total == 42 and result.report.base == "scratch"
    assert seen == [BuildStep(1, 1, "COPY a /a"), BuildImageId("sha256:img")]
    [call] = builder.calls
    assert call["dockerfile"] == "Dockerfile"
    assert call["tags"] == ["app:sha-0123456", "app:latest"]
    assert call["target"] == "final"
    assert call["build_args"] == {"N": "1"}
    assert call["labels"] == plan.labels
    assert (call["platform"], call["no_cache"], call["pull"]) == (None, False, False)
    document = image.build_to_json(result)
    assert document["layers"][0]["instruction"] == "COPY file:x in /a"
    assert document["total"] == 42


def test_run_explains_an_unknown_platform() -> None:
    builder = FakeBuilder([{"error": '"bogus": unknown operating system or architecture: invalid argument'}])
    plan = build_engine.plan(build_engine.BuildRequest(repository="app", platform="bogus"), git(), NOW)
    with pytest.raises(imagebuild.BuildError, match="cannot build for platform bogus"):
        asyncio.run(build_engine.run(plan, b"tar", "Dockerfile", builder))


def test_run_without_an_image_id_fails() -> None:
    plan = build_engine.plan(build_engine.BuildRequest(repository="app"), git(), NOW)
    with pytest.raises(imagebuild.BuildError, match="no image ID"):
        asyncio.run(
            build_engine.run(plan, b"tar", "Dockerfile", FakeBuilder([{"stream": "Step 1/1 : FROM scratch\n"}]))
        )


def test_run_explains_a_platform_the_engine_cannot_build() -> None:
    builder = FakeBuilder(
        [
            {"stream": "Step 2/2 : RUN true\n"},
            {"error": "standard_init_linux.go:228: exec user process caused: exec format error"},
        ],
        [],
    )
    request = build_engine.BuildRequest(repository="app", platform="linux/s390x")
    plan = build_engine.plan(request, git(), NOW)
    with pytest.raises(
        imagebuild.BuildError, match=r"step 2/2: RUN true failed: .*cannot build for platform linux/s390x"
    ):
        asyncio.run(build_engine.run(plan, b"tar", "Dockerfile", builder))


# -- renderers ------------------------------------------------------------------------------------------


def render(renderable: object) -> str:
    console = Console(width=100, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def test_progress_view_shows_the_step_and_the_last_lines() -> None:
    text = render(image.build_progress(BuildStep(2, 3, "RUN make"), [f"line {i}" for i in range(10)], ["app:sha-1"]))
    lines = text.splitlines()
    assert lines[0] == "building app:sha-1"
    assert lines[1] == "  step 2/3: RUN make"
    assert [line.strip() for line in lines[2:]] == [f"line {i}" for i in range(4, 10)]


def test_size_table() -> None:
    report = imagebuild.size_report(
        [Layer("sha256:" + "b" * 64, "/bin/sh -c #(nop) COPY file:x in /bin/busybox ", 1_982_256, ("app:1",))]
    )
    assert "bbbbbbbbbbbb  1.98MB  COPY file:x in /bin/busybox" in render(image.size_table(report))
