"""Label selectors: structured and string forms, one matching rule."""

from __future__ import annotations

from typing import Any

import pytest

from funade.core import objects, selectors
from funade.core.selectors import Operator, Requirement

pytestmark = pytest.mark.unit

LABELS = {"app": "web", "tier": "front", "track": "stable"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({}, True),
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "web", "tier": "back"}}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["front", "x"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, False),
        ({"matchExpressions": [{"key": "nope", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "canary", "operator": "DoesNotExist"}]}, True),
        (
            {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "track", "operator": "In", "values": ["canary"]}],
            },
            False,
        ),
    ],
)
def test_matches_structured(selector: dict[str, Any], expected: bool) -> None:
    assert selectors.matches(selector, LABELS) is expected


def test_none_selects_nothing_and_typed_models_work() -> None:
    assert selectors.matches(None, LABELS) is False
    model = objects.LabelSelector.model_validate({"matchLabels": {"app": "web"}})
    assert selectors.matches(model, LABELS)
    assert model.matches(LABELS)
    assert not model.matches({"app": "api"})
    assert objects.LabelSelector().matches({})


def test_invalid_structured_selector() -> None:
    with pytest.raises(ValueError, match="not a valid label selector operator"):
        selectors.matches({"matchExpressions": [{"key": "a", "operator": "Gt"}]}, {})
    with pytest.raises(ValueError, match="values set can't be empty"):
        selectors.matches({"matchExpressions": [{"key": "a", "operator": "In"}]}, {})


@pytest.mark.parametrize(
    ("text", "requirements"),
    [
        ("", ()),
        ("a=b", (Requirement("a", Operator.EQUALS, ("b",)),)),
        ("a==b", (Requirement("a", Operator.EQUALS, ("b",)),)),
        ("a!=b", (Requirement("a", Operator.NOT_EQUALS, ("b",)),)),
        ("a in (x,y)", (Requirement("a", Operator.IN, ("x", "y")),)),
        ("a notin (x)", (Requirement("a", Operator.NOT_IN, ("x",)),)),
        ("a", (Requirement("a", Operator.EXISTS),)),
        ("!a", (Requirement("a", Operator.DOES_NOT_EXIST),)),
        ("a=", (Requirement("a", Operator.EQUALS, ("",)),)),
        ("a>1", (Requirement("a", Operator.GREATER_THAN, ("1",)),)),
        (
            " z = 1 , app.kubernetes.io/name in ( web , api ) , !canary ",
            (
                Requirement("app.kubernetes.io/name", Operator.IN, ("api", "web")),
                Requirement("canary", Operator.DOES_NOT_EXIST),
                Requirement("z", Operator.EQUALS, ("1",)),
            ),
        ),
    ],
)
def test_parse_selector(text: str, requirements: tuple[Requirement, ...]) -> None:
    assert selectors.parse_selector(text).requirements == requirements


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app=web", True),
        ("app==web,tier=front", True),
        ("app!=web", False),
        ("missing!=x", True),
        ("tier in (front,back)", True),
        ("tier notin (front)", False),
        ("track", True),
        ("!track", False),
        ("!canary", True),
        ("app=web,canary", False),
    ],
)
def test_parsed_selector_is_a_predicate(text: str, expected: bool) -> None:
    predicate = selectors.parse_selector(text)
    assert predicate(LABELS) is expected


def test_gt_lt() -> None:
    assert selectors.parse_selector("n>3")({"n": "4"})
    assert not selectors.parse_selector("n>3")({"n": "3"})
    assert selectors.parse_selector("n<3")({"n": "-1"})
    assert not selectors.parse_selector("n<3")({"n": "x"})


@pytest.mark.parametrize(
    "text",
    [
        "a in ()",
        "a in (x",
        "a in x",
        "a b",
        "=b",
        "a=b,",
        ",a",
        "!",
        "a=b=c",
        "Bad Key=x",
        "a=bad value!",
        "a=-x",
        "a>x",
        "a in (x y)",
    ],
)
def test_parse_selector_errors(text: str) -> None:
    with pytest.raises(ValueError, match="unable to parse requirement"):
        selectors.parse_selector(text)


def test_selector_string_round_trips() -> None:
    selector = {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
        ],
    }
    text = selectors.selector_string(selector)
    assert text == "app=web,!canary,env notin (dev),team,tier in (back,front)"
    assert selectors.parse_selector(text) == selectors.from_label_selector(selector)
    assert selectors.selector_string({}) == ""
    assert selectors.selector_string(None) == ""
    model = objects.LabelSelector.model_validate({"matchLabels": {"app": "web"}})
    assert str(model) == "app=web"


def test_label_key_and_value_rules() -> None:
    assert selectors.label_key_error("app.kubernetes.io/name") is None
    assert selectors.label_key_error("a" * 63) is None
    assert selectors.label_key_error("a" * 64) is not None
    assert selectors.label_key_error("Example.com/x") is not None
    assert selectors.label_key_error("/x") is not None
    assert selectors.label_key_error("-x") is not None
    assert selectors.label_value_error("") is None
    assert selectors.label_value_error("v1.2_3-x") is None
    assert selectors.label_value_error("has space") is not None
