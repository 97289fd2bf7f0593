"""The local copy of the OSV vulnerability data: download, import and look-up, in SQLite.

Scanning must work offline and fast, so funade keeps OSV advisories in its own SQLite
file (default ``$FUNADE_HOME/vulndb.sqlite``, separate from the records store because it
is large and disposable), indexed by (base ecosystem, normalised package name).
:class:`VulnDB` implements :class:`funade.core.ports.VulnData`; matching versions is
:mod:`funade.core.vuln`'s job.

Data comes from OSV's per-ecosystem archives (``{base}/{ecosystem}/all.zip``, one JSON
file per advisory) through :meth:`VulnDB.update`, or from a zip or a directory on disk
through :meth:`VulnDB.import_path`. Each import is one transaction: a failed or refused
import leaves the previous data exactly as it was.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx

from funade.core.vuln import osv, versions

__all__ = [
    "DEFAULT_ECOSYSTEMS",
    "DEFAULT_URL_BASE",
    "DownloadError",
    "EcosystemStats",
    "ImportRefused",
    "ImportStats",
    "Problem",
    "Progress",
    "Source",
    "UpdateResult",
    "VulnDB",
    "VulnDBError",
    "default_path",
    "default_urls",
    "url_base",
]

DEFAULT_URL_BASE = "https://osv-vulnerabilities.storage.googleapis.com"
DEFAULT_ECOSYSTEMS = ("Debian", "Alpine", "PyPI", "npm", "Go", "Maven")

Document = bytes | str | Mapping[str, object]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS advisories (
    id TEXT PRIMARY KEY, modified TEXT NOT NULL, withdrawn INTEGER NOT NULL DEFAULT 0,
    source TEXT NOT NULL, json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS affected (
    ecosystem TEXT NOT NULL COLLATE NOCASE, package TEXT NOT NULL, advisory TEXT NOT NULL,
    PRIMARY KEY (ecosystem, package, advisory)
);
CREATE INDEX IF NOT EXISTS affected_advisory ON affected (advisory);
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, url TEXT, imported_at REAL NOT NULL, checked_at REAL NOT NULL,
    checksum TEXT, etag TEXT, count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ecosystems (name TEXT PRIMARY KEY COLLATE NOCASE, checked_at REAL NOT NULL);
"""


class VulnDBError(Exception):
    """The vulnerability data cannot be read, imported or downloaded; the message says what and where."""


class ImportRefused(VulnDBError):
    """An import was refused (nothing valid, or more than half the documents invalid); nothing changed."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.problems = tuple(problems)


class DownloadError(VulnDBError):
    """An archive could not be downloaded; ``url`` names it. No data was changed."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


@dataclass(frozen=True)
class Problem:
    """A document that was skipped: where it came from (file name or ``#index``) and why."""

    item: str
    message: str


@dataclass(frozen=True)
class ImportStats:
    """What one import did.

    Attributes:
        source: the source's name (an ecosystem for ``update``, the path for ``import_path``).
        total: documents read, valid or not.
        added: advisories that were new.
        replaced: advisories replaced by a newer ``modified``.
        unchanged: advisories already stored with the same or a newer ``modified``.
        withdrawn: valid advisories in this import that are withdrawn (kept, flagged).
        problems: the documents skipped, with the reason.
    """

    source: str
    total: int
    added: int
    replaced: int
    unchanged: int
    withdrawn: int
    problems: tuple[Problem, ...] = ()

    @property
    def imported(self) -> int:
        """Valid advisories in this import."""
        return self.added + self.replaced + self.unchanged

    def to_json(self) -> dict[str, object]:
        return {
            "source": self.source,
            "total": self.total,
            "added": self.added,
            "replaced": self.replaced,
            "unchanged": self.unchanged,
            "withdrawn": self.withdrawn,
            "problems": [{"item": p.item, "message": p.message} for p in self.problems],
        }


@dataclass(frozen=True)
class Source:
    """One imported source: its name, URL, when it was imported and last confirmed current, sha256, size."""

    name: str
    url: str | None
    imported_at: float
    checked_at: float
    checksum: str | None
    count: int

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "url": self.url,
            "imported_at": self.imported_at,
            "checked_at": self.checked_at,
            "checksum": self.checksum,
            "count": self.count,
        }


@dataclass(frozen=True)
class EcosystemStats:
    """Advisory counts for one base ecosystem (``Debian``, ``PyPI``…) and when its data was last current."""

    ecosystem: str
    advisories: int
    withdrawn: int
    packages: int
    checked_at: float | None

    def to_json(self) -> dict[str, object]:
        return {
            "ecosystem": self.ecosystem,
            "advisories": self.advisories,
            "withdrawn": self.withdrawn,
            "packages": self.packages,
            "checked_at": self.checked_at,
        }


