"""Kubernetes IntOrString values: absolute counts or percentages of a total.

Rolling updates (``maxSurge``, ``maxUnavailable``), PodDisruptionBudgets and canary
steps all take "an int or a percent string". This module holds the one place that
turns such a value into a count, rounding exactly as Kubernetes'
``intstr.GetScaledValueFromIntOrPercent`` does, so the rollout arithmetic agrees with
a real cluster.
"""

from __future__ import annotations

import re

__all__ = ["IntOrString", "is_percent", "parse_percent", "scaled_value", "validate"]

IntOrString = int | str
"""An absolute count (``3``) or a percentage string (``"25%"``)."""

_PERCENT = re.compile(r"^[0-9]+%$")


def is_percent(value: IntOrString) -> bool:
    """Tell whether ``value`` is a well-formed percent string such as ``"25%"``."""
    return isinstance(value, str) and _PERCENT.fullmatch(value) is not None


def parse_percent(value: str) -> int:
    """Return the number in a percent string (``"25%"`` → 25).

    Raises:
        ValueError: ``value`` is not digits followed by ``%``.
    """
    if not is_percent(value):
        raise ValueError(
            f"invalid value {value!r}: a valid percent string must be a numeric string "
            "followed by an ending '%' (e.g. '25%')"
        )
    return int(value[:-1])


def validate(value: object) -> IntOrString:
    """Check that ``value`` is a non-negative int or a percent string and return it.

    This mirrors the API server's ``ValidatePositiveIntOrPercent``.

    Raises:
        ValueError: for booleans, negative ints, non-percent strings and other types.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid value {value!r}: must be an integer or a percent string")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid value {value}: must be greater than or equal to 0")
        return value
    parse_percent(value)
    return value


def scaled_value(value: IntOrString, total: int, round_up: bool) -> int:
    """Resolve ``value`` against ``total``.

    An int is returned unchanged; a percentage is applied to ``total`` and rounded up
    or down.

    Args:
        value: an int or a percent string such as ``"25%"``.
        total: the count the percentage refers to (e.g. the desired replicas).
        round_up: round a fractional result up (``maxSurge``) rather than down
            (``maxUnavailable``).

    Returns:
        The absolute count: ``scaled_value("25%", 10, True) == 3``,
        ``scaled_value("25%", 10, False) == 2``.

    Raises:
        ValueError: ``value`` is neither an int nor a percent string.
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"invalid value for IntOrString: {value!r}")
    if isinstance(value, int):
        return value
    try:
        percent = parse_percent(value)
    except ValueError as exc:
        raise ValueError(f"invalid value for IntOrString: {exc}") from None
    product = percent * total
    # Integer arithmetic: exact where Kubernetes' float64 maths is exact, and no
    # surprises such as ceil(0.29 * 100) == 29.000000000000004 → 30.
    return -(-product // 100) if round_up else product // 100
