"""IntOrString scaling must round exactly as Kubernetes' rolling-update maths does."""

from __future__ import annotations

import pytest

from funade.core import intstr

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "total", "round_up", "expected"),
    [
        ("25%", 10, True, 3),
        ("25%", 10, False, 2),
        ("25%", 4, True, 1),
        ("25%", 4, False, 1),
        ("0%", 10, True, 0),
        ("100%", 7, False, 7),
        ("150%", 2, True, 3),
        ("29%", 100, True, 29),  # float maths would give 29.000000000000004 → 30
        ("33%", 1, True, 1),
        ("33%", 1, False, 0),
        ("10%", 0, True, 0),
        (3, 10, True, 3),
        (0, 10, False, 0),
        (5, 2, False, 5),
    ],
)
def test_scaled_value(value: int | str, total: int, round_up: bool, expected: int) -> None:
    assert intstr.scaled_value(value, total, round_up) == expected


@pytest.mark.parametrize("value", ["25", "abc", "%", "25 %", "-5%", "2.5%", ""])
def test_scaled_value_rejects_malformed_strings(value: str) -> None:
    with pytest.raises(ValueError, match="invalid value for IntOrString"):
        intstr.scaled_value(value, 10, True)


@pytest.mark.parametrize("value", [True, 1.5, None, [1]])
def test_scaled_value_rejects_other_types(value: object) -> None:
    with pytest.raises(ValueError, match="invalid value for IntOrString"):
        intstr.scaled_value(value, 10, True)  # type: ignore[arg-type]


def test_validate_and_percent_helpers() -> None:
    assert intstr.validate(0) == 0
    assert intstr.validate("25%") == "25%"
    assert intstr.is_percent("25%")
    assert not intstr.is_percent(25)
    assert intstr.parse_percent("40%") == 40
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        intstr.validate(-1)
    with pytest.raises(ValueError, match="percent string"):
        intstr.validate("5")
    with pytest.raises(ValueError, match="integer or a percent"):
        intstr.validate(False)
