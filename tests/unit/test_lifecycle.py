"""ECR lifecycle policies, GHCR cleanup and the safeguard, checked against the documented behaviour.

Golden cases come from the ECR user guide (LifecyclePolicies "evaluation rules",
lifecycle_policy_examples: Examples A and B, multiple tags in one rule, image age and
image count) and from actions/delete-package-versions v5 (src/input.ts, src/delete.ts).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Collection
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from funade.core import lifecycle
from funade.core.lifecycle import CleanupOptions, ImageRecord, PolicyError

pytestmark = pytest.mark.unit

SEED_POLICY = Path(__file__).resolve().parents[1] / "fixtures" / "ecr-lifecycle-policy.json"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


_NAMES: dict[str, str] = {}


def digest(name: str) -> str:
    """A readable fake digest: sha256: and the name in hex, padded to 64 characters."""
    value = "sha256:" + name.encode().hex().ljust(64, "0")[:64]
    _NAMES[value] = name
    return value


def _name(record: ImageRecord) -> str:
    return _NAMES[record.digest]


def image(
    name: str,
    tags: list[str] | tuple[str, ...] = (),
    days: float = 0,
    *,
    children: tuple[str, ...] = (),
    subject: str | None = None,
) -> ImageRecord:
    return ImageRecord(
        digest=digest(name),
        tags=tuple(tags),
        pushed_at=NOW - timedelta(days=days),
        pushed_at_source="push",
        children=tuple(digest(c) for c in children),
        subject=None if subject is None else digest(subject),
    )


def expired_names(evaluation: lifecycle.Evaluation, *all_names: str) -> set[str]:
    lookup = {digest(n): n for n in all_names}
    return {lookup[d] for d in evaluation.expired_digests}


def rule(
    priority: int,
    *,
    status: str = "tagged",
    prefixes: list[str] | None = None,
    patterns: list[str] | None = None,
    count: int = 1,
    days: int | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    selection: dict[str, Any] = {"tagStatus": status}
    if prefixes is not None:
        selection["tagPrefixList"] = prefixes
    if patterns is not None:
        selection["tagPatternList"] = patterns
    if days is None:
        selection |= {"countType": "imageCountMoreThan", "countNumber": count}
    else:
        selection |= {"countType": "sinceImagePushed", "countUnit": "days", "countNumber": days}
    out: dict[str, Any] = {"rulePriority": priority, "selection": selection, "action": {"type": "expire"}}
    if description is not None:
        out["description"] = description
    return out


def policy(*rules: dict[str, Any]) -> lifecycle.LifecyclePolicy:
    return lifecycle.parse_policy({"rules": list(rules)})


# -- the documentation's examples -----------------------------------------------------------

# "Filtering on multiple rules": the same repository for Examples A and B.
REPO_AB = [
    image("A", ["beta-1", "prod-1"], days=10),
    image("B", ["beta-2", "prod-2"], days=9),
    image("C", ["beta-3"], days=8),
]


def test_example_a_rule_two_cannot_expire_what_rule_one_selects() -> None:
    p = policy(rule(1, prefixes=["prod"], description="Rule 1"), rule(2, prefixes=["beta"], description="Rule 2"))
    evaluation = lifecycle.evaluate(p, REPO_AB, NOW)
    assert expired_names(evaluation, "A", "B", "C") == {"A"}
    (a,) = evaluation.expired
    assert (a.rule_priority, a.rule_description) == (1, "Rule 1")
    b = next(d for d in evaluation.kept if d.digest == digest("B"))
    assert b.rule_priority == 1
    assert "rule 2 would expire it, but rule 1 selects it first" in b.reason


def test_example_b_rule_two_sees_nothing_new() -> None:
    p = policy(rule(1, prefixes=["beta"]), rule(2, prefixes=["prod"]))
    evaluation = lifecycle.evaluate(p, REPO_AB, NOW)
    assert expired_names(evaluation, "A", "B", "C") == {"A", "B"}
    assert {d.rule_priority for d in evaluation.expired} == {1}
    assert [d.digest for d in evaluation.kept] == [digest("C")]


def test_multiple_prefixes_in_one_rule_are_anded_example_a() -> None:
    repo = [
        image("A", ["alpha-1"], days=12),
        image("B", ["beta-1"], days=11),
        image("C", ["alpha-2", "beta-2"], days=10),
        image("D", ["alpha-3"], days=4),
        image("E", ["beta-3"], days=3),
        image("F", ["alpha-4", "beta-4"], days=2),
    ]
    evaluation = lifecycle.evaluate(policy(rule(1, prefixes=["alpha", "beta"], days=5)), repo, NOW)
    assert expired_names(evaluation, *"ABCDEF") == {"C"}
    assert next(d for d in evaluation.kept if d.digest == digest("A")).reason == "no rule selects it"


def test_multiple_prefixes_tags_are_not_exclusive_example_b() -> None:
    repo = [
        image("A", ["alpha-1", "beta-1", "gamma-1"], days=10),
        image("B", ["alpha-2", "beta-2"], days=9),
        image("C", ["alpha-3", "beta-3", "gamma-2"], days=8),
    ]
    evaluation = lifecycle.evaluate(policy(rule(1, prefixes=["alpha", "beta"], count=1)), repo, NOW)
    assert expired_names(evaluation, *"ABC") == {"A", "B"}


def test_filtering_on_image_age_with_a_pattern() -> None:
    repo = [
        image("old-prod", ["prod-1"], days=15),
        image("new-prod", ["prod2"], days=13),
        image("old-preprod", ["preprod-1"], days=30),  # prod* must match the whole tag
        image("old-untagged", [], days=30),
    ]
    evaluation = lifecycle.evaluate(policy(rule(1, patterns=["prod*"], days=14)), repo, NOW)
    assert expired_names(evaluation, "old-prod", "new-prod", "old-preprod", "old-untagged") == {"old-prod"}


def test_filtering_on_image_count_keeps_one_untagged() -> None:
    repo = [image(f"u{i}", [], days=i) for i in range(4)] + [image("t", ["v1"], days=9)]
    evaluation = lifecycle.evaluate(policy(rule(1, status="untagged", count=1)), repo, NOW)
    assert expired_names(evaluation, "u0", "u1", "u2", "u3", "t") == {"u1", "u2", "u3"}
    assert evaluation.expired[0].reason == "rule 1: 4 untagged images, keeping the newest 1"


# -- matching and counting ------------------------------------------------------------------


def test_tag_patterns_are_anded_and_match_whole_tags() -> None:
    repo = [
        image("both", ["release-1.2-rc", "arm64"], days=1),
        image("only-release", ["release-1.3-rc"], days=2),
        image("literal-dot", ["release-1x2-rc", "arm64"], days=3),
        image("exact", ["arm64"], days=4),
    ]
    p = policy(rule(1, patterns=["release-*-rc", "arm64"], count=1))
    evaluation = lifecycle.evaluate(p, repo, NOW)
    # both and literal-dot match (the dot is literal but sits under the *); the older one goes
    assert expired_names(evaluation, "both", "only-release", "literal-dot", "exact") == {"literal-dot"}
    exact = lifecycle.evaluate(policy(rule(1, patterns=["release-1.2-rc"], count=1)), repo, NOW)
    assert exact.expired == []
    assert lifecycle.parse_policy({"rules": [rule(1, patterns=["v1.?"])]}).rules[0].selects(["v1.?"])
    assert not lifecycle.parse_policy({"rules": [rule(1, patterns=["v1.?"])]}).rules[0].selects(["v1.2"])


def test_count_rules_count_images_a_higher_rule_protects() -> None:
    """ECR's surprise: 'keep 2 beta' keeps no beta-only image when the newest betas are also prod."""
    repo = [
        image("prod-and-beta-1", ["prod-1", "beta-1"], days=1),
        image("prod-and-beta-2", ["prod-2", "beta-2"], days=2),
        image("beta-3", ["beta-3"], days=3),
        image("beta-4", ["beta-4"], days=4),
        image("beta-5", ["beta-5"], days=5),
    ]
    p = policy(rule(1, prefixes=["prod"], days=1000), rule(2, prefixes=["beta"], count=2))
    evaluation = lifecycle.evaluate(p, repo, NOW)
    assert expired_names(evaluation, *[f"beta-{i}" for i in (3, 4, 5)], "prod-and-beta-1", "prod-and-beta-2") == {
        "beta-3",
        "beta-4",
        "beta-5",
    }
    assert all(d.reason == "rule 2: 5 images tagged beta*, keeping the newest 2" for d in evaluation.expired)


