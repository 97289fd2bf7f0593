"""kubectl-shaped commands for workloads: apply, get, describe, delete, logs, events, audit,
scale and the rollout verbs.

Manifests are read, rendered (kustomize) and validated here, before anything is sent,
so bad input fails with the file, line and field and the server is never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from typing import Any

import typer
import yaml
from rich.console import Group
from rich.live import Live
from rich.text import Text

from funade.cli import consoles, render, rollouts, sources
from funade.cli.client import ApiError, Client
from funade.core import manifests

# funade.engine.workloads builds the Kubernetes object models (pydantic, ~150 ms to import):
# imported where it is used, so `funade image …` and `funade registry …` start quickly.

__all__ = ["register"]

Obj = dict[str, Any]
console = consoles.out
err = consoles.err

_GROUPS = {"Deployment": "deployment.apps", "ReplicaSet": "replicaset.apps", "Rollout": "rollout.argoproj.io"}

OutputOpt = typer.Option("", "-o", "--output", help="json | yaml | wide | name")
NamespaceOpt = typer.Option("default", "-n", "--namespace")


def _fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _client() -> Client:
    return Client()


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        raise _fail(str(exc)) from exc


def _ref(kind_or_ref: str, name: str | None) -> tuple[str, str | None]:
    from funade.engine import workloads

    if "/" in kind_or_ref and name is None:
        kind, _, name = kind_or_ref.partition("/")
        return workloads.normalize_kind(kind), name
    return workloads.normalize_kind(kind_or_ref), name


def _display(kind: str, name: str) -> str:
    return f"{_GROUPS.get(kind, kind.lower())}/{name}"


def _dump(data: Any, output: str) -> None:
    if output == "yaml":
        print(yaml.safe_dump(data, sort_keys=False), end="")
    else:
        print(json.dumps(data, indent=2))


# -- reading manifests -------------------------------------------------------------------


def _sources(files: list[str], kustomize_dir: str | None, recursive: bool) -> list[tuple[str, str]]:
    try:
        return sources.read_sources(files, kustomize_dir, recursive, "apply")
    except sources.SourceError as exc:
        raise _fail(str(exc)) from exc


def load_objects(files: list[str], kustomize_dir: str | None = None, recursive: bool = False) -> list[Obj]:
    """Read, render and validate manifests; exits with a clear message on the first problem."""
    from funade.engine import workloads

    objs: list[Obj] = []
    for source, text in _sources(files, kustomize_dir, recursive):
        try:
            objs += workloads.parse_documents(text, source)
        except manifests.ManifestError as exc:
            raise _fail(str(exc)) from exc
    if not objs:
        raise _fail("no objects passed to apply")
    return objs


# -- commands ------------------------------------------------------------------------------


def apply(
    filename: list[str] = typer.Option([], "-f", "--filename", help="FILE, DIR or - (stdin)"),
    kustomize_dir: str | None = typer.Option(None, "-k", "--kustomize", help="a kustomization directory"),
    recursive: bool = typer.Option(False, "-R", "--recursive"),
    namespace: str = NamespaceOpt,
    dry_run: bool = typer.Option(False, "--dry-run"),
    wait: bool = typer.Option(False, "--wait", help="follow the rollouts this apply started"),
    force_gate: str | None = typer.Option(
        None, "--force-gate", help="apply despite the namespace's scan/policy gate; the REASON is recorded"
    ),
    timeout: float = typer.Option(600.0, "--timeout"),
    output: str = OutputOpt,
) -> None:
    """Create or update objects from manifests (multi-document YAML, dirs, kustomize)."""
    objs = load_objects(filename, kustomize_dir, recursive)
    client = _client()
    request: dict[str, Any] = {"objects": objs, "namespace": namespace, "dryRun": dry_run}
    if force_gate is not None:
        request["forceGate"] = force_gate
    result = _call(client.post, "/v1/apply", request)
    for warning in result.get("warnings", []):
        err.print(f"[yellow]warning:[/yellow] {warning}")
    if output == "json":
        print(json.dumps(result, indent=2))
    else:
        for r in result["results"]:
            note = "" if r["runnable"] else " (stored; not runnable on the local target)"
            console.print(f"{_display(r['kind'], r['name'])} {r['action']}{note}", highlight=False)
            for warning in r.get("warnings", []):
                err.print(f"[yellow]warning:[/yellow] {_display(r['kind'], r['name'])}: {warning}")
    if wait and not dry_run:
        changed = [r for r in result["results"] if r["kind"] == "Deployment"]
        code = 0
        for r in changed:
            code = max(code, _follow(client, r["namespace"], r["name"], timeout, output == "json"))
        if code:
            raise typer.Exit(code)


def get(
    kind: str = typer.Argument(..., help="pods, deployments, replicasets, configmaps, secrets, namespaces, …"),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    selector: str | None = typer.Option(None, "-l", "--selector"),
    watch: bool = typer.Option(False, "-w", "--watch", help="keep the list on screen as it changes (Ctrl-C ends)"),
    output: str = OutputOpt,
) -> None:
    """List objects, or show one (`all` lists pods, services, deployments and replica sets)."""
    client = _client()
    if watch and not name and output not in ("json", "yaml", "name"):
        _watch(client, _ref(kind, None)[0], namespace, all_namespaces, selector, output == "wide")
        return
    if kind.lower() == "all" and not name:
        _get_all(client, namespace, all_namespaces, selector, output)
        return
    kind, name = _ref(kind, name)
    if name:
        obj = _call(client.get, f"/v1/objects/{kind}/{namespace}/{name}")
        if output in ("json", "yaml"):
            _dump(obj, output)
            return
        items = [obj]
    else:
        data = _list(client, kind, namespace, all_namespaces, selector)
        kind, items = data["kind"], data["items"]
        if output in ("json", "yaml"):
            _dump({"apiVersion": "v1", "kind": "List", "items": items}, output)
            return
    if output == "name":
        for obj in items:
            print(_display(kind, obj["metadata"]["name"]))
        return
    if not items:
        where = "" if all_namespaces else f" in {namespace} namespace"
        err.print(f"No resources found{where}.")
        return
    console.print(render.object_table(kind, items, wide=output == "wide", all_namespaces=all_namespaces))


def _list(client: Client, kind: str, namespace: str, all_namespaces: bool, selector: str | None) -> Obj:
    """``GET /v1/objects/KIND`` for one namespace (or all), filtered by a label selector."""
    data: Obj = _call(
        client.get,
        f"/v1/objects/{kind}",
        namespace=namespace,
        selector=selector,
        allNamespaces="true" if all_namespaces else None,
    )
    return data


def _watch(client: Client, kind: str, namespace: str, all_namespaces: bool, selector: str | None, wide: bool) -> None:
    """`get -w`: a live table on a terminal; elsewhere, the table again each time it changes."""
    last = None
    live = Live(console=console, refresh_per_second=4) if console.is_terminal else None
    try:
        if live:
            live.start()
        while True:
            data = _list(client, kind, namespace, all_namespaces, selector)
            shape = [(o["metadata"].get("namespace"), o["metadata"]["name"], o.get("status")) for o in data["items"]]
            table = render.object_table(data["kind"], data["items"], wide=wide, all_namespaces=all_namespaces)
            if live:
                live.update(table)
            elif shape != last:
                console.print(table)
                console.print()
            last = shape
            time.sleep(0.5)
    except KeyboardInterrupt:
        return
    finally:
        if live:
            live.stop()


def _get_all(client: Client, namespace: str, all_namespaces: bool, selector: str | None, output: str) -> None:
    found: list[Obj] = []
    printed = False
    for kind in ("Pod", "Service", "Deployment", "ReplicaSet"):
        data = _list(client, kind, namespace, all_namespaces, selector)
        items = data["items"]
        found += items
        if not items or output in ("json", "yaml"):
            continue
        if printed:
            console.print()
        renamed = [dict(o, metadata=dict(o["metadata"], name=_display(kind, o["metadata"]["name"]))) for o in items]
        console.print(render.object_table(kind, renamed, wide=output == "wide", all_namespaces=all_namespaces))
        printed = True
    if output in ("json", "yaml"):
        _dump({"apiVersion": "v1", "kind": "List", "items": found}, output)
    elif not printed:
        err.print(f"No resources found{'' if all_namespaces else f' in {namespace} namespace'}.")


def describe(
    kind: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Show an object's details, conditions and recent events."""
    kind, name = _ref(kind, name)
    if not name:
        raise _fail("describe needs a NAME (or KIND/NAME)")
    client = _client()
    obj = _call(client.get, f"/v1/objects/{kind}/{namespace}/{name}")
    events = _call(
        client.get, "/v1/events", namespace=obj["metadata"].get("namespace") or namespace, kind=kind, name=name
    )["items"]
    if output in ("json", "yaml"):
        _dump({"object": obj, "events": events}, output)
        return
    console.print(render.describe(obj, events), highlight=False)


