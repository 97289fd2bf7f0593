"""funade's own records in SQLite: applied objects, revisions, events, the audit log and image events.

One file under ``$FUNADE_HOME``; WAL mode so readers never block the controllers.
Every write is one transaction, so a crash leaves either the old or the new state.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from funade.core import revisions
from funade.core.ports import AuditEntry, Event, ObjectKey
from funade.core.registryevents import ImageEvent

__all__ = ["SqliteStore"]

Obj = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    kind TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (kind, namespace, name)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, namespace TEXT NOT NULL,
    kind TEXT NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL,
    message TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS events_object ON events (namespace, kind, name);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
    namespace TEXT NOT NULL, reason TEXT NOT NULL, objects TEXT NOT NULL, details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_namespace ON audit (namespace, time);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS image_events (
    id TEXT PRIMARY KEY, registry TEXT NOT NULL, action TEXT NOT NULL, repository TEXT NOT NULL,
    digest TEXT NOT NULL, tag TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL, time TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS image_events_repository ON image_events (registry, repository);
CREATE TABLE IF NOT EXISTS scan_results (
    registry TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL,
    scanned_at REAL NOT NULL, data_imported_at REAL, body TEXT NOT NULL,
    PRIMARY KEY (registry, repository, digest)
);
"""


def _comparable(obj: Obj) -> Obj:
    """The parts of an object a user controls (what decides 'unchanged')."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k in ("labels", "annotations", "ownerReferences")}
    rest = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    return {"metadata": meta, **rest}


class SqliteStore:
    """The Store protocol on a SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()

    def close(self) -> None:
        self._db.close()

    def _next_version(self) -> int:
        self._db.execute(
            "INSERT INTO counters VALUES ('resourceVersion', 1) ON CONFLICT(name) DO UPDATE SET value = value + 1"
        )
        row = self._db.execute("SELECT value FROM counters WHERE name='resourceVersion'").fetchone()
        return int(row[0])

    def get(self, key: ObjectKey) -> Obj | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                (key.kind, key.namespace, key.name),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def list_objects(self, kind: str, namespace: str | None = None) -> list[Obj]:
        with self._lock:
            if namespace is None:
                rows = self._db.execute(
                    "SELECT body FROM objects WHERE kind=? ORDER BY namespace, name", (kind,)
                ).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT body FROM objects WHERE kind=? AND namespace=? ORDER BY name",
                    (kind, namespace),
                ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def kinds(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT kind FROM objects ORDER BY kind").fetchall()
        return [str(r[0]) for r in rows]

    def labelled(self, label: str, value: str) -> list[Obj]:
        """Objects whose ``metadata.labels[label]`` is ``value``, matched inside SQLite (no decode of the rest)."""
        path = "$.metadata.labels." + json.dumps(label)
        with self._lock:
            rows = self._db.execute(
                "SELECT body FROM objects WHERE json_extract(body, ?) = ? ORDER BY kind, namespace, name", (path, value)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def put_many(self, objs: Sequence[Obj]) -> list[tuple[Obj, str]]:
        results: list[tuple[Obj, str]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for obj in objs:
                    results.append(self._put(obj))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return results

    def _put(self, obj: Obj) -> tuple[Obj, str]:
        key = ObjectKey.of(obj)
        row = self._db.execute(
            "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
            (key.kind, key.namespace, key.name),
        ).fetchone()
        new = json.loads(json.dumps(obj))
        meta = new.setdefault("metadata", {})
        if row is None:
            new.pop("status", None)
            meta.setdefault("uid", str(uuid.uuid4()))
            meta["creationTimestamp"] = revisions.rfc3339(time.time())
            meta["generation"] = 1
            action = "created"
        else:
            old = json.loads(row[0])
            if _comparable(old) == _comparable(new):
                return old, "unchanged"
            old_meta = old["metadata"]
            for field in ("uid", "creationTimestamp"):
                meta[field] = old_meta[field]
            old_spec = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            new_spec = {k: v for k, v in new.items() if k not in ("metadata", "status")}
            generation = int(old_meta.get("generation", 1))
            meta["generation"] = generation + 1 if old_spec != new_spec else generation
            new.pop("status", None)
            if "status" in old:
                new["status"] = old["status"]  # status belongs to the controllers (put_status)
            action = "configured"
        meta["resourceVersion"] = str(self._next_version())
        self._db.execute(
            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
            (key.kind, key.namespace, key.name, json.dumps(new)),
        )
        return new, action

    def put_status(self, key: ObjectKey, status: Obj) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT body FROM objects WHERE kind=? AND namespace=? AND name=?",
                    (key.kind, key.namespace, key.name),
                ).fetchone()
                if row is not None:
                    obj = json.loads(row[0])
                    if obj.get("status") != status:
                        obj["status"] = status
                        obj["metadata"]["resourceVersion"] = str(self._next_version())
                        self._db.execute(
                            "UPDATE objects SET body=? WHERE kind=? AND namespace=? AND name=?",
                            (json.dumps(obj), key.kind, key.namespace, key.name),
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def delete(self, key: ObjectKey) -> bool:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM objects WHERE kind=? AND namespace=? AND name=?",
                (key.kind, key.namespace, key.name),
            )
        return cur.rowcount > 0

    def add_event(self, event: Event) -> None:
        with self._lock:
            # Repeated events about the same thing are folded into one with a count, as kubectl shows.
            row = self._db.execute(
                "SELECT id, count FROM events WHERE namespace=? AND kind=? AND name=? AND reason=? "
                "AND message=? ORDER BY id DESC LIMIT 1",
                (event.namespace, event.kind, event.name, event.reason, event.message),
            ).fetchone()
            if row is not None:
                self._db.execute("UPDATE events SET count=?, time=? WHERE id=?", (int(row[1]) + 1, event.time, row[0]))
            else:
                self._db.execute(
                    "INSERT INTO events (time, namespace, kind, name, type, reason, message, count) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        event.time,
                        event.namespace,
                        event.kind,
                        event.name,
                        event.type,
                        event.reason,
                        event.message,
                        event.count,
                    ),
                )
            self._db.execute("DELETE FROM events WHERE time < ?", (time.time() - 3600 * 24,))

    def delete_events(self, namespace: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM events WHERE namespace=?", (namespace,))

    def events(
        self, namespace: str | None = None, kind: str | None = None, name: str | None = None, limit: int = 200
    ) -> list[Event]:
        clauses, params = [], []
        for column, value in (("namespace", namespace), ("kind", kind), ("name", name)):
            if value is not None:
                clauses.append(f"{column}=?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT time, namespace, kind, name, type, reason, message, count FROM events "
                f"{where} ORDER BY time DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [Event(*r) for r in reversed(rows)]

    def add_audit(self, entry: AuditEntry) -> None:
        """Append to the audit log (kept for good: never folded, expired or deleted with a namespace)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO audit (time, actor, action, namespace, reason, objects, details) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    entry.time,
                    entry.actor,
                    entry.action,
                    entry.namespace,
                    entry.reason,
                    json.dumps(list(entry.objects)),
                    json.dumps(list(entry.details)),
                ),
            )

    def audit(self, namespace: str | None = None, limit: int = 200) -> list[AuditEntry]:
        """The newest ``limit`` audit entries (of one namespace, or all), oldest first."""
        where, params = ("WHERE namespace=?", (namespace,)) if namespace is not None else ("", ())
        with self._lock:
            rows = self._db.execute(
                f"SELECT time, actor, action, namespace, reason, objects, details FROM audit {where} "
                "ORDER BY id DESC LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [
            AuditEntry(t, actor, action, ns, reason, tuple(json.loads(objs)), tuple(json.loads(details)))
            for t, actor, action, ns, reason, objs, details in reversed(rows)
        ]

    def add_image_events(self, events: Sequence[ImageEvent]) -> int:
        """Keep registry notifications; a redelivered event (same id) is stored once. Returns how many were new."""
        with self._lock:
            before = self._db.total_changes
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT OR IGNORE INTO image_events (id, registry, action, repository, digest, tag, media_type, "
                    "size, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            e.id,
                            e.registry,
                            e.action,
                            e.repository,
                            e.digest,
                            e.tag,
                            e.media_type,
                            e.size,
                            e.time.isoformat(),
                        )
                        for e in events
                    ],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return self._db.total_changes - before

    def image_events(self, registry: str, repository: str | None = None) -> list[ImageEvent]:
        """The image events of a registry (one repository or all), oldest first."""
        query = "SELECT id, registry, action, repository, digest, tag, media_type, size, time FROM image_events "
        params: tuple[str, ...] = (registry,)
        query += "WHERE registry=?"
        if repository is not None:
            query += " AND repository=?"
            params += (repository,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY time, rowid", params).fetchall()
        return [
            ImageEvent(r[0], r[1], r[2], r[3], r[4], r[5], r[6], int(r[7]), datetime.fromisoformat(r[8])) for r in rows
        ]

    def put_scan_result(
        self, registry: str, repository: str, digest: str, data_imported_at: float | None, body: Obj
    ) -> None:
        """Keep the latest scan of an image (one row per registry, repository and digest)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO scan_results "
                "(registry, repository, digest, scanned_at, data_imported_at, body) VALUES (?, ?, ?, ?, ?, ?)",
                (registry, repository, digest, time.time(), data_imported_at, json.dumps(body)),
            )

    def scan_result(self, registry: str, repository: str, digest: str) -> Obj | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body, scanned_at, data_imported_at FROM scan_results WHERE registry=? AND repository=? "
                "AND digest=?",
                (registry, repository, digest),
            ).fetchone()
        if row is None:
            return None
        return {**json.loads(row[0]), "scannedAt": row[1], "dataImportedAt": row[2]}

    def scanned_images(self) -> list[tuple[str, str, str, float | None]]:
        """(registry, repository, digest, data_imported_at) of every stored scan."""
        with self._lock:
            rows = self._db.execute(
                "SELECT registry, repository, digest, data_imported_at FROM scan_results ORDER BY scanned_at"
            ).fetchall()
        return [(str(r[0]), str(r[1]), str(r[2]), r[3]) for r in rows]

    def notifying_registries(self) -> list[str]:
        """Every registry that has sent image events."""
        with self._lock:
            rows = self._db.execute("SELECT DISTINCT registry FROM image_events ORDER BY registry").fetchall()
        return [str(r[0]) for r in rows]
