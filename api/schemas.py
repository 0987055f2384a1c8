"""The base of every request body and the text type every free-text field uses.

Closed and strict: an unknown or misspelt field is a 422 naming it (a typo in an alert limit
must never be silently ignored), and nothing is coerced (``"120"`` is not a number, ``true``
is not 1 s). Text refuses what PostgreSQL cannot store (NUL) and what is not valid Unicode
(a lone UTF-16 surrogate), so both are a 422 instead of a 500.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class RequestModel(BaseModel):
    """Base of every request body: unknown fields forbidden, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


def clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must not contain unpaired UTF-16 surrogates")
    return value


Text = Annotated[str, AfterValidator(clean_text)]
