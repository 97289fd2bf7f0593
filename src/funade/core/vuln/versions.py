"""Version ordering for every ecosystem funade scans: Debian, Alpine, PEP 440, SemVer, Maven.

An OSV range only means something with the package ecosystem's own ordering: ``1.0~rc1``
is older than ``1.0`` for dpkg, ``1.0_p1`` newer than ``1.0`` for apk, ``1.0.post1``
newer and ``1.0rc1`` older than ``1.0`` for pip, ``1.0-SNAPSHOT`` older than ``1.0`` for
Maven. A plain string or tuple comparison gets each of these wrong, and a wrong order
silently hides vulnerable packages, so each scheme here follows its reference
implementation:

- Debian: dpkg's ``verrevcmp`` (deb-version(7)): ``[epoch:]upstream[-revision]``, ``~``
  before everything, letters before non-letters, digit runs numerically.
- Alpine: apk-tools ``src/version.c``, token by token, including its leading-zero and
  suffix rules (``_alpha < _beta < _pre < _rc < (none) < _cvs < _svn < _git < _hg < _p``)
  and ``-rN``.
- PyPI: PEP 440 (the normalisations and ``_cmpkey`` of ``packaging.version``).
- npm, crates.io, Go: SemVer 2.0 precedence, build metadata ignored. Go module versions
  and npm (as node-semver does) may carry a leading ``v``; crates.io may not.
- Maven: ``ComparableVersion`` (items split at ``.``, ``-`` and digit/letter transitions,
  qualifiers ``alpha < beta < milestone < rc = cr < snapshot < "" = ga = final = release
  < sp`` and then others alphabetically, trailing null items trimmed).

The implementations are our own and need nothing outside the standard library, so core
stays dependency-free (``packaging`` happens to be installed but is not a declared
dependency). Text a scheme cannot parse raises :class:`VersionError`.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self, TypeAlias

__all__ = [
    "SCHEMES",
    "Version",
    "VersionError",
    "base_ecosystem",
    "compare",
    "compare_alpine",
    "compare_debian",
    "compare_maven",
    "compare_pep440",
    "compare_semver",
    "parse",
    "parse_scheme",
    "scheme_for",
]


class VersionError(ValueError):
    """A version string that the ecosystem's scheme cannot parse (or an unknown ecosystem)."""

    def __init__(self, ecosystem: str, text: str, reason: str) -> None:
        super().__init__(f"invalid {ecosystem} version {text!r}: {reason}")
        self.ecosystem = ecosystem
        self.text = text
        self.reason = reason


