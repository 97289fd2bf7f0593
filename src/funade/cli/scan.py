"""``funade image scan``: the vulnerabilities of an image, from its SBOM and the OSV data.

The SBOM is read from the registry without a pull, or from the local engine for an image
never pushed (:func:`funade.cli.imagestore.read_sbom`); the advisories come from
``funade vuln db`` (:mod:`funade.adapters.vulndb`). Findings can be filtered by severity,
without a fix, or accepted in ``.funadeignore`` / ``.trivyignore`` / ``.trivyignore.yaml``;
``--exit-code`` makes a CI gate of it, as with Trivy. Output: a table, JSON, SARIF, or
CycloneDX 1.5 with the packages and their vulnerabilities in one document.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table
from rich.text import Text

from funade.adapters import vulndb
from funade.adapters.registry.client import RegistryError
from funade.adapters.vulndb import VulnDB
from funade.cli import consoles, imagestore, registries, sarif
from funade.cli.client import ApiError, Client, funade_home
from funade.core import oci
from funade.core.vuln import findings as findings_core
from funade.core.vuln import ignore
from funade.core.vuln.osv import Level
from funade.engine import scan as scan_engine

__all__ = ["findings_table", "register", "to_sarif"]

_STYLES = {Level.CRITICAL: "bold red", Level.HIGH: "red", Level.MEDIUM: "yellow", Level.LOW: "cyan"}
_SARIF_LEVEL = {Level.CRITICAL: "error", Level.HIGH: "error", Level.MEDIUM: "warning", Level.LOW: "note"}
_IGNORE_FILES = (".funadeignore", ".trivyignore", ".trivyignore.yaml")
_OUTPUTS = ("table", "json", "sarif", "cyclonedx")
DEFAULT_MAX_AGE_DAYS = 5.0


def register(app: typer.Typer) -> None:
    """Add ``scan`` to the ``image`` commands."""
    app.command()(scan)


def _fail(message: str, code: int = 2) -> typer.Exit:
    consoles.err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


def findings_table(findings: Sequence[scan_engine.Finding]) -> Table:
    """One row per finding: id (and CVE aliases), package, installed and fixed versions, severity, layer."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in ("ID", "ALIASES", "PACKAGE", "INSTALLED", "FIXED", "SEVERITY", "LAYER"):
        table.add_column(column, no_wrap=column not in ("ALIASES",))
    for f in findings:
        table.add_row(
            f.id,
            ", ".join(a for a in f.aliases if a.startswith("CVE-")) or "-",
            f.package,
            f.installed,
            f.fixed or Text("no fix", style="dim"),
            Text(f.severity.value, style=_STYLES.get(f.severity, "")),
            (f.layer or "").removeprefix("sha256:")[:12],
        )
    return table


def to_sarif(image: str, findings: Sequence[scan_engine.Finding]) -> dict[str, Any]:
    """SARIF 2.1.0 that GitHub code scanning accepts: one rule per advisory, one result per finding."""
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for f in findings:
        rules.setdefault(
            f.id,
            {
                "id": f.id,
                "name": f.id.replace("-", ""),
                "shortDescription": {"text": f.summary or f.id},
                "helpUri": f"https://osv.dev/vulnerability/{f.id}",
                "properties": {
                    "security-severity": {"CRITICAL": "9.5", "HIGH": "8.0", "MEDIUM": "5.5", "LOW": "2.0"}.get(
                        f.severity.value, "0.0"
                    ),
                    "tags": ["security", "vulnerability"],
                },
            },
        )
        fixed = f"; fixed in {f.fixed}" if f.fixed else "; no fix yet"
        results.append(
            {
                "ruleId": f.id,
                "level": _SARIF_LEVEL.get(f.severity, "note"),
                "message": {"text": f"{f.package} {f.installed} is affected by {f.id}{fixed} ({f.severity.value})"},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": image.replace(":", "/", 1)}},
                        "logicalLocations": [{"name": f.purl, "kind": "package"}],
                    }
                ],
            }
        )
    return sarif.log(list(rules.values()), results, "https://osv.dev")


def _ignore_rules(paths: Sequence[Path]) -> list[ignore.IgnoreRule]:
    rules: list[ignore.IgnoreRule] = []
    for path in paths:
        try:
            text = path.read_text()
            if path.name.endswith((".yaml", ".yml")):
                rules += ignore.parse_yaml(yaml.safe_load(text), str(path))
            else:
                rules += ignore.parse_text(text, str(path))
        except (OSError, yaml.YAMLError, ignore.IgnoreError) as exc:
            raise _fail(f"{path}: {exc}") from exc
    return rules


def _cached(ref: oci.Reference) -> dict[str, Any]:
    """The server's stored scan of the image the reference names now."""

    async def digest_of() -> str | None:
        if ref.digest:
            return ref.digest
        async with registries.client_for(ref.registry) as client:
            found = await client.head_manifest(ref.repository, ref.reference)
        return found.digest if found else None

    try:
        digest = asyncio.run(digest_of())
    except RegistryError as exc:
        raise _fail(str(exc), 1) from exc
    if digest is None:
        raise _fail(f"{ref}: no such image in the registry", 1)
    client = Client()
    try:
        result: dict[str, Any] = client.get(
            "/v1/scans", registry=ref.registry, repository=ref.repository, digest=digest
        )
    except ApiError as exc:
        hint = " (is vulnerability data imported? the server scans on push only with data)" if exc.status == 404 else ""
        raise _fail(f"{exc}{hint}", 1) from exc
    finally:
        client.close()
    return result


