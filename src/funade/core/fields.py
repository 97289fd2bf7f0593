"""Typed reads of fields in loaded YAML, raising the caller's error with the field's path.

The Argo Rollouts, AnalysisTemplate, Application and ApplicationSet parsers all read
plain mappings the same way; each binds a :class:`Fields` to its own error class so its
callers keep catching what they always caught (``RolloutError``, ``ApplicationError``…).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Fields"]


class Fields:
    """Field readers that raise ``error`` with messages such as ``spec.steps: expected a list, got dict``."""

    def __init__(self, error: type[ValueError]) -> None:
        self.error = error

    def mapping(self, value: object, where: str) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.error(f"{where}: expected a mapping, got {type(value).__name__}")
        return value

    def opt_mapping(self, raw: Mapping[str, object], key: str, where: str) -> Mapping[str, object] | None:
        value = raw.get(key)
        return None if value is None else self.mapping(value, f"{where}.{key}")

    def items(self, value: object, where: str) -> list[object]:
        """A list; a missing (None) list is empty."""
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{where}: expected a list, got {type(value).__name__}")
        return value

    def text(self, value: object, where: str) -> str:
        """A non-empty string."""
        if not isinstance(value, str) or not value:
            raise self.error(f"{where}: expected a non-empty string, got {value!r}")
        return value

    def any_text(self, value: object, where: str) -> str:
        """A string, possibly empty."""
        if not isinstance(value, str):
            raise self.error(f"{where}: expected a string, got {type(value).__name__}")
        return value