def test_since_image_pushed_boundary_is_strictly_older() -> None:
    repo = [
        ImageRecord(digest("exactly"), (), NOW - timedelta(days=7), "push"),
        ImageRecord(digest("one-second-more"), (), NOW - timedelta(days=7, seconds=1), "created"),
    ]
    evaluation = lifecycle.evaluate(policy(rule(1, status="untagged", days=7)), repo, NOW)
    assert expired_names(evaluation, "exactly", "one-second-more") == {"one-second-more"}
    (gone,) = evaluation.expired
    assert gone.reason == "rule 1: pushed 7 days 0 h ago (> 7)"
    assert gone.pushed_at_source == "created"
    assert evaluation.kept[0].reason == "rule 1: pushed 7 days ago, within 7 days"


def test_any_rule_comes_last_and_counts_everything() -> None:
    repo = [image("v", ["v1"], days=1), image("u1", [], days=2), image("u2", [], days=3), image("t", ["x"], days=4)]
    p = policy(rule(1, prefixes=["v"], count=10), rule(9, status="any", count=2))
    evaluation = lifecycle.evaluate(p, repo, NOW)
    # the any rule ranks all four (v counts) and keeps the newest two: v and u1
    assert expired_names(evaluation, "v", "u1", "u2", "t") == {"u2", "t"}
    assert evaluation.expired[0].reason == "rule 9: 4 images, keeping the newest 2"


def test_priorities_need_not_be_consecutive_and_order_is_by_priority() -> None:
    p = lifecycle.parse_policy({"rules": [rule(20, prefixes=["beta"]), rule(5, prefixes=["prod"])]})
    assert [r.priority for r in p.rules] == [5, 20]
    assert expired_names(lifecycle.evaluate(p, REPO_AB, NOW), "A", "B", "C") == {"A"}  # same as Example A


def test_evaluation_is_deterministic_and_complete() -> None:
    rng = random.Random(7)
    repo = [
        image(f"i{n}", rng.choice([[], ["v1"], ["sha-1"], ["v2", "sha-2"]]), days=rng.randint(0, 90)) for n in range(60)
    ]
    seed = lifecycle.parse_policy(json.loads(SEED_POLICY.read_text()))
    first = lifecycle.evaluate(seed, repo, NOW)
    shuffled = repo[:]
    rng.shuffle(shuffled)
    assert lifecycle.evaluate(seed, shuffled, NOW) == first
    assert first.expired_digests | first.kept_digests == {i.digest for i in repo}
    assert not first.expired_digests & first.kept_digests
    assert first.expired == sorted(first.expired, key=lambda d: (d.pushed_at, d.digest))