def delete(
    kind: str | None = typer.Argument(None),
    name: str | None = typer.Argument(None),
    filename: list[str] = typer.Option([], "-f", "--filename"),
    namespace: str = NamespaceOpt,
    grace_period: int | None = typer.Option(None, "--grace-period"),
    wait: bool = typer.Option(True, "--wait/--no-wait"),
    output: str = OutputOpt,
) -> None:
    """Delete objects by KIND NAME, KIND/NAME or -f FILE."""
    targets: list[tuple[str, str, str]] = []
    if filename:
        for obj in load_objects(filename):
            meta = obj["metadata"]
            targets.append((obj["kind"], meta.get("namespace") or namespace, meta["name"]))
    elif kind:
        k, n = _ref(kind, name)
        if not n:
            raise _fail("delete needs a NAME (or KIND/NAME, or -f FILE)")
        targets.append((k, namespace, n))
    else:
        raise _fail("delete needs KIND NAME or -f FILE")
    client = _client()
    deleted: list[str] = []
    for k, ns, n in targets:
        result = _call(
            client.delete,
            f"/v1/objects/{k}/{ns}/{n}",
            gracePeriod=grace_period,
            wait="true" if wait and k == "Pod" else None,
        )
        deleted += result["deleted"]
        if output != "json":
            console.print(f"{_display(k, n)} deleted", highlight=False)
    if output == "json":
        print(json.dumps({"deleted": deleted}, indent=2))