@dataclass(frozen=True)
class Progress:
    """An update event: ``download`` (bytes ``received`` of ``total``, None when unknown) or ``import``."""

    ecosystem: str
    url: str
    phase: Literal["download", "import", "done"]
    received: int = 0
    total: int | None = None


@dataclass(frozen=True)
class UpdateResult:
    """What ``update`` did for one ecosystem: ``unchanged`` when the archive was the one already imported."""

    ecosystem: str
    url: str
    unchanged: bool
    checksum: str | None
    downloaded: int
    stats: ImportStats | None = None
    resumed_from: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "ecosystem": self.ecosystem,
            "url": self.url,
            "unchanged": self.unchanged,
            "checksum": self.checksum,
            "downloaded": self.downloaded,
            "resumed_from": self.resumed_from,
            "stats": self.stats.to_json() if self.stats else None,
        }


def default_path(home: Path) -> Path:
    """Where the database lives under ``$FUNADE_HOME``."""
    return home / "vulndb.sqlite"


def url_base() -> str:
    """``$FUNADE_OSV_URL_BASE`` or osv.dev's bucket."""
    return (os.environ.get("FUNADE_OSV_URL_BASE") or DEFAULT_URL_BASE).rstrip("/")


def default_urls(ecosystems: Iterable[str] = DEFAULT_ECOSYSTEMS, base: str | None = None) -> dict[str, str]:
    """``{ecosystem: BASE/{ecosystem}/all.zip}`` as osv.dev publishes them."""
    root = (base or url_base()).rstrip("/")
    return {ecosystem: f"{root}/{ecosystem}/all.zip" for ecosystem in ecosystems}


