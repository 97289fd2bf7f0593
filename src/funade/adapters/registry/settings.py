"""Per-repository registry settings funade enforces itself: tag mutability today.

The distribution registry has no repository settings, so funade keeps them in one JSON
file under ``$FUNADE_HOME/registry/repositories.json``, keyed by registry address and
repository, in ECR's API shape. Writes go to a temporary file renamed into place, so a
crash leaves either the old or the new settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from funade.core import immutability
from funade.core.immutability import TagMutability

__all__ = ["RepositorySettings", "SettingsError"]


class SettingsError(Exception):
    """The settings file cannot be read or holds an invalid setting."""


class RepositorySettings:
    """The settings of every repository of every registry funade knows, in one file."""

    def __init__(self, home: Path) -> None:
        self.path = home / "registry" / "repositories.json"

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise SettingsError(f"{self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise SettingsError(f"{self.path}: expected a JSON object")
        return data

    def mutability(self, registry: str, repository: str) -> TagMutability:
        """The repository's tag mutability; MUTABLE when never set."""
        entry = self._load().get(registry, {}).get(repository)
        if entry is None:
            return TagMutability()
        try:
            return immutability.parse(entry)
        except immutability.MutabilityError as exc:
            raise SettingsError(f"{self.path}: {registry}/{repository}: {exc}") from exc

    def set_mutability(self, registry: str, repository: str, setting: TagMutability) -> None:
        data = self._load()
        data.setdefault(registry, {})[repository] = setting.to_json()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        os.replace(temporary, self.path)

    def repositories(self, registry: str) -> dict[str, TagMutability]:
        """Every repository of ``registry`` with a setting."""
        return {repo: self.mutability(registry, repo) for repo in self._load().get(registry, {})}
