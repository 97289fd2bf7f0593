"""Git push webhooks: check who sent them, read them, and say which Applications they touch.

Without webhooks a GitOps controller learns about a commit by polling, so a push waits up
to Argo CD's 180 s before it is even seen. A push webhook removes that wait, but only if
three things are right, and this module holds all three as pure functions:

- **Trust.** :func:`verify` checks GitHub's ``X-Hub-Signature-256`` (HMAC-SHA256 of the
  body) and GitLab's ``X-Gitlab-Token`` (a shared token) in constant time. Argo CD only
  checks the SHA-256 header (go-playground/webhooks v6); the legacy SHA-1
  ``X-Hub-Signature`` is refused here too. Argo CD accepts *unsigned* requests when no
  secret is configured. funade refuses them unless ``allow_unsigned`` is set explicitly,
  so a forgotten secret never opens an unauthenticated endpoint.
- **Reading.** :func:`parse_push` turns a GitHub ``push`` or a GitLab ``Push Hook`` /
  ``Tag Push Hook`` (or a ``System Hook`` carrying one) into a :class:`PushEvent`. Other
  events, GitHub's ``ping`` included, become :class:`Ignored` with the reason. The
  changed files are the union of ``added``/``modified``/``removed`` over the commits.
  They are ``None`` ("unknown: treat every path as touched") whenever the payload cannot
  be trusted to list them all. That covers no commit list (tag pushes, new or deleted
  branches), a GitLab push with more commits than it lists (it sends 20), a GitHub
  force-push (files changed by the dropped commits are not listed) and lists at GitHub's
  caps.
- **Matching.** :func:`affected_apps` follows Argo CD's webhook handler
  (util/webhook/webhook.go, util/app/path/path.go):

  - The repository matches when :func:`normalize_repo_url` agrees. Scheme, credentials,
    port, an ``ssh.``/``altssh.`` host prefix, ``.git``, trailing slashes and letter
    case are ignored, as in Argo's case-insensitive repository regex.
  - ``HEAD`` (or an empty revision) follows a push to the default branch that the
    payload names.
  - A short name follows a branch or tag of that name.
  - A tag push also satisfies a semver constraint (``>=1.2.0 <2``, ``~1.4``, ``^2``,
    ``1.x``), as in Argo.
  - A full commit SHA never moves.
  - Stricter than Argo: ``refs/heads/x`` follows only the branch and ``refs/tags/x``
    only the tag. Argo's docs admit it cannot tell them apart.

  When the changed files are known, at least one of them must lie under the app's paths.
  With the ``argocd.argoproj.io/manifest-generate-paths`` annotation, those paths are
  exactly Argo's: ``;``-separated; a leading ``/`` is from the repository root; anything
  else is relative to the source path (so ``.`` is the path itself); a glob matches the
  whole file path. Without the annotation Argo refreshes every app of the repository on
  every push. That is the monorepo storm of argo-cd#4272: 600 apps, about 599 useless
  refreshes per push. funade instead uses the source path plus ``extra_paths``, which is
  everything else the app reads (kustomize bases and components, Helm value files
  outside the path). An app that reads files outside both is refreshed only by the
  periodic poll.

Nothing here does I/O or logs. The API layer verifies, parses, logs refusals and asks the
controller to refresh what :func:`affected_apps` returns.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import posixpath
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MANIFEST_GENERATE_PATHS",
    "AppRef",
    "Ignored",
    "Match",
    "Provider",
    "PushEvent",
    "RefKind",
    "Verdict",
    "WebhookError",
    "WebhookSecrets",
    "affected_apps",
    "detect_provider",
    "match",
    "normalize_repo_url",
    "parse_push",
    "refresh_paths",
    "verify",
    "verify_github",
    "verify_gitlab",
]

#: The Application annotation that narrows which changed files refresh it (Argo CD's name).
MANIFEST_GENERATE_PATHS = "argocd.argoproj.io/manifest-generate-paths"

_ZERO_SHA = re.compile(r"^0+$")
_FULL_SHA = re.compile(r"^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$")
# GitHub documents at most 2048 commits in a push delivery and caps each file list. Lists
# this long may have been cut, so the files count as unknown (a false "touched" only costs
# a refresh; a false "untouched" would miss a deploy).
_GITHUB_MAX_COMMITS = 2048
_MAX_FILES_PER_LIST = 3000
_GLOB_CHARS = frozenset("*?[")


class WebhookError(ValueError):
    """The request claims to be a push webhook but its body cannot be read as one."""


class Provider(enum.StrEnum):
    """Who sent the webhook."""

    GITHUB = "github"
    GITLAB = "gitlab"


class RefKind(enum.StrEnum):
    """What the pushed ref is."""

    BRANCH = "branch"  # refs/heads/...
    TAG = "tag"  # refs/tags/...
    OTHER = "other"  # refs/pull/..., refs/merge-requests/..., notes


@dataclass(frozen=True, slots=True)
class WebhookSecrets:
    """The shared secrets per provider; an empty string means none is configured.

    ``allow_unsigned`` is the explicit opt-in to Argo CD's behaviour of accepting
    unauthenticated requests for a provider with no secret.
    """

    github: str = ""
    gitlab: str = ""
    allow_unsigned: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a request may be processed, and why (for the log line and the 401 body)."""

    accepted: bool
    reason: str


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed webhook that is not a push (a ping, an issue event, ...)."""

    provider: Provider | None
    event: str
    reason: str


@dataclass(frozen=True, slots=True)
class PushEvent:
    """One ref update, as the provider reported it.

    Attributes:
        provider: who sent it.
        repo_urls: every URL the payload gives for the repository (web, HTTPS clone, SSH).
        ref: the full ref, e.g. ``refs/heads/main``.
        kind: branch, tag or other.
        name: the branch or tag name (``feature/x`` for ``refs/heads/feature/x``).
        before: the SHA before the push (all zeros when the ref was created).
        after: the SHA after the push (all zeros when the ref was deleted).
        default_branch: the repository's default branch, if the payload says.
        changed_files: repository-relative paths changed by the push, or None when the
            payload does not list them all (then every path counts as touched).
        reason_files_unknown: why ``changed_files`` is None, for logs.
    """

    provider: Provider
    repo_urls: tuple[str, ...]
    ref: str
    kind: RefKind
    name: str
    before: str
    after: str
    default_branch: str | None
    changed_files: frozenset[str] | None
    reason_files_unknown: str = ""

    @property
    def repo_keys(self) -> frozenset[str]:
        """The normalized forms of :attr:`repo_urls`, for matching Applications."""
        return frozenset(normalize_repo_url(url) for url in self.repo_urls)

    @property
    def created(self) -> bool:
        """The push created the ref."""
        return bool(_ZERO_SHA.match(self.before))

    @property
    def deleted(self) -> bool:
        """The push deleted the ref."""
        return bool(_ZERO_SHA.match(self.after))

    @property
    def touched_default_branch(self) -> bool:
        """The push moved the default branch, which is what an app at ``HEAD`` follows.

        When the payload does not name the default branch, any branch push counts (an
        extra refresh is harmless; a missed one is not).
        """
        if self.kind is not RefKind.BRANCH:
            return False
        return self.default_branch is None or self.name == self.default_branch


@dataclass(frozen=True, slots=True)
class AppRef:
    """What webhook matching needs to know about one Application source.

    A multi-source Application passes one AppRef per source, all with the same ``name``;
    :func:`affected_apps` lists the app once.

    Attributes:
        name: the Application name.
        repo_url: ``spec.source.repoURL``.
        target_revision: ``spec.source.targetRevision`` (empty means ``HEAD``).
        path: ``spec.source.path``, relative to the repository root.
        extra_paths: other repository-relative files or directories the app reads
            (kustomize bases and components, value files outside ``path``).
        manifest_generate_paths: the raw value of the
            ``argocd.argoproj.io/manifest-generate-paths`` annotation, if set.
    """

    name: str
    repo_url: str
    target_revision: str = "HEAD"
    path: str = ""
    extra_paths: frozenset[str] = frozenset()
    manifest_generate_paths: str | None = None


@dataclass(frozen=True, slots=True)
class Match:
    """Whether one push affects one app source, and why (for logs and ``--explain``)."""

    affected: bool
    reason: str


# --- verification -------------------------------------------------------------------------


def verify_github(body: bytes, signature_header: str | None, secret: str) -> bool:
    """Whether ``X-Hub-Signature-256`` (``sha256=<hex>``) is the HMAC-SHA256 of ``body`` under ``secret``.

    An empty secret never verifies anything; the comparison is constant-time.
    """
    if not secret or not signature_header:
        return False
    scheme, _, received = signature_header.strip().partition("=")
    if scheme.lower() != "sha256" or not received:
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.lower().encode(), expected.encode())


def verify_gitlab(token_header: str | None, secret: str) -> bool:
    """Whether ``X-Gitlab-Token`` equals ``secret`` (constant-time); an empty secret never matches."""
    if not secret or token_header is None:
        return False
    return hmac.compare_digest(token_header.encode(), secret.encode())


def verify(provider: Provider, headers: Mapping[str, str], body: bytes, secrets: WebhookSecrets) -> Verdict:
    """Decide whether a webhook request may be processed.

    With a secret configured for the provider, the request must carry a valid signature
    (GitHub) or token (GitLab). Without one it is refused unless
    ``secrets.allow_unsigned`` is set.
    """
    if provider is Provider.GITHUB:
        secret, header_name = secrets.github, "X-Hub-Signature-256"
    else:
        secret, header_name = secrets.gitlab, "X-Gitlab-Token"
    if not secret:
        if secrets.allow_unsigned:
            return Verdict(True, f"no {provider.value} webhook secret configured; unsigned requests are allowed")
        return Verdict(
            False,
            f"no {provider.value} webhook secret is configured; set one (or allow unsigned requests explicitly)",
        )
    received = _header(headers, header_name)
    if received is None:
        if provider is Provider.GITHUB and _header(headers, "X-Hub-Signature") is not None:
            return Verdict(False, "only the legacy SHA-1 X-Hub-Signature was sent; X-Hub-Signature-256 is required")
        return Verdict(False, f"missing {header_name} header")
    if provider is Provider.GITHUB:
        ok = verify_github(body, received, secret)
        return Verdict(True, "signature verified") if ok else Verdict(False, "X-Hub-Signature-256 does not match")
    ok = verify_gitlab(received, secret)
    return Verdict(True, "token verified") if ok else Verdict(False, "X-Gitlab-Token does not match")


# --- parsing -------------------------------------------------------------------------------


def detect_provider(headers: Mapping[str, str]) -> Provider | None:
    """The provider named by the event header (``X-GitHub-Event`` or ``X-Gitlab-Event``)."""
    if _header(headers, "X-GitHub-Event") is not None:
        return Provider.GITHUB
    if _header(headers, "X-Gitlab-Event") is not None:
        return Provider.GITLAB
    return None


def parse_push(provider: Provider | None, headers: Mapping[str, str], body: bytes) -> PushEvent | Ignored:
    """Read a webhook request as a push.

    Args:
        provider: who sent it, or None to tell from the headers.
        headers: the request headers (any letter case).
        body: the raw request body.

    Returns:
        The :class:`PushEvent`, or :class:`Ignored` saying why it is not one.

    Raises:
        WebhookError: a push event whose body is not valid JSON or lacks ``ref`` or the
            repository.
    """
    provider = provider or detect_provider(headers)
    if provider is Provider.GITHUB:
        event = _header(headers, "X-GitHub-Event") or ""
        if event == "ping":
            return Ignored(provider, event, "GitHub ping: the webhook is set up; nothing to refresh")
        if event != "push":
            return Ignored(provider, event, f"GitHub event {event!r} is not a push")
        return _github_push(_payload(headers, body))
    if provider is Provider.GITLAB:
        event = _header(headers, "X-Gitlab-Event") or ""
        if event in ("Push Hook", "Tag Push Hook"):
            return _gitlab_push(_payload(headers, body))
        if event == "System Hook":
            payload = _payload(headers, body)
            kind = payload.get("object_kind") or payload.get("event_name")
            if kind in ("push", "tag_push"):
                return _gitlab_push(payload)
            return Ignored(provider, event, f"GitLab system hook {kind!r} is not a push")
        return Ignored(provider, event, f"GitLab event {event!r} is not a push")
    return Ignored(None, "", "neither an X-GitHub-Event nor an X-Gitlab-Event header")


def _github_push(payload: Mapping[str, Any]) -> PushEvent:
    repo = _mapping(payload, "repository")
    urls = _urls(repo, ("html_url", "clone_url", "ssh_url", "git_url", "url"))
    default = _opt_str(repo, "default_branch") or _opt_str(repo, "master_branch")
    commits = payload.get("commits")
    files, why = _changed_files(commits)
    before, after = _opt_str(payload, "before") or "", _opt_str(payload, "after") or ""
    if files is not None and payload.get("forced") is True:
        files, why = None, "force-push: files changed by the replaced commits are not listed"
    if files is not None and isinstance(commits, list) and len(commits) >= _GITHUB_MAX_COMMITS:
        files, why = None, f"{len(commits)} commits: the payload may be truncated"
    return _event(Provider.GITHUB, payload, urls, default, before, after, files, why)


def _gitlab_push(payload: Mapping[str, Any]) -> PushEvent:
    project = _mapping(payload, "project")
    urls = _urls(project, ("web_url", "git_http_url", "git_ssh_url", "http_url", "ssh_url"))
    repository = payload.get("repository")
    if isinstance(repository, Mapping):
        urls += _urls(repository, ("homepage", "git_http_url", "git_ssh_url", "url"))
    default = _opt_str(project, "default_branch")
    commits = payload.get("commits")
    files, why = _changed_files(commits)
    total = payload.get("total_commits_count")
    if files is not None and isinstance(total, int) and isinstance(commits, list) and total > len(commits):
        files, why = None, f"GitLab listed {len(commits)} of {total} commits"
    before, after = _opt_str(payload, "before") or "", _opt_str(payload, "after") or ""
    return _event(Provider.GITLAB, payload, urls, default, before, after, files, why)


def _event(
    provider: Provider,
    payload: Mapping[str, Any],
    urls: Sequence[str],
    default: str | None,
    before: str,
    after: str,
    files: frozenset[str] | None,
    why: str,
) -> PushEvent:
    ref = _opt_str(payload, "ref")
    if not ref:
        raise WebhookError(f"{provider.value} push: no 'ref'")
    if not urls:
        raise WebhookError(f"{provider.value} push: no repository URL")
    kind, name = _split_ref(ref)
    if files is not None and (_ZERO_SHA.match(before) or _ZERO_SHA.match(after)):
        files, why = None, "the ref was created or deleted"
    return PushEvent(
        provider=provider,
        repo_urls=tuple(dict.fromkeys(urls)),
        ref=ref,
        kind=kind,
        name=name,
        before=before,
        after=after,
        default_branch=default,
        changed_files=files,
        reason_files_unknown=why,
    )


def _changed_files(commits: object) -> tuple[frozenset[str] | None, str]:
    if not isinstance(commits, list) or not commits:
        return None, "the payload lists no commits"
    files: set[str] = set()
    for commit in commits:
        if not isinstance(commit, Mapping):
            return None, "a commit entry is not an object"
        for key in ("added", "modified", "removed"):
            paths = commit.get(key)
            if not isinstance(paths, list):
                return None, f"a commit has no {key!r} list"
            if len(paths) >= _MAX_FILES_PER_LIST:
                return None, f"a commit lists {len(paths)} {key} files: the list may be capped"
            files.update(p.lstrip("/") for p in paths if isinstance(p, str) and p)
    return frozenset(files), ""


def _split_ref(ref: str) -> tuple[RefKind, str]:
    if ref.startswith("refs/heads/"):
        return RefKind.BRANCH, ref.removeprefix("refs/heads/")
    if ref.startswith("refs/tags/"):
        return RefKind.TAG, ref.removeprefix("refs/tags/")
    # Argo's ParseRevision: the part after the second slash.
    return RefKind.OTHER, ref.split("/", 2)[-1]


def _payload(headers: Mapping[str, str], body: bytes) -> Mapping[str, Any]:
    content_type = (_header(headers, "Content-Type") or "").split(";")[0].strip().lower()
    text: str | bytes = body
    if content_type == "application/x-www-form-urlencoded":
        # GitHub's other content type: the JSON document in the `payload` form field.
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "payload" not in form:
            raise WebhookError("form-encoded webhook without a 'payload' field")
        text = form["payload"][0]
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WebhookError(f"webhook body is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WebhookError("webhook body is not a JSON object")
    return data


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise WebhookError(f"push payload has no {key!r} object")
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def _urls(data: Mapping[str, Any], keys: Iterable[str]) -> list[str]:
    return [url for key in keys if (url := _opt_str(data, key))]


# --- repository URLs -----------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HOST_PORT_PATH = re.compile(r"^(?P<host>\[[^\]]*\]|[^:/]*)(?::(?P<port>\d*)(?=/|$))?(?:[:/](?P<path>.*))?$")
_SCP_HOST_PATH = re.compile(r"^(?P<host>[^:/]+):(?P<path>.*)$")


def normalize_repo_url(url: str) -> str:
    """A comparison key under which every spelling of one repository is equal.

    ``https://github.com/Org/Repo``, ``git@github.com:org/repo.git``,
    ``ssh://git@ssh.github.com:443/org/repo.git/`` and
    ``https://user:token@github.com/org/repo`` all give ``github.com/org/repo``. The key
    drops the scheme, credentials, port, an ``ssh.``/``altssh.`` host prefix, ``.git``
    and slashes at either end, and is lowercase (Argo CD's repository regex is
    case-insensitive and accepts any port). ``file://`` URLs keep their scheme and their
    path's letter case (local file systems are case-sensitive).
    """
    text = url.strip()
    scheme_match = _SCHEME.match(text)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    rest = text[scheme_match.end() :] if scheme_match else text
    if scheme == "file":
        return "file:///" + _strip_repo_path(rest)
    # Credentials: everything up to the last '@' before the path.
    slash = rest.find("/")
    at = rest.rfind("@", 0, slash if slash >= 0 else len(rest))
    if at >= 0:
        rest = rest[at + 1 :]
    if scheme:
        parts = _HOST_PORT_PATH.match(rest)
        host, path = (parts.group("host"), parts.group("path") or "") if parts else (rest, "")
    elif (scp := _SCP_HOST_PATH.match(rest)) is not None:  # host:org/repo (scp-like ssh)
        host, path = scp.group("host"), scp.group("path")
    else:  # host/org/repo
        host, _, path = rest.partition("/")
    host = host.lower()
    for prefix in ("altssh.", "ssh."):
        if host.startswith(prefix) and "." in host.removeprefix(prefix):
            host = host.removeprefix(prefix)
            break
    path = _strip_repo_path(path).lower()
    return f"{host}/{path}" if path else host


def _strip_repo_path(path: str) -> str:
    path = path.strip("/")
    path = path.removesuffix(".git")
    return path.rstrip("/")


# --- matching ------------------------------------------------------------------------------


def refresh_paths(app: AppRef) -> tuple[str, ...]:
    """The repository-relative paths whose changes affect ``app`` ("." is the whole repository).

    With the manifest-generate-paths annotation: Argo CD's rule (``;``-separated, ``/``
    from the repository root, otherwise relative to ``path``). Without it: ``path`` and
    ``extra_paths``.
    """
    items = [item.strip() for item in (app.manifest_generate_paths or "").split(";")]
    items = [item for item in items if item]
    if items:
        return tuple(
            _clean(item[1:]) if item.startswith("/") else _clean(posixpath.join(app.path, item)) for item in items
        )
    return (_clean(app.path), *sorted(_clean(p) for p in app.extra_paths))


def match(event: PushEvent, app: AppRef) -> Match:
    """Whether ``event`` affects one Application source, with the reason."""
    key = normalize_repo_url(app.repo_url)
    if key not in event.repo_keys:
        return Match(False, f"repository {key} is not the pushed one")
    revision = _revision_match(event, app.target_revision)
    if not revision.affected:
        return revision
    if event.changed_files is None:
        why = event.reason_files_unknown or "the payload does not list the changed files"
        return Match(True, f"{revision.reason}; changed files unknown ({why}), so every path counts")
    paths = refresh_paths(app)
    for changed in sorted(event.changed_files):
        for root in paths:
            if _path_covers(root, changed):
                return Match(True, f"{revision.reason}; {changed} is under {root}")
    return Match(False, f"{revision.reason}, but no changed file is under {', '.join(paths)}")


def affected_apps(event: PushEvent, apps: Iterable[AppRef]) -> list[AppRef]:
    """The app sources ``event`` affects, in input order, one per app name."""
    seen: set[str] = set()
    result: list[AppRef] = []
    for app in apps:
        if app.name in seen:
            continue
        if match(event, app).affected:
            seen.add(app.name)
            result.append(app)
    return result


def _revision_match(event: PushEvent, target_revision: str) -> Match:
    target = target_revision.strip()
    pushed = f"{event.kind.value} {event.name}"
    if target in ("", "HEAD"):
        if event.touched_default_branch:
            return Match(True, f"HEAD follows the default branch and {pushed} was pushed")
        return Match(False, f"HEAD follows the default branch {event.default_branch}; {pushed} was pushed")
    if _FULL_SHA.match(target):
        return Match(False, f"target revision {target} is a commit and never moves")
    if target.startswith("refs/"):
        if target == event.ref:
            return Match(True, f"{target} was pushed")
        return Match(False, f"target revision {target}; {event.ref} was pushed")
    if event.kind is not RefKind.OTHER and target == event.name:
        return Match(True, f"{pushed} was pushed")
    if event.kind is RefKind.TAG and _satisfies(event.name, target):
        return Match(True, f"tag {event.name} satisfies {target}")
    return Match(False, f"target revision {target}; {pushed} was pushed")


def _clean(path: str) -> str:
    stripped = path.strip().lstrip("/")
    return posixpath.normpath(stripped) if stripped else "."


def _path_covers(root: str, changed: str) -> bool:
    if root == ".":
        return True
    if changed == root or changed.startswith(root + "/"):
        return True
    return bool(_GLOB_CHARS & set(root)) and _glob(root, changed)


def _glob(pattern: str, path: str) -> bool:
    """Go's ``filepath.Match``: ``*`` and ``?`` never cross ``/``; ``[...]`` is a class."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1 : i + 2] in ("^", "!") else i + 1)
            if end < 0:
                return False  # malformed: Go reports ErrBadPattern, Argo treats it as no match
            body = pattern[i + 1 : end]
            if body[:1] in ("^", "!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    try:
        return re.fullmatch("".join(out), path) is not None
    except re.error:
        return False


# --- semver constraints (the subset of Masterminds/semver Argo CD accepts as a revision) ---

_VERSION = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PARTIAL = re.compile(
    r"^v?([0-9]+|[xX*])(?:\.([0-9]+|[xX*]))?(?:\.([0-9]+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)
_COMPARATOR = re.compile(r"(!=|>=|=>|<=|=<|~>|>|<|=|~|\^)?\s*([^\s,]+)")

_Version = tuple[int, int, int, tuple[int | str, ...]]


def _parse_version(text: str) -> _Version | None:
    found = _VERSION.match(text.strip())
    if found is None:
        return None
    major, minor, patch, pre = found.groups()
    return (int(major), int(minor or 0), int(patch or 0), _pre(pre))


def _pre(text: str | None) -> tuple[int | str, ...]:
    if not text:
        return ()
    return tuple(int(part) if part.isdigit() else part for part in text.split("."))


def _key(version: _Version) -> tuple[Any, ...]:
    major, minor, patch, pre = version
    # A release sorts after its prereleases; numeric identifiers sort before alphanumeric ones.
    return (major, minor, patch, 1 if not pre else 0, tuple((isinstance(p, str), p) for p in pre))


def _satisfies(tag: str, constraint: str) -> bool:
    """Whether the tag, read as a version, satisfies ``constraint``; False when either is not semver."""
    version = _parse_version(tag)
    if version is None:
        return False
    for alternative in constraint.split("||"):
        comparators = _comparators(alternative)
        if comparators is None:
            return False  # not a constraint at all (a branch name): Argo compares names only
        if not comparators:
            continue
        if version[3] and not any(c[3] for c in comparators):
            continue  # a prerelease only satisfies a constraint that names a prerelease
        if all(_check(version, c) for c in comparators):
            return True
    return False


_Comparator = tuple[str, tuple[int, int, int], int, tuple[int | str, ...]]  # op, version, parts given, prerelease


def _comparators(text: str) -> list[_Comparator] | None:
    result: list[_Comparator] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos] in " ,":
            pos += 1
            continue
        found = _COMPARATOR.match(text, pos)
        if found is None:
            return None
        written = found.group(1) or "="
        op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(written, written)
        partial = _PARTIAL.match(found.group(2))
        if partial is None:
            return None
        numbers: list[int] = []
        for part in partial.groups()[:3]:
            if part is None or part in ("x", "X", "*"):
                break
            numbers.append(int(part))
        padded = (*numbers, 0, 0, 0)
        result.append((op, (padded[0], padded[1], padded[2]), len(numbers), _pre(partial.group(4))))
        pos = found.end()
    return result


def _check(version: _Version, comparator: _Comparator) -> bool:
    op, (major, minor, patch), given, pre = comparator
    have = _key(version)
    low = _key((major, minor, patch, pre))

    def upper(level: int) -> tuple[Any, ...]:
        """The first version past ``level`` (0 major, 1 minor, 2 patch), below all its prereleases."""
        parts = [major, minor, patch]
        parts[level] += 1
        parts[level + 1 :] = [0] * (2 - level)
        return (*parts, 0, ())

    if op in ("=", "!="):
        inside = given == 0 or (have == low if given == 3 else low <= have < upper(given - 1))
        return inside == (op == "=")
    if given == 0:  # '>= *' and the like: any version
        return op not in (">", "<")
    if op == ">":
        return have >= upper(given - 1) if given < 3 else have > low
    if op == ">=":
        return have >= low
    if op == "<":
        return have < low
    if op == "<=":
        return have < upper(given - 1) if given < 3 else have <= low
    if op == "~":
        return low <= have < upper(0 if given == 1 else 1)
    # '^': the leftmost non-zero part given may not change
    level = next((i for i, n in enumerate((major, minor, patch)[:given]) if n != 0), given - 1)
    return low <= have < upper(level)
