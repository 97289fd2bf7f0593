"""Push webhooks: signatures, payload reading, repository URL matching and which apps a push touches."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.parse
from typing import Any

import pytest

from funade.core.gitops import webhook
from funade.core.gitops.webhook import (
    AppRef,
    Ignored,
    Provider,
    PushEvent,
    RefKind,
    WebhookError,
    WebhookSecrets,
)

pytestmark = pytest.mark.unit

SECRET = "It's a Secret to Everybody"
BEFORE = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
AFTER = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"
ZERO = "0" * 40


def _sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _github_push(
    ref: str = "refs/heads/main",
    commits: list[dict[str, Any]] | None = None,
    before: str = BEFORE,
    after: str = AFTER,
    **extra: Any,
) -> dict[str, Any]:
    if commits is None:
        commits = [{"id": AFTER, "added": ["apps/web/new.yaml"], "modified": ["README.md"], "removed": []}]
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": before == ZERO,
        "deleted": after == ZERO,
        "forced": False,
        "repository": {
            "name": "deploy",
            "full_name": "Shop/deploy",
            "html_url": "https://github.com/Shop/deploy",
            "clone_url": "https://github.com/Shop/deploy.git",
            "ssh_url": "git@github.com:Shop/deploy.git",
            "git_url": "git://github.com/Shop/deploy.git",
            "url": "https://github.com/Shop/deploy",
            "default_branch": "main",
            "master_branch": "main",
        },
        "commits": commits,
        **extra,
    }


def _gitlab_push(
    ref: str = "refs/heads/main",
    commits: list[dict[str, Any]] | None = None,
    total: int | None = None,
    object_kind: str = "push",
) -> dict[str, Any]:
    if commits is None:
        commits = [
            {"id": "a" * 40, "added": ["k8s/base/svc.yaml"], "modified": [], "removed": []},
            {"id": "b" * 40, "added": [], "modified": ["k8s/overlays/prod/kustomization.yaml"], "removed": ["old.txt"]},
        ]
    return {
        "object_kind": object_kind,
        "ref": ref,
        "before": BEFORE,
        "after": AFTER,
        "project": {
            "web_url": "https://gitlab.example.com/platform/shop",
            "git_http_url": "https://gitlab.example.com/platform/shop.git",
            "git_ssh_url": "git@gitlab.example.com:platform/shop.git",
            "default_branch": "main",
        },
        "commits": commits,
        "total_commits_count": len(commits) if total is None else total,
    }


def _github(payload: dict[str, Any], event: str = "push") -> PushEvent | Ignored:
    return webhook.parse_push(None, {"x-github-event": event}, json.dumps(payload).encode())


def _gitlab(payload: dict[str, Any], event: str = "Push Hook") -> PushEvent | Ignored:
    return webhook.parse_push(None, {"X-Gitlab-Event": event}, json.dumps(payload).encode())


def _push(payload: dict[str, Any]) -> PushEvent:
    event = _github(payload)
    assert isinstance(event, PushEvent)
    return event


# --- verification --------------------------------------------------------------------------


def test_github_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"ref":"refs/heads/main"}'
    assert webhook.verify_github(body, _sign(body), SECRET)
    assert webhook.verify_github(body, _sign(body).upper().replace("SHA256=", "sha256="), SECRET)
    assert not webhook.verify_github(body + b" ", _sign(body), SECRET)
    assert not webhook.verify_github(body, _sign(body, "other"), SECRET)
    assert not webhook.verify_github(body, _sign(body).removeprefix("sha256="), SECRET)
    assert not webhook.verify_github(body, "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest(), SECRET)
    assert not webhook.verify_github(body, None, SECRET)
    assert not webhook.verify_github(body, _sign(body, ""), "")


def test_gitlab_token_must_equal_the_secret() -> None:
    assert webhook.verify_gitlab(SECRET, SECRET)
    assert not webhook.verify_gitlab(SECRET + "x", SECRET)
    assert not webhook.verify_gitlab(None, SECRET)
    assert not webhook.verify_gitlab("", "")


def test_a_configured_secret_refuses_unsigned_and_wrongly_signed_requests() -> None:
    secrets = WebhookSecrets(github=SECRET, gitlab=SECRET)
    body = b"{}"
    ok = webhook.verify(Provider.GITHUB, {"X-Hub-Signature-256": _sign(body)}, body, secrets)
    assert ok.accepted
    unsigned = webhook.verify(Provider.GITHUB, {}, body, secrets)
    assert not unsigned.accepted
    assert "missing X-Hub-Signature-256" in unsigned.reason
    wrong = webhook.verify(Provider.GITHUB, {"x-hub-signature-256": _sign(body, "guess")}, body, secrets)
    assert (wrong.accepted, wrong.reason) == (False, "X-Hub-Signature-256 does not match")
    legacy = webhook.verify(Provider.GITHUB, {"X-Hub-Signature": "sha1=00"}, body, secrets)
    assert not legacy.accepted
    assert "legacy SHA-1" in legacy.reason
    assert webhook.verify(Provider.GITLAB, {"X-Gitlab-Token": SECRET}, body, secrets).accepted
    assert not webhook.verify(Provider.GITLAB, {"X-Gitlab-Token": "nope"}, body, secrets).accepted


def test_without_a_secret_requests_are_refused_unless_unsigned_is_allowed_explicitly() -> None:
    refused = webhook.verify(Provider.GITLAB, {"X-Gitlab-Token": "anything"}, b"{}", WebhookSecrets())
    assert not refused.accepted
    assert "no gitlab webhook secret is configured" in refused.reason
    allowed = webhook.verify(Provider.GITHUB, {}, b"{}", WebhookSecrets(allow_unsigned=True))
    assert allowed.accepted
    # A secret for one provider does not open the other.
    assert not webhook.verify(Provider.GITLAB, {}, b"{}", WebhookSecrets(github=SECRET)).accepted


# --- parsing -------------------------------------------------------------------------------


def test_github_push_gives_every_repo_url_the_branch_shas_and_changed_files() -> None:
    event = _push(
        _github_push(
            commits=[
                {"added": ["apps/web/new.yaml"], "modified": ["README.md"], "removed": []},
                {"added": [], "modified": ["apps/web/new.yaml"], "removed": ["apps/old/x.yaml"]},
            ]
        )
    )
    assert event.provider is Provider.GITHUB
    assert event.repo_urls == (
        "https://github.com/Shop/deploy",
        "https://github.com/Shop/deploy.git",
        "git@github.com:Shop/deploy.git",
        "git://github.com/Shop/deploy.git",
    )
    assert event.repo_keys == {"github.com/shop/deploy"}
    assert (event.kind, event.name, event.ref) == (RefKind.BRANCH, "main", "refs/heads/main")
    assert (event.before, event.after, event.default_branch) == (BEFORE, AFTER, "main")
    assert event.changed_files == frozenset({"apps/web/new.yaml", "README.md", "apps/old/x.yaml"})
    assert event.touched_default_branch


def test_branch_names_with_slashes_and_tags_are_split_from_the_ref() -> None:
    feature = _push(_github_push(ref="refs/heads/feature/login"))
    assert (feature.kind, feature.name, feature.touched_default_branch) == (RefKind.BRANCH, "feature/login", False)
    tag = _push(_github_push(ref="refs/tags/v1.4.0", commits=[]))
    assert (tag.kind, tag.name, tag.touched_default_branch) == (RefKind.TAG, "v1.4.0", False)


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        (_github_push(ref="refs/tags/v1.0.0", commits=[]), "lists no commits"),
        (_github_push(before=ZERO), "created or deleted"),
        (_github_push(after=ZERO, commits=[]), "lists no commits"),
        (_github_push(forced=True), "force-push"),
        (_github_push(commits=[{"id": AFTER, "message": "no file lists"}]), "no 'added' list"),
        (_github_push(commits=[{"added": [f"f{i}" for i in range(3000)], "modified": [], "removed": []}]), "capped"),
    ],
)
def test_files_are_unknown_when_the_payload_cannot_list_them_all(payload: dict[str, Any], why: str) -> None:
    event = _push(payload)
    assert event.changed_files is None
    assert why in event.reason_files_unknown


def test_github_ping_and_other_events_are_ignored_with_a_reason() -> None:
    ping = _github({"zen": "Design for failure.", "hook_id": 1}, event="ping")
    assert isinstance(ping, Ignored)
    assert ping.event == "ping"
    assert "ping" in ping.reason
    issue = _github({"action": "opened"}, event="issues")
    assert isinstance(issue, Ignored)
    assert "'issues' is not a push" in issue.reason
    unknown = webhook.parse_push(None, {"X-Gitea-Event": "push"}, b"{}")
    assert isinstance(unknown, Ignored)
    assert unknown.provider is None


def test_github_form_encoded_deliveries_carry_the_json_in_payload() -> None:
    body = urllib.parse.urlencode({"payload": json.dumps(_github_push())}).encode()
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded"}
    event = webhook.parse_push(Provider.GITHUB, headers, body)
    assert isinstance(event, PushEvent)
    assert event.name == "main"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps({"repository": {"html_url": "https://github.com/a/b"}}).encode(), "no 'ref'"),
        (json.dumps({"ref": "refs/heads/main"}).encode(), "no 'repository' object"),
        (json.dumps({"ref": "refs/heads/main", "repository": {}}).encode(), "no repository URL"),
    ],
)
def test_unreadable_push_bodies_raise(body: bytes, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        webhook.parse_push(Provider.GITHUB, {"X-GitHub-Event": "push"}, body)


def test_gitlab_push_and_tag_push_hooks() -> None:
    event = _gitlab(_gitlab_push())
    assert isinstance(event, PushEvent)
    assert event.provider is Provider.GITLAB
    assert event.repo_keys == {"gitlab.example.com/platform/shop"}
    assert len(event.repo_urls) == 3
    assert event.changed_files == frozenset({"k8s/base/svc.yaml", "k8s/overlays/prod/kustomization.yaml", "old.txt"})
    tag = _gitlab(_gitlab_push(ref="refs/tags/v2.0.0", commits=[], object_kind="tag_push"), event="Tag Push Hook")
    assert isinstance(tag, PushEvent)
    assert (tag.kind, tag.name, tag.changed_files) == (RefKind.TAG, "v2.0.0", None)


def test_gitlab_lists_only_twenty_commits_so_a_longer_push_has_unknown_files() -> None:
    event = _gitlab(_gitlab_push(total=25))
    assert isinstance(event, PushEvent)
    assert event.changed_files is None
    assert "2 of 25 commits" in event.reason_files_unknown


def test_gitlab_system_hooks_are_read_only_when_they_carry_a_push() -> None:
    assert isinstance(_gitlab(_gitlab_push(), event="System Hook"), PushEvent)
    other = _gitlab({"object_kind": "merge_request", "event_name": "merge_request"}, event="System Hook")
    assert isinstance(other, Ignored)
    assert isinstance(_gitlab({"object_kind": "note"}, event="Note Hook"), Ignored)


# --- repository URLs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo",
        "https://github.com/org/repo.git",
        "https://github.com/Org/Repo/",
        "http://github.com:80/org/repo.git/",
        "https://user:ghp_token@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "github.com:org/repo",
        "ssh://git@github.com/org/repo.git",
        "ssh://git@github.com:22/org/repo",
        "ssh://git@github.com:org/repo.git",
        "ssh://git@ssh.github.com:443/org/repo.git",
        "git://github.com/org/repo.git",
        "github.com/org/repo",
    ],
)
def test_every_spelling_of_a_repository_normalizes_to_one_key(url: str) -> None:
    assert webhook.normalize_repo_url(url) == "github.com/org/repo"


def test_different_repositories_stay_different() -> None:
    keys = {
        webhook.normalize_repo_url(u)
        for u in (
            "https://github.com/org/repo",
            "https://github.com/org/repo2",
            "https://github.com/other/repo",
            "https://gitlab.com/org/repo",
            "git@gitlab.example.com:group/sub/repo.git",
        )
    }
    assert len(keys) == 5
    assert (
        webhook.normalize_repo_url("git@gitlab.example.com:group/sub/repo.git") == "gitlab.example.com/group/sub/repo"
    )
    assert webhook.normalize_repo_url("file:///srv/Git/deploy.git") == "file:///srv/Git/deploy"


# --- which apps -----------------------------------------------------------------------------

REPO = "https://github.com/shop/deploy.git"


def _app(name: str, **kw: Any) -> AppRef:
    return AppRef(name=name, repo_url=kw.pop("repo_url", REPO), **kw)


def test_head_follows_the_default_branch_only() -> None:
    main = _push(_github_push())
    feature = _push(_github_push(ref="refs/heads/feature"))
    for target in ("HEAD", ""):
        assert webhook.match(main, _app("a", target_revision=target)).affected
        assert not webhook.match(feature, _app("a", target_revision=target)).affected
    tag_main = _push(_github_push(ref="refs/tags/main", commits=[]))
    assert not webhook.match(tag_main, _app("a", target_revision="HEAD")).affected


def test_a_named_branch_or_tag_follows_pushes_of_that_name() -> None:
    feature = _push(_github_push(ref="refs/heads/feature"))
    assert webhook.match(feature, _app("a", target_revision="feature")).affected
    assert not webhook.match(feature, _app("a", target_revision="main")).affected
    tag = _push(_github_push(ref="refs/tags/v1.2.0", commits=[]))
    assert webhook.match(tag, _app("a", target_revision="v1.2.0")).affected


def test_fully_qualified_refs_tell_branches_from_tags() -> None:
    branch_x = _push(_github_push(ref="refs/heads/x"))
    tag_x = _push(_github_push(ref="refs/tags/x", commits=[]))
    assert webhook.match(branch_x, _app("a", target_revision="refs/heads/x")).affected
    assert not webhook.match(tag_x, _app("a", target_revision="refs/heads/x")).affected
    assert webhook.match(tag_x, _app("a", target_revision="refs/tags/x")).affected
    assert not webhook.match(branch_x, _app("a", target_revision="refs/tags/x")).affected


def test_a_commit_sha_revision_is_never_affected() -> None:
    event = _push(_github_push())
    result = webhook.match(event, _app("pinned", target_revision=AFTER))
    assert not result.affected
    assert "never moves" in result.reason


@pytest.mark.parametrize(
    ("tag", "constraint", "affected"),
    [
        ("v1.4.2", ">=1.2.0 <2.0.0", True),
        ("v2.0.0", ">=1.2.0, <2.0.0", False),
        ("1.4.9", "~1.4", True),
        ("1.5.0", "~1.4", False),
        ("2.9.0", "^2", True),
        ("3.0.0", "^2", False),
        ("0.2.5", "^0.2.3", True),
        ("0.3.0", "^0.2.3", False),
        ("1.3.7", "1.x", True),
        ("v1.0.0", "v1", True),
        ("1.0.0-rc.1", ">=0.9", False),
        ("1.0.0-rc.2", ">=1.0.0-rc.1", True),
        ("0.9.0", "<1.0.0 || >=2", True),
        ("1.5.0", "<1.0.0 || >=2", False),
        ("1.3.0", ">1.2", True),
        ("1.2.9", ">1.2", False),
        ("1.2.9", "<=1.2", True),
        ("1.2.4", "!=1.2.3", True),
        ("release-7", ">=1.0.0", False),
    ],
)
def test_a_tag_push_satisfies_semver_constraint_revisions(tag: str, constraint: str, affected: bool) -> None:
    event = _push(_github_push(ref=f"refs/tags/{tag}", commits=[]))
    assert webhook.match(event, _app("a", target_revision=constraint)).affected is affected


def test_a_branch_push_never_satisfies_a_semver_constraint() -> None:
    event = _push(_github_push(ref="refs/heads/1.4.2"))
    assert not webhook.match(event, _app("a", target_revision=">=1.0.0")).affected


def test_another_repository_is_not_affected() -> None:
    event = _push(_github_push())
    result = webhook.match(event, _app("a", repo_url="git@github.com:shop/other.git"))
    assert not result.affected
    assert "github.com/shop/other" in result.reason


def _files(*paths: str) -> PushEvent:
    commits = [{"added": [], "modified": list(paths), "removed": []}]
    return _push(_github_push(commits=commits))


def test_without_the_annotation_the_app_path_and_its_extra_paths_decide() -> None:
    web = _app("web", path="apps/web/overlays/prod", extra_paths=frozenset({"apps/web/base", "components/tls"}))
    api = _app("api", path="apps/api")
    root = _app("everything", path="")
    event = _files("apps/web/base/deployment.yaml")
    assert webhook.affected_apps(event, [web, api, root]) == [web, root]
    assert webhook.affected_apps(_files("components/tls/cert.yaml"), [web, api]) == [web]
    # A sibling whose name merely starts like the path is not inside it.
    assert webhook.affected_apps(_files("apps/apiserver/x.yaml"), [api]) == []
    assert webhook.affected_apps(_files("apps/api"), [api]) == [api]


def test_unknown_changed_files_touch_every_app_of_the_branch() -> None:
    apps = [_app("web", path="apps/web"), _app("api", path="apps/api"), _app("other", target_revision="dev")]
    event = _push(_github_push(forced=True))
    assert [a.name for a in webhook.affected_apps(event, apps)] == ["web", "api"]
    assert "changed files unknown" in webhook.match(event, apps[0]).reason


def test_manifest_generate_paths_follow_argo_cds_rules() -> None:
    app = _app(
        "web",
        path="apps/web/overlays/prod",
        extra_paths=frozenset({"ignored-when-annotated"}),
        manifest_generate_paths=".; ../../base ;/shared/lib;;/charts/*/values.yaml",
    )
    assert webhook.refresh_paths(app) == (
        "apps/web/overlays/prod",
        "apps/web/base",
        "shared/lib",
        "charts/*/values.yaml",
    )
    assert webhook.match(_files("apps/web/overlays/prod/patch.yaml"), app).affected
    assert webhook.match(_files("apps/web/base/deployment.yaml"), app).affected
    assert webhook.match(_files("shared/lib/labels.libsonnet"), app).affected
    assert webhook.match(_files("charts/web/values.yaml"), app).affected
    # '*' does not cross a directory, as in Go's filepath.Match.
    assert not webhook.match(_files("charts/web/nested/values.yaml"), app).affected
    assert not webhook.match(_files("ignored-when-annotated/x.yaml"), app).affected
    assert not webhook.match(_files("apps/web/overlays/dev/patch.yaml"), app).affected


def test_an_annotation_of_slash_or_an_empty_one() -> None:
    whole_repo = _app("a", path="apps/a", manifest_generate_paths="/")
    assert webhook.match(_files("anything/at/all.txt"), whole_repo).affected
    empty = _app("a", path="apps/a", manifest_generate_paths=" ; ")
    assert webhook.refresh_paths(empty) == ("apps/a",)


def test_a_multi_source_app_is_listed_once() -> None:
    first = _app("multi", path="apps/a")
    second = _app("multi", path="apps/b")
    event = _files("apps/a/x.yaml", "apps/b/y.yaml")
    assert webhook.affected_apps(event, [first, second]) == [first]
    assert webhook.affected_apps(_files("apps/b/y.yaml"), [first, second]) == [second]


def test_a_gitlab_push_matches_apps_by_ssh_url() -> None:
    event = _gitlab(_gitlab_push())
    assert isinstance(event, PushEvent)
    app = _app("shop", repo_url="ssh://git@gitlab.example.com/platform/shop.git", path="k8s/overlays/prod")
    assert webhook.affected_apps(event, [app]) == [app]
