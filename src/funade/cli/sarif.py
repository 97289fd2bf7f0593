"""SARIF 2.1.0, as GitHub code scanning reads it: the one log layout every report of funade uses.

`funade image lint`, `funade policy check` and `funade image scan` each describe their rules
and results; the envelope (schema, version, the funade driver) is written here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from funade import __version__
from funade.core.policy import Severity

__all__ = ["LEVELS", "SCHEMA", "STYLES", "log"]

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: SARIF result levels of the rule severities (lint and policy findings).
LEVELS = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note", Severity.STYLE: "note"}
#: How tables colour those severities.
STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "green", Severity.STYLE: "cyan"}


def log(rules: Sequence[dict[str, Any]], results: Sequence[dict[str, Any]], information_uri: str) -> dict[str, Any]:
    """A SARIF log with one run of the funade driver."""
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "funade",
                        "version": __version__,
                        "informationUri": information_uri,
                        "rules": list(rules),
                    }
                },
                "results": list(results),
            }
        ],
    }