def _modified_key(text: str) -> tuple[int, datetime | str]:
    """An RFC 3339 timestamp as something comparable; unparsable text sorts by itself, below any date."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return 0, text
    return 1, moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _newer(candidate: str, stored: str) -> bool:
    a, b = _modified_key(candidate), _modified_key(stored)
    if a[0] != b[0]:
        return a[0] > b[0]
    return a[1] > b[1]  # type: ignore[operator]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


class VulnDB:
    """OSV advisories in a SQLite file: the :class:`~funade.core.ports.VulnData` port.

    WAL mode so scans read while an update writes; every import is one transaction.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> VulnDB:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def advisories_for(self, ecosystem: str, package: str, *, include_withdrawn: bool = False) -> list[osv.Advisory]:
        """The advisories naming ``package`` in ``ecosystem``'s base (every release), sorted by id.

        ``ecosystem`` may carry a release (``Debian:12``): only the part before ``:``
        selects; matching the release is :func:`funade.core.vuln.affects`'s. PyPI names
        are compared per PEP 503. Withdrawn advisories are left out unless asked for.
        """
        base = versions.base_ecosystem(ecosystem)
        name = osv.normalize_name(base, package)
        query = (
            "SELECT a.json FROM affected x JOIN advisories a ON a.id = x.advisory"
            " WHERE x.ecosystem = ? AND x.package = ?"
            + ("" if include_withdrawn else " AND a.withdrawn = 0")
            + " ORDER BY a.id"
        )
        with self._lock:
            rows = self._db.execute(query, (base, name)).fetchall()
        return [osv.parse_advisory(row[0]) for row in rows]

    def get(self, advisory_id: str) -> osv.Advisory | None:
        """One advisory by id (withdrawn or not)."""
        with self._lock:
            row = self._db.execute("SELECT json FROM advisories WHERE id = ?", (advisory_id,)).fetchone()
        return osv.parse_advisory(row[0]) if row else None

    def imported_at(self, ecosystem: str | None = None) -> float | None:
        """When the data (of ``ecosystem``'s base, when given) was last known current, or None without data.

        An import, or an update that found the archive unchanged, both count: the data is then as
        fresh as its source.
        """
        with self._lock:
            if ecosystem is None:
                row = self._db.execute("SELECT MAX(checked_at) FROM sources").fetchone()
            else:
                row = self._db.execute(
                    "SELECT checked_at FROM ecosystems WHERE name = ?", (versions.base_ecosystem(ecosystem),)
                ).fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def sources(self) -> list[Source]:
        """Every source imported so far, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, url, imported_at, checked_at, checksum, count FROM sources ORDER BY name"
            ).fetchall()
        return [Source(str(r[0]), r[1], float(r[2]), float(r[3]), r[4], int(r[5])) for r in rows]

    def stats(self) -> list[EcosystemStats]:
        """Advisory, withdrawn and package counts per base ecosystem, by name."""
        with self._lock:
            rows = self._db.execute(
                "SELECT x.ecosystem, COUNT(DISTINCT CASE WHEN a.withdrawn = 0 THEN a.id END),"
                " COUNT(DISTINCT CASE WHEN a.withdrawn = 1 THEN a.id END), COUNT(DISTINCT x.package)"
                " FROM affected x JOIN advisories a ON a.id = x.advisory GROUP BY x.ecosystem ORDER BY x.ecosystem"
            ).fetchall()
            checked = {
                str(name).casefold(): float(at)
                for name, at in self._db.execute("SELECT name, checked_at FROM ecosystems").fetchall()
            }
        return [
            EcosystemStats(str(r[0]), int(r[1]), int(r[2]), int(r[3]), checked.get(str(r[0]).casefold())) for r in rows
        ]

    def _source_row(self, name: str) -> tuple[str | None, str | None] | None:
        with self._lock:
            row = self._db.execute("SELECT checksum, etag FROM sources WHERE name = ?", (name,)).fetchone()
        return (row[0], row[1]) if row else None

    # ------------------------------------------------------------------ importing

    def import_advisories(
        self, items: Iterable[Document], source: str, *, url: str | None = None, checksum: str | None = None
    ) -> ImportStats:
        """Import OSV documents (JSON text, bytes or decoded objects) as one transaction.

        A stored advisory is replaced only when the new one's ``modified`` is later.
        Withdrawn advisories are stored and flagged (:meth:`advisories_for` leaves them out).
        Invalid documents are skipped and reported (``#index: reason``) unless more than half
        the documents are invalid, or none is valid: then :class:`ImportRefused` is raised
        and nothing changes.
        """
        return self._import(((f"#{index}", item) for index, item in enumerate(items)), source, url, checksum)

    def import_path(self, path: Path, *, source: str | None = None, url: str | None = None) -> ImportStats:
        """Import an OSV zip (``all.zip``: one JSON file per advisory) or a directory of ``*.json`` (recursive).

        Invalid JSON or invalid advisories are skipped and reported by file name, the rest
        imported, unless more than half fail or none is valid: then :class:`ImportRefused`
        is raised and nothing changes. The source is named ``source`` (default: the
        resolved path); a zip's sha256 is recorded with it.

        Raises:
            VulnDBError: the path does not exist or is not a readable zip or directory.
            ImportRefused: too many invalid documents; nothing changed.
        """
        name = source or str(path.resolve())
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.json") if p.is_file())
            named: Iterator[tuple[str, Document]] = ((str(p.relative_to(path)), p.read_bytes()) for p in files)
            return self._import(named, name, url, None)
        if not path.is_file():
            raise VulnDBError(f"{path}: no such file or directory")
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise VulnDBError(f"{path}: not a zip archive ({exc})") from exc
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.endswith(".json")]
            return self._import(((m.filename, archive.read(m)) for m in members), name, url, _sha256(path))

    def _import(
        self,
        items: Iterable[tuple[str, Document]],
        source: str,
        url: str | None,
        checksum: str | None,
        etag: str | None = None,
    ) -> ImportStats:
        now = time.time()
        total = added = replaced = unchanged = withdrawn = 0
        problems: list[Problem] = []
        ecosystems: set[str] = set()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for item, document in items:
                    total += 1
                    try:
                        text, advisory = _decode(document)
                    except (osv.AdvisoryError, UnicodeDecodeError) as exc:
                        problems.append(Problem(item, str(exc)))
                        continue
                    if advisory.withdrawn:
                        withdrawn += 1
                    ecosystems.update(versions.base_ecosystem(a.package.ecosystem) for a in advisory.affected)
                    outcome = self._store(advisory, text, source)
                    added += outcome == "added"
                    replaced += outcome == "replaced"
                    unchanged += outcome == "unchanged"
                valid = total - len(problems)
                if valid == 0 or len(problems) * 2 > total:
                    raise ImportRefused(
                        f"{source}: refused: {len(problems)} of {total} documents invalid; nothing changed"
                        + (f" (first: {problems[0].item}: {problems[0].message})" if problems else ""),
                        problems,
                    )
                self._db.execute(
                    "INSERT INTO sources (name, url, imported_at, checked_at, checksum, etag, count)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET url = excluded.url,"
                    " imported_at = excluded.imported_at, checked_at = excluded.checked_at,"
                    " checksum = excluded.checksum, etag = excluded.etag, count = excluded.count",
                    (source, url, now, now, checksum, etag, valid),
                )
                self._db.executemany(
                    "INSERT INTO ecosystems VALUES (?, ?)"
                    " ON CONFLICT(name) DO UPDATE SET checked_at = excluded.checked_at",
                    [(name, now) for name in sorted(ecosystems)],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ImportStats(source, total, added, replaced, unchanged, withdrawn, tuple(problems))

    def _store(self, advisory: osv.Advisory, text: str, source: str) -> str:
        row = self._db.execute("SELECT modified FROM advisories WHERE id = ?", (advisory.id,)).fetchone()
        if row is not None and not _newer(advisory.modified, str(row[0])):
            return "unchanged"
        self._db.execute(
            "INSERT OR REPLACE INTO advisories (id, modified, withdrawn, source, json) VALUES (?, ?, ?, ?, ?)",
            (advisory.id, advisory.modified, 1 if advisory.withdrawn else 0, source, text),
        )
        self._db.execute("DELETE FROM affected WHERE advisory = ?", (advisory.id,))
        self._db.executemany(
            "INSERT OR IGNORE INTO affected (ecosystem, package, advisory) VALUES (?, ?, ?)",
            [
                (
                    versions.base_ecosystem(a.package.ecosystem),
                    osv.normalize_name(a.package.ecosystem, a.package.name),
                    advisory.id,
                )
                for a in advisory.affected
            ],
        )
        return "added" if row is None else "replaced"

    def _touch(self, source: str, url: str, etag: str | None) -> None:
        """Record that ``source`` was found unchanged at ``url`` just now."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "UPDATE sources SET checked_at = ?, url = ?, etag = COALESCE(?, etag) WHERE name = ?",
                    (now, url, etag, source),
                )
                self._db.execute(
                    "INSERT INTO ecosystems SELECT DISTINCT x.ecosystem, ? FROM affected x JOIN advisories a"
                    " ON a.id = x.advisory WHERE a.source = ?"
                    " ON CONFLICT(name) DO UPDATE SET checked_at = excluded.checked_at",
                    (now, source),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------------------ updating

    def update(
        self,
        urls: Mapping[str, str],
        download_dir: Path | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        *,
        client: httpx.Client | None = None,
    ) -> list[UpdateResult]:
        """Download each ecosystem's OSV archive and import the ones that changed.

        Downloads resume: a partial ``<ecosystem>-all.zip.part`` is continued with
        ``Range: bytes=N-`` (``If-Range`` with the validator it was started with); a 200
        answer restarts it. The server's ETag is sent as ``If-None-Match`` when there is no
        partial file, and a 304 means unchanged. An ``x-goog-hash: md5=`` header (Google
        Cloud Storage, where osv.dev publishes) is checked. The archive's sha256 is kept:
        an archive equal to the last one imported is not imported again.

        Every archive is downloaded before anything is imported, so an unreachable URL
        changes no data. Each import is then its own transaction.

        Raises:
            DownloadError: naming the URL that failed; nothing was imported.
            ImportRefused: an archive had too many invalid documents (earlier ecosystems stay imported).
        """
        folder = download_dir or self.path.parent / "osv-downloads"
        folder.mkdir(parents=True, exist_ok=True)
        emit = on_progress or (lambda _event: None)
        own = client is None
        http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0))
        fetched: list[tuple[str, str, _Fetched]] = []
        try:
            for ecosystem, url in urls.items():
                known = self._source_row(ecosystem)
                target = folder / f"{ecosystem}-all.zip"
                fetched.append((ecosystem, url, _download(http, ecosystem, url, target, known, emit)))
        finally:
            if own:
                http.close()
        results = []
        for ecosystem, url, got in fetched:
            known = self._source_row(ecosystem)
            if got.path is None or (known is not None and known[0] == got.checksum):
                self._touch(ecosystem, url, got.etag)
                if got.path is not None:
                    got.path.unlink(missing_ok=True)
                checksum = got.checksum or (known[0] if known else None)
                results.append(UpdateResult(ecosystem, url, True, checksum, got.size, None, got.resumed_from))
                emit(Progress(ecosystem, url, "done"))
                continue
            emit(Progress(ecosystem, url, "import"))
            stats = self._import_zip(got.path, ecosystem, url, got.checksum, got.etag)
            got.path.unlink(missing_ok=True)
            results.append(UpdateResult(ecosystem, url, False, got.checksum, got.size, stats, got.resumed_from))
            emit(Progress(ecosystem, url, "done"))
        return results

    def _import_zip(self, path: Path, source: str, url: str, checksum: str | None, etag: str | None) -> ImportStats:
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise VulnDBError(f"{url}: the download is not a zip archive ({exc})") from exc
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir() and m.filename.endswith(".json")]
            return self._import(((m.filename, archive.read(m)) for m in members), source, url, checksum, etag)


