"""The embedded registry: the CNCF distribution registry (Debian `docker-registry`), run by funade.

It listens on 127.0.0.1 only, keeps its blobs under ``$FUNADE_HOME/registry``, allows
deletes (lifecycle cleanup needs them), sends push/pull/delete notifications to the funade
server (they are the push dates lifecycle rules need) and is started and stopped like the
server: a pid file, a log file, and a wait until ``GET /v2/`` answers.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import httpx
import yaml

from funade.adapters.daemon import Daemon, DaemonError

__all__ = ["DEFAULT_ADDRESS", "RegistryServer", "RegistryStatus", "ServerError"]

DEFAULT_ADDRESS = "127.0.0.1:5000"


class ServerError(Exception):
    """The registry could not be started, or is not installed."""


@dataclass(frozen=True)
class RegistryStatus:
    """Whether the embedded registry runs, where, and with which process."""

    running: bool
    address: str
    pid: int | None
    storage: Path


class RegistryServer:
    """Starts, stops and checks the registry of one funade home."""

    def __init__(self, home: Path, address: str = DEFAULT_ADDRESS, notify: str | None = None) -> None:
        host = address.rpartition(":")[0]
        if host not in ("127.0.0.1", "localhost", "[::1]"):
            raise ServerError(f"{address}: the embedded registry listens on loopback only (127.0.0.1)")
        self.home = home
        self.address = address
        # Where push/pull/delete notifications go: the funade server's address (HOST:PORT).
        self.notify = notify
        self.dir = home / "registry"
        self.storage = self.dir / "data"
        self.config = self.dir / "config.yml"
        self.log = self.dir / "registry.log"
        self.pid_file = self.dir / "registry.pid"
        self.daemon = Daemon("the registry", self.pid_file, self.log)

    @classmethod
    def of_home(cls, home: Path) -> RegistryServer:
        """The registry of ``home`` at the address (and with the notifications) it was last started with."""
        try:
            config = yaml.safe_load((home / "registry" / "config.yml").read_text())
            address = str(config["http"]["addr"])
        except (OSError, KeyError, TypeError, yaml.YAMLError):
            return cls(home, DEFAULT_ADDRESS)
        try:
            notify = urllib.parse.urlsplit(str(config["notifications"]["endpoints"][0]["url"])).netloc or None
        except (KeyError, IndexError, TypeError):
            notify = None
        return cls(home, address, notify)

    def _config(self) -> dict[str, object]:
        return {
            "version": 0.1,
            "log": {"level": "info", "fields": {"service": "registry"}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                "cache": {"blobdescriptor": "inmemory"},
            },
            "http": {"addr": self.address, "headers": {"X-Content-Type-Options": ["nosniff"]}},
            "health": {"storagedriver": {"enabled": True, "interval": "10s", "threshold": 3}},
            **({"notifications": self._notifications()} if self.notify else {}),
        }

    def _notifications(self) -> dict[str, object]:
        """Manifest events to the funade server: they date pushes for lifecycle rules (the API has no push date).

        The registry queues events in memory and retries with back-off while the server is down.
        """
        return {
            "events": {"includereferences": True},
            "endpoints": [
                {
                    "name": "funade",
                    "url": f"http://{self.notify}/v1/registry/events?registry={self.address}",
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    "ignore": {"mediatypes": ["application/octet-stream"]},
                }
            ],
        }

    def pid(self) -> int | None:
        """The registry's pid when it runs, else None."""
        return self.daemon.pid()

    def answers(self) -> bool:
        """Whether something answers the registry API on our address."""
        try:
            return httpx.get(f"http://{self.address}/v2/", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def status(self) -> RegistryStatus:
        pid = self.pid()
        return RegistryStatus(pid is not None and self.answers(), self.address, pid, self.storage)

    def up(self, timeout: float = 30.0) -> RegistryStatus:
        """Start the registry unless it runs; wait until it answers."""
        if self.pid() is not None and self.answers():
            return self.status()
        if self.answers():
            raise ServerError(f"something else already answers as a registry on {self.address}")
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise ServerError(
                "the distribution registry is not installed: apt-get install docker-registry (make test/demo do it)"
            )
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config.write_text(yaml.safe_dump(self._config(), sort_keys=False))
        try:
            self.daemon.start([binary, "serve", str(self.config)], self.answers, timeout)
        except DaemonError as exc:
            raise ServerError(f"{exc} (address {self.address})") from exc
        return self.status()

    def down(self, timeout: float = 15.0) -> bool:
        """Stop the registry; True when it was running."""
        return self.daemon.stop(timeout)

    def stored_manifests(self, repository: str) -> list[str]:
        """Digests of every manifest the registry stores for ``repository``, tagged or not.

        The OCI API lists tags only; an image whose tag moved on is found here.
        """
        revisions = self.storage / "docker/registry/v2/repositories" / repository / "_manifests/revisions"
        found = []
        for link in sorted(revisions.glob("*/*/link")):
            algorithm, encoded = link.parent.parent.name, link.parent.name
            found.append(f"{algorithm}:{encoded}")
        return found

    def storage_bytes(self) -> int:
        """Bytes the registry's blobs take on disk."""
        return sum(p.stat().st_size for p in (self.storage / "docker/registry/v2/blobs").rglob("*") if p.is_file())

    def garbage_collect(self, timeout: float = 300.0) -> int:
        """Remove blobs no manifest references any more; returns the bytes freed.

        The registry must not take pushes while it runs, so a running registry is stopped
        for the collection and started again afterwards.
        """
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if binary is None:
            raise ServerError("the distribution registry is not installed: apt-get install docker-registry")
        if not self.config.exists():
            self.storage.mkdir(parents=True, exist_ok=True)
            self.config.write_text(yaml.safe_dump(self._config(), sort_keys=False))
        before = self.storage_bytes()
        was_running = self.down()
        try:
            done = subprocess.run(
                [binary, "garbage-collect", str(self.config)],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        finally:
            if was_running:
                self.up()
        if done.returncode != 0:
            tail = "\n".join((done.stderr or done.stdout).splitlines()[-10:])
            raise ServerError(f"garbage collection failed (exit {done.returncode}):\n{tail}")
        return before - self.storage_bytes()
