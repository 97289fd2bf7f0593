"""What a Docker build says and leaves behind, as values: progress events and the size report.

The Engine's ``POST /build`` answers with a stream of JSON messages (``stream`` text with
``Step 2/5 : COPY …`` lines, ``aux`` carrying the image ID, ``error``/``errorDetail`` when a
step fails). :class:`BuildStream` turns those messages into typed events and remembers the
current step, so a failure can name it. :func:`size_report` turns ``GET /images/{id}/history``
entries into the per-layer report ``funade image build`` prints. Both are pure.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "BuildError",
    "BuildEvent",
    "BuildImageId",
    "BuildOutput",
    "BuildStep",
    "BuildStream",
    "Layer",
    "SizeReport",
    "human_size",
    "instruction",
    "size_report",
]

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_NOP = re.compile(r"^/bin/sh -c #\(nop\)\s*")
_SHELL = re.compile(r"^/bin/sh -c ")


@dataclass(frozen=True, slots=True)
class BuildStep:
    """The builder started step ``number`` of ``total``: ``instruction`` (as written)."""

    number: int
    total: int
    instruction: str

    def __str__(self) -> str:
        return f"step {self.number}/{self.total}: {self.instruction}"


@dataclass(frozen=True, slots=True)
class BuildOutput:
    """One line of output: the builder's own (``---> Using cache``) or a ``RUN`` command's."""

    text: str


@dataclass(frozen=True, slots=True)
class BuildImageId:
    """The ID of the image the build produced (the stream's ``aux`` message)."""

    image_id: str


BuildEvent = BuildStep | BuildOutput | BuildImageId


class BuildError(Exception):
    """A build failed; ``step`` is the step that was running (None before the first)."""

    def __init__(self, message: str, step: BuildStep | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.step = step

    def __str__(self) -> str:
        if self.step is None:
            return self.message
        return f"{self.step} failed: {self.message}"


class BuildStream:
    """Interpret the Engine's build messages one at a time, keeping the current step."""

    def __init__(self) -> None:
        self._partial = ""
        self.step: BuildStep | None = None
        self.image_id: str | None = None

    def feed(self, message: Mapping[str, object]) -> list[BuildEvent]:
        """The events in one message.

        Raises:
            BuildError: the message reports a failure (``error`` or ``errorDetail``).
        """
        detail = message.get("errorDetail")
        error = message.get("error")
        if isinstance(detail, Mapping) and isinstance(detail.get("message"), str) and detail.get("message"):
            raise BuildError(str(detail["message"]).strip(), self.step)
        if isinstance(error, str) and error:
            raise BuildError(error.strip(), self.step)
        events: list[BuildEvent] = []
        text = message.get("stream")
        if isinstance(text, str):
            events += self._lines(text)
        status = message.get("status")
        if isinstance(status, str) and status:
            progress = message.get("progress")
            layer = message.get("id")
            parts = [f"{layer}:" if isinstance(layer, str) and layer else "", status]
            parts.append(progress if isinstance(progress, str) else "")
            events.append(BuildOutput(" ".join(part for part in parts if part)))
        aux = message.get("aux")
        if isinstance(aux, Mapping) and isinstance(aux.get("ID"), str):
            self.image_id = str(aux["ID"])
            events.append(BuildImageId(self.image_id))
        return events

    def flush(self) -> list[BuildEvent]:
        """The events of an unterminated last line, once the stream has ended."""
        rest, self._partial = self._partial, ""
        return self._lines(rest + "\n") if rest.strip() else []

    def _lines(self, text: str) -> list[BuildEvent]:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        events: list[BuildEvent] = []
        for raw in lines:
            line = raw.rstrip("\r")
            if not line.strip():
                continue
            match = _STEP.match(line)
            if match is not None:
                self.step = BuildStep(int(match[1]), int(match[2]), match[3])
                events.append(self.step)
            else:
                events.append(BuildOutput(line))
        return events


@dataclass(frozen=True, slots=True)
class Layer:
    """One entry of an image's history (``GET /images/{id}/history``).

    Attributes:
        id: the image ID of this step, or ``<missing>`` for layers built elsewhere.
        created_by: the command that made it, as the Engine records it.
        size: bytes the step added.
        tags: the names of the image this step produced, if it has any.
    """

    id: str
    created_by: str
    size: int
    tags: tuple[str, ...] = ()


def instruction(created_by: str) -> str:
    """The Dockerfile instruction behind a history entry (``/bin/sh -c #(nop) COPY …`` → ``COPY …``)."""
    text = created_by.strip()
    if _NOP.match(text):
        return _NOP.sub("", text)
    if _SHELL.match(text):
        return "RUN " + _SHELL.sub("", text)
    return text


@dataclass(frozen=True, slots=True)
class SizeReport:
    """The image's layers (oldest first), their total size and the base image."""

    layers: tuple[Layer, ...]
    total: int
    base: str


def size_report(history: Sequence[Layer]) -> SizeReport:
    """The report of an image whose history is ``history`` (newest first, as the Engine lists it).

    The base image is the newest earlier entry that carries tags (the image ``FROM``
    named); when no entry but the image itself has tags, the base is ``scratch``.
    """
    base = next((entry.tags[0] for entry in history[1:] if entry.tags), "scratch")
    layers = tuple(reversed(history))
    return SizeReport(layers=layers, total=sum(layer.size for layer in layers), base=base)


def human_size(size: int) -> str:
    """Sizes as ``docker images`` prints them (decimal units): ``0B``, ``812kB``, ``1.2MB``."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f}{unit}" if unit == "B" or value >= 100 else f"{value:.3g}{unit}"
        value /= 1000
    return f"{size}B"
