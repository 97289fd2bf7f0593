"""Who we are to a registry, and how it asks us to prove it.

Users have already logged in with ``docker login`` (or a cloud CLI that wrote a
credential helper into Docker's config), so funade reads the same place Docker does:
``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``. The lookup follows
Docker's order: a per-registry ``credHelpers`` entry, then the global ``credsStore``,
then the inline ``auths`` entry. Helpers are run as Docker runs them:
``docker-credential-<name> get`` with the server URL on stdin, JSON on stdout.

Secrets never appear in a repr, a message or a log line.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DOCKER_HUB_SERVER",
    "Challenge",
    "Credentials",
    "CredentialsError",
    "docker_credentials",
    "parse_challenges",
]

#: The key Docker files Docker Hub's credentials under.
DOCKER_HUB_SERVER = "https://index.docker.io/v1/"
_HUB_NAMES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"})
_HELPER_TIMEOUT_S = 60.0
_IDENTITY_TOKEN_USER = "<token>"


class CredentialsError(Exception):
    """Docker's configuration or a credential helper could not give an answer."""


@dataclass(frozen=True)
class Credentials:
    """A username and secret (password or access token), or an identity (refresh) token.

    An identity token is what ``docker login`` keeps for registries that use OAuth2
    (Azure, Docker Hub with SSO): it is exchanged for bearer tokens with a POST.
    """

    username: str = ""
    secret: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if not self.identity_token and not (self.username and self.secret):
            raise ValueError("credentials need a username and a secret, or an identity token")

    @property
    def can_basic(self) -> bool:
        """Whether these can answer a Basic challenge (a username and a secret)."""
        return bool(self.username and self.secret)

    def basic_authorization(self) -> str:
        """The ``Authorization`` header value for HTTP Basic."""
        if not self.can_basic:
            raise ValueError("an identity token cannot be sent as Basic credentials")
        return "Basic " + base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: a scheme (lowercase) and its parameters."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes a Bearer challenge asks for (space-separated in one ``scope`` parameter)."""
        return tuple(self.params.get("scope", "").split())


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM_RE = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|{_TOKEN})\s*')
_SCHEME_RE = re.compile(rf"[\s,]*({_TOKEN})(?:\s+|$)")


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` header values (RFC 7235) into challenges, in order."""
    found: list[tuple[str, dict[str, str]]] = []
    for value in values:
        pos = 0
        while pos < len(value):
            param = _PARAM_RE.match(value, pos)
            if param is not None and found:
                key, raw = param.groups()
                if raw.startswith('"'):
                    raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
                found[-1][1][key.lower()] = raw
                pos = param.end()
                continue
            scheme = _SCHEME_RE.match(value, pos)
            if scheme is None:
                break
            found.append((scheme.group(1).lower(), {}))
            pos = scheme.end()
    return [Challenge(scheme, params) for scheme, params in found]


# -- Docker's configuration --------------------------------------------------------------------


def _hostname(key: str) -> str:
    """A config key or registry name as the host Docker compares (``https://h/v1/`` → ``h``)."""
    host = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", key.strip()).split("/", 1)[0]
    return "index.docker.io" if host in _HUB_NAMES else host


def _server_url(registry: str) -> str:
    """What Docker passes to a credential helper for ``registry``."""
    return DOCKER_HUB_SERVER if _hostname(registry) == "index.docker.io" else _hostname(registry)


def _config_path(config_path: Path | None) -> Path:
    if config_path is not None:
        return config_path
    directory = os.environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker" / "config.json"


def _entry(table: object, registry: str) -> tuple[str, object] | None:
    """The ``(key, value)`` of ``table`` whose key names ``registry``: exact first, then by host."""
    if not isinstance(table, dict):
        return None
    if registry in table:
        return registry, table[registry]
    if _hostname(registry) == "index.docker.io" and DOCKER_HUB_SERVER in table:
        return DOCKER_HUB_SERVER, table[DOCKER_HUB_SERVER]
    wanted = _hostname(registry)
    for key, value in table.items():
        if isinstance(key, str) and _hostname(key) == wanted:
            return key, value
    return None


def _from_auths(entry: object, where: str) -> Credentials | None:
    if not isinstance(entry, dict):
        return None
    username = str(entry.get("username") or "")
    password = str(entry.get("password") or "")
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{where}: the auth value is not base64 of username:password") from None
        username, colon, password = decoded.partition(":")
        if not colon:
            raise CredentialsError(f"{where}: the auth value decodes to no username:password pair")
    identity_token = str(entry.get("identitytoken") or "")
    if identity_token:
        return Credentials(username=username, identity_token=identity_token)
    if username and password:
        return Credentials(username=username, secret=password)
    return None


def _run_helper(helper: str, server_url: str, where: str) -> Credentials | None:
    program = f"docker-credential-{helper}"
    try:
        done = subprocess.run(
            [program, "get"],
            input=server_url,
            capture_output=True,
            text=True,
            timeout=_HELPER_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialsError(f"the credential helper {program} ({where}) is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(
            f"the credential helper {program} did not answer within {_HELPER_TIMEOUT_S:g}s"
        ) from None
    if done.returncode != 0:
        said = (done.stdout.strip() or done.stderr.strip())[:200]
        if "credentials not found" in said.lower():
            return None
        raise CredentialsError(f"the credential helper {program} failed for {server_url}: {said or done.returncode}")
    try:
        answer = json.loads(done.stdout)
    except ValueError:
        raise CredentialsError(f"the credential helper {program} printed something that is not JSON") from None
    if not isinstance(answer, dict):
        raise CredentialsError(f"the credential helper {program} printed JSON that is not an object")
    username, secret = str(answer.get("Username") or ""), str(answer.get("Secret") or "")
    if not secret:
        return None
    if username == _IDENTITY_TOKEN_USER:
        return Credentials(identity_token=secret)
    if not username:
        return None
    return Credentials(username=username, secret=secret)


def docker_credentials(registry: str, config_path: Path | None = None) -> Credentials | None:
    """The credentials Docker would use for ``registry`` (``host[:port]``), or None.

    Args:
        registry: The registry host as in an image reference (``docker.io`` for Docker Hub).
        config_path: Docker's ``config.json``; defaults to ``$DOCKER_CONFIG/config.json``,
            then ``~/.docker/config.json``. A missing default file means no credentials.

    Raises:
        CredentialsError: the file is unreadable or malformed, a helper is missing or fails.
    """
    path = _config_path(config_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        if config_path is not None:
            raise CredentialsError(f"{path}: no such Docker config file") from None
        return None
    except OSError as exc:
        raise CredentialsError(f"{path}: cannot read it: {exc.strerror}") from None
    try:
        config = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise CredentialsError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise CredentialsError(f"{path}: expected a JSON object")

    helper: tuple[str, str] | None = None
    found = _entry(config.get("credHelpers"), registry)
    if found is not None and isinstance(found[1], str) and found[1]:
        helper = (found[1], f"credHelpers in {path}")
    elif isinstance(config.get("credsStore"), str) and config["credsStore"]:
        helper = (str(config["credsStore"]), f"credsStore in {path}")
    if helper is not None:
        credentials = _run_helper(helper[0], _server_url(registry), helper[1])
        if credentials is not None:
            return credentials
    inline = _entry(config.get("auths"), registry)
    if inline is None:
        return None
    return _from_auths(inline[1], f"{path}: auths[{inline[0]!r}]")