def _decode(document: Document) -> tuple[str, osv.Advisory]:
    """The text to store and the parsed advisory."""
    if isinstance(document, bytes):
        document = document.decode("utf-8")
    if isinstance(document, str):
        try:
            data = json.loads(document)
        except ValueError as exc:
            raise osv.AdvisoryError(f"not JSON: {exc}") from None
        return document, osv.parse_advisory(data)
    return json.dumps(document, ensure_ascii=False), osv.parse_advisory(document)


@dataclass(frozen=True)
class _Fetched:
    """A finished download (``path`` None when the server said 304 Not Modified)."""

    path: Path | None
    checksum: str | None
    etag: str | None
    size: int
    resumed_from: int = 0


def _content_range_total(value: str | None) -> int | None:
    """``bytes a-b/total`` or ``bytes */total`` → total."""
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _content_range_start(value: str | None) -> int | None:
    if not value:
        return None
    spec = value.strip().removeprefix("bytes").strip().split("/", 1)[0]
    start = spec.split("-", 1)[0]
    return int(start) if start.isdigit() else None


def _goog_md5(headers: httpx.Headers) -> bytes | None:
    for value in headers.get_list("x-goog-hash", split_commas=True):
        kind, _, digest = value.strip().partition("=")
        if kind == "md5" and digest:
            try:
                return base64.b64decode(digest)
            except ValueError:
                return None
    return None