def test_evaluate_refuses_naive_now_and_duplicate_digests() -> None:
    p = policy(rule(1, prefixes=["v"]))
    with pytest.raises(ValueError, match="timezone-aware"):
        lifecycle.evaluate(p, REPO_AB, datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="appears twice"):
        lifecycle.evaluate(p, [REPO_AB[0], REPO_AB[0]], NOW)


def test_image_record_validation_and_utc() -> None:
    tokyo = timezone(timedelta(hours=9))
    record = ImageRecord("sha256:ab", ["v1"], datetime(2026, 1, 1, 9, 0, tzinfo=tokyo), "push")  # type: ignore[arg-type]
    assert record.tags == ("v1",)
    assert record.pushed_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert record.pushed_at.tzinfo is UTC
    with pytest.raises(ValueError, match="timezone-aware"):
        ImageRecord("sha256:ab", (), datetime(2026, 1, 1), "push")
    with pytest.raises(ValueError, match="pushed_at_source must be one of push, created, inventory"):
        ImageRecord("sha256:ab", (), NOW, "guess")
    with pytest.raises(ValueError, match="non-empty"):
        ImageRecord("", (), NOW, "push")
    with pytest.raises(ValueError, match="size"):
        ImageRecord("sha256:ab", (), NOW, "push", size=-1)


def test_decisions_are_frozen_and_printable() -> None:
    evaluation = lifecycle.evaluate(policy(rule(1, prefixes=["prod"])), REPO_AB, NOW)
    decision = evaluation.expired[0]
    with pytest.raises(AttributeError):
        decision.reason = "changed"  # type: ignore[misc]
    text = str(decision)
    assert text.startswith("sha256:410000000000… [beta-1, prod-1] pushed 2026-02-19 12:00 UTC (push): rule 1:")
    assert str(evaluation).splitlines()[0] == "expire 1, keep 2"


# -- the seed's policy on a realistic repository ----------------------------------------------


def seed_repository() -> tuple[list[ImageRecord], dict[str, str]]:
    """55 releases, sha- builds around 30 days, untagged around 7 days, releases that also carry sha- tags."""
    images: list[ImageRecord] = []
    for n in range(55):  # v1.0.0 (110 days ago) … v1.0.54 (2 days ago)
        tags = [f"v1.0.{n}"]
        if n in (0, 1, 30):
            tags.append(f"sha-{n:07x}")  # a release built from a sha- build
        images.append(image(f"v{n}", tags, days=110 - 2 * n))
    for name, days in [
        ("sha-31d", 31),
        ("sha-45d", 45),
        ("sha-90d", 90),
        ("sha-30d", 30),
        ("sha-29d", 29),
        ("sha-1d", 1),
    ]:
        images.append(image(name, [f"sha-{name}"], days=days))
    untagged: list[tuple[str, float]] = [("untagged-8d", 8), ("untagged-100d", 100), ("untagged-6d", 6), ("1h", 1 / 24)]
    for name, age in untagged:
        images.append(image(name, [], days=age))
    images.append(image("latest", ["latest"], days=400))
    images.append(image("pr", ["pr-12", "sha-pr"], days=50))  # sha- prefix on one tag is enough
    return images, {i.digest: _name(i) for i in images}


def test_seed_policy_on_a_realistic_repository() -> None:
    seed = lifecycle.parse_policy(json.loads(SEED_POLICY.read_text()), source=str(SEED_POLICY))
    assert [(r.priority, r.count_type.value, r.count_number) for r in seed.rules] == [
        (1, "imageCountMoreThan", 50),
        (2, "sinceImagePushed", 30),
        (3, "sinceImagePushed", 7),
    ]
    images, lookup = seed_repository()
    evaluation = lifecycle.evaluate(seed, images, NOW)
    expired = {lookup[d.digest]: d for d in evaluation.expired}
    assert set(expired) == {
        "v0",  # the 5 oldest of 55 releases, v0 and v1 also tagged sha-
        "v1",
        "v2",
        "v3",
        "v4",
        "sha-31d",
        "sha-45d",
        "sha-90d",
        "pr",
        "untagged-8d",
        "untagged-100d",
    }
    assert {n: d.rule_priority for n, d in expired.items()} == {
        **{f"v{n}": 1 for n in range(5)},
        **dict.fromkeys(("sha-31d", "sha-45d", "sha-90d", "pr"), 2),
        "untagged-8d": 3,
        "untagged-100d": 3,
    }
    assert expired["v0"].reason == "rule 1: 55 images tagged v*, keeping the newest 50"
    assert expired["v0"].rule_description == "セマンティックバージョンタグは保持"
    assert expired["sha-45d"].reason == "rule 2: pushed 45 days ago (> 30)"
    assert expired["untagged-100d"].reason == "rule 3: pushed 100 days ago (> 7)"
    kept = {lookup[d.digest]: d for d in evaluation.kept}
    # v30 is 50 days old and tagged sha-: rule 1 selects it first, so rule 2 cannot expire it
    assert kept["v30"].reason == (
        "rule 1: one of the newest 50 of 55 images tagged v*; rule 2 would expire it, but rule 1 selects it first"
    )
    assert kept["sha-30d"].rule_priority == 2
    assert kept["latest"].rule_priority is None


