"""Unit tests of the Dockerfile parser: lines, continuations, stages, forms, directives."""

from __future__ import annotations

import pytest

from funade.core import dockerfile

pytestmark = pytest.mark.unit


def test_instructions_keep_their_start_and_end_lines() -> None:
    text = '# top\nFROM alpine:3.20\n\nRUN apk add \\\n    curl \\\n    jq\nCMD ["sh"]\n'
    parsed = dockerfile.parse(text)
    assert [(i.keyword, i.line, i.end_line) for i in parsed.instructions] == [
        ("FROM", 2, 2),
        ("RUN", 4, 6),
        ("CMD", 7, 7),
    ]
    assert parsed.instructions[1].arguments == "apk add curl jq"
    assert parsed.comments == (dockerfile.Comment(1, "top"),)


def test_comments_and_blank_lines_inside_a_continuation_are_dropped_but_kept_as_comments() -> None:
    text = "FROM debian:12\nRUN apt-get update && \\\n# a note\n\n    apt-get install -y curl\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    run = parsed.instructions[1]
    assert run.arguments == "apt-get update && apt-get install -y curl"
    assert (run.line, run.end_line) == (2, 5)
    assert parsed.comments == (dockerfile.Comment(3, "a note"),)
    assert parsed.instructions[2].line == 6


def test_keywords_are_case_insensitive() -> None:
    parsed = dockerfile.parse("from alpine:3.20 as Base\nrun echo hi\n")
    assert [i.keyword for i in parsed.instructions] == ["FROM", "RUN"]
    assert parsed.stages[0].name == "base"


def test_exec_and_shell_form() -> None:
    parsed = dockerfile.parse('FROM a:1\nCMD ["node", "server.js"]\nENTRYPOINT /bin/app --flag\nRUN [not json\n')
    cmd, entrypoint, run = parsed.instructions[1:]
    assert cmd.exec_form == ("node", "server.js")
    assert cmd.command == "node server.js"
    assert entrypoint.exec_form is None
    assert entrypoint.words == ("/bin/app", "--flag")
    assert run.exec_form is None


def test_healthcheck_exec_form_and_flags() -> None:
    parsed = dockerfile.parse('FROM a:1\nHEALTHCHECK --interval=30s --timeout=3s CMD ["curl", "-f", "http://x"]\n')
    health = parsed.instructions[1]
    assert health.flags == (("interval", "30s"), ("timeout", "3s"))
    assert health.arguments.startswith("CMD")
    assert health.exec_form == ("curl", "-f", "http://x")


def test_copy_flags() -> None:
    parsed = dockerfile.parse("FROM a:1\nCOPY --from=builder --chown=1001:1001 /app/bin /bin/\n")
    copy = parsed.instructions[1]
    assert copy.flag("from") == "builder"
    assert copy.flag("chown") == "1001:1001"
    assert copy.flag("chmod") is None
    assert copy.arguments == "/app/bin /bin/"


def test_stages_with_aliases_platform_and_lineage() -> None:
    text = (
        "ARG BASE=python:3.12-slim\n"
        "FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n"
        "RUN go build\n"
        "FROM ${BASE} AS base\n"
        "FROM base AS final\n"
        "USER 1001\n"
    )
    parsed = dockerfile.parse(text)
    assert [(s.index, s.base, s.name, s.line) for s in parsed.stages] == [
        (0, "golang:1.22", "build", 2),
        (1, "${BASE}", "base", 4),
        (2, "base", "final", 5),
    ]
    assert parsed.stages[0].from_instruction.flag("platform") == "$BUILDPLATFORM"
    assert [i.keyword for i in parsed.stages[0].instructions] == ["RUN"]
    assert parsed.global_args == (("BASE", "python:3.12-slim"),)
    final = parsed.final_stage
    assert final is not None
    assert [s.name for s in parsed.lineage(final)] == ["base", "final"]
    assert parsed.stage_named("BUILD") is parsed.stages[0]
    assert parsed.stage_named("0") is parsed.stages[0]


def test_escape_directive_switches_the_continuation_character() -> None:
    text = "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN dir `\n    c:\\\n"
    parsed = dockerfile.parse(text)
    assert parsed.directives == (("escape", "`"),)
    run = parsed.instructions[1]
    assert run.arguments == "dir c:\\"
    assert (run.line, run.end_line) == (3, 4)


def test_directive_only_at_the_top() -> None:
    parsed = dockerfile.parse("FROM a:1\n# escape=`\nRUN echo \\\n  hi\n")
    assert parsed.directives == ()
    assert parsed.instructions[1].arguments == "echo hi"


def test_heredoc_runs_to_its_delimiter() -> None:
    text = "FROM a:1\nRUN <<EOF\napt-get install -y gcc\nEOF\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    run = parsed.instructions[1]
    assert (run.line, run.end_line) == (2, 4)
    assert "apt-get install -y gcc" in run.arguments
    assert parsed.instructions[2].keyword == "USER"
    assert parsed.instructions[2].line == 5


def test_trailing_continuation_at_end_of_file() -> None:
    parsed = dockerfile.parse("FROM a:1\nRUN echo hi \\\n")
    assert parsed.instructions[1].arguments == "echo hi"
    assert parsed.instructions[1].end_line == 2


def test_empty_file() -> None:
    parsed = dockerfile.parse("")
    assert parsed.instructions == ()
    assert parsed.final_stage is None


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("alpine", ("alpine", None, None)),
        ("alpine:3.20", ("alpine", "3.20", None)),
        ("localhost:5000/app", ("localhost:5000/app", None, None)),
        ("localhost:5000/app:1.2", ("localhost:5000/app", "1.2", None)),
        ("alpine@sha256:abc", ("alpine", None, "sha256:abc")),
        ("ghcr.io/o/a:1@sha256:abc", ("ghcr.io/o/a", "1", "sha256:abc")),
    ],
)
def test_image_reference(reference: str, expected: tuple[str, str | None, str | None]) -> None:
    assert dockerfile.image_reference(reference) == expected


def test_substitute() -> None:
    values: dict[str, str | None] = {"A": "x", "EMPTY": ""}
    assert dockerfile.substitute("$A:${A}", values) == "x:x"
    assert dockerfile.substitute("${B:-node}:20", values) == "node:20"
    assert dockerfile.substitute("${A:+y}", values) == "y"
    assert dockerfile.substitute("$B", values) is None
