"""Lifecycle benchmark: funade's ECR policy evaluation against a plain script, on 100,000 images.

Why it exists: a registry preview has to answer "what would this policy delete?" for large
repositories while the user waits, and ECR itself gives no figure (it only promises to
act within 24 hours). The yardstick is what a careful engineer writes in an afternoon:
for each rule in priority order, filter the images, sort them, take the ones past the
count or the age, skip those an earlier rule matched. That script and
``funade.core.lifecycle.evaluate`` must expire exactly the same digests (checked on every
run), and the ratio funade/peer says what funade's explanations (a reason for every image,
expired or kept) cost on top of the bare algorithm.

Figures (median over ``--runs``): seconds to evaluate the seed's three-rule policy over
``--images`` images, images per second, the expired count of both, and funade's
``safeguard`` pass (multi-arch indexes and signatures) on the same plan. See bench/README.md.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import machine, report
from rich.console import Console
from rich.table import Table

from funade.core import lifecycle
from funade.core.lifecycle import ImageRecord

SEED_POLICY = Path("/work/shared/seed-examples/ecr-lifecycle-policy.json")
# The seed's policy, used when the seed file is not on this machine.
SEED_RULES: dict[str, Any] = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "セマンティックバージョンタグは保持",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["v"],
                "countType": "imageCountMoreThan",
                "countNumber": 50,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "SHA タグは30日で削除",
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["sha-"],
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 30,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 3,
            "description": "タグなしイメージは7日で削除",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 7,
            },
            "action": {"type": "expire"},
        },
    ]
}
# A second policy for the cross-check only: patterns, several entries, an any rule last.
CROSS_CHECK: dict[str, Any] = {
    "rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPatternList": ["v*.*.*", "sha-*"],
         "countType": "imageCountMoreThan", "countNumber": 500}, "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPrefixList": ["v"],
         "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 90}, "action": {"type": "expire"}},
        {"rulePriority": 3, "selection": {"tagStatus": "tagged", "tagPatternList": ["*-1*"],
         "countType": "imageCountMoreThan", "countNumber": 100}, "action": {"type": "expire"}},
        {"rulePriority": 10, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 20000},
         "action": {"type": "expire"}},
    ]
}  # fmt: skip
NOW = datetime(2026, 6, 1, tzinfo=UTC)
Obj = dict[str, Any]
err = Console(stderr=True, highlight=False)


def seed_policy() -> tuple[Obj, str]:
    if SEED_POLICY.exists():
        return json.loads(SEED_POLICY.read_text()), str(SEED_POLICY)
    return SEED_RULES, "built-in copy of the seed's policy"


def repository(count: int, seed: int = 20260601) -> list[ImageRecord]:
    """A year of CI pushes, never cleaned up (the first preview of a new policy): releases (a third
    also carry a sha- tag), sha- builds, untagged images, other tags.

    One image in ten is a multi-arch index whose two platform images are untagged, and
    one in twenty has an untagged signature referrer, so ``safeguard`` has work to do.
    """
    rng = random.Random(seed)
    images: list[ImageRecord] = []
    n = 0

    def add(tags: list[str], age: float, **links: Any) -> str:
        nonlocal n
        n += 1
        digest = f"sha256:{n:064x}"
        images.append(ImageRecord(digest, tuple(tags), NOW - timedelta(days=age), "push", **links))
        return digest

    while len(images) < count:
        age = rng.uniform(0, 365)
        kind = rng.random()
        if kind < 0.20:
            tags = [f"v{rng.randint(0, 3)}.{rng.randint(0, 40)}.{n}"]
            if rng.random() < 1 / 3:
                tags.append(f"sha-{n:07x}")
        elif kind < 0.65:
            tags = [f"sha-{n:07x}"]
        elif kind < 0.95:
            tags = []
        else:
            tags = [rng.choice(["latest", f"pr-{n}", f"nightly-{n}"])]
        if tags and rng.random() < 0.10 and len(images) + 3 <= count:
            children = (add([], age), add([], age))
            index = add(tags, age, children=children)
        else:
            index = add(tags, age)
        if rng.random() < 0.05 and len(images) < count:
            add([], max(0.0, age - rng.uniform(0, 20)), subject=index)
    return images[:count]


def peer_evaluate(policy: Obj, images: Sequence[ImageRecord], now: datetime) -> set[str]:
    """The ECR algorithm as a typical script writes it: per rule, filter, sort, cut, skip what earlier rules matched."""
    expired: set[str] = set()
    matched_before: set[str] = set()
    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        matched = []
        for image in images:
            tags = image.tags
            if sel["tagStatus"] == "untagged":
                ok = not tags
            elif sel["tagStatus"] == "any":
                ok = True
            elif "tagPrefixList" in sel:
                ok = all(any(t.startswith(p) for t in tags) for p in sel["tagPrefixList"])
            else:
                ok = all(any(fnmatch.fnmatchcase(t, p) for t in tags) for p in sel["tagPatternList"])
            if ok:
                matched.append(image)
        if sel["countType"] == "imageCountMoreThan":
            newest_first = sorted(matched, key=lambda i: (i.pushed_at, i.digest), reverse=True)
            doomed = newest_first[sel["countNumber"] :]
        else:
            cutoff = now - timedelta(days=sel["countNumber"])
            doomed = [i for i in matched if i.pushed_at < cutoff]
        expired.update(i.digest for i in doomed if i.digest not in matched_before)
        matched_before.update(i.digest for i in matched)
    return expired


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    samples: list[float] = []
    result: Any = None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
    return samples, result


def measure(count: int, runs: int) -> Obj:
    raw_policy, policy_source = seed_policy()
    policy = lifecycle.parse_policy(raw_policy, source=policy_source)
    t0 = time.perf_counter()
    images = repository(count)
    generated = time.perf_counter() - t0
    err.print(f"{len(images):,} images generated in {generated:.2f} s; {runs} runs each")

    funade_s, evaluation = timed(lambda: lifecycle.evaluate(policy, images, NOW), runs)
    peer_s, peer_expired = timed(lambda: peer_evaluate(raw_policy, images, NOW), runs)
    safeguard_s, guarded = timed(lambda: lifecycle.safeguard(evaluation, images, ()), runs)
    same = evaluation.expired_digests == peer_expired
    cross = lifecycle.evaluate(lifecycle.parse_policy(CROSS_CHECK, "cross-check"), images, NOW)
    same_cross = cross.expired_digests == peer_evaluate(CROSS_CHECK, images, NOW)
    f, p, s = statistics.median(funade_s), statistics.median(peer_s), statistics.median(safeguard_s)
    return {
        "machine": machine(),
        "images": len(images),
        "rules": len(policy.rules),
        "policy": policy_source,
        "runs": runs,
        "same_expired_set": same,
        "same_expired_set_cross_check": same_cross,
        "figures": [
            {
                "figure": f"evaluate {len(images):,} images × {len(policy.rules)} rules",
                "unit": "s",
                "funade": f,
                "peer": p,
            },
            {"figure": "throughput", "unit": "images/s", "funade": len(images) / f, "peer": len(images) / p},
            {"figure": "images expired", "unit": "", "funade": len(evaluation.expired), "peer": len(peer_expired)},
            {"figure": "safeguard pass (indexes, referrers)", "unit": "s", "funade": s, "peer": None},
            {
                "figure": "  moved by safeguard (kept / expired)",
                "unit": "",
                "funade": f"{len(evaluation.expired_digests - guarded.expired_digests):,} / "
                f"{len(guarded.expired_digests - evaluation.expired_digests):,}",
                "peer": None,
            },
        ],
        "samples": {"funade_s": funade_s, "peer_s": peer_s, "safeguard_s": safeguard_s},
    }


def _fmt(value: Any, unit: str) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if unit == "s":
        return f"{value * 1000:.0f} ms" if value < 10 else f"{value:.1f} s"
    if unit == "images/s":
        return f"{value:,.0f}/s"
    return f"{value:,}"


def table(result: Obj) -> Table:
    t = Table(
        title=f"funade lifecycle benchmark ({result['images']:,} images, seed policy, median of {result['runs']} runs)",
        caption="peer = the same ECR algorithm as a plain script (per-rule filter, sort, cut, skip earlier matches); "
        "ratio = funade / peer",
    )
    t.add_column("figure")
    t.add_column("funade", justify="right")
    t.add_column("peer (plain script)", justify="right")
    t.add_column("ratio", justify="right")
    for fig in result["figures"]:
        f, p = fig["funade"], fig["peer"]
        ratio = f"{f / p:.2f}×" if isinstance(f, int | float) and isinstance(p, int | float) and p else "—"
        t.add_row(fig["figure"], _fmt(f, fig["unit"]), _fmt(p, fig["unit"]), ratio)
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000, help="repository size (default 100,000)")
    parser.add_argument("--runs", type=int, default=5, help="repetitions; the median is reported")
    parser.add_argument("--json", action="store_true", help="print machine-readable results on stdout")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.images < 1:
        parser.error("--runs and --images must be at least 1")
    result = measure(args.images, args.runs)
    verdicts = [
        f"same expired digests as the peer, {what}: "
        + ("yes" if result[key] else "[red]NO: the two implementations disagree[/red]")
        for key, what in (
            ("same_expired_set", "the seed's policy"),
            ("same_expired_set_cross_check", "a 4-rule cross-check policy (patterns, any)"),
        )
    ]
    report(result, [table(result), *verdicts], as_json=args.json, width=132, ensure_ascii=False)
    return 0 if result["same_expired_set"] and result["same_expired_set_cross_check"] else 1


if __name__ == "__main__":
    sys.exit(main())
