"""ECR tag mutability: which tags of a repository may be moved to another image.

A release tag that can be overwritten is not a release: ``v1.0.0`` could point at other
bytes tomorrow, and every pin, scan result and signature made against it would lie.
ECR lets a repository refuse overwrites (``IMMUTABLE``), or refuse them except for some
tags (``IMMUTABLE_WITH_EXCLUSION``, e.g. ``latest``), or allow them except for some
(``MUTABLE_WITH_EXCLUSION``). This module holds that setting in ECR's API shape
(``PutImageTagMutability``) so funade's own registries, promotions and pushes enforce the
same rule with the same error ECR returns.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ImmutableTagError", "Mode", "MutabilityError", "TagMutability", "parse"]

_FILTER = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")
_MAX_FILTERS = 5


class Mode(enum.StrEnum):
    """``imageTagMutability`` values."""

    MUTABLE = "MUTABLE"
    IMMUTABLE = "IMMUTABLE"
    IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"
    MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"


_WITH_EXCLUSION = (Mode.IMMUTABLE_WITH_EXCLUSION, Mode.MUTABLE_WITH_EXCLUSION)


class MutabilityError(ValueError):
    """A tag mutability setting ECR would refuse; the message names the field."""


class ImmutableTagError(Exception):
    """A push or retag would move an immutable tag (ECR's ``ImageTagAlreadyExistsException``)."""

    code = "ImageTagAlreadyExistsException"

    def __init__(self, tag: str, repository: str) -> None:
        self.tag = tag
        self.repository = repository
        super().__init__(
            f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten "
            "because the repository is immutable."
        )


def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


@dataclass(frozen=True)
class TagMutability:
    """A repository's tag mutability and its ``WILDCARD`` exclusion filters (``*`` = any run of characters).

    Raises:
        MutabilityError: filters with a mode that takes none, none with a ``*_WITH_EXCLUSION``
            mode, more than five, or one outside ``^[0-9a-zA-Z._*-]{1,128}$``.
    """

    mode: Mode = Mode.MUTABLE
    exclusions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            mode = Mode(self.mode)
        except ValueError as exc:
            raise MutabilityError(
                f"imageTagMutability: {self.mode!r} is not one of {', '.join(m.value for m in Mode)}"
            ) from exc
        object.__setattr__(self, "mode", mode)
        if not isinstance(self.exclusions, tuple):
            object.__setattr__(self, "exclusions", tuple(self.exclusions))
        field = "imageTagMutabilityExclusionFilters"
        if mode in _WITH_EXCLUSION:
            if not self.exclusions:
                raise MutabilityError(f"{field}: required when imageTagMutability is {mode.value}")
            if len(self.exclusions) > _MAX_FILTERS:
                raise MutabilityError(
                    f"{field}: must contain between 1 and {_MAX_FILTERS} filters, got {len(self.exclusions)}"
                )
        elif self.exclusions:
            raise MutabilityError(
                f"{field}: only allowed when imageTagMutability is IMMUTABLE_WITH_EXCLUSION or "
                f"MUTABLE_WITH_EXCLUSION, not {mode.value}"
            )
        for i, value in enumerate(self.exclusions):
            if not isinstance(value, str) or not _FILTER.fullmatch(value):
                raise MutabilityError(f"{field}[{i}].filter: {value!r} does not match {_FILTER.pattern}")

    def excluded(self, tag: str) -> bool:
        """Whether an exclusion filter matches the whole tag."""
        return any(_wildcard(f).fullmatch(tag) for f in self.exclusions)

    def is_immutable(self, tag: str) -> bool:
        """Whether pushing another image under ``tag`` is refused once the tag exists."""
        if self.mode is Mode.IMMUTABLE:
            return True
        if self.mode is Mode.IMMUTABLE_WITH_EXCLUSION:
            return not self.excluded(tag)
        if self.mode is Mode.MUTABLE_WITH_EXCLUSION:
            return self.excluded(tag)
        return False

    def check_push(self, repository: str, tag: str, current: str | None, digest: str) -> None:
        """Refuse to move ``tag`` from ``current`` (None: the tag is new) to ``digest`` as ECR would.

        Pushing the digest a tag already names changes nothing and is allowed.

        Raises:
            ImmutableTagError: the tag exists with another digest and is immutable.
        """
        if current is not None and current != digest and self.is_immutable(tag):
            raise ImmutableTagError(tag, repository)

    def to_json(self) -> dict[str, object]:
        """ECR's API shape, as ``parse`` reads it."""
        out: dict[str, object] = {"imageTagMutability": self.mode.value}
        if self.exclusions:
            out["imageTagMutabilityExclusionFilters"] = [
                {"filterType": "WILDCARD", "filter": value} for value in self.exclusions
            ]
        return out


def parse(data: object) -> TagMutability:
    """Read ``{"imageTagMutability": …, "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD",
    "filter": …}]}``; a missing ``imageTagMutability`` is ``MUTABLE`` (ECR's default).

    Raises:
        MutabilityError: naming the field (and the filter's index).
    """
    field = "imageTagMutabilityExclusionFilters"
    if not isinstance(data, Mapping):
        raise MutabilityError(f"tag mutability: expected an object with imageTagMutability, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in ("imageTagMutability", field))
    if unknown:
        raise MutabilityError(f"tag mutability: unknown field {unknown[0]!r}")
    mode = data.get("imageTagMutability", Mode.MUTABLE.value)
    if not isinstance(mode, str) or mode not in Mode.__members__:
        raise MutabilityError(f"imageTagMutability: {mode!r} is not one of {', '.join(m.value for m in Mode)}")
    raw = data.get(field)
    filters: list[str] = []
    if raw is not None:
        if not isinstance(raw, list):
            raise MutabilityError(f"{field}: expected a list of filters")
        if not 1 <= len(raw) <= _MAX_FILTERS:
            raise MutabilityError(f"{field}: must contain between 1 and {_MAX_FILTERS} filters, got {len(raw)}")
        for i, item in enumerate(raw):
            where = f"{field}[{i}]"
            if not isinstance(item, Mapping):
                raise MutabilityError(f"{where}: expected an object with filterType and filter")
            extra = sorted(str(k) for k in item if k not in ("filterType", "filter"))
            if extra:
                raise MutabilityError(f"{where}: unknown field {extra[0]!r}")
            if item.get("filterType") != "WILDCARD":
                raise MutabilityError(f"{where}.filterType: must be WILDCARD, got {item.get('filterType')!r}")
            value = item.get("filter")
            if not isinstance(value, str) or not _FILTER.fullmatch(value):
                raise MutabilityError(f"{where}.filter: {value!r} does not match {_FILTER.pattern}")
            filters.append(value)
    return TagMutability(mode=Mode(mode), exclusions=tuple(filters))