def logs(
    pod: str | None = typer.Argument(None, help="POD, or deployment/NAME"),
    container: str | None = typer.Option(None, "-c", "--container"),
    follow: bool = typer.Option(False, "-f", "--follow"),
    previous: bool = typer.Option(False, "-p", "--previous"),
    tail: int = typer.Option(-1, "--tail"),
    selector: str | None = typer.Option(None, "-l", "--selector"),
    namespace: str = NamespaceOpt,
) -> None:
    """Print a container's logs (-l for every pod matching a selector)."""
    client = _client()
    if selector or (pod and "/" in pod):
        if selector:
            pods = _call(client.get, "/v1/objects/Pod", namespace=namespace, selector=selector)["items"]
        else:
            k, n = _ref(pod or "", None)
            obj = _call(client.get, f"/v1/objects/{k}/{namespace}/{n}")
            labels = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
            sel = ",".join(f"{a}={b}" for a, b in labels.items())
            pods = _call(client.get, "/v1/objects/Pod", namespace=namespace, selector=sel)["items"][:1]
        names = [p["metadata"]["name"] for p in pods]
        if not names:
            raise _fail("no pods found")
    elif pod:
        names = [pod]
    else:
        raise _fail("logs needs POD, KIND/NAME or -l SELECTOR")
    prefix = len(names) > 1

    def stream(name: str) -> None:
        lines = Client().stream(
            f"/v1/logs/{namespace}/{name}",
            container=container,
            follow="true" if follow else None,
            tail=tail,
            previous="true" if previous else None,
        )
        for line in lines:
            print(f"[pod/{name}] {line}" if prefix else line, flush=True)

    if not (follow and prefix):
        for name in names:
            _call(stream, name)
        return
    # Following several pods: one stream each, interleaved as lines arrive (kubectl logs -f -l).
    failures: list[str] = []

    def follow_one(name: str) -> None:
        try:
            stream(name)
        except ApiError as exc:
            failures.append(f"pod/{name}: {exc}")

    threads = [threading.Thread(target=follow_one, args=(n,), daemon=True) for n in names]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        return
    if failures:
        raise _fail("; ".join(failures))


