"""``funade image push|ls|promote|sbom``: images in registries (and, for an SBOM, in the local engine).

Push goes through the Docker Engine (it has the layers); listing and promotion talk to
the registry directly (:mod:`funade.engine.registry`, :mod:`funade.engine.promote`), so a
promotion never pulls an image and keeps its digest. An SBOM is read from wherever the
image is (:func:`read_sbom`): the registry a reference names, else the local engine
when it has an image of that name (a build never pushed), else the embedded registry.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table
from rich.text import Text

from funade.adapters.docker import DockerClient, DockerError, DockerUnavailable, NotFound
from funade.adapters.registry.client import RegistryClient, RegistryError
from funade.adapters.registry.settings import RepositorySettings, SettingsError
from funade.cli import consoles, registries
from funade.cli.client import funade_home
from funade.core import imagebuild, oci
from funade.core import sbom as sbom_core
from funade.core.immutability import ImmutableTagError
from funade.engine import promote as promote_engine
from funade.engine import registry as registry_engine
from funade.engine import sbom as sbom_engine

__all__ = [
    "ENGINE",
    "REGISTRY",
    "ImageSbom",
    "catalogue",
    "images_table",
    "promote_summary",
    "read_sbom",
    "register",
    "sbom_table",
]

OutputOpt = typer.Option("table", "-o", "--output", help="table | json")
LocalOpt = typer.Option(False, "--local", help="read the image from the local Docker Engine")
RemoteOpt = typer.Option(False, "--remote", help="read the image from the registry even when the engine has it")
DEFAULT_PLATFORM = "linux/amd64"
PlatformOpt = typer.Option(
    None,
    "--platform",
    help="os/arch[/variant]: which image of a multi-platform index [default: linux/amd64]; "
    "an engine image of another platform is passed over for the registry (refused with --local)",
)
#: Where an SBOM was read from.
ENGINE, REGISTRY = "engine", "registry"


def register(app: typer.Typer) -> None:
    """Add ``push``, ``ls``, ``promote`` and ``sbom`` to the ``image`` commands."""
    app.command()(push)
    app.command("ls")(ls)
    app.command()(promote)
    app.command()(sbom)


def _fail(message: str, code: int = 1) -> typer.Exit:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def _reference(text: str) -> oci.Reference:
    try:
        return registries.parse(text)
    except oci.InvalidReference as exc:
        raise _fail(str(exc), 2) from exc


def _check_output(output: str) -> None:
    if output not in ("table", "json"):
        raise _fail(f"invalid output {output!r}: use table or json", 2)


def _age(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = int((now - when).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def _kind(image: registry_engine.Image) -> str:
    if image.subject:
        return "referrer"
    if image.children:
        return "index"
    return "image"


# -- renderers -------------------------------------------------------------------------------------


def images_table(images: Sequence[registry_engine.Image], now: datetime) -> Table:
    """``funade image ls REPO``: one row per image (digest), newest first."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("DIGEST", "TAGS", "KIND", "PLATFORMS", "SIZE", "PUSHED", "DATED BY", "LAST PULL"):
        table.add_column(column, no_wrap=column != "TAGS")
    for image in images:
        dated = image.dated()
        table.add_row(
            image.digest.removeprefix("sha256:")[:12],
            ", ".join(image.tags) or Text("<untagged>", style="dim"),
            _kind(image),
            ", ".join(image.platforms) or "-",
            imagebuild.human_size(image.size),
            _age(dated[0], now) if dated else "-",
            {"push": "push record", "created": "creation time"}.get(dated[1], "-") if dated else "unknown",
            _age(image.last_pulled_at, now),
        )
    return table


def promote_summary(src: oci.Reference, dst: oci.Reference, result: promote_engine.PromoteResult) -> Text:
    """What ``funade image promote`` prints after a copy."""
    text = Text.assemble(("promoted ", "bold"), f"{src} → {dst.name}:{','.join(result.tags) or result.digest}\n")
    text.append(f"digest    {result.digest} (verified at the destination)\n")
    if result.platforms:
        text.append(f"platforms {', '.join(result.platforms)}\n")
    text.append(
        f"blobs     {result.blobs_skipped} already there, {result.blobs_mounted} mounted, "
        f"{result.blobs_copied} copied ({imagebuild.human_size(result.bytes_copied)})\n"
    )
    text.append(f"referrers {len(result.referrers)}")
    return text


# -- push ------------------------------------------------------------------------------------------


