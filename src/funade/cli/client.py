"""The CLI's connection to the funade server.

Every command except ``server``/``up`` talks to the server over HTTP on loopback;
a server that is not running gets one clear message telling how to start it.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from funade.core.ports import ACTOR_HEADER

__all__ = ["DEFAULT_ADDRESS", "ApiError", "Client", "funade_home"]

DEFAULT_ADDRESS = "127.0.0.1:7300"


def funade_home() -> Path:
    """``$FUNADE_HOME``, default ``~/.local/share/funade``."""
    return Path(os.environ.get("FUNADE_HOME") or Path.home() / ".local/share/funade")


def _actor() -> str:
    """``user@host``: who the server's audit log names for this CLI's requests."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()}"


class ApiError(Exception):
    """The server refused a request, or cannot be reached."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """A small synchronous client for the funade API."""

    def __init__(self, address: str | None = None, timeout: float = 30.0) -> None:
        self.address = address or os.environ.get("FUNADE_ADDRESS") or DEFAULT_ADDRESS
        self._http = httpx.Client(base_url=f"http://{self.address}", timeout=timeout, headers={ACTOR_HEADER: _actor()})

    def close(self) -> None:
        self._http.close()

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                message = response.json().get("error") or response.text
            except ValueError:
                message = response.text
            raise ApiError(str(message), response.status_code)
        return response.json()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ApiError(f"the funade server is not running at {self.address}: start it with `funade up`") from exc
        except httpx.TimeoutException as exc:
            raise ApiError(f"the funade server at {self.address} did not answer in time") from exc
        return self._check(response)

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: Any) -> Any:
        return self.request("POST", path, json=body)

    def delete(self, path: str, **params: Any) -> Any:
        return self.request("DELETE", path, params={k: v for k, v in params.items() if v is not None})

    def stream(self, path: str, **params: Any) -> Iterator[str]:
        """Lines of a streaming response (logs)."""
        try:
            with self._http.stream(
                "GET", path, params={k: v for k, v in params.items() if v is not None}, timeout=None
            ) as response:
                if response.status_code >= 400:
                    response.read()
                    self._check(response)
                yield from response.iter_lines()
        except httpx.ConnectError as exc:
            raise ApiError(f"the funade server is not running at {self.address}: start it with `funade up`") from exc

    def alive(self) -> bool:
        try:
            return self._http.get("/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False
