"""IEEE-11073 SFLOAT (16-bit) and FLOAT (32-bit): a signed mantissa times ten to a signed
exponent, with reserved bit patterns for NaN, NRes (not at this resolution) and ±infinity.

A special value decodes to a :class:`Special`, never to a number, so it cannot end up
stored as a reading; the reserved pattern is a decode error.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from sensor_ingest.ble.errors import DecodeError


class Special(enum.Enum):
    """A measurement that is not a number."""

    NAN = "NaN"
    NRES = "NRes"
    POSITIVE_INFINITY = "+INF"
    NEGATIVE_INFINITY = "-INF"


Medical = float | Special
"""A decoded SFLOAT/FLOAT: a finite number or a special value."""


@dataclass(frozen=True, slots=True)
class _Format:
    name: str
    mantissa_bits: int
    exponent_bits: int

    @property
    def mantissa_max(self) -> int:
        """Largest ordinary mantissa (the top 5 positive patterns near 2^(m-1) are special)."""
        return (1 << (self.mantissa_bits - 1)) - 3

    @property
    def specials(self) -> dict[int, Special | None]:
        """Raw mantissa (exponent 0) of each special; None marks the reserved pattern."""
        top = 1 << (self.mantissa_bits - 1)
        return {
            top - 1: Special.NAN,
            top: Special.NRES,
            top - 2: Special.POSITIVE_INFINITY,
            top + 2: Special.NEGATIVE_INFINITY,
            top + 1: None,
        }


SFLOAT = _Format("SFLOAT", 12, 4)
FLOAT = _Format("FLOAT", 24, 8)


def _signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value & (1 << (bits - 1)) else value


def _decode(fmt: _Format, raw: int, characteristic: str, field: str) -> Medical:
    raw_mantissa = raw & ((1 << fmt.mantissa_bits) - 1)
    raw_exponent = raw >> fmt.mantissa_bits
    if raw_exponent == 0 and raw_mantissa in fmt.specials:
        special = fmt.specials[raw_mantissa]
        if special is None:
            raise DecodeError(characteristic, field, f"reserved {fmt.name} value 0x{raw:X}")
        return special
    mantissa = _signed(raw_mantissa, fmt.mantissa_bits)
    exponent = _signed(raw_exponent, fmt.exponent_bits)
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    return mantissa / 10**-exponent


def decode_sfloat(raw: int, characteristic: str = "SFLOAT", field: str = "value") -> Medical:
    """The value of a 16-bit SFLOAT given as an unsigned integer (``0x100C`` → 120.0)."""
    return _decode(SFLOAT, raw, characteristic, field)


def decode_float(raw: int, characteristic: str = "FLOAT", field: str = "value") -> Medical:
    """The value of a 32-bit FLOAT given as an unsigned integer (``0xFE000EB0`` → 37.6)."""
    return _decode(FLOAT, raw, characteristic, field)


def _raw_special(fmt: _Format, special: Special) -> int:
    return next(raw for raw, s in fmt.specials.items() if s is special)


def _encode(fmt: _Format, value: Medical, decimals: int) -> int:
    if isinstance(value, Special):
        return _raw_special(fmt, value)
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not finite; pass a Special")
    exponent = -decimals
    mantissa = round(value * 10**decimals)
    while abs(mantissa) > fmt.mantissa_max:
        exponent += 1
        mantissa = round(value / 10**exponent) if exponent > 0 else round(value * 10**-exponent)
    while mantissa and mantissa % 10 == 0 and exponent < 0:  # shortest form: 80, not 800e-1
        mantissa //= 10
        exponent += 1
    exp_max = (1 << (fmt.exponent_bits - 1)) - 1
    if not -exp_max - 1 <= exponent <= exp_max:
        raise ValueError(f"{value!r} does not fit a {fmt.name}")
    return encode_parts(fmt, mantissa, exponent)


def encode_parts(fmt: _Format, mantissa: int, exponent: int) -> int:
    """The raw pattern of ``mantissa x 10^exponent`` (both must fit the format)."""
    m_mask = (1 << fmt.mantissa_bits) - 1
    e_mask = (1 << fmt.exponent_bits) - 1
    return ((exponent & e_mask) << fmt.mantissa_bits) | (mantissa & m_mask)


def encode_sfloat(value: Medical, decimals: int = 0) -> int:
    """``value`` as an SFLOAT with ``decimals`` decimal places (fewer if it does not fit)."""
    return _encode(SFLOAT, value, decimals)


def encode_float(value: Medical, decimals: int = 2) -> int:
    """``value`` as a FLOAT with ``decimals`` decimal places (fewer if it does not fit)."""
    return _encode(FLOAT, value, decimals)