async def _push_one(docker: DockerClient, local: str, target: oci.Reference, on_line: Any) -> dict[str, Any]:
    host, repository, tag = target.registry, target.repository, target.tag or "latest"
    try:
        mutability = RepositorySettings(funade_home()).mutability(host, repository)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc
    info = await docker.inspect_image(local)
    if mutability.is_immutable(tag):
        async with registries.client_for(host) as client:
            current = await client.head_manifest(repository, tag)
        if current is not None:
            if f"{host}/{repository}@{current.digest}" in info.repo_digests:
                return {"image": str(target), "digest": current.digest, "pushed": False}
            raise ImmutableTagError(tag, repository)
    name = f"{target.name}:{tag}"
    if local != name:
        await docker.tag_image(local, target.name, tag)
    digest = await docker.push(name, on_line, auth=registries.engine_auth(host))
    return {"image": name, "digest": digest, "pushed": True}


def push(
    images: list[str] = typer.Argument(..., help="local images: NAME[:TAG] or REGISTRY/NAME[:TAG]"),
    output: str = OutputOpt,
) -> None:
    """Push images to a registry (the embedded one unless the name says another).

    `shop/web:1.0` goes to the embedded registry as REGISTRY/shop/web:1.0. A tag the
    repository makes immutable (`funade registry tag-mutability`) is never moved: pushing
    another image under it fails, pushing the same image again does nothing.
    """
    _check_output(output)
    targets = [(image, _reference(image)) for image in images]

    async def run(status: Any) -> list[dict[str, Any]]:
        done = []
        async with DockerClient() as docker:
            for local, target in targets:
                status.update(f"pushing {target}…")

                def line(text: str, target: oci.Reference = target) -> None:
                    status.update(f"pushing {target}: {text}")

                done.append(await _push_one(docker, local, target, line))
        return done

    try:
        with consoles.err.status("pushing…") as status:
            results = asyncio.run(run(status))
    except ImmutableTagError as exc:
        raise _fail(str(exc)) from exc
    except (DockerError, RegistryError) as exc:
        raise _fail(str(exc)) from exc
    if output == "json":
        print(json.dumps(results, indent=2))
        return
    for result in results:
        verb = "pushed" if result["pushed"] else "already there"
        consoles.out.print(f"{result['image']}  {result['digest']}  ({verb})", highlight=False)


# -- ls --------------------------------------------------------------------------------------------


async def _list(host: str, repository: str | None) -> tuple[list[str], list[registry_engine.Image]]:
    async with registries.client_for(host) as client:
        if repository is None:
            return await client.catalog(), []
        records = registries.history(host, repository)
        server = registries.embedded(host)
        known = server.stored_manifests(repository) if server else []
        return [], await registry_engine.inventory(client, repository, history=records, known=known)


def ls(
    repository: str | None = typer.Argument(None, help="REPOSITORY or REGISTRY/REPOSITORY; none: list repositories"),
    output: str = OutputOpt,
) -> None:
    """List a repository's images (tags, digest, platforms, size, push date) or a registry's repositories."""
    _check_output(output)
    if repository is None:
        host, repo = registries.default_registry(), None
    else:
        ref = _reference(repository)
        if ref.tag or ref.digest:
            raise _fail(f"{repository}: give a repository without tag or digest", 2)
        host, repo = ref.registry, ref.repository
    try:
        with consoles.err.status(f"reading {host}/{repo or ''}…"):
            names, images = asyncio.run(_list(host, repo))
    except RegistryError as exc:
        raise _fail(str(exc)) from exc
    if repo is None:
        if output == "json":
            print(json.dumps({"registry": host, "repositories": names}, indent=2))
        else:
            consoles.out.print("\n".join(names) if names else f"no repositories on {host}", highlight=False)
        return
    if output == "json":
        print(json.dumps({"registry": host, "repository": repo, "images": [i.to_json() for i in images]}, indent=2))
    elif not images:
        consoles.out.print(f"no images in {host}/{repo}")
    else:
        consoles.out.print(images_table(images, datetime.now(UTC)))


# -- promote ---------------------------------------------------------------------------------------


