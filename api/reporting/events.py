"""An event (meal, insulin, exercise, ...) as every surface shows it: the events routes,
charts, the clinical report and the batch report jobs. No routes here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

EventKind = Literal["meal", "exercise", "insulin", "medication", "sleep", "note", "custom"]


class EventOut(BaseModel):
    id: uuid.UUID
    profile_id: uuid.UUID
    kind: EventKind = Field(examples=["meal"])
    ts: datetime
    end_ts: datetime | None
    details: dict[str, Any] = Field(examples=[{"carbs_g": 45, "description": "porridge"}])
    note: str | None = Field(examples=[None])
    created_at: datetime
    updated_at: datetime


def event_out(row: dict[str, Any]) -> EventOut:
    return EventOut(**{k: row[k] for k in EventOut.model_fields})
