"""The local OSV database: imports are atomic and idempotent, look-ups follow OSV naming, updates resume.

Fixtures are small OSV advisories written here (Debian:12 glibc, PyPI requests, npm lodash,
a withdrawn one), zipped like osv.dev's ``all.zip``. ``update`` downloads them from an
HTTP server on 127.0.0.1 in a thread that speaks ``Range``/``If-Range``/``If-None-Match``
the way Google Cloud Storage does; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import threading
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from funade.adapters import vulndb
from funade.adapters.vulndb import VulnDB
from funade.cli.main import app
from funade.core import vuln
from funade.core.ports import VulnData

pytestmark = pytest.mark.unit

Doc = dict[str, Any]

GLIBC: Doc = {
    "id": "DEBIAN-CVE-2023-4911",
    "modified": "2024-01-10T00:00:00Z",
    "aliases": ["CVE-2023-4911"],
    "summary": "glibc: buffer overflow in ld.so (Looney Tunables)",
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "glibc"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.36-9+deb12u3"}]}],
            "ecosystem_specific": {"urgency": "high"},
        }
    ],
}
REQUESTS: Doc = {
    "id": "PYSEC-2023-74",
    "modified": "2024-01-10T00:00:00Z",
    "aliases": ["CVE-2023-32681"],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "Requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "2.3.0"}, {"fixed": "2.31.0"}]}],
        }
    ],
}
LODASH: Doc = {
    "id": "GHSA-35jh-r3h4-6jhm",
    "modified": "2024-01-10T00:00:00Z",
    "affected": [
        {
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}],
        }
    ],
}
WITHDRAWN: Doc = {
    "id": "GHSA-wwww-wwww-wwww",
    "modified": "2024-01-10T00:00:00Z",
    "withdrawn": "2024-01-09T00:00:00Z",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
        }
    ],
}
ALL = (GLIBC, REQUESTS, LODASH, WITHDRAWN)


def write_zip(path: Path, docs: Mapping[str, Doc | str]) -> Path:
    """A zip like osv.dev's all.zip: one ``ID.json`` per advisory (a str is written as is)."""
    with zipfile.ZipFile(path, "w") as archive:
        for name, doc in docs.items():
            archive.writestr(name, doc if isinstance(doc, str) else json.dumps(doc))
    return path


def osv_zip(path: Path, docs: tuple[Doc, ...] = ALL) -> Path:
    return write_zip(path, {f"{doc['id']}.json": doc for doc in docs})


@pytest.fixture
def db(tmp_path: Path) -> Iterator[VulnDB]:
    database = VulnDB(tmp_path / "home" / "vulndb.sqlite")
    yield database
    database.close()


# ---------------------------------------------------------------------------- import


def test_import_zip_counts_and_lookups(db: VulnDB, tmp_path: Path) -> None:
    archive = osv_zip(tmp_path / "all.zip")
    stats = db.import_path(archive)
    assert (stats.total, stats.added, stats.replaced, stats.unchanged, stats.withdrawn) == (4, 4, 0, 0, 1)
    assert stats.problems == ()

    assert [a.id for a in db.advisories_for("Debian:12", "glibc")] == ["DEBIAN-CVE-2023-4911"]
    assert [a.id for a in db.advisories_for("Debian", "glibc")] == ["DEBIAN-CVE-2023-4911"]
    assert [a.id for a in db.advisories_for("debian:11", "glibc")] == ["DEBIAN-CVE-2023-4911"]  # caller matches release
    assert db.advisories_for("Debian:12", "openssl") == []
    assert [a.id for a in db.advisories_for("npm", "lodash")] == ["GHSA-35jh-r3h4-6jhm"]
    assert db.advisories_for("PyPI", "lodash") == []


def test_pypi_names_are_normalised_and_withdrawn_are_flagged(db: VulnDB, tmp_path: Path) -> None:
    db.import_path(osv_zip(tmp_path / "all.zip"))
    for spelling in ("requests", "Requests", "REQUESTS"):
        assert [a.id for a in db.advisories_for("PyPI", spelling)] == ["PYSEC-2023-74"]
    both = db.advisories_for("PyPI", "requests", include_withdrawn=True)
    assert [a.id for a in both] == ["GHSA-wwww-wwww-wwww", "PYSEC-2023-74"]
    assert both[0].withdrawn == "2024-01-09T00:00:00Z"
    by_ecosystem = {s.ecosystem: s for s in db.stats()}
    assert (by_ecosystem["PyPI"].advisories, by_ecosystem["PyPI"].withdrawn) == (1, 1)
    assert (by_ecosystem["Debian"].advisories, by_ecosystem["npm"].advisories) == (1, 1)


