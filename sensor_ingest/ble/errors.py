"""The one error a codec raises: bad bytes, with the characteristic and the field they broke.

The gateway catches exactly this type, counts it and goes on; anything else escaping a
codec is a bug (the fuzz tests hold the codecs to that).
"""

from __future__ import annotations


class DecodeError(ValueError):
    """``characteristic``'s bytes are not valid at ``field`` (e.g. ``"size"``, ``"e2e_crc"``)."""

    def __init__(self, characteristic: str, field: str, message: str) -> None:
        super().__init__(f"{characteristic}.{field}: {message}")
        self.characteristic = characteristic
        self.field = field
        self.message = message
