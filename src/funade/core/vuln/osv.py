"""OSV advisories: the model, the parser, the matching algorithm and the severity of a finding.

Every vulnerability source funade reads (Debian, Alpine, PyPI, npm, Go, Maven, crates.io)
publishes the OSV schema (ossf/osv-schema ``docs/schema.md``), so one model and one
matcher serve them all. :func:`affects` follows the schema's ``IsVulnerable`` pseudocode
exactly, with each ecosystem's own version ordering from
:mod:`funade.core.vuln.versions`:

- the package matches when the ecosystem matches (``Debian:12`` advisories apply only to
  packages from Debian 12, a bare ``Debian`` advisory to every release) and the name
  matches (Debian and Ubuntu by *source* package, PyPI names normalised per PEP 503);
- the version is affected when it is listed in ``versions`` or falls in a ``SEMVER`` or
  ``ECOSYSTEM`` range: below some ``limit`` (if any), and walking the events sorted by
  version, ``introduced`` (``"0"`` = before everything) turns "vulnerable" on, ``fixed``
  (``v >= fixed``) and ``last_affected`` (``v > last_affected``) turn it off;
- ``GIT`` ranges are skipped: they need the repository's commit graph.

Withdrawn advisories match nothing. A range whose event versions the ecosystem cannot
parse (old non-PEP 440 PyPI releases, for instance) is skipped rather than guessed at;
the explicit ``versions`` list still applies.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from funade.core.vuln import cvss, versions
from funade.core.vuln.versions import Version, VersionError

__all__ = [
    "Advisory",
    "AdvisoryError",
    "Affected",
    "Event",
    "Level",
    "Match",
    "Package",
    "Range",
    "Rating",
    "Severity",
    "affects",
    "ecosystem_matches",
    "normalize_name",
    "parse_advisory",
    "scores",
    "severity",
]

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
_EVENT_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")


class AdvisoryError(ValueError):
    """An OSV document that does not follow the schema; the message names the field."""


@dataclass(frozen=True)
class Package:
    """``affected[].package``: ecosystem (``Debian:12``, ``PyPI``…), name and optional purl."""

    ecosystem: str
    name: str
    purl: str | None = None


@dataclass(frozen=True)
class Event:
    """One range event: its kind and version."""

    kind: EventKind
    version: str


@dataclass(frozen=True)
class Range:
    """``affected[].ranges[]``: ``SEMVER``, ``ECOSYSTEM`` or ``GIT`` and its events."""

    type: str
    events: tuple[Event, ...]
    repo: str | None = None


@dataclass(frozen=True)
class Severity:
    """A ``severity`` entry: ``CVSS_V2``/``CVSS_V3``/``CVSS_V4``/``Ubuntu`` and its score (a vector)."""

    type: str
    score: str


@dataclass(frozen=True)
class Affected:
    """One ``affected[]`` entry."""

    package: Package
    ranges: tuple[Range, ...] = ()
    versions: tuple[str, ...] = ()
    severity: tuple[Severity, ...] = ()
    ecosystem_specific: Mapping[str, object] = field(default_factory=dict)
    database_specific: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Advisory:
    """An OSV vulnerability record (the fields funade uses)."""

    id: str
    modified: str
    affected: tuple[Affected, ...] = ()
    aliases: tuple[str, ...] = ()
    summary: str = ""
    details: str = ""
    published: str | None = None
    withdrawn: str | None = None
    severity: tuple[Severity, ...] = ()
    database_specific: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    """Why an advisory affects an installed version.

    Attributes:
        advisory: the advisory's id.
        package: the affected package as the advisory names it.
        installed: the installed version that was checked.
        fixed: the lowest ``fixed`` version above ``installed`` that the advisory does
            not affect, or None when there is no fix.
        fixed_versions: every such fix version, lowest first.
        range: the range that matched, or None when only ``versions`` did.
        in_versions: whether ``installed`` is listed in ``versions``.
    """

    advisory: str
    package: Package
    installed: str
    fixed: str | None
    fixed_versions: tuple[str, ...]
    range: Range | None
    in_versions: bool


class Level(enum.StrEnum):
    """Severity levels, most severe first (Trivy's scale)."""

    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"
    UNKNOWN = "UNKNOWN"

    @property
    def rank(self) -> int:
        """0 for CRITICAL … 4 for UNKNOWN: lower is more severe."""
        return list(Level).index(self)


class Rating(NamedTuple):
    """A severity level and where it came from (``debian urgency: medium``, ``CVSS_V3 9.8``…)."""

    level: Level
    source: str


# ---------------------------------------------------------------------------- parsing


def _obj(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise AdvisoryError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _str(data: Mapping[str, object], key: str, where: str, *, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise AdvisoryError(f"{where}{key}: required")
        return None
    if not isinstance(value, str):
        raise AdvisoryError(f"{where}{key}: expected a string, got {type(value).__name__}")
    return value


def _list(data: Mapping[str, object], key: str, where: str) -> list[object]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise AdvisoryError(f"{where}{key}: expected a list, got {type(value).__name__}")
    return value


def _strings(data: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
    items = _list(data, key, where)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise AdvisoryError(f"{where}{key}[{index}]: expected a string, got {type(item).__name__}")
    return tuple(str(item) for item in items)


def _severities(data: Mapping[str, object], where: str) -> tuple[Severity, ...]:
    result = []
    for index, item in enumerate(_list(data, "severity", where)):
        here = f"{where}severity[{index}]."
        entry = _obj(item, here.rstrip("."))
        kind = _str(entry, "type", here, required=True)
        score = entry.get("score")
        if isinstance(score, int | float) and not isinstance(score, bool):
            score = str(score)
        if not isinstance(score, str):
            raise AdvisoryError(f"{here}score: expected a string")
        result.append(Severity(type=str(kind), score=score))
    return tuple(result)


def _specific(data: Mapping[str, object], key: str, where: str) -> Mapping[str, object]:
    value = data.get(key)
    if value is None:
        return {}
    return _obj(value, f"{where}{key}")


def _range(data: object, where: str) -> Range:
    entry = _obj(data, where)
    here = f"{where}."
    kind = _str(entry, "type", here, required=True)
    events = []
    for index, item in enumerate(_list(entry, "events", here)):
        event_where = f"{here}events[{index}]"
        event = _obj(item, event_where)
        kinds = [name for name in _EVENT_KINDS if name in event]
        if len(kinds) != 1:
            raise AdvisoryError(f"{event_where}: expected exactly one of {', '.join(_EVENT_KINDS)}")
        version = _str(event, kinds[0], f"{event_where}.", required=True)
        events.append(Event(kind=kinds[0], version=str(version)))
    if not any(event.kind == "introduced" for event in events):
        raise AdvisoryError(f"{here}events: a range needs at least one introduced event")
    return Range(type=str(kind), events=tuple(events), repo=_str(entry, "repo", here))


def _affected(data: object, where: str) -> Affected:
    entry = _obj(data, where)
    here = f"{where}."
    package_data = _obj(entry.get("package"), f"{here}package")
    package = Package(
        ecosystem=str(_str(package_data, "ecosystem", f"{here}package.", required=True)),
        name=str(_str(package_data, "name", f"{here}package.", required=True)),
        purl=_str(package_data, "purl", f"{here}package."),
    )
    ranges = tuple(_range(item, f"{here}ranges[{index}]") for index, item in enumerate(_list(entry, "ranges", here)))
    return Affected(
        package=package,
        ranges=ranges,
        versions=_strings(entry, "versions", here),
        severity=_severities(entry, here),
        ecosystem_specific=_specific(entry, "ecosystem_specific", here),
        database_specific=_specific(entry, "database_specific", here),
    )


def parse_advisory(document: object) -> Advisory:
    """Build an :class:`Advisory` from an OSV JSON document (text, bytes or the decoded object).

    Raises:
        AdvisoryError: naming the field (``affected[0].ranges[1].events[2]``) that breaks the schema.
    """
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as error:
            raise AdvisoryError(f"not JSON: {error}") from None
    data = _obj(document, "advisory")
    return Advisory(
        id=str(_str(data, "id", "", required=True)),
        modified=str(_str(data, "modified", "", required=True)),
        affected=tuple(_affected(item, f"affected[{index}]") for index, item in enumerate(_list(data, "affected", ""))),
        aliases=_strings(data, "aliases", ""),
        summary=_str(data, "summary", "") or "",
        details=_str(data, "details", "") or "",
        published=_str(data, "published", ""),
        withdrawn=_str(data, "withdrawn", ""),
        severity=_severities(data, ""),
        database_specific=_specific(data, "database_specific", ""),
    )


# ---------------------------------------------------------------------------- matching


def normalize_name(ecosystem: str, name: str) -> str:
    """A package name as the ecosystem compares it (PEP 503 for PyPI, unchanged elsewhere)."""
    if versions.base_ecosystem(ecosystem).casefold() == "pypi":
        return re.sub(r"[-_.]+", "-", name).lower()
    return name


def _release(ecosystem: str) -> str:
    _, _, release = ecosystem.partition(":")
    release = release.strip()
    if versions.base_ecosystem(ecosystem).casefold() == "alpine":
        release = release.removeprefix("v")
    return release


def ecosystem_matches(advisory_ecosystem: str, package_ecosystem: str) -> bool:
    """Whether an advisory for ``advisory_ecosystem`` applies to a package from ``package_ecosystem``.

    The base names must agree (case-insensitively). An advisory without a release
    (``Debian``) applies to every release; one with a release (``Debian:12``,
    ``Alpine:v3.19``) only to packages of that release, so a package whose release is
    unknown (``Debian``) matches only release-less advisories.
    """
    if versions.base_ecosystem(advisory_ecosystem).casefold() != versions.base_ecosystem(package_ecosystem).casefold():
        return False
    wanted = _release(advisory_ecosystem)
    return not wanted or wanted == _release(package_ecosystem)


@dataclass(frozen=True)
class _Ordering:
    """How one range's versions parse: SemVer for ``SEMVER`` ranges, else the ecosystem's own."""

    ecosystem: str
    range_type: str

    def parse(self, text: str) -> Version:
        if self.range_type == "SEMVER":
            # OSV writes SEMVER events without "v"; Go and npm installed versions may have one.
            go_or_npm = versions.base_ecosystem(self.ecosystem).casefold() in ("go", "npm")
            return versions.parse_scheme("semver", text, allow_v=go_or_npm)
        return versions.parse(self.ecosystem, text)


def _sorted_events(ordering: _Ordering, events: Iterable[Event]) -> list[tuple[Version | None, Event]]:
    """Events with their parsed versions, in version order; ``introduced: "0"`` (None) first.

    ``limit: "*"`` (infinity) is left out: it limits nothing.
    """
    parsed: list[tuple[Version | None, Event]] = []
    for event in events:
        if event.kind == "introduced" and event.version == "0":
            parsed.append((None, event))
        elif event.kind == "limit" and event.version == "*":
            continue
        else:
            parsed.append((ordering.parse(event.version), event))
    zeros = [item for item in parsed if item[0] is None]
    rest = [item for item in parsed if item[0] is not None]
    # Insertion sort keeps equal versions in document order (Version is not a sort key).
    ordered: list[tuple[Version | None, Event]] = []
    for item in rest:
        position = len(ordered)
        while position > 0 and item[0] < ordered[position - 1][0]:  # type: ignore[operator]
            position -= 1
        ordered.insert(position, item)
    return zeros + ordered


def _in_range(installed: Version, ordering: _Ordering, range_: Range) -> bool:
    """The schema's ``BeforeLimits`` and event walk for one range."""
    events = _sorted_events(ordering, range_.events)
    has_limit = any(event.kind == "limit" for event in range_.events)
    limits = [version for version, event in events if event.kind == "limit" and version is not None]
    unbounded = any(event.kind == "limit" and event.version == "*" for event in range_.events)
    if has_limit and not unbounded and not any(installed < limit for limit in limits):
        return False
    vulnerable = False
    for version, event in events:
        if event.kind == "introduced" and (version is None or installed >= version):
            vulnerable = True
        elif version is not None and (
            (event.kind == "fixed" and installed >= version) or (event.kind == "last_affected" and installed > version)
        ):
            vulnerable = False
    return vulnerable


def _listed(installed: str, parsed: Version | None, ecosystem: str, listed: Sequence[str]) -> bool:
    for candidate in listed:
        if candidate == installed:
            return True
        if parsed is not None:
            try:
                if versions.parse(ecosystem, candidate) == parsed:
                    return True
            except VersionError:
                continue
    return False


def _affected_by(entry: Affected, ecosystem: str, installed: str) -> tuple[bool, Range | None, bool]:
    """(affected, the range that matched, listed in versions) for one affected entry."""
    try:
        parsed: Version | None = versions.parse(ecosystem, installed)
    except VersionError:
        parsed = None
    in_versions = _listed(installed, parsed, ecosystem, entry.versions)
    for range_ in entry.ranges:
        if range_.type not in ("SEMVER", "ECOSYSTEM"):
            continue
        ordering = _Ordering(ecosystem, range_.type)
        try:
            version = ordering.parse(installed)
            if _in_range(version, ordering, range_):
                return True, range_, in_versions
        except VersionError:
            continue
    return in_versions, None, in_versions


def _entries(advisory: Advisory, ecosystem: str, package: str) -> list[Affected]:
    name = normalize_name(ecosystem, package)
    return [
        entry
        for entry in advisory.affected
        if ecosystem_matches(entry.package.ecosystem, ecosystem)
        and normalize_name(entry.package.ecosystem, entry.package.name) == name
    ]


def affects(advisory: Advisory, ecosystem: str, package: str, version: str) -> Match | None:
    """Whether ``advisory`` affects ``package`` at ``version`` from ``ecosystem``, and how.

    Args:
        advisory: the OSV record.
        ecosystem: the package's OSV ecosystem with its release where it has one
            (``Debian:12``, ``Alpine:v3.19``, ``PyPI``, ``npm``, ``Go``, ``Maven``).
        package: the package name; for Debian and Ubuntu the *source* package name.
        version: the installed version.

    Returns:
        A :class:`Match` with the lowest fix above ``version`` (one the advisory itself
        does not affect), or None when the advisory does not apply (or is withdrawn).
    """
    if advisory.withdrawn:
        return None
    entries = _entries(advisory, ecosystem, package)
    for entry in entries:
        hit, matched_range, in_versions = _affected_by(entry, ecosystem, version)
        if hit:
            fixes = _fixes(entries, ecosystem, version)
            return Match(
                advisory=advisory.id,
                package=entry.package,
                installed=version,
                fixed=fixes[0] if fixes else None,
                fixed_versions=tuple(fixes),
                range=matched_range,
                in_versions=in_versions,
            )
    return None


def _fixes(entries: Sequence[Affected], ecosystem: str, installed: str) -> list[str]:
    """``fixed`` versions above ``installed`` that no entry affects, lowest first."""
    try:
        current = versions.parse(ecosystem, installed)
    except VersionError:
        return []
    candidates: list[tuple[Version, str]] = []
    for entry in entries:
        for range_ in entry.ranges:
            if range_.type not in ("SEMVER", "ECOSYSTEM"):
                continue
            for event in range_.events:
                if event.kind != "fixed" or any(text == event.version for _, text in candidates):
                    continue
                try:
                    fix = versions.parse(ecosystem, event.version)
                except VersionError:
                    continue
                if fix > current and not any(_affected_by(other, ecosystem, event.version)[0] for other in entries):
                    candidates.append((fix, event.version))
    ordered: list[tuple[Version, str]] = []
    for item in candidates:
        position = len(ordered)
        while position > 0 and item[0] < ordered[position - 1][0]:
            position -= 1
        ordered.insert(position, item)
    return [text for _, text in ordered]


# ---------------------------------------------------------------------------- severity

# Trivy's mapping of Debian security tracker urgencies (vuln-list-update debian).
_URGENCY = {"unimportant": Level.LOW, "low": Level.LOW, "medium": Level.MEDIUM, "high": Level.HIGH}
# GHSA (LOW/MODERATE/HIGH/CRITICAL), RustSec, Ubuntu priorities and the like.
_NAMED = {
    "critical": Level.CRITICAL,
    "high": Level.HIGH,
    "important": Level.HIGH,
    "moderate": Level.MEDIUM,
    "medium": Level.MEDIUM,
    "low": Level.LOW,
    "negligible": Level.LOW,
    "unimportant": Level.LOW,
}


def _own_rating(where: str, data: Mapping[str, object]) -> Rating | None:
    urgency = data.get("urgency")
    if isinstance(urgency, str):
        level = _URGENCY.get(urgency.strip().rstrip("*").strip().lower())
        if level is not None:
            return Rating(level, f"{where}.urgency: {urgency}")
    named = data.get("severity")
    if isinstance(named, str):
        level = _NAMED.get(named.strip().lower())
        if level is not None:
            return Rating(level, f"{where}.severity: {named}")
    return None


def _cvss_rating(entries: Iterable[Severity]) -> Rating | None:
    listed = list(entries)
    for entry in listed:
        if entry.type == "CVSS_V3":
            try:
                score = cvss.base_score(entry.score)
            except cvss.CvssError:
                continue
            return Rating(_level(score), f"CVSS_V3 {score:.1f}")
    for entry in listed:
        if entry.type == "CVSS_V4":
            # The v4 score needs the specification's lookup tables; only a given number is used.
            try:
                score = float(entry.score)
            except ValueError:
                continue
            return Rating(_level(score), f"CVSS_V4 {score:.1f}")
    for entry in listed:
        if entry.type == "Ubuntu":
            level = _NAMED.get(entry.score.strip().lower())
            if level is not None:
                return Rating(level, f"Ubuntu priority: {entry.score}")
    return None


def _level(score: float) -> Level:
    name = cvss.rating(score)
    return Level.UNKNOWN if name == "NONE" else Level(name)


def scores(advisory: Advisory, ecosystem: str, package: str) -> tuple[Severity, ...]:
    """The advisory's ``severity`` entries for ``package`` (its ``affected`` entries' first, then the top level).

    These are what a report repeats (CVSS vectors, Ubuntu priorities); :func:`severity`
    is the one level funade decides from them and the advisory's own rating.
    """
    listed = [s for entry in _entries(advisory, ecosystem, package) for s in entry.severity] + list(advisory.severity)
    return tuple(dict.fromkeys(listed))


def severity(advisory: Advisory, ecosystem: str, package: str | None = None) -> Rating:
    """The severity of ``advisory`` for a package of ``ecosystem`` (and ``package`` when given).

    The advisory's own rating wins: the ``urgency`` (Debian; mapped as Trivy maps it)
    or ``severity`` (GHSA ``MODERATE`` → MEDIUM, RustSec…) of the matching ``affected``
    entries' ``ecosystem_specific`` / ``database_specific``, then the top-level
    ``database_specific``. Otherwise the CVSS v3 vector's base score (entry-level
    ``severity`` first, then the top level); a CVSS v4 entry counts only when its score
    is a number. With none of these the level is UNKNOWN.
    """
    entries = (
        _entries(advisory, ecosystem, package)
        if package is not None
        else [entry for entry in advisory.affected if ecosystem_matches(entry.package.ecosystem, ecosystem)]
    )
    for entry in entries:
        for where, data in (
            ("ecosystem_specific", entry.ecosystem_specific),
            ("database_specific", entry.database_specific),
        ):
            rating = _own_rating(where, data)
            if rating is not None:
                return rating
    rating = _own_rating("database_specific", advisory.database_specific)
    if rating is not None:
        return rating
    for entry in entries:
        rating = _cvss_rating(entry.severity)
        if rating is not None:
            return rating
    rating = _cvss_rating(advisory.severity)
    if rating is not None:
        return rating
    return Rating(Level.UNKNOWN, "no rating or CVSS v3 vector")