# -- validation -------------------------------------------------------------------------------


def base() -> dict[str, Any]:
    return {"rules": [rule(1, prefixes=["v"], count=5), rule(2, status="untagged", days=7)]}


def edit(path: str, value: Any) -> dict[str, Any]:
    """The base policy with one field set (value ...: removed)."""
    data = base()
    node: Any = data
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is ...:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "policy: Could not map policyString into LifecyclePolicy: expected a JSON object, got array"),
        ("{", "policy: Could not map policyString into LifecyclePolicy"),
        (
            {"rules": [], "version": 1},
            'object instance has properties which are not allowed by the schema: (["version"])',
        ),
        ({}, 'policy: object has missing required properties (["rules"])'),
        (
            {"rules": {}},
            'policy: rules: instance type (object) does not match any allowed primitive type (allowed: ["array"])',
        ),
        ({"rules": []}, "policy: rules: array is too short: must have at least 1 elements"),
        (
            {"rules": ["x"]},
            'policy: rule 1: instance type (string) does not match any allowed primitive type (allowed: ["object"])',
        ),
        (
            edit("rules.0.name", "x"),
            "policy: rule 1 (priority 1): object instance has properties which are not allowed by "
            'the schema: (["name"])',
        ),
        (
            edit("rules.0.action", ...),
            'policy: rule 1 (priority 1): object has missing required properties (["action"])',
        ),
        (
            edit("rules.0.rulePriority", 0),
            "policy: rule 1 (priority 0): rulePriority: numeric instance is lower than the required "
            "minimum (minimum: 1, found: 0)",
        ),
        (
            edit("rules.0.rulePriority", "1"),
            "policy: rule 1: rulePriority: instance type (string) does not match any allowed "
            'primitive type (allowed: ["integer"])',
        ),
        (edit("rules.0.rulePriority", True), "rulePriority: instance type (boolean)"),
        (
            edit("rules.0.description", 5),
            "rule 1 (priority 1): description: instance type (integer) does not match any allowed "
            'primitive type (allowed: ["string"])',
        ),
        (
            edit("rules.0.selection.tagPrefix", ["v"]),
            "rule 1 (priority 1): selection: object instance has properties which are not allowed by "
            'the schema: (["tagPrefix"])',
        ),
        (
            edit("rules.0.selection.tagStatus", "TAGGED"),
            "selection.tagStatus: instance value (TAGGED) not found in enum (possible values: "
            '["tagged","untagged","any"])',
        ),
        (
            edit("rules.0.selection.tagStatus", ...),
            'rule 1 (priority 1): selection: object has missing required properties (["tagStatus"])',
        ),
        (
            edit("rules.0.selection.tagPrefixList", ...),
            "rule 1 (priority 1): selection: Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.",
        ),
        (
            edit("rules.0.selection.tagPatternList", ["v*"]),
            "rule 1 (priority 1): selection: tagPrefixList and tagPatternList cannot both be specified in one rule",
        ),
        (
            edit("rules.1.selection.tagPrefixList", ["x"]),
            "rule 2 (priority 2): selection: 'tagPrefixList' is only allowed with tagStatus tagged, not untagged",
        ),
        (
            edit("rules.0.selection.tagPrefixList", []),
            "rule 1 (priority 1): selection.tagPrefixList: array is too short",
        ),
        (
            edit("rules.0.selection.tagPrefixList", [""]),
            'selection.tagPrefixList[0]: expected a non-empty string, got ""',
        ),
        (
            edit("rules.0.selection.tagPrefixList", "v"),
            "selection.tagPrefixList: instance type (string) does not match any allowed primitive "
            'type (allowed: ["array"])',
        ),
        (
            edit("rules.0.selection.countType", "imageCountLessThan"),
            "selection.countType: instance value (imageCountLessThan) not found in enum",
        ),
        (
            edit("rules.0.selection.countNumber", 0),
            "rule 1 (priority 1): selection.countNumber: numeric instance is lower than the required "
            "minimum (minimum: 1, found: 0)",
        ),
        (
            edit("rules.0.selection.countNumber", 1.5),
            "selection.countNumber: instance type (number) does not match any allowed primitive type "
            '(allowed: ["integer"])',
        ),
        (edit("rules.0.selection.countNumber", "5"), "selection.countNumber: instance type (string)"),
        (
            edit("rules.0.selection.countUnit", "days"),
            "policy: rule 1 (priority 1): selection: 'countUnit' is only allowed with countType sinceImagePushed",
        ),
        (
            edit("rules.1.selection.countUnit", ...),
            'rule 2 (priority 2): selection: object has missing required properties (["countUnit"])',
        ),
        (
            edit("rules.1.selection.countUnit", "hours"),
            'selection.countUnit: instance value (hours) not found in enum (possible values: ["days"])',
        ),
        (
            edit("rules.0.selection.storageClass", "glacier"),
            "selection.storageClass: instance value (glacier) not found in enum (possible values: "
            '["standard","archive"])',
        ),
        (
            edit("rules.0.action.type", "delete"),
            "rule 1 (priority 1): action.type: instance value (delete) not found in enum (possible "
            'values: ["expire","transition"])',
        ),
        (
            edit("rules.0.action.targetStorageClass", "archive"),
            "rule 1 (priority 1): action: 'targetStorageClass' is only allowed with action type transition",
        ),
        (
            edit("rules.0.action.when", "now"),
            "rule 1 (priority 1): action: object instance has properties which are not allowed by "
            'the schema: (["when"])',
        ),
        (
            edit("rules.0.action", "expire"),
            'action: instance type (string) does not match any allowed primitive type (allowed: ["object"])',
        ),
        (
            edit("rules.1.rulePriority", 1),
            "policy: rule 2 (priority 1): rulePriority 1 is also used by rule 1: rule priorities must be unique",
        ),
    ],
)
def test_validation_errors(data: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        lifecycle.parse_policy(data)
    assert message in str(caught.value)


def test_wildcard_limit_is_four_per_pattern() -> None:
    ok = lifecycle.parse_policy({"rules": [rule(1, patterns=["*test*1*2*3", "test*1*2*3*"])]})
    assert ok.rules[0].tag_patterns == ("*test*1*2*3", "test*1*2*3*")
    with pytest.raises(PolicyError) as caught:
        lifecycle.parse_policy({"rules": [rule(1, patterns=["v*", "test*1*2*3*4*5*6"])]})
    assert str(caught.value) == (
        "policy: rule 1 (priority 1): selection.tagPatternList[1]: a tag pattern can contain at most 4 wildcards (*), "
        "'test*1*2*3*4*5*6' has 6"
    )


def test_cross_rule_checks() -> None:
    with pytest.raises(
        PolicyError,
        match=r"rule 2 \(priority 2\): selection.tagPrefixList: tag prefix 'v' is also "
        r"used by rule 1 \(priority 1\): the set of rules must contain a unique set of tag prefixes",
    ):
        lifecycle.parse_policy({"rules": [rule(1, prefixes=["v"]), rule(2, prefixes=["release", "v"], days=3)]})
    with pytest.raises(
        PolicyError,
        match=r"rule 3 \(priority 3\): selection.tagStatus: Only one rule can select "
        r"Untagged images per storage class \(rule 1 \(priority 1\) already does\)",
    ):
        lifecycle.parse_policy(
            {"rules": [rule(1, status="untagged"), rule(2, prefixes=["v"]), rule(3, status="untagged", days=2)]}
        )
    with pytest.raises(
        PolicyError,
        match=r"rule 1 \(priority 5\): rulePriority: Rule for tagStatus=ANY must have the "
        r"lowest priority per storage class: .* and 6 is higher",
    ):
        lifecycle.parse_policy({"rules": [rule(5, status="any", count=3), rule(6, prefixes=["v"])]})
    # an any rule with the highest number is fine, and the same prefix twice in one rule is not a clash
    lifecycle.parse_policy({"rules": [rule(1, prefixes=["v", "v"]), rule(7, status="any", count=3)]})


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("rules.0.selection.countType", "sinceImagePulled", "selection.countType: countType sinceImagePulled"),
        (
            "rules.0.selection.countType",
            "sinceImageTransitioned",
            "selection.countType: countType sinceImageTransitioned",
        ),
        ("rules.0.selection.storageClass", "archive", "selection.storageClass: storageClass archive"),
        ("rules.0.action.type", "transition", "action.type: action type transition"),
    ],
)
def test_template_features_funade_cannot_evaluate_are_refused_by_name(path: str, value: str, field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        lifecycle.parse_policy(edit(path, value))
    assert f"policy: rule 1 (priority 1): {field} is valid in ECR, but funade cannot" in str(caught.value)


def test_standard_storage_class_text_and_source() -> None:
    data = edit("rules.0.selection.storageClass", "standard")
    parsed = lifecycle.parse_policy(json.dumps(data))
    assert parsed.rules[0].tag_prefixes == ("v",)
    with pytest.raises(PolicyError, match=r"^repos/web\.json: rule 2 \(priority 2\)"):
        lifecycle.parse_policy(edit("rules.1.selection.countUnit", "weeks"), source="repos/web.json")
    original = base()
    snapshot = copy.deepcopy(original)
    lifecycle.parse_policy(original)
    assert original == snapshot  # parsing never edits its input


# -- inventory --------------------------------------------------------------------------------


def test_parse_inventory_reads_iso_and_epoch_exports() -> None:
    export = {
        "imageDetails": [
            {
                "registryId": "123456789012",
                "repositoryName": "shop/web",
                "imageDigest": "sha256:" + "a" * 64,
                "imageTags": ["v1.0.0", "sha-abc"],
                "imageSizeInBytes": 31457280,
                "imagePushedAt": "2026-01-10T12:00:00.250000-08:00",
                "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactMediaType": "application/vnd.oci.image.config.v1+json",
                "lastRecordedPullTime": "2026-02-01T00:00:00+00:00",
                "imageScanStatus": {"status": "COMPLETE"},
            },
            {"imageDigest": "sha256:" + "b" * 64, "imagePushedAt": 1767225600.5, "imageSizeInBytes": 10},
            {"imageDigest": "sha256:" + "c" * 64, "imageTags": None, "imagePushedAt": 1767225600},
            {"imageDigest": "sha256:" + "d" * 64, "imageTags": [], "imagePushedAt": "2026-01-01T00:00:00Z"},
        ],
        "nextToken": "abc",
    }
    records = lifecycle.parse_inventory(export, "describe-images.json")
    assert [r.tags for r in records] == [("v1.0.0", "sha-abc"), (), (), ()]
    assert records[0].pushed_at == datetime(2026, 1, 10, 20, 0, 0, 250000, tzinfo=UTC)
    assert records[1].pushed_at == datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)
    assert records[2].pushed_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert records[3].pushed_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert {r.pushed_at_source for r in records} == {"inventory"}
    assert [r.size for r in records] == [31457280, 10, 0, 0]
    assert records[0].children == () and records[0].subject is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], 'inv: expected an object with an "imageDetails" list'),
        ({"images": []}, 'inv: expected an object with an "imageDetails" list'),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": 1}, "x"]},
            "inv: imageDetails[1]: expected an object",
        ),
        ({"imageDetails": [{"imagePushedAt": 1}]}, "inv: imageDetails[0].imageDigest: expected a non-empty string"),
        (
            {"imageDetails": [{"imageDigest": "sha256:1"}]},
            "inv: imageDetails[0].imagePushedAt: expected an ISO 8601 string or epoch seconds, got None",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": "yesterday"}]},
            "inv: imageDetails[0].imagePushedAt: 'yesterday' is not an ISO 8601 time",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": "2026-01-01T00:00:00"}]},
            "imageDetails[0].imagePushedAt: '2026-01-01T00:00:00' has no UTC offset",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": True}]},
            "imageDetails[0].imagePushedAt: expected an ISO 8601 string",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": float("nan")}]},
            "imageDetails[0].imagePushedAt: nan is not a time",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": 1, "imageTags": "v1"}]},
            "imageDetails[0].imageTags: expected a list of non-empty strings",
        ),
        (
            {"imageDetails": [{"imageDigest": "sha256:1", "imagePushedAt": 1, "imageSizeInBytes": -1}]},
            "imageDetails[0].imageSizeInBytes: expected a non-negative integer, got -1",
        ),
        (
            {
                "imageDetails": [
                    {"imageDigest": "sha256:1", "imagePushedAt": 1},
                    {"imageDigest": "sha256:1", "imagePushedAt": 2},
                ]
            },
            "inv: imageDetails[1].imageDigest: sha256:1 is also imageDetails[0]",
        ),
    ],
)
def test_parse_inventory_errors(data: Any, message: str) -> None:
    with pytest.raises(lifecycle.InventoryError) as caught:
        lifecycle.parse_inventory(data, "inv")
    assert message in str(caught.value)