def promote(
    source: str = typer.Argument(..., help="REGISTRY/REPO:TAG or REGISTRY/REPO@DIGEST"),
    destination: str = typer.Argument(..., help="REGISTRY/REPO[:TAG]; without a tag, the source's tag"),
    tag: list[str] = typer.Option([], "-t", "--tag", help="more tags at the destination (repeatable)"),
    no_referrers: bool = typer.Option(False, "--no-referrers", help="leave signatures, SBOMs and other referrers"),
    output: str = OutputOpt,
) -> None:
    """Copy an image to another repository or registry by digest, without pulling it.

    Every platform of an index and its referrers come along; blobs the destination has
    are skipped, blobs in the same registry are mounted, the rest streamed. The manifest
    is copied byte for byte, so the digest stays the same (checked after).
    """
    _check_output(output)
    src, dst = _reference(source), _reference(destination)
    if dst.digest:
        raise _fail(f"{destination}: the destination takes a tag, not a digest", 2)
    tags = [t for t in dict.fromkeys([*([dst.tag] if dst.tag else [src.tag] if src.tag else []), *tag]) if t]
    for t in tags:
        try:
            oci.validate_tag(t)
        except oci.InvalidReference as exc:
            raise _fail(str(exc), 2) from exc
    try:
        mutability = RepositorySettings(funade_home()).mutability(dst.registry, dst.repository)
    except SettingsError as exc:
        raise _fail(str(exc)) from exc

    async def run(progress: Progress | None) -> promote_engine.PromoteResult:
        task = progress.add_task("copying", total=None) if progress else None

        def event(e: promote_engine.PromoteEvent) -> None:
            if progress is not None and task is not None:
                progress.update(task, advance=1, description=f"{e.what} {e.digest[7:19]} {e.action}")

        src_client = registries.client_for(src.registry)
        dst_client: RegistryClient = src_client if dst.registry == src.registry else registries.client_for(dst.registry)
        try:
            return await promote_engine.promote(
                promote_engine.Endpoint(src_client, src.registry, src.repository),
                src.reference,
                promote_engine.Endpoint(dst_client, dst.registry, dst.repository),
                tags,
                mutability=mutability,
                with_referrers=not no_referrers,
                on_event=event,
            )
        finally:
            await src_client.close()
            if dst_client is not src_client:
                await dst_client.close()

    try:
        if output == "table" and consoles.err.is_terminal:
            columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed} steps"))
            with Progress(*columns, console=consoles.err, transient=True) as progress:
                result = asyncio.run(run(progress))
        else:
            result = asyncio.run(run(None))
    except ImmutableTagError as exc:
        raise _fail(str(exc)) from exc
    except (RegistryError, promote_engine.PromoteError) as exc:
        raise _fail(str(exc)) from exc
    if output == "json":
        print(json.dumps({"source": str(src), "destination": dst.name, **result.to_json()}, indent=2))
    else:
        consoles.out.print(promote_summary(src, dst, result), highlight=False)


# -- sbom ------------------------------------------------------------------------------------------


def sbom_table(found: sbom_core.Sbom) -> Table:
    """One row per package: type, name, version, source package, the layer that brought it."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("TYPE", "NAME", "VERSION", "SOURCE", "LAYER", "PURL"):
        table.add_column(column, no_wrap=column != "PURL")
    for package in found.packages:
        source = package.source_name or ""
        if package.source_version and package.source_version != package.version:
            source += f" {package.source_version}"
        table.add_row(
            package.type.value,
            package.name,
            package.version,
            source,
            (package.layer or "").removeprefix("sha256:")[:12],
            package.purl,
        )
    return table


@dataclass(frozen=True)
class ImageSbom:
    """An image's SBOM, what to call the image, and where it was read (:data:`ENGINE` or :data:`REGISTRY`)."""

    name: str
    sbom: sbom_core.Sbom
    source: str


def _same_platform(held: str, wanted: str) -> bool:
    """Whether an image built for ``held`` is the ``wanted`` os/arch (and variant, when one is asked for)."""
    have, want = held.split("/"), wanted.split("/")
    return have[:2] == want[:2] and (len(want) < 3 or have[2:3] == want[2:3])


def _names_registry(text: str) -> bool:
    """Whether the reference names its registry host (``host[:port]/…``, ``localhost/…``) rather than defaulting."""
    sentinel = "registry.invalid"
    return oci.parse_reference(text, default_registry=sentinel).registry != sentinel


