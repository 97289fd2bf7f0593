"""ECR tag mutability: the four modes, WILDCARD exclusion filters and the error a push gets.

Facts: ECR API PutImageTagMutability / ImageTagMutabilityExclusionFilter (1–5 filters,
filterType WILDCARD, filter ``^[0-9a-zA-Z._*-]{1,128}$``) and the
ImageTagAlreadyExistsException message Docker prints on a refused push.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from funade.core import immutability
from funade.core.immutability import ImmutableTagError, Mode, MutabilityError, TagMutability

pytestmark = pytest.mark.unit


def wildcard(*filters: str) -> list[dict[str, str]]:
    return [{"filterType": "WILDCARD", "filter": f} for f in filters]


def test_modes_without_filters() -> None:
    assert not immutability.parse({"imageTagMutability": "MUTABLE"}).is_immutable("v1.0.0")
    assert immutability.parse({"imageTagMutability": "IMMUTABLE"}).is_immutable("latest")
    assert immutability.parse({}) == TagMutability(Mode.MUTABLE)  # ECR's default


def test_immutable_with_exclusion_lets_matching_tags_move() -> None:
    setting = immutability.parse(
        {
            "imageTagMutability": "IMMUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": wildcard("latest", "dev-*"),
        }
    )
    assert setting.exclusions == ("latest", "dev-*")
    assert setting.is_immutable("v1.0.0")
    assert not setting.is_immutable("latest")
    assert not setting.is_immutable("dev-42")
    assert not setting.is_immutable("dev-")  # * matches nothing too
    assert setting.is_immutable("xdev-42")  # a filter matches the whole tag
    assert setting.is_immutable("latest2")


def test_mutable_with_exclusion_pins_matching_tags() -> None:
    setting = immutability.parse(
        {
            "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
            "imageTagMutabilityExclusionFilters": wildcard("v*.*.*", "prod"),
        }
    )
    assert setting.is_immutable("v1.2.3")
    assert setting.is_immutable("prod")
    assert not setting.is_immutable("v1")
    assert not setting.is_immutable("latest")
    assert not setting.is_immutable("production")


def test_wildcard_dots_are_literal() -> None:
    setting = TagMutability(Mode.MUTABLE_WITH_EXCLUSION, ("v1.0",))
    assert setting.is_immutable("v1.0")
    assert not setting.is_immutable("v1x0")
    assert TagMutability(Mode.IMMUTABLE_WITH_EXCLUSION, ("*",)).is_immutable("anything") is False


def test_to_json_round_trips() -> None:
    for data in (
        {"imageTagMutability": "MUTABLE"},
        {"imageTagMutability": "IMMUTABLE"},
        {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard("latest")},
        {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard("a", "b*")},
    ):
        assert immutability.parse(data).to_json() == data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["IMMUTABLE"], "tag mutability: expected an object with imageTagMutability, got list"),
        ({"imageTagMutability": "immutable"}, "imageTagMutability: 'immutable' is not one of MUTABLE, IMMUTABLE,"),
        ({"imageTagMutability": None}, "imageTagMutability: None is not one of"),
        ({"imageTagMutability": "MUTABLE", "scanOnPush": True}, "tag mutability: unknown field 'scanOnPush'"),
        (
            {"imageTagMutability": "IMMUTABLE_WITH_EXCLUSION"},
            "imageTagMutabilityExclusionFilters: required when imageTagMutability is IMMUTABLE_WITH_EXCLUSION",
        ),
        (
            {"imageTagMutability": "IMMUTABLE", "imageTagMutabilityExclusionFilters": wildcard("latest")},
            "imageTagMutabilityExclusionFilters: only allowed when imageTagMutability is IMMUTABLE_WITH_EXCLUSION or "
            "MUTABLE_WITH_EXCLUSION, not IMMUTABLE",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": []},
            "imageTagMutabilityExclusionFilters: must contain between 1 and 5 filters, got 0",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard(*"abcdef")},
            "imageTagMutabilityExclusionFilters: must contain between 1 and 5 filters, got 6",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": "latest"},
            "imageTagMutabilityExclusionFilters: expected a list of filters",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": ["latest"]},
            "imageTagMutabilityExclusionFilters[0]: expected an object with filterType and filter",
        ),
        (
            {
                "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [*wildcard("ok"), {"filterType": "REGEX", "filter": "v.*"}],
            },
            "imageTagMutabilityExclusionFilters[1].filterType: must be WILDCARD, got 'REGEX'",
        ),
        (
            {
                "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD", "filter": "v1", "note": "x"}],
            },
            "imageTagMutabilityExclusionFilters[0]: unknown field 'note'",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard("a b")},
            "imageTagMutabilityExclusionFilters[0].filter: 'a b' does not match ^[0-9a-zA-Z._*-]{1,128}$",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard("")},
            "imageTagMutabilityExclusionFilters[0].filter: '' does not match",
        ),
        (
            {"imageTagMutability": "MUTABLE_WITH_EXCLUSION", "imageTagMutabilityExclusionFilters": wildcard("v" * 129)},
            "imageTagMutabilityExclusionFilters[0].filter: 'vvvv",
        ),
        (
            {
                "imageTagMutability": "MUTABLE_WITH_EXCLUSION",
                "imageTagMutabilityExclusionFilters": [{"filterType": "WILDCARD"}],
            },
            "imageTagMutabilityExclusionFilters[0].filter: None does not match",
        ),
    ],
)
def test_parse_errors_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(MutabilityError) as caught:
        immutability.parse(data)
    assert message in str(caught.value)


def test_filter_limits_accept_the_edges() -> None:
    longest = "v" * 128
    setting = TagMutability(Mode.MUTABLE_WITH_EXCLUSION, (longest, "a", "b", "c", "release-*.*"))
    assert setting.is_immutable(longest)
    assert setting.is_immutable("release-1.2")


def test_the_constructor_validates_too() -> None:
    with pytest.raises(MutabilityError, match="only allowed when"):
        TagMutability(Mode.MUTABLE, ("latest",))
    with pytest.raises(MutabilityError, match="required when imageTagMutability is MUTABLE_WITH_EXCLUSION"):
        TagMutability(Mode.MUTABLE_WITH_EXCLUSION)
    with pytest.raises(MutabilityError, match=r"\[2\]\.filter: 'a/b' does not match"):
        TagMutability(Mode.IMMUTABLE_WITH_EXCLUSION, ("a", "b", "a/b"))
    with pytest.raises(MutabilityError, match="'SOMETIMES' is not one of"):
        TagMutability("SOMETIMES")  # type: ignore[arg-type]
    from_strings = TagMutability("IMMUTABLE_WITH_EXCLUSION", ["latest"])  # type: ignore[arg-type]
    assert from_strings.mode is Mode.IMMUTABLE_WITH_EXCLUSION
    assert from_strings.exclusions == ("latest",)


def test_immutable_tag_error_uses_ecr_wording() -> None:
    error = ImmutableTagError("v1.0.0", "shop/web")
    assert str(error) == (
        "The image tag 'v1.0.0' already exists in the 'shop/web' repository and cannot be overwritten because the "
        "repository is immutable."
    )
    assert (error.tag, error.repository, error.code) == ("v1.0.0", "shop/web", "ImageTagAlreadyExistsException")


def test_check_push() -> None:
    setting = TagMutability(Mode.IMMUTABLE_WITH_EXCLUSION, ("latest",))
    setting.check_push("shop/web", "v1.0.0", None, "sha256:new")  # a new tag
    setting.check_push("shop/web", "v1.0.0", "sha256:same", "sha256:same")  # the same image again
    setting.check_push("shop/web", "latest", "sha256:old", "sha256:new")  # excluded: may move
    with pytest.raises(
        ImmutableTagError, match=re.escape("The image tag 'v1.0.0' already exists in the 'shop/web' repository")
    ):
        setting.check_push("shop/web", "v1.0.0", "sha256:old", "sha256:new")
    TagMutability().check_push("shop/web", "v1.0.0", "sha256:old", "sha256:new")
