"""Error bodies: one shape for every 4xx/5xx, matching FastAPI's own 422 ``detail`` list."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from pydantic import BaseModel, Field


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "readings", 3, "value"]])
    msg: str = Field(examples=["700 mg/dL is outside the glucose sensor range 20-600 mg/dL"])
    type: str = Field(examples=["value_error"])


class ErrorBody(BaseModel):
    detail: str | list[ErrorItem] = Field(examples=["device not found"])


def error(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error codes a route can answer."""
    text = {
        401: "Missing, invalid or expired bearer token",
        404: "Not found, or not yours",
        409: "Conflicts with what is stored",
        413: "Batch too large",
        422: "Invalid input; `detail` names each offending field",
        503: "Temporarily unavailable; retry after the `Retry-After` seconds",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}