def exec_(
    pod: str = typer.Argument(..., help="POD"),
    command: list[str] = typer.Argument(..., help="the command, after --"),
    container: str | None = typer.Option(None, "-c", "--container"),
    stdin: bool = typer.Option(False, "-i", "--stdin", help="pass stdin to the command"),
    tty: bool = typer.Option(False, "-t", "--tty", help="allocate a terminal"),
    namespace: str = NamespaceOpt,
) -> None:
    """Run a command in a pod's container (`funade exec POD -- CMD…`).

    The local target's pods are Docker containers on this host, so the command runs
    through the Docker CLI, with a real terminal when asked (-it).
    """
    target = _call(_client().get, f"/v1/exec/{namespace}/{pod}", container=container)
    docker = shutil.which("docker")
    if docker is None:
        raise _fail("the docker CLI is not installed: `funade exec` runs commands through it")
    flags = (["-i"] if stdin else []) + (["-t"] if tty else [])
    os.execv(docker, [docker, "exec", *flags, target["containerID"], *command])


def events(
    namespace: str = NamespaceOpt,
    all_namespaces: bool = typer.Option(False, "-A", "--all-namespaces"),
    for_object: str | None = typer.Option(None, "--for", help="KIND/NAME"),
    output: str = OutputOpt,
) -> None:
    """List recent events."""
    kind = name = None
    if for_object:
        kind, name = _ref(for_object, None)
    items = _call(
        _client().get,
        "/v1/events",
        namespace=namespace,
        kind=kind,
        name=name,
        allNamespaces="true" if all_namespaces else None,
    )["items"]
    if output in ("json", "yaml"):
        _dump(items, output)
        return
    if not items:
        err.print("No events found.")
        return
    console.print(render.events_table(items))


def audit(
    namespace: str | None = typer.Option(None, "-n", "--namespace", help="only this namespace (default: all)"),
    limit: int = typer.Option(200, "--limit", help="the newest N entries"),
    output: str = OutputOpt,
) -> None:
    """The audit log: who changed what, when — applies, deletes, scales, rollout and app verbs — and who
    let what past the deploy gate, and why. Kept for good."""
    items = _call(_client().get, "/v1/audit", namespace=namespace, limit=limit)["items"]
    if output in ("json", "yaml"):
        _dump(items, output)
        return
    if not items:
        err.print("The audit log is empty.")
        return
    console.print(render.audit_table(items), highlight=False)


