"""The ``image build`` use case: from a git work tree to a tagged, labelled image and its size report.

Planning is pure: :func:`plan` takes the repository's state (read by the git adapter) and
the user's options and decides the image's references and OCI labels, refusing a dirty
work tree unless allowed. :func:`run` hands the packed context to a :class:`Builder` (the
Docker Engine, or a fake), forwards its progress events and reads the image's history for
the size report.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from funade.core import imagebuild, tagging
from funade.core.tagging import GitState, ShaFormat

__all__ = [
    "BuildPlan",
    "BuildRefused",
    "BuildRequest",
    "BuildResult",
    "Builder",
    "plan",
    "run",
]

#: How many dirty paths a refusal lists.
DIRTY_SHOWN = 5


class BuildRefused(Exception):
    """The build must not start: a dirty work tree, no repository, a bad name."""


class Builder(Protocol):
    """What a build needs of an image builder (`funade.adapters.docker.DockerBuilder`)."""

    def build(
        self,
        context: bytes,
        *,
        dockerfile: str = ...,
        tags: Sequence[str] = ...,
        target: str | None = ...,
        build_args: Mapping[str, str] | None = ...,
        labels: Mapping[str, str] | None = ...,
        platform: str | None = ...,
        no_cache: bool = ...,
        pull: bool = ...,
    ) -> AsyncIterator[imagebuild.BuildEvent]: ...

    async def image_history(self, ref: str) -> list[imagebuild.Layer]: ...


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """What the user asked for.

    Attributes:
        repository: the image repository (``name`` or ``registry/path/name``).
        extra_tags: ``-t`` values: bare tags (added to ``repository``) or full references.
        allow_dirty: build a dirty work tree, or a directory outside git.
        default_branch: the branch that gets ``latest``; None means ``main`` or ``master``.
    """

    repository: str
    extra_tags: tuple[str, ...] = ()
    target: str | None = None
    build_args: Mapping[str, str] = field(default_factory=dict)
    platform: str | None = None
    no_cache: bool = False
    pull: bool = False
    allow_dirty: bool = False
    default_branch: str | None = None
    sha_format: ShaFormat = ShaFormat.PREFIXED


@dataclass(frozen=True, slots=True)
class BuildPlan:
    """What will be built: the request, the image's references, tags and labels."""

    request: BuildRequest
    refs: tuple[str, ...]
    tags: tuple[str, ...]
    labels: Mapping[str, str]
    version: str


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What was built: the image ID, its references and labels, and its size report."""

    image_id: str
    refs: tuple[str, ...]
    labels: Mapping[str, str]
    report: imagebuild.SizeReport


def _is_reference(tag: str) -> bool:
    return "/" in tag or ":" in tag


def plan(request: BuildRequest, state: GitState | None, now: datetime) -> BuildPlan:
    """Decide references and labels of the image; refuse what must not be built.

    Args:
        request: the user's options.
        state: the repository's state; None when the context is not in a git repository.
        now: the build's start, for ``org.opencontainers.image.created``.

    Raises:
        BuildRefused: a dirty work tree or no repository without ``allow_dirty``, an
            invalid repository name or tag.
    """
    if not tagging.valid_repository(request.repository):
        raise BuildRefused(
            f"invalid repository name {request.repository!r}: use lowercase letters, digits and . _ - "
            "(set it with --repo)"
        )
    if state is None and not request.allow_dirty:
        raise BuildRefused(
            "the build context is not in a git repository, so the image cannot be tagged from a commit; "
            "pass --allow-dirty to build it anyway (tagged sha-unknown)"
        )
    if state is not None and state.dirty_paths and not request.allow_dirty:
        shown = ", ".join(state.dirty_paths[:DIRTY_SHOWN])
        more = len(state.dirty_paths) - DIRTY_SHOWN
        suffix = f" and {more} more" if more > 0 else ""
        raise BuildRefused(
            f"the work tree has uncommitted changes ({shown}{suffix}); commit or stash them, or pass --allow-dirty"
        )
    bare = [tag for tag in request.extra_tags if not _is_reference(tag)]
    for tag in bare:
        if not tagging.valid_tag(tag):
            raise BuildRefused(f"invalid tag {tag!r}: use letters, digits, _ . - (at most 128, not starting with . -)")
    tags = tagging.tags(state, default_branch=request.default_branch, sha_format=request.sha_format, extra=bare)
    refs = [f"{request.repository}:{tag}" for tag in tags]
    refs += [ref for ref in request.extra_tags if _is_reference(ref) and ref not in refs]
    version = tagging.version_label(state, request.sha_format)
    return BuildPlan(
        request=request,
        refs=tuple(refs),
        tags=tuple(tags),
        labels=tagging.oci_labels(state, version, now),
        version=version,
    )


def _platform_hint(error: imagebuild.BuildError, platform: str | None) -> imagebuild.BuildError:
    text = error.message.lower()
    if platform and any(clue in text for clue in ("platform", "exec format error", "operating system or architecture")):
        return imagebuild.BuildError(
            f"{error.message} (the Engine cannot build for platform {platform}: its builder runs "
            "the host's architecture, and emulation for others is not installed)",
            error.step,
        )
    return error


async def run(
    build_plan: BuildPlan,
    context: bytes,
    dockerfile: str,
    builder: Builder,
    on_event: Callable[[imagebuild.BuildEvent], None] | None = None,
) -> BuildResult:
    """Build the planned image from the packed ``context`` and report its layers.

    Raises:
        funade.core.imagebuild.BuildError: the build failed (naming the step).
    """
    request = build_plan.request
    image_id: str | None = None
    try:
        async for event in builder.build(
            context,
            dockerfile=dockerfile,
            tags=build_plan.refs,
            target=request.target,
            build_args=request.build_args,
            labels=build_plan.labels,
            platform=request.platform,
            no_cache=request.no_cache,
            pull=request.pull,
        ):
            if isinstance(event, imagebuild.BuildImageId):
                image_id = event.image_id
            if on_event is not None:
                on_event(event)
    except imagebuild.BuildError as exc:
        raise _platform_hint(exc, request.platform) from exc
    if image_id is None:
        raise imagebuild.BuildError("the builder reported no image ID")
    history = await builder.image_history(image_id)
    return BuildResult(
        image_id=image_id,
        refs=build_plan.refs,
        labels=build_plan.labels,
        report=imagebuild.size_report(history),
    )