def test_seed_policy_over_an_inventory_export() -> None:
    export = {
        "imageDetails": [
            {
                "imageDigest": "sha256:old",
                "imageTags": ["sha-1"],
                "imagePushedAt": (NOW - timedelta(days=41)).isoformat(),
            },
            {
                "imageDigest": "sha256:new",
                "imageTags": ["sha-2"],
                "imagePushedAt": (NOW - timedelta(days=3)).timestamp(),
            },
        ]
    }
    seed = lifecycle.parse_policy(json.loads(SEED_POLICY.read_text()))
    evaluation = lifecycle.evaluate(seed, lifecycle.parse_inventory(export, "export"), NOW)
    assert [(d.digest, d.reason, d.pushed_at_source) for d in evaluation.expired] == [
        ("sha256:old", "rule 2: pushed 41 days ago (> 30)", "inventory")
    ]


# -- GHCR cleanup (delete-package-versions v5) -------------------------------------------------


def versions(count: int, *, tagged: set[int] | None = None) -> list[ImageRecord]:
    """``count`` versions, v0 the oldest; those in ``tagged`` carry a tag."""
    return [image(f"ver{n}", [f"1.0.{n}"] if tagged and n in tagged else [], days=count - n) for n in range(count)]


def deleted(evaluation: lifecycle.Evaluation, images: list[ImageRecord]) -> list[int]:
    order = {i.digest: n for n, i in enumerate(images)}
    return sorted(order[d] for d in evaluation.expired_digests)


