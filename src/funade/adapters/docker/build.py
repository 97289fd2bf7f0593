"""Image builds on the Docker Engine: ``POST /build`` and ``GET /images/{name}/history``.

Building is its own seam, apart from the runtime slice of the API that `DockerClient`
and `FakeDocker` share: :class:`DockerBuilder` speaks to the Engine through a
`DockerClient`'s connection, and :class:`FakeBuilder` replays scripted Engine messages for
unit tests. Both satisfy :class:`funade.engine.build.Builder`. The Engine's own (classic)
builder is used, so no buildx or BuildKit plugin is needed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence

from funade.core import imagebuild

from ._errors import DockerError, DockerUnavailable
from ._wire import get_int, get_str, get_strs
from .engine import DockerClient, _image_path, _json_lines, _params

__all__ = ["DockerBuilder", "FakeBuilder"]


class DockerBuilder:
    """Builds images with the Engine behind ``client`` (which stays the caller's to close)."""

    def __init__(self, client: DockerClient) -> None:
        self._client = client

    async def build(
        self,
        context: bytes,
        *,
        dockerfile: str = "Dockerfile",
        tags: Sequence[str] = (),
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        platform: str | None = None,
        no_cache: bool = False,
        pull: bool = False,
    ) -> AsyncGenerator[imagebuild.BuildEvent, None]:
        """Build an image with ``POST /build``, yielding its progress.

        Args:
            context: a tar (optionally gzipped) of the build context.
            dockerfile: the Dockerfile's path inside the context.
            tags: full references (``repo:tag``) to give the image.
            target: the stage to build, in a multi-stage Dockerfile.
            build_args: values of ``ARG``s.
            labels: labels set on the image.
            platform: ``os/arch[/variant]`` to build for.
            no_cache: do not reuse cached steps.
            pull: pull newer versions of base images first.

        Yields:
            Steps, output lines and the image ID (`funade.core.imagebuild` events).

        Raises:
            funade.core.imagebuild.BuildError: the Engine refused the build or a step failed;
                it names the step that was running.
            DockerUnavailable: the Engine does not answer.
        """
        params = _params(
            dockerfile=dockerfile,
            target=target,
            platform=platform,
            nocache=no_cache,
            pull=pull,
            rm=True,
            forcerm=True,
            buildargs=json.dumps(dict(build_args)) if build_args else None,
            labels=json.dumps(dict(labels)) if labels else None,
        )
        params += [("t", tag) for tag in tags]
        stream = imagebuild.BuildStream()
        try:
            async with self._client._stream(
                "POST",
                "/build",
                params=params,
                content=context,
                headers={"Content-Type": "application/x-tar"},
                timeout=self._client._stream_timeout,
            ) as response:
                async for message in _json_lines(response):
                    for event in stream.feed(message):
                        yield event
                for event in stream.flush():
                    yield event
        except DockerUnavailable:
            raise
        except DockerError as exc:
            raise imagebuild.BuildError(exc.message, stream.step) from exc
        if stream.image_id is None:
            raise imagebuild.BuildError("the Engine reported no image ID", stream.step)

    async def image_history(self, ref: str) -> list[imagebuild.Layer]:
        """The layers of an image, newest first (``GET /images/{name}/history``)."""
        items = await self._client._json_list(f"/images/{_image_path(ref)}/history")
        return [
            imagebuild.Layer(
                id=get_str(item, "Id"),
                created_by=get_str(item, "CreatedBy"),
                size=get_int(item, "Size"),
                tags=tuple(tag for tag in get_strs(item, "Tags") if tag != "<none>:<none>"),
            )
            for item in items
        ]


class FakeBuilder:
    """Replays the Engine's build messages; records each build's parameters in ``calls``."""

    def __init__(self, messages: Sequence[Mapping[str, object]], history: Sequence[imagebuild.Layer] = ()) -> None:
        self.messages = list(messages)
        self.history = list(history)
        self.calls: list[dict[str, object]] = []

    async def build(
        self,
        context: bytes,
        *,
        dockerfile: str = "Dockerfile",
        tags: Sequence[str] = (),
        target: str | None = None,
        build_args: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        platform: str | None = None,
        no_cache: bool = False,
        pull: bool = False,
    ) -> AsyncGenerator[imagebuild.BuildEvent, None]:
        """Interpret the scripted messages as `DockerBuilder.build` interprets the Engine's."""
        self.calls.append(
            {
                "dockerfile": dockerfile,
                "tags": list(tags),
                "target": target,
                "build_args": dict(build_args or {}),
                "labels": dict(labels or {}),
                "platform": platform,
                "no_cache": no_cache,
                "pull": pull,
            }
        )
        stream = imagebuild.BuildStream()
        for message in self.messages:
            for event in stream.feed(message):
                yield event
        for event in stream.flush():
            yield event
        if stream.image_id is None:
            raise imagebuild.BuildError("the Engine reported no image ID", stream.step)

    async def image_history(self, ref: str) -> list[imagebuild.Layer]:
        """The scripted history."""
        return list(self.history)