def test_stored_advisories_feed_the_matcher(db: VulnDB, tmp_path: Path) -> None:
    db.import_path(osv_zip(tmp_path / "all.zip"))
    [advisory] = db.advisories_for("Debian:12", "glibc")
    match = vuln.affects(advisory, "Debian:12", "glibc", "2.36-9+deb12u1")
    assert match is not None and match.fixed == "2.36-9+deb12u3"
    assert vuln.affects(advisory, "Debian:12", "glibc", "2.36-9+deb12u3") is None
    assert vuln.severity(advisory, "Debian:12", "glibc").level is vuln.Level.HIGH
    [pysec] = db.advisories_for("PyPI", "requests")
    assert vuln.affects(pysec, "PyPI", "requests", "2.30.0") is not None


def test_satisfies_the_port(db: VulnDB) -> None:
    port: VulnData = db
    assert port.imported_at() is None
    assert port.advisories_for("PyPI", "requests") == []


def test_sources_and_imported_at(db: VulnDB, tmp_path: Path) -> None:
    archive = osv_zip(tmp_path / "all.zip")
    db.import_path(archive, source="PyPI")
    [source] = db.sources()
    assert source.name == "PyPI" and source.count == 4
    assert source.checksum == "sha256:" + hashlib.sha256(archive.read_bytes()).hexdigest()
    at = db.imported_at()
    assert at is not None and at == source.imported_at
    assert db.imported_at("Debian:12") == at
    assert db.imported_at("Maven") is None


def test_newer_modified_replaces_older_does_not(db: VulnDB) -> None:
    db.import_advisories([REQUESTS], source="one")
    moved = {
        **REQUESTS,
        "modified": "2024-02-01T00:00:00.5Z",
        "affected": [{**REQUESTS["affected"][0], "package": {"ecosystem": "PyPI", "name": "urllib3"}}],
    }
    stats = db.import_advisories([json.dumps(moved)], source="two")
    assert (stats.added, stats.replaced, stats.unchanged) == (0, 1, 0)
    assert db.advisories_for("PyPI", "requests") == []  # the index follows the replacement
    assert [a.modified for a in db.advisories_for("PyPI", "urllib3")] == ["2024-02-01T00:00:00.5Z"]

    stats = db.import_advisories([json.dumps(REQUESTS).encode()], source="three")  # older again: kept the newer
    assert (stats.added, stats.replaced, stats.unchanged) == (0, 0, 1)
    assert [a.id for a in db.advisories_for("PyPI", "urllib3")] == ["PYSEC-2023-74"]


def test_bad_files_are_reported_by_name_and_the_rest_imported(db: VulnDB, tmp_path: Path) -> None:
    folder = tmp_path / "osv"
    (folder / "nested").mkdir(parents=True)
    for doc in ALL:
        (folder / "nested" / f"{doc['id']}.json").write_text(json.dumps(doc))
    (folder / "broken.json").write_text("{not json")
    (folder / "README.md").write_text("ignored: not JSON by name")
    (folder / "no-id.json").write_text(json.dumps({"modified": "2024-01-01T00:00:00Z"}))
    stats = db.import_path(folder)
    assert stats.total == 6 and stats.added == 4
    problems = {p.item: p.message for p in stats.problems}
    assert set(problems) == {"broken.json", "no-id.json"}
    assert "not JSON" in problems["broken.json"]
    assert "id" in problems["no-id.json"]


def test_mostly_bad_import_is_refused_and_changes_nothing(db: VulnDB, tmp_path: Path) -> None:
    db.import_path(osv_zip(tmp_path / "good.zip", (GLIBC,)), source="Debian")
    newer_glibc = {**GLIBC, "modified": "2025-01-01T00:00:00Z", "affected": []}
    bad = write_zip(
        tmp_path / "bad.zip",
        {"a.json": "nope", "b.json": json.dumps({"id": "X"}), "c.json": json.dumps(newer_glibc)},
    )
    with pytest.raises(vulndb.ImportRefused) as caught:
        db.import_path(bad, source="Debian")
    assert {p.item for p in caught.value.problems} == {"a.json", "b.json"}
    assert [a.modified for a in db.advisories_for("Debian", "glibc")] == ["2024-01-10T00:00:00Z"]
    assert [s.count for s in db.sources()] == [1]

    with pytest.raises(vulndb.ImportRefused):
        db.import_path(write_zip(tmp_path / "empty.zip", {}))
    with pytest.raises(vulndb.VulnDBError, match="not a zip"):
        db.import_path(_text_file(tmp_path))
    with pytest.raises(vulndb.VulnDBError, match="no such file"):
        db.import_path(tmp_path / "missing.zip")


