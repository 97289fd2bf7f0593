"""Resource quantities follow apimachinery's grammar and round up like it does."""

from __future__ import annotations

from decimal import Decimal

import pytest

from funade.core import quantity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0"),
        ("1", "1"),
        ("1.5", "1.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("+2", "2"),
        ("-2", "-2"),
        ("500m", "0.5"),
        ("250u", "0.00025"),
        ("3n", "0.000000003"),
        ("1k", "1000"),
        ("1M", "1000000"),
        ("1G", "1000000000"),
        ("1T", "1e12"),
        ("1P", "1e15"),
        ("1E", "1e18"),
        ("1Ki", "1024"),
        ("1Mi", "1048576"),
        ("1Gi", "1073741824"),
        ("1Ti", str(2**40)),
        ("1Pi", str(2**50)),
        ("1Ei", str(2**60)),
        ("1.5Gi", "1610612736"),
        ("1e3", "1000"),
        ("1E3", "1000"),
        ("1e-3", "0.001"),
        ("1.5e+2", "150"),
        ("-1e3", "-1000"),
    ],
)
def test_parse_quantity(text: str, expected: str) -> None:
    assert quantity.parse_quantity(text) == Decimal(expected)


def test_parse_numbers_as_yaml_gives_them() -> None:
    assert quantity.parse_quantity(2) == 2
    assert quantity.parse_quantity(0.5) == Decimal("0.5")


@pytest.mark.parametrize(
    "text",
    ["", " 1", "1 ", "1Kb", "1ki", "1KiB", "m", "1e", "1e1.5", "1.2.3", "--1", "1mm", "abc", "1i"],
)
def test_invalid_quantities(text: str) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        quantity.parse_quantity(text)
    assert not quantity.is_quantity(text)


@pytest.mark.parametrize("value", [True, None, float("nan"), float("inf"), [1]])
def test_invalid_types(value: object) -> None:
    with pytest.raises(ValueError, match="invalid quantity"):
        quantity.parse_quantity(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "millis"),
    [
        ("500m", 500),
        ("1.5", 1500),
        (2, 2000),
        (0.25, 250),
        ("100m", 100),
        ("1", 1000),
        ("0.0001", 1),
        ("1e-3", 1),
        ("2k", 2_000_000),
    ],
)
def test_cpu_millis(value: str | int | float, millis: int) -> None:
    assert quantity.cpu_millis(value) == millis


def test_cpu_nanos() -> None:
    assert quantity.cpu_nanos("500m") == 500_000_000
    assert quantity.cpu_nanos(1) == 1_000_000_000


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("512Mi", 536_870_912),
        ("1G", 10**9),
        ("128Mi", 134_217_728),
        ("1.5Ki", 1536),
        ("1e3", 1000),
        (1024, 1024),
        ("0.5", 1),  # rounds up, like Quantity.Value()
        ("100M", 100_000_000),
    ],
)
def test_memory_bytes(value: str | int, size: int) -> None:
    assert quantity.memory_bytes(value) == size


def test_huge_exponents_are_rejected_not_hung() -> None:
    with pytest.raises(ValueError, match="exponent out of range"):
        quantity.parse_quantity("1e99999999")
