"""A small Dockerfile parser: instructions with line numbers, stages, comments.

funade's own Dockerfile rules (:mod:`funade.core.policy.dockerfile`) need a faithful view
of the file, not a full BuildKit frontend: which instruction starts on which line, the
stages with their ``FROM … AS`` names, flags such as ``COPY --from``, exec (JSON) versus
shell form, and the comments (they carry the ``# funade ignore=`` pragmas). It follows
the Dockerfile reference: parser directives (``# escape=``) at the very top, the escape
character ending a line continues the instruction, comment and blank lines inside a
continuation are dropped, and heredocs (``RUN <<EOF``) run to their delimiter.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

__all__ = [
    "Comment",
    "Dockerfile",
    "Instruction",
    "Stage",
    "image_reference",
    "parse",
    "substitute",
]

_DIRECTIVE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*?)\s*$")
_KEYWORD = re.compile(r"^\s*([A-Za-z]+)(?:\s+|$)(.*)$", re.DOTALL)
_HEREDOC = re.compile(r"<<(-?)\s*([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"^--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?$")
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_FLAGGED = frozenset({"FROM", "COPY", "ADD", "RUN", "HEALTHCHECK"})


@dataclass(frozen=True)
class Comment:
    """A ``#`` comment line; ``text`` is what follows the ``#``, stripped."""

    line: int
    text: str


@dataclass(frozen=True)
class Instruction:
    """One instruction, its continuation lines joined.

    Attributes:
        keyword: upper-case instruction name (``RUN``, ``COPY`` …).
        arguments: the text after the keyword and its flags, continuations joined with a
            space; a heredoc body follows on its own lines.
        line: the 1-based line the instruction starts on.
        end_line: the last line it spans.
        flags: ``--name=value`` flags in order (``--from=builder`` → ``("from", "builder")``);
            a bare ``--flag`` has the value ``""``.
        exec_form: the JSON array of an exec-form instruction (``CMD ["a", "b"]``), else None.
    """

    keyword: str
    arguments: str
    line: int
    end_line: int
    flags: tuple[tuple[str, str], ...] = ()
    exec_form: tuple[str, ...] | None = None

    def flag(self, name: str) -> str | None:
        """The value of flag ``--name`` (the last one given), or None."""
        found = None
        for key, value in self.flags:
            if key == name:
                found = value
        return found

    @property
    def words(self) -> tuple[str, ...]:
        """The arguments as words: the JSON array, or the shell text split on whitespace."""
        if self.exec_form is not None:
            return self.exec_form
        return tuple(self.arguments.split())

    @property
    def command(self) -> str:
        """The command an exec- or shell-form RUN/CMD/ENTRYPOINT runs, as one string."""
        if self.exec_form is not None:
            return " ".join(self.exec_form)
        return self.arguments


