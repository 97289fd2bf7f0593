"""HTTP handlers for GitOps: Applications (`funade app …`) and the git push webhook.

``POST /api/webhook`` takes GitHub and GitLab push events. A request is verified first
(HMAC-SHA256 for GitHub, the token for GitLab), with the secrets of ``$FUNADE_HOME/webhook.yaml``
(``github: SECRET``, ``gitlab: TOKEN``; read on every request, so a new secret needs no
restart) or ``FUNADE_WEBHOOK_GITHUB_SECRET`` / ``FUNADE_WEBHOOK_GITLAB_SECRET``. Without a
secret for the provider, or with a wrong signature, the request is refused with 401 and
logged. A verified push refreshes only the apps whose repository, revision
and path (or a kustomize base they use) it touches.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import yaml
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from funade.controller.apps import SUSPENDED, AppController
from funade.core.gitops import application as appmodel
from funade.core.gitops import appset, webhook
from funade.core.ports import Event, ObjectKey, Store
from funade.engine.gitops import APP_KIND, APP_NAMESPACE, Apps

__all__ = ["AppsApi"]

log = logging.getLogger(__name__)
Obj = dict[str, Any]


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class AppsApi:
    """`funade app` verbs over the GitOps controller."""

    def __init__(
        self, store: Store, apps: Apps, controller: AppController, wake: asyncio.Event, home: Path | None = None
    ) -> None:
        self.home = home
        self.store = store
        self.apps = apps
        self.controller = controller
        self.wake = wake

    def _get(self, name: str) -> Obj:
        obj = self.store.get(ObjectKey(APP_KIND, APP_NAMESPACE, name))
        if obj is None:
            raise LookupError(f'application "{name}" not found')
        return obj

    async def _body(self, request: Request) -> Obj:
        raw = await request.body()
        if not raw:
            return {}
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data

    async def create(self, request: Request) -> Response:
        """Create or update Applications and ApplicationSets (validated, in namespace argocd)."""
        body = await self._body(request)
        docs = body.get("objects") or []
        prepared = []
        for doc in docs:
            kind = doc.get("kind")
            try:
                if kind == APP_KIND:
                    appmodel.parse(doc)
                elif kind == "ApplicationSet":
                    appset.parse(doc)
                else:
                    return _error(
                        f"{kind or 'an object without a kind'}: `app create` takes Application and ApplicationSet", 400
                    )
            except (appmodel.ApplicationError, appset.ApplicationSetError) as exc:
                name = (doc.get("metadata") or {}).get("name", "?")
                return _error(f"{kind} {name}: {exc}", 400)
            prepared.append(dict(doc, metadata=dict(doc.get("metadata") or {}, namespace=APP_NAMESPACE)))
        if self.store.get(ObjectKey("Namespace", "", APP_NAMESPACE)) is None:
            self.store.put_many([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": APP_NAMESPACE}}])
        results = self.store.put_many(prepared)
        self.wake.set()
        return JSONResponse(
            {"items": [{"kind": o["kind"], "name": o["metadata"]["name"], "action": a} for o, a in results]}
        )

    async def list(self, request: Request) -> Response:
        return JSONResponse({"items": self.store.list_objects(APP_KIND, APP_NAMESPACE)})

    async def get(self, request: Request) -> Response:
        return JSONResponse(self._get(request.path_params["name"]))

    async def diff(self, request: Request) -> Response:
        obj = self._get(request.path_params["name"])
        revision = request.query_params.get("revision") or None
        comparison = await asyncio.to_thread(self.apps.compare, obj, revision=revision, refresh=True)
        if comparison.error:
            return _error(f"ComparisonError: {comparison.error}", 409)
        return JSONResponse(
            {
                "revision": comparison.revision,
                "sync": comparison.sync.value,
                "resources": [
                    {"key": str(d.key), "status": d.status.value, "requiresPruning": d.requires_pruning, "diff": d.text}
                    for d in comparison.diffs
                ],
            }
        )

    async def sync(self, request: Request) -> Response:
        obj = self._get(request.path_params["name"])
        body = await self._body(request)
        try:
            self.controller.start_sync(
                obj,
                prune=bool(body.get("prune")),
                dry_run=bool(body.get("dryRun")),
                resources=tuple(body.get("resources") or ()),
                revision=body.get("revision") or None,
                initiated_by=str(body.get("user") or os.environ.get("USER") or "user"),
            )
        except RuntimeError as exc:
            return _error(str(exc), 409)
        return JSONResponse({"started": True})

    async def rollback(self, request: Request) -> Response:
        """Sync an earlier revision from history; auto-sync is suspended until re-enabled."""
        obj = self._get(request.path_params["name"])
        body = await self._body(request)
        history = (obj.get("status") or {}).get("history") or []
        if len(history) < 2 and body.get("id") is None:
            return _error("no earlier revision in the history to roll back to", 409)
        wanted = body.get("id")
        entry = history[-2] if wanted is None else next((h for h in history if h.get("id") == wanted), None)
        if entry is None:
            return _error(f"history id {wanted} not found (kept: {[h.get('id') for h in history]})", 404)
        note = ""
        app = appmodel.parse(obj)
        if app.auto_sync:
            annotations = dict(obj["metadata"].get("annotations") or {})
            annotations[SUSPENDED] = f"rollback to history {entry['id']} ({str(entry['revision'])[:7]})"
            self.store.put_many([dict(obj, metadata=dict(obj["metadata"], annotations=annotations))])
            note = "auto-sync is suspended for this app until `funade app set NAME --sync-policy automated`"
        try:
            self.controller.start_sync(
                obj, prune=app.auto_prune, revision=str(entry["revision"]), initiated_by="rollback"
            )
        except RuntimeError as exc:
            return _error(str(exc), 409)
        return JSONResponse({"id": entry["id"], "revision": entry["revision"], "note": note})

    async def refresh(self, request: Request) -> Response:
        """Fetch git and compare now; answers with the Application as compared."""
        obj = self._get(request.path_params["name"])
        await self.controller.refresh_now(obj)
        return JSONResponse(self._get(obj["metadata"]["name"]))

    async def set_policy(self, request: Request) -> Response:
        obj = self._get(request.path_params["name"])
        body = await self._body(request)
        policy = body.get("syncPolicy")
        spec = dict(obj["spec"])
        sync_policy = dict(spec.get("syncPolicy") or {})
        annotations = dict(obj["metadata"].get("annotations") or {})
        if policy == "none":
            sync_policy.pop("automated", None)
        elif policy == "automated":
            sync_policy.setdefault("automated", {})
            annotations.pop(SUSPENDED, None)
        else:
            return _error("syncPolicy: none or automated", 400)
        spec["syncPolicy"] = sync_policy
        self.store.put_many([dict(obj, spec=spec, metadata=dict(obj["metadata"], annotations=annotations))])
        self.wake.set()
        return JSONResponse({"syncPolicy": policy})

    async def delete(self, request: Request) -> Response:
        obj = self._get(request.path_params["name"])
        cascade = request.query_params.get("cascade", "true") != "false"
        removed = self.controller.delete(obj, cascade=cascade)
        return JSONResponse({"deleted": obj["metadata"]["name"], "resources": removed})

    def _secrets(self) -> webhook.WebhookSecrets:
        configured: Obj = {}
        path = self.home / "webhook.yaml" if self.home else None
        if path is not None and path.is_file():
            try:
                loaded = yaml.safe_load(path.read_text())
            except (OSError, yaml.YAMLError) as exc:
                log.warning("%s: %s (webhooks are refused until it is fixed)", path, exc)
                return webhook.WebhookSecrets()
            configured = loaded if isinstance(loaded, dict) else {}
        return webhook.WebhookSecrets(
            github=str(configured.get("github") or os.environ.get("FUNADE_WEBHOOK_GITHUB_SECRET", "")),
            gitlab=str(configured.get("gitlab") or os.environ.get("FUNADE_WEBHOOK_GITLAB_SECRET", "")),
        )

    async def webhook(self, request: Request) -> Response:
        """A git push: verify, then refresh the apps it touches."""
        body = await request.body()
        headers = dict(request.headers.items())
        provider = webhook.detect_provider(headers)
        if provider is None:
            return _error("not a GitHub or GitLab webhook (no X-GitHub-Event or X-Gitlab-Event header)", 400)
        secrets = self._secrets()
        verdict = webhook.verify(provider, headers, body, secrets)
        if not verdict.accepted:
            log.warning("webhook from %s refused: %s", request.client.host if request.client else "?", verdict.reason)
            self.store.add_event(
                Event(
                    time.time(), APP_NAMESPACE, "Webhook", provider.value, "Warning", "WebhookRefused", verdict.reason
                )
            )
            return _error(f"refused: {verdict.reason}", 401)
        try:
            event = webhook.parse_push(provider, headers, body)
        except webhook.WebhookError as exc:
            return _error(str(exc), 400)
        if isinstance(event, webhook.Ignored):
            return JSONResponse({"ignored": event.reason})
        refs = []
        for obj in self.store.list_objects(APP_KIND, APP_NAMESPACE):
            try:
                app = appmodel.parse(obj)
            except appmodel.ApplicationError:
                continue
            comparison = self.controller.comparison(app.name)
            refs.append(
                webhook.AppRef(
                    name=app.name,
                    repo_url=app.source.repo_url,
                    target_revision=app.source.target_revision,
                    path=app.source.path,
                    extra_paths=frozenset(comparison.deps) if comparison else frozenset(),
                    manifest_generate_paths=app.annotations.get("argocd.argoproj.io/manifest-generate-paths"),
                )
            )
        affected = webhook.affected_apps(event, refs)
        for ref in affected:
            self.controller.refresh(ref.name)
        self.wake.set()
        return JSONResponse({"refreshed": [r.name for r in affected]})