def _download(
    http: httpx.Client,
    ecosystem: str,
    url: str,
    target: Path,
    known: tuple[str | None, str | None] | None,
    emit: Callable[[Progress], None],
    *,
    retried: bool = False,
) -> _Fetched:
    """Download ``url`` to ``target`` through ``target.part``, resuming it when it exists."""
    part = target.with_name(target.name + ".part")
    validator_file = target.with_name(target.name + ".part.validator")
    offset = part.stat().st_size if part.exists() else 0
    headers: dict[str, str] = {}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator_file.exists():
            headers["If-Range"] = validator_file.read_text().strip()
    elif known is not None and known[1]:
        headers["If-None-Match"] = known[1]
    try:
        with http.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status == 304:
                return _Fetched(None, None, known[1] if known else None, 0)
            if status == 416 and offset:
                total = _content_range_total(response.headers.get("content-range"))
                if total == offset:  # the partial file is already complete
                    part.replace(target)
                    validator_file.unlink(missing_ok=True)
                    return _finish(url, target, response.headers, 0, offset)
                part.unlink()
                validator_file.unlink(missing_ok=True)
                if retried:
                    raise DownloadError(url, "HTTP 416 (range not satisfiable)")
                return _download(http, ecosystem, url, target, known, emit, retried=True)
            if status == 206 and offset and _content_range_start(response.headers.get("content-range")) == offset:
                mode, received = "ab", offset
                total = _content_range_total(response.headers.get("content-range"))
            elif status == 200:
                mode, received, offset = "wb", 0, 0
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
            else:
                raise DownloadError(url, f"HTTP {status} {response.reason_phrase}".rstrip())
            validator = response.headers.get("etag") or response.headers.get("last-modified")
            if mode == "wb":
                if validator:
                    validator_file.write_text(validator)
                else:
                    validator_file.unlink(missing_ok=True)
            emit(Progress(ecosystem, url, "download", received, total))
            with part.open(mode) as fh:
                for chunk in response.iter_bytes(1 << 16):
                    fh.write(chunk)
                    received += len(chunk)
                    emit(Progress(ecosystem, url, "download", received, total))
            if total is not None and received != total:
                raise DownloadError(url, f"connection closed after {received} of {total} bytes (run again to resume)")
            part.replace(target)
            validator_file.unlink(missing_ok=True)
            return _finish(url, target, response.headers, received - offset, offset)
    except httpx.HTTPError as exc:
        raise DownloadError(url, f"cannot download ({type(exc).__name__}: {exc or 'no detail'})") from exc


def _finish(url: str, target: Path, headers: httpx.Headers, size: int, resumed_from: int) -> _Fetched:
    """Check the server's md5 when it offers one, and compute our sha256."""
    md5 = _goog_md5(headers)
    if md5 is not None:
        digest = hashlib.md5(usedforsecurity=False)
        with target.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
        if digest.digest() != md5:
            target.unlink(missing_ok=True)
            raise DownloadError(url, "the download does not match the server's md5 (x-goog-hash); removed it")
    return _Fetched(target, _sha256(target), headers.get("etag"), size, resumed_from)