@dataclass(frozen=True)
class Stage:
    """A build stage: its ``FROM`` and the instructions up to the next ``FROM``.

    ``base`` is the image reference as written (``golang:1.22-alpine``, ``${BASE}``,
    ``builder``); ``name`` the ``AS`` alias, lower-cased as BuildKit treats it.
    """

    index: int
    base: str
    name: str | None
    from_instruction: Instruction
    instructions: tuple[Instruction, ...]

    @property
    def line(self) -> int:
        return self.from_instruction.line


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile."""

    instructions: tuple[Instruction, ...]
    comments: tuple[Comment, ...]
    directives: tuple[tuple[str, str], ...] = ()
    global_args: tuple[tuple[str, str | None], ...] = field(default=())
    stages: tuple[Stage, ...] = ()
    line_count: int = 0

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def stage_named(self, name: str) -> Stage | None:
        """The stage with alias ``name`` (case-insensitive) or index ``name``."""
        lowered = name.lower()
        for stage in self.stages:
            if stage.name == lowered or str(stage.index) == lowered:
                return stage
        return None

    def lineage(self, stage: Stage) -> tuple[Stage, ...]:
        """``stage`` and the stages it is built ``FROM``, oldest first."""
        chain = [stage]
        current = stage
        while True:
            parent = self.stage_named(current.base)
            if parent is None or parent.index >= current.index or parent in chain:
                break
            chain.append(parent)
            current = parent
        return tuple(reversed(chain))


def _split_flags(keyword: str, text: str) -> tuple[tuple[tuple[str, str], ...], str]:
    if keyword not in _FLAGGED:
        return (), text
    flags: list[tuple[str, str]] = []
    rest = text.lstrip()
    while rest.startswith("--"):
        token, _, remainder = rest.partition(" ")
        match = _FLAG.match(token)
        if match is None:
            break
        flags.append((match.group(1).lower(), match.group(2) or ""))
        rest = remainder.lstrip()
    return tuple(flags), rest


def _exec_form(keyword: str, text: str) -> tuple[str, ...] | None:
    if keyword not in {"RUN", "CMD", "ENTRYPOINT", "SHELL", "COPY", "ADD", "VOLUME", "HEALTHCHECK"}:
        return None
    body = text.strip()
    if keyword == "HEALTHCHECK":
        head, _, body = body.partition(" ")
        if head.upper() != "CMD":
            return None
        body = body.strip()
    if not body.startswith("["):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return None


def parse(text: str) -> Dockerfile:
    """Parse Dockerfile ``text``; unknown instructions are kept (hadolint reports them)."""
    lines = text.splitlines()
    escape = "\\"
    directives: list[tuple[str, str]] = []
    comments: list[Comment] = []
    instructions: list[Instruction] = []

    index = 0
    # Parser directives: only at the very top, before any comment, blank line or instruction.
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if match is None or match.group(1).lower() in {key for key, _ in directives}:
            break
        directives.append((match.group(1).lower(), match.group(2)))
        if match.group(1).lower() == "escape" and match.group(2) in ("`", "\\"):
            escape = match.group(2)
        comments.append(Comment(index + 1, lines[index].strip()[1:].strip()))
        index += 1

    while index < len(lines):
        raw = lines[index]
        stripped = raw.strip()
        if not stripped:
            index += 1
            continue
        if stripped.startswith("#"):
            comments.append(Comment(index + 1, stripped[1:].strip()))
            index += 1
            continue
        start = index
        parts: list[str] = []
        current = raw.rstrip()
        while True:
            if current.endswith(escape) and index + 1 < len(lines):
                parts.append(current[: -len(escape)].strip())
                index += 1
                # Comment and blank lines inside a continuation are dropped.
                while index < len(lines) and (not lines[index].strip() or lines[index].lstrip().startswith("#")):
                    if lines[index].strip():
                        comments.append(Comment(index + 1, lines[index].strip()[1:].strip()))
                    index += 1
                if index >= len(lines):
                    index = len(lines) - 1
                    break
                current = lines[index].rstrip()
                continue
            parts.append(current.strip() if not current.endswith(escape) else current[: -len(escape)].strip())
            break
        joined = " ".join(part for part in parts if part)
        match = _KEYWORD.match(joined)
        if match is None:
            index += 1
            continue
        keyword, rest = match.group(1).upper(), match.group(2).strip()
        # Heredocs: the body runs to a line holding only the delimiter.
        if keyword in {"RUN", "COPY", "ADD"}:
            for heredoc in _HEREDOC.finditer(rest):
                strip_tabs, delimiter = heredoc.group(1) == "-", heredoc.group(3)
                body: list[str] = []
                while index + 1 < len(lines):
                    index += 1
                    candidate = lines[index].lstrip("\t") if strip_tabs else lines[index]
                    if candidate.rstrip() == delimiter:
                        break
                    body.append(candidate)
                rest = rest + "\n" + "\n".join(body)
        flags, arguments = _split_flags(keyword, rest)
        instructions.append(
            Instruction(
                keyword=keyword,
                arguments=arguments,
                line=start + 1,
                end_line=index + 1,
                flags=flags,
                exec_form=_exec_form(keyword, arguments),
            )
        )
        index += 1

    return Dockerfile(
        instructions=tuple(instructions),
        comments=tuple(comments),
        directives=tuple(directives),
        global_args=_global_args(instructions),
        stages=_stages(instructions),
        line_count=len(lines),
    )


def _global_args(instructions: list[Instruction]) -> tuple[tuple[str, str | None], ...]:
    """``ARG`` declarations before the first ``FROM`` (usable in ``FROM`` lines)."""
    found: list[tuple[str, str | None]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            for word in instruction.arguments.split():
                name, eq, default = word.partition("=")
                found.append((name, _unquote(default) if eq else None))
    return tuple(found)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _stages(instructions: list[Instruction]) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    current: Instruction | None = None
    body: list[Instruction] = []

    def close() -> None:
        if current is None:
            return
        words = current.arguments.split()
        base = words[0] if words else ""
        name = words[2].lower() if len(words) >= 3 and words[1].lower() == "as" else None
        stages.append(Stage(len(stages), base, name, current, tuple(body)))

    for instruction in instructions:
        if instruction.keyword == "FROM":
            close()
            current, body = instruction, []
        elif current is not None:
            body.append(instruction)
    close()
    return tuple(stages)


def substitute(text: str, values: dict[str, str | None]) -> str | None:
    """Expand ``$VAR``, ``${VAR}``, ``${VAR:-default}`` and ``${VAR:+alt}`` from ``values``.

    Returns None when a variable has no value, so callers can tell "unknown" from "empty".
    """
    unknown = False

    def replace(match: re.Match[str]) -> str:
        nonlocal unknown
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        value = values.get(name)
        if operator in (":-", "-"):
            return value if value else word
        if operator in (":+", "+"):
            return word if value else ""
        if value is None:
            unknown = True
            return ""
        return value

    result = _VARIABLE.sub(replace, text)
    return None if unknown else result


def image_reference(reference: str) -> tuple[str, str | None, str | None]:
    """Split an image reference into (name, tag, digest); tag/digest are None when absent.

    ``localhost:5000/app`` has a registry port, not a tag: a tag's colon comes after the
    last ``/``.
    """
    name, _, digest = reference.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :], digest or None
    return name, None, digest or None
