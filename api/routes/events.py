"""Events: what the person did (meals, exercise, insulin, medication, sleep, notes), shown
over the readings in charts and reports."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Response, status
from pydantic import AwareDatetime, BaseModel, Field, model_validator

from algorithms.validation import EARLIEST_TS_S
from api.deps import CallerId, Pool
from api.errors import check_window, error, responses
from api.reporting.events import EventKind, EventOut, event_out
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, Text, Timestamp
from storage import events

router = APIRouter(
    prefix="/v1/profiles/{profile_id}/events", tags=["events"], route_class=StrictJsonRoute
)

ReadableProfile = Annotated[ProfileAccess, Depends(profile_with("readings"))]
ManagedProfile = Annotated[ProfileAccess, Depends(profile_with("manage"))]

EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]
MAX_SPAN = timedelta(hours=48)
MAX_AHEAD = timedelta(days=1)
EARLIEST = datetime.fromtimestamp(EARLIEST_TS_S, UTC)


class MealDetails(RequestModel):
    carbs_g: float | None = Field(
        None, ge=0, le=500, allow_inf_nan=False, description="Carbohydrates, grams", examples=[45]
    )
    description: Text | None = Field(None, max_length=500, examples=["porridge with banana"])


class ExerciseDetails(RequestModel):
    type: Text = Field(min_length=1, max_length=100, examples=["running"])
    duration_min: float = Field(gt=0, le=1440, allow_inf_nan=False, examples=[40])
    intensity: Literal["low", "moderate", "high"] = Field("moderate", examples=["moderate"])


class InsulinDetails(RequestModel):
    units: float = Field(gt=0, le=100, allow_inf_nan=False, examples=[4.5])
    insulin_type: Literal["rapid", "long"] = Field(examples=["rapid"])


class MedicationDetails(RequestModel):
    name: Text = Field(min_length=1, max_length=200, examples=["paracetamol"])
    dose: Text = Field(min_length=1, max_length=100, examples=["500 mg"])


class SleepDetails(RequestModel):
    quality: Literal["poor", "fair", "good"] | None = Field(None, examples=["good"])


class NoteDetails(RequestModel):
    pass


class CustomDetails(RequestModel):
    name: Text = Field(min_length=1, max_length=100, examples=["sauna"])
    value: float | None = Field(None, allow_inf_nan=False, examples=[20])
    unit: Text | None = Field(None, max_length=32, examples=["min"])


class _EventBase(RequestModel):
    ts: Timestamp = Field(
        description="When it happened (start), ISO 8601 with a UTC offset",
        examples=["2026-11-24T07:30:00+01:00"],
    )
    end_ts: Timestamp | None = Field(
        None,
        description="When it ended (sleep, exercise), at most 48 h after `ts`",
        examples=["2026-11-24T08:10:00+01:00"],
    )
    note: Text | None = Field(None, max_length=2000, examples=["felt shaky before"])
    idempotency_key: Text | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="On create: the same key for the same profile returns the stored event"
        " instead of a second one (may also be sent as the `Idempotency-Key` header)."
        " Ignored on edit.",
        examples=["3f1c9a7e-2d4b-4d8e-9a51-7b0c2e6f4a10"],
    )

    @model_validator(mode="after")
    def _times(self):
        now = datetime.now(UTC)
        if self.ts < EARLIEST:
            raise ValueError("ts: must be in 2000 or later")
        if self.ts > now + MAX_AHEAD:
            raise ValueError("ts: must not be more than 1 day in the future")
        if self.end_ts is not None:
            if self.end_ts < self.ts:
                raise ValueError("end_ts: must not be before ts")
            if self.end_ts - self.ts > MAX_SPAN:
                raise ValueError("end_ts: must be at most 48 hours after ts")
        if getattr(self, "kind", None) == "note" and not self.note:
            raise ValueError("note: a note event needs a non-empty 'note'")
        return self


class MealEvent(_EventBase):
    kind: Literal["meal"]
    details: MealDetails = Field(default_factory=MealDetails)


class ExerciseEvent(_EventBase):
    kind: Literal["exercise"]
    details: ExerciseDetails


class InsulinEvent(_EventBase):
    kind: Literal["insulin"]
    details: InsulinDetails


class MedicationEvent(_EventBase):
    kind: Literal["medication"]
    details: MedicationDetails


class SleepEvent(_EventBase):
    kind: Literal["sleep"]
    details: SleepDetails = Field(default_factory=SleepDetails)


class NoteEvent(_EventBase):
    kind: Literal["note"]
    details: NoteDetails = Field(default_factory=NoteDetails)


class CustomEvent(_EventBase):
    kind: Literal["custom"]
    details: CustomDetails


EventBody = Annotated[
    MealEvent
    | ExerciseEvent
    | InsulinEvent
    | MedicationEvent
    | SleepEvent
    | NoteEvent
    | CustomEvent,
    Field(
        discriminator="kind",
        description="An event; `kind` selects which `details` are expected",
        examples=[
            {
                "kind": "meal",
                "ts": "2026-11-24T07:30:00+01:00",
                "details": {"carbs_g": 45, "description": "porridge"},
                "idempotency_key": "3f1c9a7e-2d4b-4d8e-9a51-7b0c2e6f4a10",
            }
        ],
    ),
]


def _store_shape(body: EventBody) -> dict[str, Any]:
    """The stored columns of an event body (keyword arguments of the storage functions)."""
    return {
        "kind": body.kind,
        "ts": body.ts,
        "end_ts": body.end_ts,
        "details": body.details.model_dump(exclude_none=True),
        "note": body.note,
    }


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=EventOut,
    summary="Record an event (idempotent with a key)",
    responses={
        200: {"model": EventOut, "description": "Replayed: the event stored under this key"},
        **responses(401, 403, 404, 422),
    },
)
async def create_event(
    body: EventBody,
    found: ManagedProfile,
    user_id: CallerId,
    pool: Pool,
    response: Response,
    idempotency_key: Annotated[
        Text | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[ -~]+$",  # a structured-field string: printable ASCII
            description="Makes a retried create return the first event instead of a new one",
        ),
    ] = None,
) -> EventOut:
    """Stores an event (201). When an `Idempotency-Key` (header or body field) was already
    used for this profile, answers 200 with the event stored the first time."""
    key = body.idempotency_key
    if idempotency_key is not None:
        if key is not None and key != idempotency_key:
            raise error(422, "the Idempotency-Key header and body idempotency_key differ")
        key = idempotency_key
    row, created = await events.create_event(
        pool, found.profile_id, user_id, **_store_shape(body), idempotency_key=key
    )
    if not created:
        response.status_code = status.HTTP_200_OK
        response.headers["Idempotent-Replayed"] = "true"
    return event_out(row)


@router.get(
    "",
    response_model=list[EventOut],
    summary="List events in a time window",
    responses=responses(401, 403, 404, 422),
)
async def list_events(
    found: ReadableProfile,
    pool: Pool,
    start: Annotated[AwareDatetime | None, Query(description="Inclusive lower bound")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Exclusive upper bound")] = None,
    kind: Annotated[list[EventKind] | None, Query(description="Only these kinds")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[EventOut]:
    check_window(start, end)
    rows = await events.list_events(pool, found.profile_id, start, end, kind, limit)
    return [event_out(r) for r in rows]


@router.get(
    "/{event_id}",
    response_model=EventOut,
    summary="Get one event",
    responses=responses(401, 403, 404),
)
async def get_event(event_id: uuid.UUID, found: ReadableProfile, pool: Pool) -> EventOut:
    row = await events.get_event(pool, found.profile_id, event_id)
    if row is None:
        raise error(404, "event not found")
    return event_out(row)


@router.put(
    "/{event_id}",
    response_model=EventOut,
    summary="Edit an event (replaces its kind, times, details and note)",
    responses=responses(401, 403, 404, 422),
)
async def edit_event(
    event_id: uuid.UUID, body: EventBody, found: ManagedProfile, pool: Pool
) -> EventOut:
    row = await events.update_event(pool, found.profile_id, event_id, **_store_shape(body))
    if row is None:
        raise error(404, "event not found")
    return event_out(row)


class EventDeleted(BaseModel):
    deleted: bool = Field(examples=[True])


@router.delete(
    "/{event_id}",
    response_model=EventDeleted,
    summary="Delete an event",
    responses=responses(401, 403, 404),
)
async def delete_event(event_id: uuid.UUID, found: ManagedProfile, pool: Pool) -> EventDeleted:
    if not await events.delete_event(pool, found.profile_id, event_id):
        raise error(404, "event not found")
    return EventDeleted(deleted=True)