def test_cleanup_defaults_delete_the_single_oldest_version() -> None:
    vs = versions(5)
    evaluation = lifecycle.cleanup(CleanupOptions(), list(reversed(vs)))
    assert deleted(evaluation, vs) == [0]
    assert evaluation.expired[0].reason == "among the oldest 1 candidates (num-old-versions-to-delete 1)"
    assert evaluation.expired[0].rule_description == "delete-package-versions"


def test_cleanup_num_old_versions_and_min_versions_to_keep() -> None:
    vs = versions(5)
    assert deleted(lifecycle.cleanup(CleanupOptions(num_old_versions_to_delete=3), vs), vs) == [0, 1, 2]
    keep_two = lifecycle.cleanup(CleanupOptions(min_versions_to_keep=2), vs)
    assert deleted(keep_two, vs) == [0, 1, 2]
    assert keep_two.expired[0].reason == "among the oldest 3 of 5 candidates (min-versions-to-keep 2)"
    assert keep_two.kept[0].reason == "among the newest 2 candidates (min-versions-to-keep 2)"
    assert deleted(lifecycle.cleanup(CleanupOptions(min_versions_to_keep=10), vs), vs) == []
    assert deleted(lifecycle.cleanup(CleanupOptions(min_versions_to_keep=0), vs), vs) == [0, 1, 2, 3, 4]
    # the action's quirk: num-old-versions-to-delete 1 is its default, so it may sit beside min-versions-to-keep
    assert deleted(lifecycle.cleanup(CleanupOptions(min_versions_to_keep=3, num_old_versions_to_delete=1), vs), vs) == [
        0,
        1,
    ]
    nothing = lifecycle.cleanup(CleanupOptions(num_old_versions_to_delete=0), vs)
    assert nothing.expired == [] and "nothing is deleted" in nothing.kept[0].reason


