"""Which images a registry cleanup deletes, and why: ECR lifecycle policies and GHCR cleanup as data.

Deleting images is the one registry operation that cannot be undone, and both tools people
already use for it surprise them. ECR's lifecycle evaluator counts images that a
higher-priority rule protects, so "keep the newest 10" can keep fewer than 10; the GitHub
action ``actions/delete-package-versions`` matches its ``ignore-versions`` regex against
digests, not tags, and deletes the untagged platform images of a multi-arch index. This
module reproduces both exactly, as pure functions from a policy and an image list to an
:class:`Evaluation` (a printable plan: every image, expired or kept, with the reason), so
a preview shows what the real service would do and an executor elsewhere does the deleting.

:func:`safeguard` is the one place that protects what the plain algorithms would break:
platform images of surviving indexes, subjects of surviving referrers and digests that
workloads run.
"""

from __future__ import annotations

import enum
import json
import math
import re
from bisect import bisect_left
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from operator import attrgetter

__all__ = [
    "CleanupOptions",
    "CountType",
    "Decision",
    "Evaluation",
    "ImageRecord",
    "InventoryError",
    "LifecyclePolicy",
    "PolicyError",
    "Rule",
    "TagStatus",
    "cleanup",
    "evaluate",
    "parse_inventory",
    "parse_policy",
    "safeguard",
]

PUSHED_AT_SOURCES = ("push", "created", "inventory")
"""Where an image's date comes from: funade's push record, the image's creation time, an ECR export."""

_MAX_WILDCARDS = 4
_DAY = timedelta(days=1)
# delete-only-pre-release-versions replaces ignore-versions with this (src/input.ts, v5).
_NUMERIC_VERSION = r"^(0|[1-9]\d*)((\.(0|[1-9]\d*))*)$"
_CLEANUP = "delete-package-versions"


class PolicyError(ValueError):
    """A policy or cleanup setting that ECR (or the action) refuses, or that funade cannot evaluate.

    The message names the source, the rule (position and priority) and the field.
    """


class InventoryError(ValueError):
    """An image list (``aws ecr describe-images`` output) that cannot be read; the message names the entry."""


# -- images --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRecord:
    """One manifest in a repository, as lifecycle rules see it.

    ``children`` are the manifests an image index lists (its platform images); ``subject``
    is, for an OCI referrer (signature, SBOM, attestation), the digest it refers to.
    ``pushed_at`` is normalised to UTC; a naive datetime is refused.
    """

    digest: str
    tags: tuple[str, ...]
    pushed_at: datetime
    pushed_at_source: str
    children: tuple[str, ...] = ()
    subject: str | None = None
    size: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.digest, str) or not self.digest:
            raise ValueError(f"image digest must be a non-empty string, got {self.digest!r}")
        if not isinstance(self.tags, tuple):
            object.__setattr__(self, "tags", tuple(self.tags))
        if not isinstance(self.children, tuple):
            object.__setattr__(self, "children", tuple(self.children))
        if not isinstance(self.pushed_at, datetime) or self.pushed_at.utcoffset() is None:
            raise ValueError(f"image {self.digest}: pushed_at must be a timezone-aware datetime")
        if self.pushed_at.tzinfo is not UTC:
            object.__setattr__(self, "pushed_at", self.pushed_at.astimezone(UTC))
        if self.pushed_at_source not in PUSHED_AT_SOURCES:
            raise ValueError(
                f"image {self.digest}: pushed_at_source must be one of {', '.join(PUSHED_AT_SOURCES)}, "
                f"got {self.pushed_at_source!r}"
            )
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"image {self.digest}: size must be a non-negative integer, got {self.size!r}")