async def catalogue(
    image: str,
    *,
    platform: str | None = None,
    local: bool = False,
    remote: bool = False,
    docker: Callable[[], DockerClient] = DockerClient,
    registry: Callable[[str], RegistryClient] = registries.client_for,
) -> ImageSbom:
    """Read ``image``'s SBOM from the engine or a registry: the choice :func:`read_sbom` describes.

    Args:
        platform: ``os/arch[/variant]`` asked for (None: the engine's image, or linux/amd64 of an
            index). An engine image of another platform is passed over for the registry's index,
            or refused with ``local``.
        docker: Makes the Docker client (a fake in tests).
        registry: Makes the registry client for a host (a fake in tests).

    Raises:
        oci.InvalidReference, DockerError, RegistryError, SbomError.
    """
    ref = registries.parse(image)
    if not remote and (local or not _names_registry(image)):
        engine_error: Exception = sbom_engine.SbomError(f"the local Docker Engine has no image {image}")
        try:
            engine = docker()
        except ValueError as exc:  # an unusable DOCKER_HOST
            engine_error = DockerUnavailable(None, str(exc))
        else:
            async with engine:
                try:
                    held = (await engine.inspect_image(image)).platform
                except NotFound:
                    held = None
                except DockerUnavailable as exc:
                    held, engine_error = None, exc
                if held is not None and (platform is None or _same_platform(held, platform)):
                    return ImageSbom(image, await sbom_engine.catalogue_local(engine, image), ENGINE)
                if held is not None:
                    engine_error = sbom_engine.SbomError(
                        f"the local Docker Engine holds {image} for {held}, not {platform} (build it with "
                        f"`funade image build --platform {platform}`, or read a registry's index with --remote)"
                    )
        if local:  # without an engine (or the image in it) the registry is asked, unless --local said not to
            raise engine_error
    async with registry(ref.registry) as client:
        found = await sbom_engine.catalogue(
            client, ref.repository, ref.reference, platform=platform or DEFAULT_PLATFORM
        )
    return ImageSbom(str(ref), found, REGISTRY)


def read_sbom(image: str, *, platform: str | None, local: bool, remote: bool) -> ImageSbom:
    """The SBOM of ``image`` from the local engine or a registry, as the CLI chooses (see the module doc).

    Exits with a message when the image cannot be read.
    """
    if local and remote:
        raise _fail("--local and --remote exclude each other", 2)
    _reference(image)
    try:
        with consoles.err.status(f"reading {image}…"):
            return asyncio.run(catalogue(image, platform=platform, local=local, remote=remote))
    except (RegistryError, DockerError, sbom_engine.SbomError) as exc:
        raise _fail(str(exc)) from exc


def sbom(
    image: str = typer.Argument(..., help="NAME[:TAG] in the local engine, or [REGISTRY/]REPO:TAG or @DIGEST"),
    platform: str | None = PlatformOpt,
    local: bool = LocalOpt,
    remote: bool = RemoteOpt,
    output: str = typer.Option("table", "-o", "--output", help="table | cyclonedx | spdx | json"),
) -> None:
    """List the packages in an image: Debian, Alpine, Python, npm, Go and Java.

    A reference naming a registry is read from it, without a pull; a name the local
    Docker Engine has (a build never pushed) is read from the engine; anything else
    from the embedded registry. `--local` / `--remote` decide instead. Layers are read
    in order with whiteouts honoured; each package says which layer brought it.
    CycloneDX 1.5 and SPDX 2.3 JSON carry package URLs.
    """
    if output not in ("table", "cyclonedx", "spdx", "json"):
        raise _fail(f"invalid output {output!r}: use table, cyclonedx, spdx or json", 2)
    read = read_sbom(image, platform=platform, local=local, remote=remote)
    found, name = read.sbom, read.name
    if output == "cyclonedx":
        document = sbom_core.to_cyclonedx(name, found.digest, found.packages, distro=found.distro)
        print(json.dumps(document, indent=2))
    elif output == "spdx":
        print(json.dumps(sbom_core.to_spdx(name, found.digest, found.packages), indent=2))
    elif output == "json":
        print(
            json.dumps(
                {
                    "image": name,
                    "source": read.source,
                    "digest": found.digest,
                    "platform": found.platform,
                    "distro": str(found.distro) if found.distro else None,
                    "layers": list(found.layers),
                    "packages": [
                        {
                            "type": p.type.value,
                            "name": p.name,
                            "version": p.version,
                            "purl": p.purl,
                            "source": p.source_name,
                            "sourceVersion": p.source_version,
                            "arch": p.arch,
                            "licenses": list(p.licenses),
                            "layer": p.layer,
                            "path": p.path,
                        }
                        for p in found.packages
                    ],
                },
                indent=2,
            )
        )
    else:
        distro = f" ({found.distro.pretty_name or found.distro})" if found.distro else ""
        where = " (local engine)" if read.source == ENGINE else ""
        consoles.out.print(f"{name}{where}  {found.digest}{distro}: {len(found.packages)} packages", highlight=False)
        if found.packages:
            consoles.out.print(sbom_table(found))