def test_cleanup_delete_only_untagged() -> None:
    vs = versions(6, tagged={1, 4})
    all_untagged = lifecycle.cleanup(CleanupOptions(delete_only_untagged=True), vs)
    assert deleted(all_untagged, vs) == [0, 2, 3, 5]  # min-versions-to-keep is forced to 0
    assert {d.reason for d in all_untagged.kept} == {"tagged, and delete-only-untagged-versions is set"}
    keep_one = lifecycle.cleanup(CleanupOptions(delete_only_untagged=True, min_versions_to_keep=1), vs)
    assert deleted(keep_one, vs) == [0, 2, 3]


def test_cleanup_ignore_versions_matches_the_digest_not_the_tags() -> None:
    vs = versions(4, tagged={0, 1, 2, 3})
    by_tag = lifecycle.cleanup(CleanupOptions(min_versions_to_keep=0, ignore_versions=r"^1\.0\.0$"), vs)
    assert deleted(by_tag, vs) == [0, 1, 2, 3]  # the tag 1.0.0 is not the version's name
    by_digest = lifecycle.cleanup(CleanupOptions(min_versions_to_keep=0, ignore_versions=vs[0].digest[:20]), vs)
    assert deleted(by_digest, vs) == [1, 2, 3]
    assert by_digest.kept[0].reason.startswith("its name (the digest) matches ignore-versions 'sha256:")
    # re.search, like JavaScript's RegExp.test: unanchored
    # "30" occurs in the digests of ver0 (…7230…) and ver3 (…723300…)
    assert deleted(lifecycle.cleanup(CleanupOptions(min_versions_to_keep=0, ignore_versions="30"), vs), vs) == [1, 2]


def test_cleanup_delete_only_pre_release_overrides_ignore_versions() -> None:
    vs = versions(3, tagged={0})
    options = CleanupOptions(delete_only_pre_release=True, ignore_versions="^sha256:")
    # every container version name is a digest, never a numeric version: all are "pre-release"
    assert deleted(lifecycle.cleanup(options, vs), vs) == [0, 1, 2]
    numeric = [ImageRecord("1.2.3", (), NOW - timedelta(days=2), "push"), ImageRecord("1.2.3-rc1", (), NOW, "push")]
    evaluation = lifecycle.cleanup(options, numeric)
    assert evaluation.expired_digests == {"1.2.3-rc1"}
    assert "numeric-version regex" in evaluation.kept[0].reason


def test_cleanup_deletes_at_most_100_per_run() -> None:
    vs = versions(150)
    evaluation = lifecycle.cleanup(CleanupOptions(delete_only_untagged=True), vs)
    assert deleted(evaluation, vs) == list(range(100))
    assert {d.reason for d in evaluation.kept} == {"over the limit of 100 deletions per run"}
    assert len(lifecycle.cleanup(CleanupOptions(num_old_versions_to_delete=120), vs).expired) == 100
    assert len(lifecycle.cleanup(CleanupOptions(num_old_versions_to_delete=120, max_deletions=7), vs).expired) == 7


def test_cleanup_orders_oldest_first_with_digest_ties() -> None:
    same = [ImageRecord(f"sha256:{c}", (), NOW, "push") for c in "cab"]
    assert lifecycle.cleanup(CleanupOptions(num_old_versions_to_delete=2), same).expired_digests == {
        "sha256:a",
        "sha256:b",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_old_versions_to_delete": 2, "min_versions_to_keep": 0}, "cleanup: Invalid input combination"),
        ({"num_old_versions_to_delete": 5, "delete_only_untagged": True}, "Invalid input combination"),
        ({"num_old_versions_to_delete": 3, "delete_only_pre_release": True}, "Invalid input combination"),
        ({"ignore_versions": "("}, "cleanup: ignore_versions: '(' is not a valid regex"),
        ({"max_deletions": -1}, "cleanup: max_deletions: must be 0 or more"),
        ({"min_versions_to_keep": "2"}, "cleanup: min_versions_to_keep: expected an integer"),
        ({"num_old_versions_to_delete": 1.5}, "cleanup: num_old_versions_to_delete: expected an integer"),
    ],
)
def test_cleanup_refuses_what_the_action_refuses(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError, match=message.replace("(", r"\(")):
        CleanupOptions(**options)


# -- safeguard --------------------------------------------------------------------------------

SEED_RULES = [
    rule(1, prefixes=["v"], count=50),
    rule(2, prefixes=["sha-"], days=30),
    rule(3, status="untagged", days=7),
]


def plan(images: list[ImageRecord], in_use: Collection[str] = ()) -> tuple[lifecycle.Evaluation, lifecycle.Evaluation]:
    before = lifecycle.evaluate(policy(*SEED_RULES), images, NOW)
    return before, lifecycle.safeguard(before, images, {digest(n) for n in in_use})


def reasons(evaluation: lifecycle.Evaluation) -> dict[str, str]:
    return {d.digest: d.reason for d in [*evaluation.expired, *evaluation.kept]}


