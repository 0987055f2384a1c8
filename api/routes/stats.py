"""Statistics: the consensus glucose metrics (and temperature statistics) of a period and of
the previous period of the same length, with the change between them.

The conversions from the algorithms' dataclasses to response models live in
:mod:`api.reporting.sections`, shared with the report and the batch report jobs, so every
surface shows the same numbers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import Pool
from api.errors import responses
from api.reporting.sections import (
    GlucoseSection,
    TemperatureSection,
    load_series,
    period_bounds,
    sections,
)
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import StrictJsonRoute
from storage import profiles

router = APIRouter(
    prefix="/v1/profiles/{profile_id}", tags=["statistics"], route_class=StrictJsonRoute
)
ReadableProfile = Annotated[ProfileAccess, Depends(profile_with("readings"))]

PERIODS = {"24h": 1, "7d": 7, "14d": 14, "15d": 15, "30d": 30, "90d": 90}
StatsPeriod = Literal["24h", "7d", "14d", "15d", "30d", "90d"]


class Stats(BaseModel):
    profile_id: uuid.UUID
    period: StatsPeriod = Field(examples=["14d"])
    start: datetime = Field(description="Start of the period (inclusive)")
    end: datetime = Field(description="End of the period (exclusive)")
    glucose: GlucoseSection | None = Field(description="Null without a glucose device")
    temperature: TemperatureSection | None = Field(description="Null without a temperature device")


@router.get(
    "/stats",
    response_model=Stats,
    summary="Consensus statistics of a period, compared with the previous period",
    responses=responses(401, 403, 404, 422),
)
async def stats(
    found: ReadableProfile,
    pool: Pool,
    period: Annotated[StatsPeriod, Query(description="Length of the period")] = "14d",
    end: Annotated[
        AwareDatetime | None, Query(description="End of the period (exclusive); default now")
    ] = None,
    device_id: Annotated[
        uuid.UUID | None, Query(description="Only this device; default every device")
    ] = None,
) -> Stats:
    """Glucose: time in ranges, mean, SD, CV, GMI, data sufficiency and hypo-/hyperglycaemia
    episodes by the 2019 international consensus, and the variability and risk metrics (GRI,
    MAGE, CONGA, MODD, LBGI, HBGI, ADRR, J-index, MAD, IQR, eA1c; days in the profile's time
    zone); temperature: min, max, mean, time in fever and fever episodes. `previous` is the
    period of the same length just before; `change` is current minus previous."""
    start, end = period_bounds(PERIODS[period], end)
    loaded = await load_series(pool, found.profile_id, start - (end - start), end, device_id)
    row = await profiles.get_profile(pool, found.profile_id)
    tz = row["timezone"] if row is not None else "UTC"
    # numpy over up to twice the period's readings: off the event loop.
    computed = await run_in_threadpool(sections, loaded, start.timestamp(), end.timestamp(), tz)
    return Stats(profile_id=found.profile_id, period=period, start=start, end=end, **computed)
