"""SBOM and scan benchmark: ``funade image sbom|scan`` on a real Debian image, against ``dpkg-query`` in a container.

Why it exists: funade catalogues an image straight from the registry (layers streamed,
whiteouts honoured, no pull, no container) and matches it against OSV data it keeps
itself, because Trivy and Grype cannot be installed here. This measures what that costs
and checks it is right: the Debian package list must equal what ``dpkg-query -W`` prints
inside a container of the same image, and the scan must report exactly the advisories
that affect the installed versions.

The image is ``funade-debian:12-py`` (``scripts/build-debian-image.sh``: debootstrap
minbase bookworm plus ~30 packages, about 190 Debian packages, no Docker Hub). The
advisories are synthetic ``Debian:12`` OSV records generated for the image's source
packages: half fixed just above the installed version (``VERSION+bench1``: affected),
half just below (``VERSION~bench1``: not affected), so every lookup runs Debian's
version ordering, ``~`` included.

Everything runs on 127.0.0.1: a private funade server (temporary ``FUNADE_HOME``, free
ports for the API, the embedded registry and Prometheus). The server, its home, the
benchmark's containers and its local registry tags are removed on exit, on failure and
on Ctrl-C. See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import harness
import httpx
from harness import FUNADE, ROOT, BenchError, FunadeServer, Obj, fmt_ratio, fmt_seconds, guarded, machine, report
from rich.console import Console
from rich.table import Table

BUILD_SCRIPT = ROOT / "scripts" / "build-debian-image.sh"
IMAGE = "funade-debian:12-py"
PUSH_TAG = "funade-debian:scan-on-push"
COMMAND_TIMEOUT_S = 300.0  # any single command; the benchmark never hangs
WAIT_TIMEOUT_S = 120.0
ADVISORIES_PER_SOURCE = 3
NO_PEER = "none installable"

Deb = tuple[str, str, str]
err = Console(stderr=True, highlight=False)
run = functools.partial(harness.run, timeout=COMMAND_TIMEOUT_S)


def timed(argv: list[str], *, env: dict[str, str] | None = None) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = run(argv, env=env)
    return time.perf_counter() - t0, out


def arch_of(purl: str) -> str:
    match = re.search(r"[?&]arch=([^&#]+)", purl)
    return match.group(1) if match else ""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Series:
    """One command run once cold (the first time) and then ``runs`` more times (warm)."""

    cold: float | None = None
    warm: list[float] = field(default_factory=list)

    def to_json(self) -> Obj:
        return {"cold": self.cold, "warm": statistics.median(self.warm) if self.warm else None, "samples": self.warm}


def series(runs: int, once: Callable[[], float]) -> Series:
    s = Series(cold=once())
    s.warm = [once() for _ in range(runs)]
    return s


# -- the advisories -----------------------------------------------------------------------


def advisories(sources: dict[str, str]) -> tuple[list[Obj], set[str]]:
    """Synthetic Debian:12 advisories for each (source package, source version); the ids that affect it.

    For every source, ``ADVISORIES_PER_SOURCE`` advisories alternate between a fix just
    above the installed version (affected) and just below it (not affected).
    """
    docs: list[Obj] = []
    affecting: set[str] = set()
    urgencies = ("low", "medium", "high", "unimportant")
    n = 0
    for source, version in sorted(sources.items()):
        for k in range(ADVISORIES_PER_SOURCE):
            n += 1
            above = n % 2 == 0
            fixed = f"{version}+bench{k + 1}" if above else f"{version}~bench{k + 1}"
            advisory_id = f"DSA-BENCH-{n:04d}"
            docs.append(
                {
                    "schema_version": "1.6.0",
                    "id": advisory_id,
                    "modified": "2026-01-01T00:00:00Z",
                    "aliases": [f"CVE-2099-{n:05d}"],
                    "summary": f"{source}: a synthetic benchmark advisory",
                    "affected": [
                        {
                            "package": {"ecosystem": "Debian:12", "name": source},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                        }
                    ],
                    "database_specific": {"urgency": urgencies[n % len(urgencies)]},
                }
            )
            if above:
                affecting.add(advisory_id)
    return docs, affecting


# -- the benchmark ------------------------------------------------------------------------


class Bench:
    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.tmp = Path(tempfile.mkdtemp(prefix="funade-bench-scan-"))
        # the server runs its registry (the image is pushed there) and Prometheus
        self.server = FunadeServer(home=self.tmp / "home", prometheus=True, down_timeout=120.0, NO_COLOR="1")
        self.env = self.server.env
        self.address, self.registry = self.server.address, self.server.registry
        self.label = f"funade.bench.scan={os.getpid()}"
        self.local_tags: list[str] = []
        self.result: Obj = {"machine": machine(), "runs": runs}
        self.problems: list[str] = []

    def funade(self, *args: str) -> list[str]:
        return [str(FUNADE), *args]

    def start(self) -> None:
        t0 = time.perf_counter()
        run(["bash", str(BUILD_SCRIPT)], timeout=900)
        self.result["image_ready_seconds"] = time.perf_counter() - t0
        self.server.start(timeout=90)
        took, out = timed(self.funade("image", "push", IMAGE, "-o", "json"), env=self.env)
        (record,) = json.loads(out)
        self.local_tags.append(record["image"])
        self.result["push_seconds"] = took
        self.result["digest"] = record["digest"]

    def peer_once(self, fmt: str) -> tuple[float, str]:
        return timed(["docker", "run", "--rm", "--label", self.label, IMAGE, "dpkg-query", "-W", "-f", fmt])

    def execute(self) -> None:
        # SBOM: funade reads the registry; the peer has the Engine start a container and ask dpkg.
        documents: list[Obj] = []

        def sbom_once() -> float:
            took, out = timed(self.funade("image", "sbom", IMAGE, "--remote", "-o", "json"), env=self.env)
            documents.append(json.loads(out))
            return took

        listings: list[str] = []
        fmt = r"${Package} ${Version} ${Architecture} ${source:Package} ${source:Version}\n"

        def peer_once() -> float:
            took, out = self.peer_once(fmt)
            listings.append(out)
            return took

        self.result["sbom"] = series(self.runs, sbom_once).to_json()
        self.result["dpkg_query"] = series(self.runs, peer_once).to_json()
        self.compare(documents, listings)

        # Data: synthetic advisories for the image's source packages, as dpkg-query names them.
        sources = dict(line.split(" ")[3:5] for line in listings[0].splitlines())
        docs, affecting = advisories(sources)
        archive = self.tmp / "bench-osv.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for doc in docs:
                zf.writestr(f"{doc['id']}.json", json.dumps(doc))
        took, _ = timed(self.funade("vuln", "db", "import", str(archive)), env=self.env)
        self.result["data"] = {"advisories": len(docs), "sources": len(sources), "import_seconds": took}

        # Scan on push: a new tag is a manifest push; the server scans it and keeps the result.
        self.result["scan_on_push_seconds"] = self.scan_on_push()

        reports: list[Obj] = []

        def scan_once() -> float:
            took, out = timed(self.funade("image", "scan", IMAGE, "--remote", "-o", "json"), env=self.env)
            reports.append(json.loads(out))
            return took

        self.result["scan"] = series(self.runs, scan_once).to_json()
        self.check_findings(reports, affecting, listings[0])

    def scan_on_push(self) -> float:
        registry, _, rest = f"{self.registry}/{PUSH_TAG}".partition("/")
        repository = rest.partition(":")[0]
        t0 = time.perf_counter()
        run(self.funade("image", "promote", IMAGE, PUSH_TAG), env=self.env)
        params = {"registry": registry, "repository": repository, "digest": self.result["digest"]}
        while self.server.http.get("/v1/scans", params=params).status_code != 200:
            if time.perf_counter() - t0 > WAIT_TIMEOUT_S:
                raise BenchError(f"the server kept no scan of {PUSH_TAG} within {WAIT_TIMEOUT_S:g}s")
            time.sleep(0.05)
        return time.perf_counter() - t0

    def compare(self, documents: list[Obj], listings: list[str]) -> None:
        """Every SBOM run must equal every dpkg-query run on (name, version, architecture)."""
        expected: set[Deb] = {(a, b, c) for a, b, c, *_ in (line.split(" ") for line in listings[0].splitlines())}
        if any(listing != listings[0] for listing in listings):
            self.problems.append("dpkg-query printed different lists on different runs")
        agreed = 0
        for doc in documents:
            debs = {(p["name"], p["version"], arch_of(p["purl"])) for p in doc["packages"] if p["type"] == "deb"}
            if debs == expected:
                agreed += 1
            else:
                missing, extra = sorted(expected - debs)[:5], sorted(debs - expected)[:5]
                self.problems.append(f"SBOM ≠ dpkg-query: missing {missing}, extra {extra}")
        last = documents[-1]["packages"]
        pip = json.loads(
            run(
                [
                    "docker",
                    "run",
                    "--rm",
                    "--label",
                    self.label,
                    IMAGE,
                    "python3",
                    "-m",
                    "pip",
                    "list",
                    "--format",
                    "json",
                ]
            )
        )
        pypi = {(canonical(p["name"]), p["version"]) for p in last if p["type"] == "pypi"}
        pip_set = {(canonical(d["name"]), d["version"]) for d in pip}
        if pypi != pip_set:
            self.problems.append(
                f"SBOM Python ≠ pip list: missing {sorted(pip_set - pypi)}, extra {sorted(pypi - pip_set)}"
            )
        self.result["packages"] = {
            "deb": sum(p["type"] == "deb" for p in last),
            "dpkg_query": len(expected),
            "pypi": len(pypi),
            "pip_list": len(pip_set),
            "agreed_runs": agreed,
            "runs": len(documents),
            "layers": len({p["layer"] for p in last}),
        }

    def check_findings(self, reports: list[Obj], affecting: set[str], listing: str) -> None:
        """The scan must report each affecting advisory for every binary package of its source, and nothing else."""
        by_source: dict[str, int] = {}
        for line in listing.splitlines():
            source = line.split(" ")[3]
            by_source[source] = by_source.get(source, 0) + 1
        found = {(f["id"], f["package"]) for f in reports[-1]["findings"]}
        ids = {advisory_id for advisory_id, _ in found}
        expected_pairs = 0
        data = self.result["data"]
        # advisories() numbered them in source order: rebuild which source each id names.
        n = 0
        for source in sorted({line.split(" ")[3] for line in listing.splitlines()}):
            for _ in range(ADVISORIES_PER_SOURCE):
                n += 1
                if f"DSA-BENCH-{n:04d}" in affecting:
                    expected_pairs += by_source[source]
        if ids != affecting:
            self.problems.append(
                f"scan: {len(ids - affecting)} advisories reported that do not affect, {len(affecting - ids)} missed"
            )
        if len(found) != expected_pairs:
            self.problems.append(f"scan: {len(found)} findings, expected {expected_pairs}")
        if any({(f["id"], f["package"]) for f in r["findings"]} != found for r in reports):
            self.problems.append("scan: runs disagree")
        data["affecting"] = len(affecting)
        self.result["findings"] = {"found": len(found), "expected": expected_pairs, "advisories": len(ids)}

    def cleanup(self) -> list[str]:
        problems = self.server.cleanup()
        with contextlib.suppress(BenchError):
            left = run(["docker", "ps", "-aq", "--filter", f"label={self.label}"]).split()
            if left:
                run(["docker", "rm", "-f", *left])
        for tag in self.local_tags:  # `image push` tagged the local image REGISTRY/NAME
            subprocess.run(["docker", "rmi", tag], capture_output=True, check=False, timeout=60)
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems


# -- rendering ------------------------------------------------------------------------------


def table(result: Obj) -> Table:
    runs = result["runs"]
    t = Table(
        title=f"funade SBOM and scan benchmark ({IMAGE}, warm = median of {runs} runs)",
        caption="peer = `docker run --rm IMAGE dpkg-query -W` (the Engine starts a container to ask dpkg); "
        "ratio = funade / peer; scan peers (Trivy, Grype) are not in this machine's registries, so none is run; "
        "every funade figure is the CLI as a user runs it, Python start-up included",
    )
    t.add_column("figure")
    t.add_column("funade", justify="right")
    t.add_column("peer", justify="right")
    t.add_column("ratio", justify="right")
    sbom, peer, scan, pk = result["sbom"], result["dpkg_query"], result["scan"], result["packages"]
    t.add_row(
        "SBOM, cold (first read of the image)",
        fmt_seconds(sbom["cold"]),
        fmt_seconds(peer["cold"]),
        fmt_ratio(sbom["cold"], peer["cold"]),
    )
    t.add_row("SBOM, warm", fmt_seconds(sbom["warm"]), fmt_seconds(peer["warm"]), fmt_ratio(sbom["warm"], peer["warm"]))
    t.add_row("Debian packages", str(pk["deb"]), str(pk["dpkg_query"]), f"{pk['deb'] / pk['dpkg_query']:.2f}×")
    agree = f"{pk['agreed_runs']}/{pk['runs']} runs" + ("" if pk["agreed_runs"] == pk["runs"] else " [red]differ[/red]")
    t.add_row("  (name, version, arch) equal", agree, "—", "—")
    t.add_row("Python distributions (vs pip list)", str(pk["pypi"]), str(pk["pip_list"]), "—")
    data = result["data"]
    t.add_row(f"vuln db import ({data['advisories']} advisories)", fmt_seconds(data["import_seconds"]), "—", "—")
    t.add_row("scan, cold (first scan)", fmt_seconds(scan["cold"]), NO_PEER, "—")
    t.add_row("scan, warm", fmt_seconds(scan["warm"]), NO_PEER, "—")
    t.add_row("scan on push (tag pushed → result kept)", fmt_seconds(result["scan_on_push_seconds"]), NO_PEER, "—")
    f = result["findings"]
    t.add_row("findings (expected)", f"{f['found']} ({f['expected']})", "—", "—")
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="warm repetitions; the median is reported")
    parser.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if shutil.which("docker") is None or not FUNADE.exists():
        err.print("[red]missing: docker or .venv/bin/funade (run `make setup`)[/red]")
        return 2
    started = time.monotonic()
    bench = Bench(args.runs)

    def steps() -> Obj:
        bench.start()
        bench.execute()
        bench.result["problems"] = bench.problems
        bench.result["total_seconds"] = time.monotonic() - started
        return bench.result

    outcome, code = guarded(steps, bench.cleanup, (BenchError, httpx.HTTPError, OSError, ValueError, KeyError), err)
    if outcome is None:
        return code
    header = (
        f"image: {IMAGE} {outcome['digest'][:19]}…, {outcome['packages']['layers']} layers; "
        f"image ready in {outcome['image_ready_seconds']:.0f} s, push {outcome['push_seconds']:.1f} s; "
        f"{outcome['data']['advisories']} advisories for {outcome['data']['sources']} source packages, "
        f"{outcome['data']['affecting']} affecting"
    )
    problems = [f"[red]problem:[/red] {problem}" for problem in outcome["problems"]]
    report(outcome, [header, table(outcome), *problems, f"total {outcome['total_seconds']:.0f} s"], as_json=args.json)
    return 1 if outcome["problems"] else code


if __name__ == "__main__":
    sys.exit(main())