class Version(abc.ABC):
    """A parsed version, ordered against other versions of the same scheme.

    Comparing versions of different schemes raises :class:`TypeError`. Versions are not
    hashable: equal versions can have different spellings (``1.0`` and ``1.0-0`` for dpkg).
    """

    __slots__ = ("ecosystem", "text")
    __hash__ = None  # type: ignore[assignment]

    #: The ordering scheme: ``debian``, ``alpine``, ``pep440``, ``semver`` or ``maven``.
    scheme: str = ""

    def __init__(self, ecosystem: str, text: str) -> None:
        self.ecosystem = ecosystem
        self.text = text

    @abc.abstractmethod
    def _compare(self, other: Self) -> int:
        """Negative, zero or positive as ``self`` sorts before, with or after ``other``."""

    def compare(self, other: Version) -> int:
        """-1, 0 or 1 as ``self`` is older than, equal to or newer than ``other``."""
        if type(other) is not type(self):
            raise TypeError(f"cannot compare a {self.scheme} version with a {other.scheme} version")
        result = self._compare(other)
        return (result > 0) - (result < 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return type(other) is type(self) and self._compare(other) == 0

    def __lt__(self, other: Version) -> bool:
        return self.compare(other) < 0

    def __le__(self, other: Version) -> bool:
        return self.compare(other) <= 0

    def __gt__(self, other: Version) -> bool:
        return self.compare(other) > 0

    def __ge__(self, other: Version) -> bool:
        return self.compare(other) >= 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------- Debian

_DEB_UPSTREAM = re.compile(r"[A-Za-z0-9.+~-]+")
_DEB_UPSTREAM_NO_HYPHEN = re.compile(r"[A-Za-z0-9.+~]+")
_DEB_REVISION = re.compile(r"[A-Za-z0-9.+~]+")


def _deb_order(char: str) -> int:
    """dpkg's ``order()``: ``~`` first, then end of string, letters, other characters."""
    if char == "~":
        return -1
    if char.isascii() and char.isalpha():
        return ord(char)
    return ord(char) + 256


def _verrevcmp(a: str, b: str) -> int:
    """dpkg's ``verrevcmp`` on one part (upstream or revision)."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac = _deb_order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            bc = _deb_order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        start_a = i
        while i < len(a) and a[i].isdigit():
            i += 1
        start_b = j
        while j < len(b) and b[j].isdigit():
            j += 1
        number_a = int(a[start_a:i] or "0")
        number_b = int(b[start_b:j] or "0")
        if number_a != number_b:
            return -1 if number_a < number_b else 1
    return 0


class _DebianVersion(Version):
    __slots__ = ("epoch", "revision", "upstream")
    scheme = "debian"

    def __init__(self, ecosystem: str, text: str) -> None:
        super().__init__(ecosystem, text)
        version = text.strip()
        if not version:
            raise VersionError(ecosystem, text, "empty")
        if any(char.isspace() for char in version):
            raise VersionError(ecosystem, text, "contains whitespace")
        epoch = 0
        if ":" in version:
            epoch_text, version = version.split(":", 1)
            if not epoch_text.isascii() or not epoch_text.isdigit():
                raise VersionError(ecosystem, text, "epoch is not a number")
            epoch = int(epoch_text)
        upstream, dash, revision = version.rpartition("-")
        if not dash:
            upstream, revision = version, ""
        elif not revision:
            raise VersionError(ecosystem, text, "revision is empty")
        if not upstream:
            raise VersionError(ecosystem, text, "upstream version is empty")
        pattern = _DEB_UPSTREAM if dash else _DEB_UPSTREAM_NO_HYPHEN
        if not pattern.fullmatch(upstream) or (revision and not _DEB_REVISION.fullmatch(revision)):
            raise VersionError(ecosystem, text, "only letters, digits and . + ~ - are allowed")
        self.epoch = epoch
        self.upstream = upstream
        self.revision = revision

    def _compare(self, other: Self) -> int:
        if self.epoch != other.epoch:
            return -1 if self.epoch < other.epoch else 1
        return _verrevcmp(self.upstream, other.upstream) or _verrevcmp(self.revision, other.revision)


# ---------------------------------------------------------------------------- Alpine

# apk-tools src/version.c token types, in its order (the order matters: see _apk_compare).
_T_INVALID, _T_DIGIT_OR_ZERO, _T_DIGIT, _T_LETTER, _T_SUFFIX, _T_SUFFIX_NO, _T_REVISION_NO, _T_END = range(-1, 7)
_PRE_SUFFIXES = ("alpha", "beta", "pre", "rc")
_POST_SUFFIXES = ("cvs", "svn", "git", "hg", "p")


def _apk_next_token(kind: int, text: str, pos: int) -> tuple[int, int]:
    """apk's ``next_token``: the type of the token starting at ``pos`` (and where it starts)."""
    new = _T_INVALID
    char = text[pos] if pos < len(text) else ""
    if not char:
        new = _T_END
    elif kind in (_T_DIGIT, _T_DIGIT_OR_ZERO) and "a" <= char <= "z":
        new = _T_LETTER
    elif kind == _T_LETTER and char.isascii() and char.isdigit():
        new = _T_DIGIT
    elif kind == _T_SUFFIX and char.isascii() and char.isdigit():
        new = _T_SUFFIX_NO
    else:
        if char == ".":
            new = _T_DIGIT_OR_ZERO
        elif char == "_":
            new = _T_SUFFIX
        elif char == "-" and pos + 1 < len(text) and text[pos + 1] == "r":
            new = _T_REVISION_NO
            pos += 1
        pos += 1
    allowed_backwards = (
        (new == _T_DIGIT_OR_ZERO and kind == _T_DIGIT)
        or (new == _T_SUFFIX and kind == _T_SUFFIX_NO)
        or (new == _T_DIGIT and kind == _T_LETTER)
    )
    if new < kind and not allowed_backwards:
        new = _T_INVALID
    return new, pos


def _apk_tokens(text: str) -> list[tuple[int, int]] | None:
    """The (type, value) tokens apk's ``get_token`` yields, or None when the version is invalid."""
    tokens: list[tuple[int, int]] = []
    kind, pos = _T_DIGIT, 0
    while pos < len(text):
        value, end, forced = 0, pos, _T_INVALID
        if kind == _T_DIGIT_OR_ZERO and text[pos] == "0":
            # Leading zeros: the value is minus their count, the digits after them a separate token.
            while end < len(text) and text[end] == "0":
                end += 1
            value = -(end - pos)
            # apk-tools 2.x also forces an empty digit token when no digit follows (``1.0_rc1``),
            # which sorts ``1.0_rc1`` after ``1.0``, against the documented suffix order; we don't.
            if end < len(text) and text[end].isascii() and text[end].isdigit():
                forced = _T_DIGIT
        elif kind in (_T_DIGIT_OR_ZERO, _T_DIGIT, _T_SUFFIX_NO, _T_REVISION_NO):
            while end < len(text) and text[end].isascii() and text[end].isdigit():
                value = value * 10 + int(text[end])
                end += 1
        elif kind == _T_LETTER:
            value, end = ord(text[pos]), pos + 1
        elif kind == _T_SUFFIX:
            for index, suffix in enumerate(_PRE_SUFFIXES):
                if text.startswith(suffix, pos):
                    value, end = index - len(_PRE_SUFFIXES), pos + len(suffix)
                    break
            else:
                for index, suffix in enumerate(_POST_SUFFIXES):
                    if text.startswith(suffix, pos):
                        value, end = index, pos + len(suffix)
                        break
                else:
                    return None
        else:
            return None
        tokens.append((kind, value))
        pos = end
        if pos >= len(text):
            break
        if forced != _T_INVALID:
            kind = forced
        else:
            kind, pos = _apk_next_token(kind, text, pos)
            if kind == _T_INVALID:
                return None
            if kind == _T_END:
                break
    return tokens


def _apk_compare(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> int:
    """apk's ``apk_version_compare_blob`` on token lists."""

    def kind(tokens: list[tuple[int, int]], index: int) -> int:
        return tokens[index][0] if index < len(tokens) else _T_END

    index = 0
    while True:
        a_value, b_value = a[index][1], b[index][1]
        if a_value != b_value:
            return -1 if a_value < b_value else 1
        index += 1
        a_kind, b_kind = kind(a, index), kind(b, index)
        if a_kind != b_kind or a_kind == _T_END:
            break
    if a_kind == b_kind:
        return 0
    # Equal so far: the longer version is newer unless what follows is a pre-release suffix.
    if a_kind == _T_SUFFIX and a[index][1] < 0:
        return -1
    if b_kind == _T_SUFFIX and b[index][1] < 0:
        return 1
    if a_kind > b_kind:
        return -1
    if b_kind > a_kind:
        return 1
    return 0


class _AlpineVersion(Version):
    __slots__ = ("tokens",)
    scheme = "alpine"

    def __init__(self, ecosystem: str, text: str) -> None:
        super().__init__(ecosystem, text)
        tokens = _apk_tokens(text) if text else None
        if not tokens:
            raise VersionError(ecosystem, text, "not digits(.digits)*[letter](_suffix[N])*[-rN]")
        self.tokens = tokens

    def _compare(self, other: Self) -> int:
        return _apk_compare(self.tokens, other.tokens)


# ---------------------------------------------------------------------------- PEP 440

_PEP440 = re.compile(
    r"""
    v?
    (?:(?P<epoch>[0-9]+)!)?
    (?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>[0-9]+)?)?
    (?:-(?P<post_implicit>[0-9]+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n>[0-9]+)?)?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>[0-9]+)?)?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PRE_LETTERS = {"alpha": "a", "a": "a", "beta": "b", "b": "b", "c": "rc", "pre": "rc", "preview": "rc", "rc": "rc"}


class _TupleVersion(Version):
    """A version whose order is the order of a tuple key."""

    __slots__ = ("key",)

    def __init__(self, ecosystem: str, text: str, key: tuple[object, ...]) -> None:
        super().__init__(ecosystem, text)
        self.key = key

    def _compare(self, other: Self) -> int:
        return (self.key > other.key) - (self.key < other.key)


class _Pep440Version(_TupleVersion):
    __slots__ = ()
    scheme = "pep440"

    def __init__(self, ecosystem: str, text: str) -> None:
        match = _PEP440.fullmatch(text.strip())
        if match is None:
            raise VersionError(ecosystem, text, "not a PEP 440 version")
        release = [int(part) for part in match["release"].split(".")]
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        pre = (_PRE_LETTERS[match["pre_l"].lower()], int(match["pre_n"] or 0)) if match["pre_l"] else None
        post: int | None = None
        if match["post_implicit"] is not None:
            post = int(match["post_implicit"])
        elif match["post_l"]:
            post = int(match["post_n"] or 0)
        dev = int(match["dev_n"] or 0) if match["dev_l"] else None
        # packaging's _cmpkey: a bare .devN sorts before any pre-release of its release.
        if pre is None and post is None and dev is not None:
            pre_key: tuple[object, ...] = (-1,)
        elif pre is None:
            pre_key = (2,)
        else:
            pre_key = (1, *pre)
        post_key = (0,) if post is None else (1, post)
        dev_key = (1,) if dev is None else (0, dev)
        local_key: tuple[object, ...] = (0,)
        if match["local"]:
            parts = re.split(r"[-_.]", match["local"].lower())
            local_key = (1, *((1, int(part), "") if part.isdigit() else (0, 0, part) for part in parts))
        epoch = int(match["epoch"] or 0)
        super().__init__(ecosystem, text, (epoch, tuple(release), pre_key, post_key, dev_key, local_key))


# ---------------------------------------------------------------------------- SemVer

_IDENT = r"(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(
    rf"(?P<major>0|[1-9][0-9]*)\.(?P<minor>0|[1-9][0-9]*)\.(?P<patch>0|[1-9][0-9]*)"
    rf"(?:-(?P<pre>{_IDENT}(?:\.{_IDENT})*))?"
    r"(?:\+(?P<build>[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


class _SemVersion(_TupleVersion):
    __slots__ = ()
    scheme = "semver"
    allow_v = False

    def __init__(self, ecosystem: str, text: str) -> None:
        version = text[1:] if self.allow_v and text[:1] == "v" else text
        match = _SEMVER.fullmatch(version)
        if match is None:
            raise VersionError(ecosystem, text, "not a SemVer 2.0 version (MAJOR.MINOR.PATCH[-pre][+build])")
        pre: tuple[object, ...] = (1,)  # a release sorts after all its pre-releases
        if match["pre"] is not None:
            identifiers = match["pre"].split(".")
            pre = (0, *((0, int(ident), "") if ident.isdigit() else (1, 0, ident) for ident in identifiers))
        key = (int(match["major"]), int(match["minor"]), int(match["patch"]), pre)
        super().__init__(ecosystem, text, key)


class _SemVersionV(_SemVersion):
    """SemVer that tolerates a leading ``v`` (Go module versions, node-semver)."""

    __slots__ = ()
    allow_v = True


# ---------------------------------------------------------------------------- Maven

_MAVEN_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_MAVEN_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_MAVEN_RELEASE_INDEX = str(_MAVEN_QUALIFIERS.index(""))

# An item is an int, a qualifier string, or a list of items (a "-" sub-list).
_MavenItem: TypeAlias = int | str | list["_MavenItem"]


def _maven_string(value: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(value) == 1:
        value = {"a": "alpha", "b": "beta", "m": "milestone"}.get(value, value)
    return _MAVEN_ALIASES.get(value, value)


def _maven_qualifier_key(value: str) -> str:
    """``comparableQualifier``: the index of a known qualifier, else ``7-<qualifier>``."""
    if value in _MAVEN_QUALIFIERS:
        return str(_MAVEN_QUALIFIERS.index(value))
    return f"{len(_MAVEN_QUALIFIERS)}-{value}"


def _maven_is_null(item: _MavenItem) -> bool:
    if isinstance(item, list):
        return not item
    return item in (0, "")


def _maven_normalize(items: list[_MavenItem]) -> None:
    for index in range(len(items) - 1, -1, -1):
        if _maven_is_null(items[index]):
            del items[index]
        elif not isinstance(items[index], list):
            break


def _maven_parse(text: str) -> list[_MavenItem]:
    """``ComparableVersion.parseVersion``."""
    version = text.lower()
    root: list[_MavenItem] = []
    current = root
    stack = [root]
    is_digit = False
    start = 0

    def item(digit: bool, buf: str) -> _MavenItem:
        return int(buf) if digit else _maven_string(buf, False)

    for index, char in enumerate(version):
        if char == ".":
            current.append(0 if index == start else item(is_digit, version[start:index]))
            start = index + 1
        elif char == "-":
            current.append(0 if index == start else item(is_digit, version[start:index]))
            start = index + 1
            child: list[_MavenItem] = []
            current.append(child)
            current = child
            stack.append(child)
        elif char.isascii() and char.isdigit():
            if not is_digit and index > start:
                current.append(_maven_string(version[start:index], True))
                start = index
                child = []
                current.append(child)
                current = child
                stack.append(child)
            is_digit = True
        else:
            if is_digit and index > start:
                current.append(int(version[start:index]))
                start = index
                child = []
                current.append(child)
                current = child
                stack.append(child)
            is_digit = False
    if len(version) > start:
        current.append(item(is_digit, version[start:]))
    for items in reversed(stack):
        _maven_normalize(items)
    return root


def _maven_cmp(left: _MavenItem | None, right: _MavenItem | None) -> int:
    """``Item.compareTo`` for an item against another item or None (a missing item)."""
    if left is None:
        return 0 if right is None else -_maven_cmp(right, None)
    if isinstance(left, int):
        if right is None:
            return 0 if left == 0 else 1
        if isinstance(right, int):
            return (left > right) - (left < right)
        return 1  # a number is newer than a qualifier or a sub-list
    if isinstance(left, str):
        if right is None:
            mine = _maven_qualifier_key(left)
            return (mine > _MAVEN_RELEASE_INDEX) - (mine < _MAVEN_RELEASE_INDEX)
        if isinstance(right, str):
            mine, theirs = _maven_qualifier_key(left), _maven_qualifier_key(right)
            return (mine > theirs) - (mine < theirs)
        return -1  # a qualifier is older than a number or a sub-list
    if right is None:
        return 0 if not left else _maven_cmp(left[0], None)
    if isinstance(right, int):
        return -1
    if isinstance(right, str):
        return 1
    for index in range(max(len(left), len(right))):
        mine_item = left[index] if index < len(left) else None
        their_item = right[index] if index < len(right) else None
        result = _maven_cmp(mine_item, their_item)
        if result:
            return result
    return 0


class _MavenVersion(Version):
    __slots__ = ("items",)
    scheme = "maven"

    def __init__(self, ecosystem: str, text: str) -> None:
        super().__init__(ecosystem, text)
        if not text.strip() or any(char.isspace() for char in text):
            raise VersionError(ecosystem, text, "empty or contains whitespace")
        self.items = _maven_parse(text)

    def _compare(self, other: Self) -> int:
        return _maven_cmp(self.items, other.items)


# ---------------------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class _Scheme:
    name: str
    factory: Callable[[str, str], Version]


_DEBIAN = _Scheme("debian", _DebianVersion)
_ALPINE = _Scheme("alpine", _AlpineVersion)
_PEP440_SCHEME = _Scheme("pep440", _Pep440Version)
_SEMVER_STRICT = _Scheme("semver", _SemVersion)
_SEMVER_V = _Scheme("semver", _SemVersionV)
_MAVEN = _Scheme("maven", _MavenVersion)

#: OSV ecosystem (without its ``:release`` suffix) to ordering scheme name.
SCHEMES = {
    "Debian": "debian",
    "Ubuntu": "debian",
    "Alpine": "alpine",
    "PyPI": "pep440",
    "npm": "semver",
    "Go": "semver",
    "crates.io": "semver",
    "Maven": "maven",
}
_BY_ECOSYSTEM = {
    "debian": _DEBIAN,
    "ubuntu": _DEBIAN,
    "alpine": _ALPINE,
    "pypi": _PEP440_SCHEME,
    "npm": _SEMVER_V,
    "go": _SEMVER_V,
    "crates.io": _SEMVER_STRICT,
    "maven": _MAVEN,
}
_BY_NAME = {"debian": _DEBIAN, "alpine": _ALPINE, "pep440": _PEP440_SCHEME, "semver": _SEMVER_STRICT, "maven": _MAVEN}


def base_ecosystem(ecosystem: str) -> str:
    """The OSV ecosystem without its release suffix: ``Debian:12`` → ``Debian``."""
    return ecosystem.split(":", 1)[0].strip()


def scheme_for(ecosystem: str) -> str | None:
    """The ordering scheme of an OSV ecosystem name, or None when funade has none for it."""
    scheme = _BY_ECOSYSTEM.get(base_ecosystem(ecosystem).casefold())
    return scheme.name if scheme else None


def parse(ecosystem: str, text: str) -> Version:
    """Parse ``text`` with the ordering of the OSV ``ecosystem`` (``Debian:12``, ``PyPI``, ``Go``…).

    Raises:
        VersionError: when the ecosystem has no ordering here or the text is not a version of it.
    """
    scheme = _BY_ECOSYSTEM.get(base_ecosystem(ecosystem).casefold())
    if scheme is None:
        raise VersionError(ecosystem, text, f"no version ordering for ecosystem {ecosystem!r}")
    return scheme.factory(ecosystem, text)


def parse_scheme(scheme: str, text: str, *, allow_v: bool = False) -> Version:
    """Parse ``text`` with a named scheme (``semver`` for OSV ``SEMVER`` ranges, …).

    ``allow_v`` lets a SemVer version carry a leading ``v`` (Go module versions).
    """
    if scheme == "semver" and allow_v:
        return _SEMVER_V.factory("SemVer", text)
    found = _BY_NAME.get(scheme)
    if found is None:
        raise VersionError(scheme, text, f"unknown version scheme {scheme!r}")
    return found.factory({"semver": "SemVer", "pep440": "PEP 440"}.get(scheme, scheme.capitalize()), text)


def compare(ecosystem: str, a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` is older than, equal to or newer than ``b`` in ``ecosystem``.

    Raises:
        VersionError: naming the ecosystem and the text that is not a valid version.
    """
    return parse(ecosystem, a).compare(parse(ecosystem, b))


def compare_debian(a: str, b: str) -> int:
    """dpkg's ordering (``dpkg --compare-versions``)."""
    return compare("Debian", a, b)


def compare_alpine(a: str, b: str) -> int:
    """apk's ordering (``apk version -t``)."""
    return compare("Alpine", a, b)


def compare_pep440(a: str, b: str) -> int:
    """PEP 440 ordering."""
    return compare("PyPI", a, b)


def compare_semver(a: str, b: str) -> int:
    """SemVer 2.0 precedence (strict: no leading ``v``)."""
    return compare("crates.io", a, b)


def compare_maven(a: str, b: str) -> int:
    """Maven's ``ComparableVersion`` ordering."""
    return compare("Maven", a, b)