def scale(
    ref: str = typer.Argument(..., help="deployment/NAME"),
    name: str | None = typer.Argument(None),
    replicas: int = typer.Option(..., "--replicas"),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Set a Deployment's replica count."""
    kind, n = _ref(ref, name)
    obj = _call(_client().post, f"/v1/scale/{kind}/{namespace}/{n}", {"replicas": replicas})
    if output == "json":
        print(json.dumps(obj, indent=2))
    else:
        console.print(f"{_display(kind, str(n))} scaled", highlight=False)


# -- rollout -----------------------------------------------------------------------------

rollout_app = typer.Typer(
    help="Manage rollouts: of a Deployment (status, history, undo, restart, pause, resume) "
    "or of an Argo Rollout (get, promote, abort, retry, undo rollout/NAME).",
    no_args_is_help=True,
)


def _deployment_ref(ref: str, name: str | None) -> str:
    kind, n = _ref(ref, name)
    if kind != "Deployment" or not n:
        raise _fail("rollout works on deployment/NAME")
    return n


def _pods_for(client: Client, deployment: Obj) -> list[Obj]:
    labels = (deployment.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
    sel = ",".join(f"{k}={v}" for k, v in labels.items())
    return list(client.get("/v1/objects/Pod", namespace=deployment["metadata"]["namespace"], selector=sel)["items"])


def _follow(client: Client, namespace: str, name: str, timeout: float, as_json: bool) -> int:
    """Watch a rollout until it ends; returns the exit code (0 done, 1 failed or rolled back)."""
    deadline = time.monotonic() + timeout
    state, message = "waiting", ""
    deployment: Obj = {}
    start = time.monotonic()
    live = None if as_json or not console.is_terminal else Live(console=console, refresh_per_second=4, transient=True)
    printed = ""
    try:
        if live:
            live.start()
        while time.monotonic() < deadline:
            deployment = _call(client.get, f"/v1/objects/Deployment/{namespace}/{name}")
            state, message = render.rollout_outcome(deployment)
            if state != "waiting":
                break
            pods = _call(_pods_for, client, deployment)
            if live:
                live.update(Group(Text(message), render.rollout_line(deployment, pods)))
            elif not as_json and message != printed:
                console.print(message, highlight=False)
                printed = message
            time.sleep(0.25)
        else:
            state, message = "timeout", f'timed out after {timeout:g}s waiting for deployment "{name}" to roll out'
    finally:
        if live:
            live.stop()
    took = time.monotonic() - start
    if as_json:
        print(
            json.dumps(
                {
                    "deployment": name,
                    "namespace": namespace,
                    "result": state,
                    "message": message,
                    "seconds": round(took, 1),
                    "status": deployment.get("status"),
                },
                indent=2,
            )
        )
    elif state == "done":
        console.print(f"[green]✓[/green] {message} in {took:.1f}s", highlight=False)
    else:
        err.print(f"[red]✗[/red] {message}", highlight=False)
    return 0 if state == "done" else 1


@rollout_app.command("status")
def rollout_status(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    timeout: float = typer.Option(600.0, "--timeout"),
    watch: bool = typer.Option(True, "-w", "--watch/--no-watch"),
    output: str = OutputOpt,
) -> None:
    """Wait for a rollout to finish; exits 1 when it failed or was rolled back."""
    n = _deployment_ref(ref, name)
    client = _client()
    code = _follow(client, namespace, n, timeout if watch else 0.0001, output == "json")
    raise typer.Exit(code)


@rollout_app.command("history")
def rollout_history(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """List a Deployment's revisions."""
    n = _deployment_ref(ref, name)
    items = _call(_client().get, f"/v1/rollout/{namespace}/{n}/history")["items"]
    if output in ("json", "yaml"):
        _dump(items, output)
        return
    console.print(f"deployment.apps/{n}", highlight=False)
    console.print(render.history_table(items))


def _verb(verb: str, ref: str, name: str | None, namespace: str, output: str, body: Obj | None = None) -> Obj:
    n = _deployment_ref(ref, name)
    result: Obj = _call(_client().post, f"/v1/rollout/{namespace}/{n}/{verb}", body or {})
    if output == "json":
        print(json.dumps(result, indent=2))
    return result


@rollout_app.command("undo")
def rollout_undo(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    to_revision: int = typer.Option(0, "--to-revision"),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Roll back to the previous (or a given) revision; it runs again as a new revision."""
    kind, n = _ref(ref, name)
    if kind == "Rollout" and n:
        rollouts.undo(n, namespace, to_revision or None, output)
        return
    result = _verb("undo", ref, name, namespace, output, {"toRevision": to_revision or None})
    if output != "json":
        console.print(
            f"deployment.apps/{_deployment_ref(ref, name)} rolled back (to revision {result['revision']})",
            highlight=False,
        )


@rollout_app.command("restart")
def rollout_restart(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Replace every pod with a new revision of the same template."""
    _verb("restart", ref, name, namespace, output)
    if output != "json":
        console.print(f"deployment.apps/{_deployment_ref(ref, name)} restarted", highlight=False)


@rollout_app.command("pause")
def rollout_pause(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Stop rolling out template changes until resumed."""
    _verb("pause", ref, name, namespace, output)
    if output != "json":
        console.print(f"deployment.apps/{_deployment_ref(ref, name)} paused", highlight=False)


@rollout_app.command("resume")
def rollout_resume(
    ref: str = typer.Argument(...),
    name: str | None = typer.Argument(None),
    namespace: str = NamespaceOpt,
    output: str = OutputOpt,
) -> None:
    """Resume a paused rollout."""
    _verb("resume", ref, name, namespace, output)
    if output != "json":
        console.print(f"deployment.apps/{_deployment_ref(ref, name)} resumed", highlight=False)


def register(app: typer.Typer) -> None:
    for command in (apply, get, describe, delete, logs, events, audit, scale):
        app.command()(command)
    app.command("exec")(exec_)
    rollouts.register(rollout_app)
    app.add_typer(rollout_app, name="rollout")
