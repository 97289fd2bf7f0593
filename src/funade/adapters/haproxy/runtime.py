"""HAProxy's runtime API: one command per connection on a unix socket, answers parsed.

The same wire serves the worker's admin socket (``stats socket``) and the master CLI
(``-S``): write a command line, half-close, read until HAProxy closes. HAProxy answers
errors as plain text, so each action command is checked against the answers it gives
on success; anything else is raised as `CommandError` with the command and the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from funade.core import traffic

__all__ = ["CommandError", "Proc", "RuntimeClient", "parse_show_proc", "parse_stat"]

# What HAProxy 2.6 answers when an action command worked (after stripping).
_SUCCESS = (
    re.compile(r"^$"),
    re.compile(r"^New server registered\.$"),
    re.compile(r"^Server deleted\.$"),
    re.compile(r"^New version created: \d+$"),
    re.compile(r"^(IP changed from|no need to change the addr|port changed from)", re.IGNORECASE),
)
_VERSION = re.compile(r"^New version created: (\d+)$")
_UNKNOWN = re.compile(r"^Unknown command", re.MULTILINE)


class CommandError(Exception):
    """HAProxy refused a runtime command, or did not answer it."""

    def __init__(self, command: str, answer: str) -> None:
        super().__init__(f"{command!r}: {answer.strip() or 'no answer'}")
        self.command = command
        self.answer = answer


@dataclass(frozen=True)
class Proc:
    """The master CLI's ``show proc``: the master, its reloads, current and old workers."""

    master: int
    reloads: int
    failed_reloads: int
    workers: tuple[int, ...]
    old_workers: tuple[int, ...]


class RuntimeClient:
    """Talks to one HAProxy unix socket (a worker's admin socket or the master CLI)."""

    def __init__(self, socket: Path, timeout: float = 10.0) -> None:
        self.socket = socket
        self.timeout = timeout

    async def raw(self, command: str) -> str:
        """Send one command line and return HAProxy's whole answer, unchecked."""
        if "\n" in command or "\r" in command:
            raise CommandError(command, "a command is one line")

        async def exchange() -> bytes:
            reader, writer = await asyncio.open_unix_connection(str(self.socket))
            try:
                writer.write(command.encode() + b"\n")
                await writer.drain()
                if writer.can_write_eof():
                    writer.write_eof()
                return await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        try:
            answer = await asyncio.wait_for(exchange(), self.timeout)
        except TimeoutError:
            raise CommandError(command, f"no answer within {self.timeout:g}s") from None
        return answer.decode(errors="replace")

    async def command(self, command: str) -> str:
        """Run an action command; raise `CommandError` unless HAProxy answered success."""
        answer = await self.raw(command)
        text = answer.strip()
        if not any(pattern.search(text) for pattern in _SUCCESS):
            raise CommandError(command, answer)
        return text

    async def show(self, command: str) -> str:
        """Run a ``show`` command and return its output."""
        answer = await self.raw(command)
        if _UNKNOWN.search(answer) or answer.startswith(("No such", "Unknown", "Permission denied")):
            raise CommandError(command, answer)
        return answer

    async def execute(self, commands: Sequence[str]) -> list[str]:
        """Run commands in order, stopping at the first refusal.

        ``@{version}`` (`traffic.VERSION`) in ``add map``/``commit map`` stands for the
        version the preceding ``prepare map`` of the same map answered with.
        """
        versions: dict[str, str] = {}
        answers = []
        placeholder = "@" + traffic.VERSION
        for template in commands:
            words = template.split()
            command = template
            if placeholder in words:
                target = words[words.index(placeholder) + 1]
                if target not in versions:
                    raise CommandError(template, "no 'prepare map' for this map came before")
                command = template.replace(placeholder, "@" + versions[target], 1)
            answer = await self.command(command)
            if command.startswith("prepare map "):
                found = _VERSION.match(answer)
                if found is None:
                    raise CommandError(command, answer)
                versions[words[2]] = found.group(1)
            answers.append(answer)
        return answers

    async def stat(self) -> list[dict[str, str]]:
        """``show stat`` as one dict per row (frontends, backends and servers)."""
        return parse_stat(await self.show("show stat"))

    async def servers(self) -> list[traffic.ServerStatus]:
        """Every server: its status, weight and current sessions."""
        return [
            traffic.ServerStatus(
                backend=row["pxname"],
                server=row["svname"],
                status=row.get("status", ""),
                weight=_int(row.get("weight")),
                sessions=_int(row.get("scur")),
                last_change=_int(row.get("lastchg")),
                address=row.get("addr", ""),
            )
            for row in await self.stat()
            if row.get("svname") not in ("FRONTEND", "BACKEND")
        ]

    async def info(self) -> dict[str, str]:
        """``show info`` as a dict (``Pid``, ``Uptime_sec``, ``CurrConns`` ...)."""
        answer = await self.show("show info")
        return dict(line.split(": ", 1) for line in answer.splitlines() if ": " in line)

    async def proc(self) -> Proc:
        """The master CLI's ``show proc``."""
        return parse_show_proc(await self.show("show proc"))


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def parse_stat(text: str) -> list[dict[str, str]]:
    """Parse ``show stat`` CSV: a ``# ``-prefixed header line, then one row per proxy or server."""
    lines = text.splitlines()
    if not lines or not lines[0].startswith("# "):
        raise CommandError("show stat", text)
    body = "\n".join([lines[0][2:], *(line for line in lines[1:] if line.strip())])
    return [{k: v for k, v in row.items() if k} for row in csv.DictReader(io.StringIO(body))]


def parse_show_proc(text: str) -> Proc:
    """Parse the master CLI's ``show proc`` table."""
    master = reloads = failed = 0
    workers: list[int] = []
    old: list[int] = []
    section = "master"
    for line in text.splitlines():
        if line.startswith("# workers"):
            section = "workers"
            continue
        if line.startswith("# old workers"):
            section = "old"
            continue
        if line.startswith("# programs"):
            section = "programs"
            continue
        if line.startswith("#") or not line.strip():
            continue
        fields = line.split()
        if fields[1] == "master":
            master = int(fields[0])
            reloads = int(fields[2])
            found = re.search(r"failed: (\d+)", line)
            failed = int(found.group(1)) if found else 0
        elif fields[1] == "worker" and section == "workers":
            workers.append(int(fields[0]))
        elif fields[1] == "worker" and section == "old":
            old.append(int(fields[0]))
    if not master:
        raise CommandError("show proc", text)
    return Proc(master, reloads, failed, tuple(workers), tuple(old))