def parse_inventory(data: object, source: str) -> list[ImageRecord]:
    """Read ``aws ecr describe-images`` output: ``{"imageDetails": [{"imageDigest": …, …}, …]}``.

    ``imagePushedAt`` may be an ISO 8601 string with an offset (AWS CLI v2) or epoch seconds
    (CLI v1, boto3 JSON dumps); both appear in real exports. Keys funade does not use
    (``imageScanStatus``, ``lastRecordedPullTime``, ``nextToken``…) are ignored. The export
    does not list an index's platform images nor a referrer's subject, so ``children`` and
    ``subject`` stay empty: take them from the registry before calling :func:`safeguard`.

    Raises:
        InventoryError: naming ``source``, the entry's index and the field.
    """
    if not isinstance(data, Mapping) or not isinstance(data.get("imageDetails"), list):
        raise InventoryError(f'{source}: expected an object with an "imageDetails" list (aws ecr describe-images)')
    records: list[ImageRecord] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data["imageDetails"]):
        where = f"{source}: imageDetails[{index}]"
        if not isinstance(entry, Mapping):
            raise InventoryError(f"{where}: expected an object")
        digest = entry.get("imageDigest")
        if not isinstance(digest, str) or not digest:
            raise InventoryError(f"{where}.imageDigest: expected a non-empty string")
        if digest in seen:
            raise InventoryError(f"{where}.imageDigest: {digest} is also imageDetails[{seen[digest]}]")
        seen[digest] = index
        tags = entry.get("imageTags")
        if tags is None:
            tags = []
        if not isinstance(tags, list) or not all(isinstance(t, str) and t for t in tags):
            raise InventoryError(f"{where}.imageTags: expected a list of non-empty strings")
        size = entry.get("imageSizeInBytes", 0)
        if size is None:
            size = 0
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InventoryError(f"{where}.imageSizeInBytes: expected a non-negative integer, got {size!r}")
        records.append(
            ImageRecord(
                digest=digest,
                tags=tuple(tags),
                pushed_at=_pushed_at(entry.get("imagePushedAt"), f"{where}.imagePushedAt"),
                pushed_at_source="inventory",
                size=size,
            )
        )
    return records


