"""Accepted findings: ``.funadeignore`` and Trivy's ``.trivyignore`` / ``.trivyignore.yaml``, read as Trivy reads them.

A line of ``.trivyignore`` (and ``.funadeignore``) is an id, optionally followed by
``exp:YYYY-MM-DD`` after which it no longer applies; ``#`` starts a comment. The YAML
form lists ``vulnerabilities`` with ``id``, optional ``purls`` / ``paths`` to narrow it,
``expired_at`` and a ``statement``. A rule matches a finding by its id or any alias.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

__all__ = ["IgnoreError", "IgnoreRule", "matching", "parse_text", "parse_yaml"]

_EXPIRY = re.compile(r"^exp:(\d{4}-\d{2}-\d{2})$")


class IgnoreError(ValueError):
    """An ignore file that cannot be read; the message names the line or entry."""


@dataclass(frozen=True)
class IgnoreRule:
    id: str
    expires: date | None = None
    purls: tuple[str, ...] = ()
    statement: str = ""
    source: str = ""

    def active(self, now: datetime) -> bool:
        """Whether the rule still applies (Trivy: until the end of its expiry date)."""
        return self.expires is None or now.astimezone(UTC).date() <= self.expires


def _date(text: str, where: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise IgnoreError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from None


def parse_text(text: str, source: str = ".trivyignore") -> list[IgnoreRule]:
    """Rules from the line format: ``ID [exp:YYYY-MM-DD]`` per line, ``#`` comments."""
    rules = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        expires = None
        for extra in parts[1:]:
            match = _EXPIRY.match(extra)
            if match is None:
                raise IgnoreError(f"{source}:{number}: {extra!r}: only exp:YYYY-MM-DD may follow the id")
            expires = _date(match.group(1), f"{source}:{number}")
        rules.append(IgnoreRule(parts[0], expires, source=f"{source}:{number}"))
    return rules


def parse_yaml(data: object, source: str = ".trivyignore.yaml") -> list[IgnoreRule]:
    """Rules from the YAML form's ``vulnerabilities`` list (other sections are Trivy's misconfig/secret ignores)."""
    if data is None:
        return []
    if not isinstance(data, Mapping):
        raise IgnoreError(f"{source}: expected a mapping with a vulnerabilities list")
    entries = data.get("vulnerabilities") or []
    if not isinstance(entries, list):
        raise IgnoreError(f"{source}: vulnerabilities must be a list")
    rules = []
    for i, entry in enumerate(entries):
        where = f"{source}: vulnerabilities[{i}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("id"), str):
            raise IgnoreError(f"{where}: needs an id")
        expired = entry.get("expired_at")
        expires = None
        if isinstance(expired, date):
            expires = expired if not isinstance(expired, datetime) else expired.date()
        elif expired is not None:
            expires = _date(str(expired), f"{where}.expired_at")
        purls = entry.get("purls") or ()
        if not isinstance(purls, list | tuple) or not all(isinstance(p, str) for p in purls):
            raise IgnoreError(f"{where}.purls: a list of package URLs")
        rules.append(IgnoreRule(entry["id"], expires, tuple(purls), str(entry.get("statement") or ""), where))
    return rules


def matching(
    rules: Sequence[IgnoreRule], finding_id: str, aliases: Sequence[str], purl: str, now: datetime
) -> IgnoreRule | None:
    """The first active rule that accepts this finding (by id or alias, and purl when the rule names some)."""
    names = {finding_id, *aliases}
    for rule in rules:
        if rule.id in names and rule.active(now) and (not rule.purls or purl in rule.purls):
            return rule
    return None