def test_safeguard_keeps_platform_images_of_a_kept_index() -> None:
    images = [
        image("index", ["v1.0.0"], days=40, children=("amd64", "arm64")),
        image("amd64", [], days=40),
        image("arm64", [], days=40),
    ]
    before, after = plan(images)
    assert expired_names(before, "index", "amd64", "arm64") == {"amd64", "arm64"}  # what ECR would do
    assert after.expired == []
    assert reasons(after)[digest("amd64")] == (
        f"platform image of kept index {digest('index')[:19]}… (the plan would expire it: rule 3: "
        f"pushed 40 days ago (> 7))"
    )
    assert next(d for d in after.kept if d.digest == digest("arm64")).rule_priority == 3


def test_safeguard_expires_platform_images_of_an_expired_index() -> None:
    images = [
        image("index", ["sha-abc"], days=40, children=("amd64", "arm64", "shared", "tagged-child")),
        image("amd64", [], days=2),
        image("arm64", [], days=2),
        image("shared", [], days=2),  # also in a kept index: stays
        image("other", ["v2"], days=1, children=("shared",)),
        image("tagged-child", ["v1-amd64"], days=40),
    ]
    before, after = plan(images)
    assert expired_names(before, "index", "amd64", "arm64", "shared", "other", "tagged-child") == {"index"}
    assert expired_names(after, "index", "amd64", "arm64", "shared", "other", "tagged-child") == {
        "index",
        "amd64",
        "arm64",
    }
    assert reasons(after)[digest("amd64")].startswith(f"platform image of expired index {digest('index')[:19]}…")
    assert "(the plan would keep it: rule 3: pushed 2 days ago, within 7 days)" in reasons(after)[digest("amd64")]


def test_safeguard_signature_referrers() -> None:
    images = [
        image("kept", ["v1"], days=60),
        image("ksig-of-kept", [], days=30, subject="kept"),  # old: the untagged rule would delete it
        image("gone", ["sha-1"], days=60),
        image("gsig-of-gone", [], days=1, subject="gone"),  # young: the plan keeps it
        image("sbom-of-gsig", [], days=1, subject="gsig-of-gone"),
        image("old", ["sha-2"], days=60),
        image("tagged-sbom", ["sbom-old"], days=60, subject="old"),  # no rule selects it: a survivor
    ]
    before, after = plan(images)
    all_names = [_name(i) for i in images]
    assert expired_names(before, *all_names) == {"ksig-of-kept", "gone", "old"}
    assert expired_names(after, *all_names) == {"gone", "gsig-of-gone", "sbom-of-gsig"}
    why = reasons(after)
    assert why[digest("ksig-of-kept")].startswith(f"referrer of kept {digest('kept')[:19]}…")
    assert why[digest("gsig-of-gone")].startswith(f"referrer of expired {digest('gone')[:19]}…")
    assert why[digest("sbom-of-gsig")].startswith(f"referrer of expired {digest('gsig-of-gone')[:19]}…")
    assert why[digest("old")].startswith(f"subject of kept referrer {digest('tagged-sbom')[:19]}…")


def test_safeguard_keeps_digests_in_use_and_what_they_need() -> None:
    images = [
        image("running-index", ["sha-old"], days=90, children=("amd64",)),
        image("amd64", [], days=90),
        image("attestation", [], days=90, subject="amd64"),
        image("idle", ["sha-idle"], days=90),
    ]
    before, after = plan(images, in_use={"running-index", "not-in-this-repository"})
    all_names = ["running-index", "amd64", "attestation", "idle"]
    assert expired_names(before, *all_names) == set(all_names)
    assert expired_names(after, *all_names) == {"idle"}  # the chain is followed to its end
    why = reasons(after)
    assert why[digest("running-index")] == (
        "in use by a running workload (the plan would expire it: rule 2: pushed 90 days ago (> 30))"
    )
    assert why[digest("amd64")].startswith(f"platform image of kept index {digest('running-index')[:19]}…")
    assert why[digest("attestation")].startswith(f"referrer of kept {digest('amd64')[:19]}…")


def test_safeguard_fixes_a_ghcr_cleanup_that_breaks_a_multi_arch_image() -> None:
    """delete-package-versions #90/#162: delete-only-untagged deletes the platform images of tagged indexes."""
    images = [
        image("index", ["latest"], days=5, children=("amd64", "arm64")),
        image("amd64", [], days=5),
        image("arm64", [], days=5),
        image("orphan", [], days=9),
    ]
    before = lifecycle.cleanup(CleanupOptions(delete_only_untagged=True), images)
    assert expired_names(before, "index", "amd64", "arm64", "orphan") == {"amd64", "arm64", "orphan"}
    after = lifecycle.safeguard(before, images, ())
    assert expired_names(after, "index", "amd64", "arm64", "orphan") == {"orphan"}
    assert len(after.expired) + len(after.kept) == len(images)


def test_safeguard_is_a_no_op_on_independent_images() -> None:
    images, _ = seed_repository()
    before = lifecycle.evaluate(lifecycle.parse_policy(json.loads(SEED_POLICY.read_text())), images, NOW)
    assert lifecycle.safeguard(before, images, ()) == before


def test_safeguard_leaves_decisions_about_unknown_digests_alone() -> None:
    images = [image("index", ["v1"], days=1, children=("amd64",)), image("amd64", [], days=30)]
    before = lifecycle.evaluate(policy(*SEED_RULES), images, NOW)
    after = lifecycle.safeguard(before, images[:1], ())  # amd64 is not in the list given to safeguard
    assert after.expired_digests == {digest("amd64")}
    assert after.expired == before.expired