def _pushed_at(value: object, where: str) -> datetime:
    if isinstance(value, bool) or value is None:
        raise InventoryError(f"{where}: expected an ISO 8601 string or epoch seconds, got {value!r}")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise InventoryError(f"{where}: {value!r} is not a time")
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise InventoryError(f"{where}: {value!r} is out of range") from exc
    if not isinstance(value, str):
        raise InventoryError(f"{where}: expected an ISO 8601 string or epoch seconds, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise InventoryError(f"{where}: {value!r} is not an ISO 8601 time") from exc
    if parsed.utcoffset() is None:
        raise InventoryError(f"{where}: {value!r} has no UTC offset")
    return parsed.astimezone(UTC)


# -- the policy ------------------------------------------------------------------------------


class TagStatus(enum.StrEnum):
    """Which images a rule looks at."""

    TAGGED = "tagged"
    UNTAGGED = "untagged"
    ANY = "any"


class CountType(enum.StrEnum):
    """How a rule decides: keep the newest N, or expire what is older than N days."""

    IMAGE_COUNT_MORE_THAN = "imageCountMoreThan"
    SINCE_IMAGE_PUSHED = "sinceImagePushed"


def _wildcard(pattern: str) -> re.Pattern[str]:
    """A tag pattern as a regex over the whole tag: ``*`` is any run of characters, the rest is literal."""
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def _matcher(
    status: TagStatus, prefixes: tuple[str, ...], patterns: tuple[str, ...]
) -> Callable[[Sequence[str]], bool]:
    """A selection as one function of the tags: every prefix or pattern must match at least one tag."""
    if status is TagStatus.ANY:
        return lambda tags: True
    if status is TagStatus.UNTAGGED:
        return lambda tags: not tags
    tests: list[Callable[[str], bool]] = [
        *(lambda tag, p=p: tag.startswith(p) for p in prefixes),
        *(lambda tag, r=r: r.fullmatch(tag) is not None for r in map(_wildcard, patterns)),
    ]
    if len(prefixes) == 1 and not patterns:
        (prefix,) = prefixes

        def one_prefix(tags: Sequence[str]) -> bool:  # the common case, kept fast
            for tag in tags:  # noqa: SIM110 - three times faster than any() over a generator
                if tag.startswith(prefix):
                    return True
            return False

        return one_prefix

    def every_entry(tags: Sequence[str]) -> bool:
        return all(any(test(tag) for tag in tags) for test in tests)

    return every_entry


@dataclass(frozen=True)
class Rule:
    """One validated rule of a lifecycle policy (action ``expire``, storage class standard)."""

    priority: int
    description: str
    tag_status: TagStatus
    tag_prefixes: tuple[str, ...]
    tag_patterns: tuple[str, ...]
    count_type: CountType
    count_number: int
    _match: Callable[[Sequence[str]], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_match", _matcher(self.tag_status, self.tag_prefixes, self.tag_patterns))

    def selects(self, tags: Sequence[str]) -> bool:
        """Whether the rule's selection matches an image with these tags.

        ECR ANDs list entries: every prefix (or pattern) must match at least one of the
        image's tags, and any one tag may satisfy an entry.
        """
        return self._match(tags)

    @property
    def images_selected(self) -> str:
        """The selection in words: "images tagged sha-*", "untagged images", "images"."""
        if self.tag_status is TagStatus.UNTAGGED:
            return "untagged images"
        if self.tag_status is TagStatus.ANY:
            return "images"
        names = [f"{p}*" for p in self.tag_prefixes] or list(self.tag_patterns)
        return "images tagged " + " and ".join(names)


@dataclass(frozen=True)
class LifecyclePolicy:
    """A validated ECR lifecycle policy; ``rules`` are in ascending ``rulePriority`` (the order they apply)."""

    rules: tuple[Rule, ...]


_RULE_KEYS = ("rulePriority", "description", "selection", "action")
_SELECTION_KEYS = (
    "tagStatus",
    "tagPatternList",
    "tagPrefixList",
    "storageClass",
    "countType",
    "countUnit",
    "countNumber",
)
_ACTION_KEYS = ("type", "targetStorageClass")
_COUNT_TYPES = ("imageCountMoreThan", "sinceImagePushed", "sinceImagePulled", "sinceImageTransitioned")


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def _names(keys: Iterable[str]) -> str:
    return "[" + ",".join(f'"{k}"' for k in keys) + "]"


class _RuleReader:
    """Validates one rule, with ECR's schema wording and a location in every message."""

    def __init__(self, source: str, number: int, raw: object) -> None:
        self.source = source
        self.number = number
        self.priority: int | None = None
        if isinstance(raw, Mapping):
            candidate = raw.get("rulePriority")
            if isinstance(candidate, int) and not isinstance(candidate, bool):
                self.priority = candidate
        self.raw = raw

    def fail(self, message: str, path: str = "") -> PolicyError:
        label = f"rule {self.number}" + (f" (priority {self.priority})" if self.priority is not None else "")
        return PolicyError(f"{self.source}: {label}: {path + ': ' if path else ''}{message}")

    def obj(self, value: object, path: str, allowed: Sequence[str], required: Sequence[str]) -> Mapping[str, object]:
        if not isinstance(value, Mapping):
            raise self.fail(
                f'instance type ({_json_type(value)}) does not match any allowed primitive type (allowed: ["object"])',
                path,
            )
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            raise self.fail(
                f"object instance has properties which are not allowed by the schema: ({_names(unknown)}); "
                f"allowed: {', '.join(allowed)}",
                path,
            )
        missing = [k for k in required if k not in value]
        if missing:
            raise self.fail(f"object has missing required properties ({_names(missing)})", path)
        return {str(k): v for k, v in value.items()}

    def integer(self, value: object, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(
                f'instance type ({_json_type(value)}) does not match any allowed primitive type (allowed: ["integer"])',
                path,
            )
        if value < 1:
            raise self.fail(f"numeric instance is lower than the required minimum (minimum: 1, found: {value})", path)
        return value

    def enum(self, value: object, path: str, allowed: Sequence[str]) -> str:
        if not isinstance(value, str) or value not in allowed:
            shown = value if isinstance(value, str) else json.dumps(value)
            raise self.fail(f"instance value ({shown}) not found in enum (possible values: {_names(allowed)})", path)
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list):
            raise self.fail(
                f'instance type ({_json_type(value)}) does not match any allowed primitive type (allowed: ["array"])',
                path,
            )
        if not value:
            raise self.fail("array is too short: must have at least 1 elements but instance has 0 elements", path)
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item:
                raise self.fail(f"expected a non-empty string, got {json.dumps(item)}", f"{path}[{i}]")
        return tuple(value)

    def read(self) -> Rule:
        rule = self.obj(self.raw, "", _RULE_KEYS, ("rulePriority", "selection", "action"))
        priority = self.integer(rule["rulePriority"], "rulePriority")
        description = rule.get("description", "")
        if not isinstance(description, str):
            raise self.fail(
                f"instance type ({_json_type(description)}) does not match any allowed primitive type "
                '(allowed: ["string"])',
                "description",
            )
        selection = self.obj(rule["selection"], "selection", _SELECTION_KEYS, ("tagStatus", "countType", "countNumber"))
        status = TagStatus(self.enum(selection["tagStatus"], "selection.tagStatus", [s.value for s in TagStatus]))
        prefixes: tuple[str, ...] = ()
        patterns: tuple[str, ...] = ()
        if "tagPrefixList" in selection:
            prefixes = self.strings(selection["tagPrefixList"], "selection.tagPrefixList")
        if "tagPatternList" in selection:
            patterns = self.strings(selection["tagPatternList"], "selection.tagPatternList")
        if status is TagStatus.TAGGED:
            if not prefixes and not patterns:
                raise self.fail("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.", "selection")
            if prefixes and patterns:
                raise self.fail("tagPrefixList and tagPatternList cannot both be specified in one rule", "selection")
        else:
            for key in ("tagPrefixList", "tagPatternList"):
                if key in selection:
                    raise self.fail(f"'{key}' is only allowed with tagStatus tagged, not {status.value}", "selection")
        for i, pattern in enumerate(patterns):
            wildcards = pattern.count("*")
            if wildcards > _MAX_WILDCARDS:
                raise self.fail(
                    f"a tag pattern can contain at most {_MAX_WILDCARDS} wildcards (*), {pattern!r} has {wildcards}",
                    f"selection.tagPatternList[{i}]",
                )
        count_type = self.enum(selection["countType"], "selection.countType", _COUNT_TYPES)
        if count_type in ("sinceImagePulled", "sinceImageTransitioned"):
            needs = "last pull time" if count_type == "sinceImagePulled" else "archive transition time"
            raise self.fail(
                f"countType {count_type} is valid in ECR, but funade cannot evaluate it: its image records "
                f"carry no {needs}",
                "selection.countType",
            )
        if count_type == "sinceImagePushed":
            if "countUnit" not in selection:
                raise self.fail('object has missing required properties (["countUnit"])', "selection")
            self.enum(selection["countUnit"], "selection.countUnit", ["days"])
        elif "countUnit" in selection:
            raise self.fail("'countUnit' is only allowed with countType sinceImagePushed", "selection")
        count_number = self.integer(selection["countNumber"], "selection.countNumber")
        if "storageClass" in selection:
            storage = self.enum(selection["storageClass"], "selection.storageClass", ["standard", "archive"])
            if storage == "archive":
                raise self.fail(
                    "storageClass archive is valid in ECR, but funade cannot evaluate it: it does not know which "
                    "images are archived (every image it sees is in the standard class)",
                    "selection.storageClass",
                )
        action = self.obj(rule["action"], "action", _ACTION_KEYS, ("type",))
        kind = self.enum(action["type"], "action.type", ["expire", "transition"])
        if kind == "transition":
            raise self.fail(
                "action type transition is valid in ECR, but funade cannot apply it: its registries have no "
                "archive storage class; use expire",
                "action.type",
            )
        if "targetStorageClass" in action:
            raise self.fail("'targetStorageClass' is only allowed with action type transition", "action")
        return Rule(
            priority=priority,
            description=description,
            tag_status=status,
            tag_prefixes=prefixes,
            tag_patterns=patterns,
            count_type=CountType(count_type),
            count_number=count_number,
        )


def parse_policy(data: object, source: str = "policy") -> LifecyclePolicy:
    """Validate an ECR lifecycle policy (the parsed JSON, or its text) as ``PutLifecyclePolicy`` does.

    Checks, with ECR's wording where it is known: the schema (types, required and unknown
    keys, enums, ``countNumber`` ≥ 1); ``tagged`` needs ``tagPrefixList`` or
    ``tagPatternList`` (not both) and ``untagged``/``any`` take neither; at most four
    ``*`` per pattern; ``countUnit`` (``days``) is required with ``sinceImagePushed`` and
    refused otherwise; priorities are unique; a tag prefix appears in one rule only; one
    rule at most selects untagged images; a ``tagStatus: any`` rule has the highest
    priority number. Template features funade cannot evaluate (``sinceImagePulled``,
    ``sinceImageTransitioned``, ``storageClass: archive``, action ``transition``) are
    refused by name; ``storageClass: standard`` is accepted (every image is standard).

    Raises:
        PolicyError: naming ``source``, the rule (position and priority) and the field.
    """
    if isinstance(data, str | bytes):
        try:
            data = json.loads(data)
        except ValueError as exc:
            raise PolicyError(f"{source}: Could not map policyString into LifecyclePolicy: {exc}") from exc
    if not isinstance(data, Mapping):
        raise PolicyError(
            f"{source}: Could not map policyString into LifecyclePolicy: expected a JSON object, got {_json_type(data)}"
        )
    unknown = sorted(str(k) for k in data if k != "rules")
    if unknown:
        raise PolicyError(
            f"{source}: object instance has properties which are not allowed by the schema: ({_names(unknown)})"
        )
    if "rules" not in data:
        raise PolicyError(f'{source}: object has missing required properties (["rules"])')
    raw_rules = data["rules"]
    if not isinstance(raw_rules, list):
        raise PolicyError(
            f"{source}: rules: instance type ({_json_type(raw_rules)}) does not match any allowed primitive type "
            '(allowed: ["array"])'
        )
    if not raw_rules:
        raise PolicyError(f"{source}: rules: array is too short: must have at least 1 elements but instance has 0")
    readers = [_RuleReader(source, n, raw) for n, raw in enumerate(raw_rules, start=1)]
    rules = [reader.read() for reader in readers]

    by_priority: dict[int, int] = {}
    prefix_owner: dict[str, int] = {}
    untagged: int | None = None
    for n, (reader, rule) in enumerate(zip(readers, rules, strict=True), start=1):
        if rule.priority in by_priority:
            raise reader.fail(
                f"rulePriority {rule.priority} is also used by rule {by_priority[rule.priority]}: "
                "rule priorities must be unique"
            )
        by_priority[rule.priority] = n
        for prefix in rule.tag_prefixes:
            other = prefix_owner.get(prefix)
            if other is not None and other != n:
                raise reader.fail(
                    f"tag prefix {prefix!r} is also used by rule {other} (priority {rules[other - 1].priority}): "
                    "the set of rules must contain a unique set of tag prefixes",
                    "selection.tagPrefixList",
                )
            prefix_owner[prefix] = n
        if rule.tag_status is TagStatus.UNTAGGED:
            if untagged is not None:
                raise reader.fail(
                    f"Only one rule can select Untagged images per storage class (rule {untagged} "
                    f"(priority {rules[untagged - 1].priority}) already does)",
                    "selection.tagStatus",
                )
            untagged = n
    highest = max(rule.priority for rule in rules)
    for reader, rule in zip(readers, rules, strict=True):
        if rule.tag_status is TagStatus.ANY and rule.priority != highest:
            raise reader.fail(
                "Rule for tagStatus=ANY must have the lowest priority per storage class: a tagStatus any rule "
                f"must have the highest rulePriority (it is evaluated last), and {highest} is higher",
                "rulePriority",
            )
    return LifecyclePolicy(rules=tuple(sorted(rules, key=lambda r: r.priority)))


# -- decisions ------------------------------------------------------------------------------


def _short(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}…" if hex_part and len(hex_part) > 12 else digest


@dataclass(frozen=True)
class Decision:
    """What happens to one image and why; ``rule_priority`` is None when no rule (or a cleanup) decided."""

    digest: str
    tags: tuple[str, ...]
    rule_priority: int | None
    rule_description: str
    reason: str
    pushed_at: datetime
    pushed_at_source: str

    def to_json(self) -> dict[str, object]:
        return {
            "digest": self.digest,
            "tags": list(self.tags),
            "rulePriority": self.rule_priority,
            "ruleDescription": self.rule_description,
            "reason": self.reason,
            "pushedAt": self.pushed_at.isoformat(),
            "pushedAtSource": self.pushed_at_source,
        }

    def __str__(self) -> str:
        tags = ", ".join(self.tags) if self.tags else "<untagged>"
        return (
            f"{_short(self.digest)} [{tags}] pushed {self.pushed_at:%Y-%m-%d %H:%M} UTC "
            f"({self.pushed_at_source}): {self.reason}"
        )


def _decision(image: ImageRecord, priority: int | None, description: str, reason: str) -> Decision:
    return Decision(
        digest=image.digest,
        tags=image.tags,
        rule_priority=priority,
        rule_description=description,
        reason=reason,
        pushed_at=image.pushed_at,
        pushed_at_source=image.pushed_at_source,
    )


def _order(decision: Decision) -> tuple[datetime, str]:
    return decision.pushed_at, decision.digest


@dataclass(frozen=True)
class Evaluation:
    """A cleanup plan: every image once, expired or kept, oldest first (ties by digest)."""

    expired: list[Decision]
    kept: list[Decision]

    @property
    def expired_digests(self) -> frozenset[str]:
        return frozenset(d.digest for d in self.expired)

    @property
    def kept_digests(self) -> frozenset[str]:
        return frozenset(d.digest for d in self.kept)

    def __str__(self) -> str:
        lines = [f"expire {len(self.expired)}, keep {len(self.kept)}"]
        lines += [f"  expire {d}" for d in self.expired]
        lines += [f"  keep   {d}" for d in self.kept]
        return "\n".join(lines)


def _plan(expired: Iterable[Decision], kept: Iterable[Decision]) -> Evaluation:
    return Evaluation(expired=sorted(expired, key=_order), kept=sorted(kept, key=_order))


def _unique(images: Sequence[ImageRecord]) -> None:
    seen: set[str] = set()
    for image in images:
        if image.digest in seen:
            raise ValueError(f"image {image.digest} appears twice")
        seen.add(image.digest)


def _age(delta: timedelta, limit_days: int) -> str:
    days = delta // _DAY
    if days > limit_days or days < 0:
        return f"{days} days"
    return f"{days} days {(delta - days * _DAY) // timedelta(hours=1)} h"


# -- ECR evaluation -------------------------------------------------------------------------


def evaluate(policy: LifecyclePolicy, images: Sequence[ImageRecord], now: datetime) -> Evaluation:
    """Apply a lifecycle policy the way ECR's evaluator does.

    Every rule looks at every image its selection matches, whatever other rules do with
    them: ``imageCountMoreThan N`` ranks its whole selection newest first by push time and
    marks all but the first N; ``sinceImagePushed N`` marks those pushed more than N days
    before ``now``. Rules then apply in ascending priority and an image matched by a
    higher-priority rule's selection cannot be expired by a lower one, so each image is
    expired by at most one rule: the first rule that selects it decides. This reproduces
    the documentation's Examples A and B. Push-time ties are ranked by digest.

    Raises:
        ValueError: ``now`` is naive or two images share a digest.
    """
    if now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    _unique(images)
    rules = policy.rules
    # Oldest first (ties by digest): each rule's selection comes out ranked, and so does the plan.
    ordered = sorted(images, key=attrgetter("pushed_at", "digest"))
    matchers = list(enumerate(rule._match for rule in rules))
    selected: list[list[int]] = [[] for _ in rules]
    first = [-1] * len(ordered)
    for i, image in enumerate(ordered):
        tags = image.tags
        for r, match in matchers:
            if match(tags):
                selected[r].append(i)
                if first[i] < 0:
                    first[i] = r

    # would_expire[r]: what rule r marks when it looks at its whole selection, as if alone.
    would_expire: list[set[int]] = []
    expired_reason: list[str] = []
    kept_reason: list[str] = []
    for r, rule in enumerate(rules):
        chosen, n, number = selected[r], len(selected[r]), rule.count_number
        if rule.count_type is CountType.IMAGE_COUNT_MORE_THAN:
            would_expire.append(set(chosen[: max(0, n - number)]))
            newest = "the newest" if number == 1 else f"one of the newest {number}"
            expired_reason.append(f"rule {rule.priority}: {n} {rule.images_selected}, keeping the newest {number}")
            kept_reason.append(f"rule {rule.priority}: {newest} of {n} {rule.images_selected}")
        else:
            # ``chosen`` is oldest first, so what is older than the cutoff is a prefix of it
            older = bisect_left(chosen, now - number * _DAY, key=lambda i: ordered[i].pushed_at)
            would_expire.append(set(chosen[:older]))
            expired_reason.append("")
            kept_reason.append("")

    expired: list[Decision] = []
    kept: list[Decision] = []
    for i, image in enumerate(ordered):
        r = first[i]
        if r < 0:
            kept.append(_decision(image, None, "", "no rule selects it"))
            continue
        rule = rules[r]
        doomed = i in would_expire[r]
        reason = expired_reason[r] if doomed else kept_reason[r]
        if not reason:  # sinceImagePushed: the reason is the image's age
            age, limit = now - image.pushed_at, rule.count_number
            if doomed:
                reason = f"rule {rule.priority}: pushed {_age(age, limit)} ago (> {limit})"
            else:
                reason = f"rule {rule.priority}: pushed {age // _DAY} days ago, within {limit} days"
        if doomed:
            expired.append(_decision(image, rule.priority, rule.description, reason))
            continue
        for later in range(r + 1, len(rules)):
            if i in would_expire[later]:
                reason += f"; rule {rules[later].priority} would expire it, but rule {rule.priority} selects it first"
                break
        kept.append(_decision(image, rule.priority, rule.description, reason))
    return Evaluation(expired=expired, kept=kept)


# -- GHCR cleanup (actions/delete-package-versions v5) --------------------------------------


@dataclass(frozen=True)
class CleanupOptions:
    """The inputs of ``actions/delete-package-versions`` v5, with its defaults.

    ``num_old_versions_to_delete`` None is the action's default (1). ``ignore_versions`` is
    matched against the version *name*, and for a container package the name is the
    manifest digest (``sha256:…``), not a tag: ``^v1`` never matches, ``delete_only_pre_release``
    (which replaces ``ignore_versions`` with a numeric-version regex) treats every container
    version as pre-release. The action compiles a JavaScript ``RegExp`` and calls ``test``;
    here Python's ``re.search`` runs it with ``re.ASCII`` (so ``\\d`` and ``\\w`` are ASCII as
    in JavaScript). Remaining differences: ``$`` also matches before a final newline in
    Python, JavaScript named groups ``(?<n>…)`` are written ``(?P<n>…)`` here, and Python
    lookbehinds must have a fixed width.

    Raises:
        PolicyError: an invalid regex or number, or a combination the action refuses
            ("Invalid input combination": ``num_old_versions_to_delete`` above 1 with
            ``min_versions_to_keep`` ≥ 0, ``delete_only_untagged`` or ``delete_only_pre_release``).
    """

    min_versions_to_keep: int = -1
    num_old_versions_to_delete: int | None = None
    delete_only_untagged: bool = False
    delete_only_pre_release: bool = False
    ignore_versions: str = "^$"
    max_deletions: int = 100
    _ignore: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("min_versions_to_keep", "max_deletions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise PolicyError(f"cleanup: {name}: expected an integer, got {value!r}")
        if self.max_deletions < 0:
            raise PolicyError(f"cleanup: max_deletions: must be 0 or more, got {self.max_deletions}")
        num = self.num_old_versions_to_delete
        if num is not None and (isinstance(num, bool) or not isinstance(num, int)):
            raise PolicyError(f"cleanup: num_old_versions_to_delete: expected an integer, got {num!r}")
        if (
            num is not None
            and num > 1
            and (self.min_versions_to_keep >= 0 or self.delete_only_untagged or self.delete_only_pre_release)
        ):
            raise PolicyError(
                f"cleanup: Invalid input combination: num-old-versions-to-delete ({num}) cannot be combined with "
                "min-versions-to-keep, delete-only-untagged-versions or delete-only-pre-release-versions"
            )
        pattern = _NUMERIC_VERSION if self.delete_only_pre_release else self.ignore_versions
        try:
            compiled = re.compile(pattern, re.ASCII)
        except re.error as exc:
            raise PolicyError(f"cleanup: ignore_versions: {pattern!r} is not a valid regex: {exc}") from exc
        object.__setattr__(self, "_ignore", compiled)


def cleanup(options: CleanupOptions, images: Sequence[ImageRecord]) -> Evaluation:
    """Choose versions to delete exactly as ``actions/delete-package-versions`` v5 does.

    Versions are sorted oldest first (push time, then digest). Those whose name (the
    digest) matches ``ignore_versions`` are set aside, and with ``delete_only_untagged``
    so are tagged ones. With ``min_versions_to_keep`` N ≥ 0 (forced to at least 0 by the
    untagged and pre-release modes), the oldest ``len(rest) - N`` go; otherwise the oldest
    ``num_old_versions_to_delete``. Never more than ``max_deletions`` (the action's 100 per
    run). Untagged platform images of a multi-arch index are deleted like any other
    version, as the action does: run :func:`safeguard` on the result.
    """
    _unique(images)
    ordered = sorted(images, key=lambda image: (image.pushed_at, image.digest))
    num_old = 1 if options.num_old_versions_to_delete is None else options.num_old_versions_to_delete
    min_keep = options.min_versions_to_keep
    if options.delete_only_pre_release or options.delete_only_untagged:
        min_keep = max(min_keep, 0)
    if min_keep >= 0:
        num_old = 0
    if num_old <= 0 and min_keep < 0:
        reason = "num-old-versions-to-delete is 0 or less and min-versions-to-keep is off: nothing is deleted"
        return _plan([], [_decision(image, None, _CLEANUP, reason) for image in ordered])

    kept: list[Decision] = []
    candidates: list[ImageRecord] = []
    for image in ordered:
        if options._ignore.search(image.digest):
            if options.delete_only_pre_release:
                why = "its name (the digest) matches the numeric-version regex of delete-only-pre-release-versions"
            else:
                why = f"its name (the digest) matches ignore-versions {options.ignore_versions!r}"
            kept.append(_decision(image, None, _CLEANUP, why))
        elif options.delete_only_untagged and image.tags:
            kept.append(_decision(image, None, _CLEANUP, "tagged, and delete-only-untagged-versions is set"))
        else:
            candidates.append(image)

    if min_keep >= 0:
        wanted = len(candidates) - min_keep
        why_delete = (
            f"among the oldest {max(wanted, 0)} of {len(candidates)} candidates (min-versions-to-keep {min_keep})"
        )
        why_keep = f"among the newest {min_keep} candidates (min-versions-to-keep {min_keep})"
    else:
        wanted = min(len(candidates), num_old)
        why_delete = f"among the oldest {num_old} candidates (num-old-versions-to-delete {num_old})"
        why_keep = f"newer than the oldest {num_old} candidates (num-old-versions-to-delete {num_old})"
    count = max(0, min(wanted, options.max_deletions))
    expired = [_decision(image, None, _CLEANUP, why_delete) for image in candidates[:count]]
    for position, image in enumerate(candidates[count:], start=count):
        why = why_keep if position >= wanted else f"over the limit of {options.max_deletions} deletions per run"
        kept.append(_decision(image, None, _CLEANUP, why))
    return _plan(expired, kept)


# -- safety ---------------------------------------------------------------------------------


def safeguard(evaluation: Evaluation, images: Sequence[ImageRecord], in_use: Collection[str]) -> Evaluation:
    """Correct a plan so deleting it breaks nothing that survives, and leaves nothing dangling.

    Neither ECR nor the GitHub action knows that manifests refer to each other. Deleting
    an untagged platform image that a surviving index lists breaks ``docker pull`` of that
    index (delete-package-versions issues #90 and #162); deleting the subject of a
    surviving referrer leaves a signature for nothing; deleting what a workload runs
    breaks its next restart. And an index or image that goes leaves its untagged platform
    images and referrers behind, unreachable and never cleaned up.

    Survival is reachability, computed to a fixed point (a breadth-first walk): the roots
    are the digests in ``in_use`` and what the plan keeps, except untagged images that only
    exist for another image (an index's child, a referrer whose subject is in the list);
    a survivor keeps the children of an index, the subject of a referrer and the referrers
    of a subject. Planned-expired images that are reached move to ``kept`` with the reason;
    kept dependents that are not reached move to ``expired`` ("referrer of expired …",
    "platform image of expired index …"). Tagged images are never added to ``expired``.
    """
    by_digest = {image.digest: image for image in images}
    decisions: dict[str, Decision] = {d.digest: d for d in evaluation.kept}
    planned_expired = {d.digest for d in evaluation.expired}
    decisions.update({d.digest: d for d in evaluation.expired})

    edges: dict[str, list[tuple[str, str]]] = defaultdict(list)
    index_parents: dict[str, list[str]] = defaultdict(list)
    for image in sorted(images, key=lambda i: i.digest):
        for child in image.children:
            if child in by_digest and child != image.digest:
                edges[image.digest].append((child, f"platform image of kept index {_short(image.digest)}"))
                index_parents[child].append(image.digest)
        subject = image.subject
        if subject is not None and subject in by_digest and subject != image.digest:
            edges[image.digest].append((subject, f"subject of kept referrer {_short(image.digest)}"))
            edges[subject].append((image.digest, f"referrer of kept {_short(subject)}"))

    def dependent(digest: str) -> bool:
        image = by_digest[digest]
        has_parent = bool(index_parents.get(digest)) or (image.subject is not None and image.subject in by_digest)
        return has_parent and not image.tags

    why: dict[str, str] = {}  # survivor → why it survives ("" = the plan keeps it)
    queue: deque[str] = deque()
    for digest in sorted(set(in_use) & by_digest.keys()):
        why[digest] = "in use by a running workload"
        queue.append(digest)
    for digest in sorted(by_digest):
        if digest not in why and digest not in planned_expired and not dependent(digest):
            why[digest] = ""
            queue.append(digest)
    while queue:
        for target, reason in edges.get(queue.popleft(), ()):
            if target not in why:
                why[target] = reason
                queue.append(target)

    expired: list[Decision] = []
    kept: list[Decision] = []
    for digest, decision in decisions.items():
        if digest not in by_digest:  # nothing known about its links: the plan stands
            (expired if digest in planned_expired else kept).append(decision)
            continue
        survives = digest in why
        if survives and digest in planned_expired:
            kept.append(
                _rewrite(decision, f"{why.get(digest) or 'kept'} (the plan would expire it: {decision.reason})")
            )
        elif survives:
            kept.append(decision)
        elif digest in planned_expired:
            expired.append(decision)
        else:
            image = by_digest[digest]
            if image.subject is not None and image.subject in by_digest:
                reason = f"referrer of expired {_short(image.subject)}"
            else:
                reason = f"platform image of expired index {_short(sorted(index_parents[digest])[0])}"
            expired.append(_rewrite(decision, f"{reason} (the plan would keep it: {decision.reason})"))
    return _plan(expired, kept)


def _rewrite(decision: Decision, reason: str) -> Decision:
    return replace(decision, reason=reason)