def _text_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain.zip"
    path.write_text("not a zip")
    return path


# ---------------------------------------------------------------------------- update over HTTP


@dataclass
class Served:
    """What the loopback server serves and what it was asked."""

    files: dict[str, bytes] = field(default_factory=dict)
    etags: bool = True
    md5: dict[str, bytes] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)


class _Handler(http.server.BaseHTTPRequestHandler):
    served: Served

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        served = self.served
        served.requests.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        body = served.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        etag = f'"{hashlib.sha256(body).hexdigest()[:16]}"'
        extra = {"ETag": etag} if served.etags else {}
        if self.path in served.md5:
            extra["x-goog-hash"] = f"crc32c=AAAAAA==, md5={base64.b64encode(served.md5[self.path]).decode()}"
        if served.etags and self.headers.get("If-None-Match") == etag:
            self._reply(304, b"", extra)
            return
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and (if_range is None or if_range == etag):
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self._reply(416, b"", {**extra, "Content-Range": f"bytes */{len(body)}"})
                return
            headers = {**extra, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self._reply(206, body[start:], headers)
            return
        self._reply(200, body, extra)

    def _reply(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[tuple[str, Served]]:
    served = Served()
    handler = type("Handler", (_Handler,), {"served": served})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_update_downloads_imports_and_skips_unchanged(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    served.files["/PyPI/all.zip"] = osv_zip(tmp_path / "pypi.zip", (REQUESTS, WITHDRAWN)).read_bytes()
    served.files["/npm/all.zip"] = osv_zip(tmp_path / "npm.zip", (LODASH,)).read_bytes()
    urls = vulndb.default_urls(["PyPI", "npm"], base=base)
    events: list[vulndb.Progress] = []

    first = db.update(urls, tmp_path / "dl", events.append)
    assert [(r.ecosystem, r.unchanged) for r in first] == [("PyPI", False), ("npm", False)]
    assert first[0].stats is not None and first[0].stats.added == 2
    assert [a.id for a in db.advisories_for("npm", "lodash")] == ["GHSA-35jh-r3h4-6jhm"]
    downloads = [e for e in events if e.phase == "download" and e.ecosystem == "PyPI"]
    assert downloads[-1].received == downloads[-1].total == len(served.files["/PyPI/all.zip"])
    assert {s.name: s.url for s in db.sources()} == urls
    assert not list((tmp_path / "dl").iterdir())  # archives are removed once imported

    # The server's ETag answers "unchanged" without a download.
    second = db.update(urls, tmp_path / "dl")
    assert all(r.unchanged and r.stats is None for r in second)
    assert served.requests[-1]["if-none-match"]
    assert [r.downloaded for r in second] == [0, 0]

    # Without ETags the whole archive comes again, and our sha256 says it is the same one.
    served.etags = False
    third = db.update(urls, tmp_path / "dl")
    assert all(r.unchanged and r.stats is None for r in third)
    assert third[0].downloaded == len(served.files["/PyPI/all.zip"])


def test_update_resumes_a_partial_download(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    body = osv_zip(tmp_path / "pypi.zip", ALL).read_bytes()
    served.files["/PyPI/all.zip"] = body
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "PyPI-all.zip.part").write_bytes(body[:100])
    [result] = db.update({"PyPI": f"{base}/PyPI/all.zip"}, folder)
    assert served.requests[-1]["range"] == "bytes=100-"
    assert result.resumed_from == 100 and result.downloaded == len(body) - 100
    assert result.checksum == "sha256:" + hashlib.sha256(body).hexdigest()
    assert result.stats is not None and result.stats.added == 4


def test_a_stale_partial_download_is_restarted(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    body = osv_zip(tmp_path / "pypi.zip", ALL).read_bytes()
    served.files["/PyPI/all.zip"] = body
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "PyPI-all.zip.part").write_bytes(b"x" * 50)
    (folder / "PyPI-all.zip.part.validator").write_text('"an-older-version"')
    [result] = db.update({"PyPI": f"{base}/PyPI/all.zip"}, folder)
    assert served.requests[-1]["if-range"] == '"an-older-version"'
    assert result.resumed_from == 0 and result.stats is not None and result.stats.added == 4


def test_a_complete_partial_download_is_finished(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    body = osv_zip(tmp_path / "pypi.zip", ALL).read_bytes()
    served.files["/PyPI/all.zip"] = body
    folder = tmp_path / "dl"
    folder.mkdir()
    (folder / "PyPI-all.zip.part").write_bytes(body)  # interrupted just before the rename
    [result] = db.update({"PyPI": f"{base}/PyPI/all.zip"}, folder)
    assert result.stats is not None and result.stats.added == 4


def test_unreachable_or_missing_urls_change_nothing(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    served.files["/npm/all.zip"] = osv_zip(tmp_path / "npm.zip", (LODASH,)).read_bytes()
    with pytest.raises(vulndb.DownloadError) as caught:
        db.update({"npm": f"{base}/npm/all.zip", "PyPI": f"{base}/PyPI/all.zip"}, tmp_path / "dl")
    assert caught.value.url == f"{base}/PyPI/all.zip" and "404" in str(caught.value)
    assert db.sources() == [] and db.advisories_for("npm", "lodash") == []

    with pytest.raises(vulndb.DownloadError, match=r"http://127\.0\.0\.1:9/x/all\.zip"):
        db.update({"x": "http://127.0.0.1:9/x/all.zip"}, tmp_path / "dl")


def test_server_md5_is_checked(db: VulnDB, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    body = osv_zip(tmp_path / "npm.zip", (LODASH,)).read_bytes()
    served.files["/npm/all.zip"] = body
    served.md5["/npm/all.zip"] = hashlib.md5(b"something else", usedforsecurity=False).digest()
    with pytest.raises(vulndb.DownloadError, match="md5"):
        db.update({"npm": f"{base}/npm/all.zip"}, tmp_path / "dl")
    assert db.sources() == []
    served.md5["/npm/all.zip"] = hashlib.md5(body, usedforsecurity=False).digest()
    [result] = db.update({"npm": f"{base}/npm/all.zip"}, tmp_path / "dl")
    assert result.stats is not None and result.stats.added == 1


def test_default_urls_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FUNADE_OSV_URL_BASE", raising=False)
    urls = vulndb.default_urls()
    assert list(urls) == ["Debian", "Alpine", "PyPI", "npm", "Go", "Maven"]
    assert urls["PyPI"] == "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
    monkeypatch.setenv("FUNADE_OSV_URL_BASE", "http://mirror.example/osv/")
    assert vulndb.default_urls(["Go"]) == {"Go": "http://mirror.example/osv/Go/all.zip"}


# ---------------------------------------------------------------------------- CLI


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "funade-home"
    monkeypatch.setenv("FUNADE_HOME", str(path))
    monkeypatch.delenv("FUNADE_OSV_URL_BASE", raising=False)
    return path


def test_cli_import_and_status(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(app, ["vuln", "db", "status"])
    assert empty.exit_code == 1 and "no vulnerability data" in empty.stderr

    archive = osv_zip(tmp_path / "all.zip")
    result = runner.invoke(app, ["vuln", "db", "import", str(archive), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["added"] == 4
    assert (home / "vulndb.sqlite").exists()

    status = runner.invoke(app, ["vuln", "db", "status", "-o", "json"])
    assert status.exit_code == 0, status.output
    document = json.loads(status.stdout)
    assert {e["ecosystem"]: e["advisories"] for e in document["ecosystems"]} == {"Debian": 1, "npm": 1, "PyPI": 1}
    assert document["stale"] is False and document["warnings"] == []
    assert document["age_seconds"] >= 0

    stale = runner.invoke(app, ["vuln", "db", "status", "--max-age", "0s"])
    assert stale.exit_code == 0 and "warning:" in stale.stderr and "old" in stale.stderr
    assert "Debian" in stale.stdout

    bad = runner.invoke(app, ["vuln", "db", "import", str(tmp_path / "missing.zip")])
    assert bad.exit_code == 1 and "no such file" in bad.stderr


def test_cli_update_from_a_local_mirror(home: Path, tmp_path: Path, server: tuple[str, Served]) -> None:
    base, served = server
    served.files["/npm/all.zip"] = osv_zip(tmp_path / "npm.zip", (LODASH,)).read_bytes()
    runner = CliRunner()
    result = runner.invoke(app, ["vuln", "db", "update", "-e", "npm", "--url-base", base, "-o", "json"])
    assert result.exit_code == 0, result.output
    [entry] = json.loads(result.stdout)["results"]
    assert entry["ecosystem"] == "npm" and entry["stats"]["added"] == 1

    text = runner.invoke(app, ["vuln", "db", "update", "-e", "npm", "--url-base", base])
    assert text.exit_code == 0 and "npm: unchanged" in text.stdout

    failed = runner.invoke(app, ["vuln", "db", "update", "-e", "npm", "-e", "Go", "--url-base", base])
    assert failed.exit_code == 1
    assert f"{base}/Go/all.zip" in failed.stderr and "not changed" in failed.stderr
