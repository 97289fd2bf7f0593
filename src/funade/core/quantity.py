"""Kubernetes resource quantities (``500m``, ``1.5``, ``512Mi``, ``1e3``).

Container resources are written as quantities and the local target has to turn them
into Docker's units (CPU nano-cores, memory bytes). The grammar and the rounding are
those of ``k8s.io/apimachinery/pkg/api/resource``:

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | <sign><number>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

Values are exact :class:`~decimal.Decimal` numbers; conversions to integers round up,
as ``Quantity.Value()`` and ``Quantity.MilliValue()`` do.
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

__all__ = ["cpu_millis", "cpu_nanos", "is_quantity", "memory_bytes", "parse_quantity"]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}
# The exponent alternative comes before the bare "E" (exa) suffix so that "1E3" is 1000.
_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[numkMGTPE]?)"
)
# Far beyond any real resource, small enough that Decimal arithmetic stays exact.
_MAX_EXPONENT = 1000
_CONTEXT = decimal.Context(prec=200, Emax=10 * _MAX_EXPONENT, Emin=-10 * _MAX_EXPONENT)


def parse_quantity(value: str | int | float) -> Decimal:
    """Parse a quantity into an exact number in base units.

    Args:
        value: a quantity string such as ``"500m"``, ``"1.5Gi"``, ``"-1e3"``, or a
            number as YAML gives it for unquoted values (``2``, ``0.5``).

    Returns:
        The value in base units: ``parse_quantity("500m") == Decimal("0.5")``.

    Raises:
        ValueError: the value does not follow the quantity grammar.
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid quantity {value!r}: expected a string or a number")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"invalid quantity {value!r}: must be a finite number")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"invalid quantity {value!r}: expected a string or a number")
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(
            f"invalid quantity {value!r}: quantities must match the regular expression "
            r"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$' (e.g. 500m, 1.5, 512Mi, 1G)"
        )
    number = Decimal(match["number"])
    suffix = match["suffix"]
    if suffix in _BINARY:
        return _CONTEXT.multiply(number, Decimal(_BINARY[suffix]))
    if suffix in _DECIMAL:
        return _CONTEXT.multiply(number, _DECIMAL[suffix])
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise ValueError(f"invalid quantity {value!r}: exponent out of range")
    return _CONTEXT.multiply(number, Decimal(1).scaleb(exponent, _CONTEXT))


def is_quantity(value: object) -> bool:
    """Tell whether ``value`` is a valid quantity (string or number)."""
    if not isinstance(value, str | int | float):
        return False
    try:
        parse_quantity(value)
    except ValueError:
        return False
    return True


def _ceil(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=decimal.ROUND_CEILING))


def cpu_millis(value: str | int | float) -> int:
    """Convert a CPU quantity to millicores, rounding up (``"500m"`` → 500, ``2`` → 2000)."""
    return _ceil(_CONTEXT.multiply(parse_quantity(value), Decimal(1000)))


def cpu_nanos(value: str | int | float) -> int:
    """Convert a CPU quantity to nano-cores, rounding up (Docker's ``NanoCpus``)."""
    return _ceil(_CONTEXT.multiply(parse_quantity(value), Decimal(10**9)))


def memory_bytes(value: str | int | float) -> int:
    """Convert a memory or storage quantity to bytes, rounding up.

    ``"512Mi"`` → 536870912, ``"1G"`` → 1000000000, ``"1.5Ki"`` → 1536.
    """
    return _ceil(parse_quantity(value))