def scan(
    image: str = typer.Argument(..., help="NAME[:TAG] in the local engine, or [REGISTRY/]REPO:TAG or @DIGEST"),
    severity: str = typer.Option("", "--severity", help="only these levels, e.g. CRITICAL,HIGH"),
    exit_code: int = typer.Option(0, "--exit-code", help="exit with this code when findings remain"),
    ignore_unfixed: bool = typer.Option(False, "--ignore-unfixed", help="leave out findings without a fix"),
    ignorefile: list[Path] = typer.Option(
        [],
        "--ignorefile",
        help="more ignore files (default: ./.funadeignore, ./.trivyignore, ./.trivyignore.yaml when present)",
    ),
    max_age: float = typer.Option(DEFAULT_MAX_AGE_DAYS, "--max-age", help="warn when the data is older (days)"),
    platform: str | None = imagestore.PlatformOpt,
    local: bool = imagestore.LocalOpt,
    remote: bool = imagestore.RemoteOpt,
    cached: bool = typer.Option(False, "--cached", help="the result the server kept from the scan on push"),
    output: str = typer.Option("table", "-o", "--output", help="table | json | sarif | cyclonedx"),
) -> None:
    """Scan an image for known vulnerabilities (OSV data from `funade vuln db update|import`).

    The image is read as `funade image sbom` reads it: from the registry a reference
    names, from the local Docker Engine when it has the name (`--local` / `--remote`
    decide instead), else from the embedded registry. The server scans every image
    pushed to the embedded registry (and again when the data changes): `--cached` shows
    that result at once. `-o cyclonedx` writes CycloneDX 1.5 with the packages and their
    vulnerabilities.
    """
    if output not in _OUTPUTS:
        raise _fail(f"invalid output {output!r}: use table, json, sarif or cyclonedx")
    if cached and local:
        raise _fail("--cached shows the server's scans of registry images: drop --local")
    if cached and output == "cyclonedx":
        raise _fail("--cached keeps the findings, not the package list: -o cyclonedx needs a fresh scan")
    levels = {s.strip().upper() for s in severity.split(",") if s.strip()}
    unknown = levels - {level.value for level in Level}
    if unknown:
        raise _fail(f"--severity: unknown level {sorted(unknown)[0]} (CRITICAL, HIGH, MEDIUM, LOW, UNKNOWN)")
    try:
        ref = registries.parse(image)
    except oci.InvalidReference as exc:
        raise _fail(str(exc)) from exc
    defaults = [Path(name) for name in _IGNORE_FILES if Path(name).is_file()]
    rules = _ignore_rules([*defaults, *ignorefile])
    read: imagestore.ImageSbom | None = None
    if cached:
        result = _cached(ref)
        name, source = str(ref), imagestore.REGISTRY
        digest, distro, package_count = str(result["digest"]), result.get("distro"), int(result.get("packages", 0))
        imported = result.get("dataImportedAt")
        every = [scan_engine.Finding.from_json(f) for f in result.get("findings", [])]
    else:
        data = VulnDB(vulndb.default_path(funade_home()))
        imported = data.imported_at()
        if imported is None:
            raise _fail("no vulnerability data: run `funade vuln db update` (or `funade vuln db import PATH`)", 1)
        read = imagestore.read_sbom(image, platform=platform, local=local, remote=remote)
        found = read.sbom
        name, source = read.name, read.source
        digest, distro, package_count = found.digest, str(found.distro) if found.distro else None, len(found.packages)
        every = scan_engine.scan(found, data)
    age_days = (time.time() - float(imported)) / 86400 if imported else float("inf")
    if age_days > max_age:
        consoles.err.print(
            f"[yellow]warning:[/yellow] the vulnerability data is {age_days:.1f} days old "
            f"(more than {max_age:g}): run `funade vuln db update`",
            highlight=False,
        )
    now = datetime.now(UTC)
    findings: list[scan_engine.Finding] = []
    accepted: list[scan_engine.Finding] = []
    for finding in every:
        if levels and finding.severity.value not in levels:
            continue
        if ignore_unfixed and not finding.fixed:
            continue
        rule = ignore.matching(rules, finding.id, finding.aliases, finding.purl, now)
        (accepted if rule else findings).append(finding)
    if output == "json":
        print(
            json.dumps(
                {
                    "image": name,
                    "source": source,
                    "digest": digest,
                    "distro": distro,
                    "packages": package_count,
                    "dataAgeDays": round(age_days, 2),
                    "cached": cached,
                    "findings": [f.to_json() for f in findings],
                    "ignored": [f.id for f in accepted],
                },
                indent=2,
            )
        )
    elif output == "sarif":
        print(json.dumps(to_sarif(name, findings), indent=2))
    elif output == "cyclonedx" and read is not None:
        print(json.dumps(findings_core.to_cyclonedx(read.sbom, findings, image_ref=name), indent=2))
    else:
        counts = {level: sum(f.severity is level for f in findings) for level in Level}
        summary = ", ".join(f"{n} {level.value}" for level, n in counts.items() if n) or "no findings"
        where = " (local engine)" if source == imagestore.ENGINE else ""
        consoles.out.print(
            f"{name}{where}  {digest}  {package_count} packages: {summary}"
            + (f" ({len(accepted)} ignored)" if accepted else ""),
            highlight=False,
        )
        if findings:
            consoles.out.print(findings_table(findings))
    if findings and exit_code:
        raise typer.Exit(exit_code)
