"""Charts: a profile's readings over a window, downsampled server-side into time buckets
(min / mean / max / count per bucket) with the events of the window overlaid."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime, BaseModel, Field

from algorithms.sensors import spec_for
from api.deps import Pool
from api.errors import responses
from api.reporting.events import EventOut, event_out
from api.reporting.sections import selected_devices, utc, window_end
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import StrictJsonRoute
from storage import events, history

router = APIRouter(prefix="/v1/profiles/{profile_id}", tags=["charts"], route_class=StrictJsonRoute)
ReadableProfile = Annotated[ProfileAccess, Depends(profile_with("readings"))]

MAX_POINTS = 1000
WINDOWS = {
    "12h": 12 * 3600,
    "24h": 86400,
    "3d": 3 * 86400,
    "7d": 7 * 86400,
    "14d": 14 * 86400,
    "30d": 30 * 86400,
    "90d": 90 * 86400,
}
ChartWindow = Literal["12h", "24h", "3d", "7d", "14d", "30d", "90d"]
# Bucket sizes (seconds) a chart may use; all divide a day, so buckets align to midnight UTC.
BUCKET_STEPS = (60, 120, 180, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 14400, 21600, 43200)


def bucket_seconds(window_s: int, series: int, min_interval_s: int) -> int:
    """The smallest step of at least ``min_interval_s`` that keeps every series together
    within :data:`MAX_POINTS` (a window of ``w`` seconds covers at most ``ceil(w/b) + 1``
    epoch-aligned buckets)."""
    budget = MAX_POINTS // max(1, series)
    for step in BUCKET_STEPS:
        if step >= min_interval_s and math.ceil(window_s / step) + 1 <= budget:
            return step
    return BUCKET_STEPS[-1]


class ChartSeries(BaseModel):
    device_id: uuid.UUID
    kind: Literal["glucose", "temperature"] = Field(examples=["glucose"])
    unit: str = Field(examples=["mg/dL"])
    interval_s: int = Field(examples=[300])
    ts: list[datetime] = Field(description="Start of each non-empty bucket")
    min: list[float] = Field(examples=[[98.0, 104.0]])
    mean: list[float] = Field(examples=[[101.5, 110.2]])
    max: list[float] = Field(examples=[[105.0, 118.0]])
    count: list[int] = Field(description="Readings in the bucket", examples=[[3, 3]])


class Chart(BaseModel):
    profile_id: uuid.UUID
    window: ChartWindow = Field(examples=["3d"])
    start: datetime = Field(description="Start of the first bucket (inclusive)")
    end: datetime = Field(description="End of the window (exclusive)")
    bucket_s: int = Field(description="Bucket width in seconds", examples=[300])
    points: int = Field(description="Buckets over all series (never above 1,000)", examples=[864])
    series: list[ChartSeries]
    events: list[EventOut]


@router.get(
    "/chart",
    response_model=Chart,
    summary="Trend chart: bucketed readings with events, at most 1,000 points",
    responses=responses(401, 403, 404, 422),
)
async def chart(
    found: ReadableProfile,
    pool: Pool,
    window: Annotated[ChartWindow, Query(description="How far back from `end`")] = "24h",
    end: Annotated[
        AwareDatetime | None, Query(description="End of the window (exclusive); default now")
    ] = None,
    device_id: Annotated[
        uuid.UUID | None, Query(description="Only this device; default every device")
    ] = None,
) -> Chart:
    """Every device of the profile (or one) as min/mean/max/count per time bucket. The bucket
    width is the smallest step that keeps the whole response within 1,000 points, never finer
    than the sampling interval. Buckets are aligned to the Unix epoch; empty ones are left
    out."""
    end = window_end(end)
    devices = await selected_devices(pool, found.profile_id, device_id)
    window_s = WINDOWS[window]
    min_interval = min((d["interval_s"] for d in devices), default=60)
    bucket_s = bucket_seconds(window_s, len(devices), min_interval)
    end_s = end.timestamp()
    start_s = math.floor((end_s - window_s) / bucket_s) * bucket_s
    start = utc(start_s)
    buckets = await history.bucketed(pool, [d["id"] for d in devices], start, end, bucket_s)
    out = []
    for device, b in zip(devices, buckets, strict=True):
        out.append(
            ChartSeries(
                device_id=device["id"],
                kind=device["kind"],
                unit=spec_for(device["kind"]).unit,
                interval_s=device["interval_s"],
                ts=[utc(t) for t in b.start.tolist()],
                min=b.min.tolist(),
                mean=[round(v, 3) for v in b.mean.tolist()],
                max=b.max.tolist(),
                count=b.count.tolist(),
            )
        )
    evs = await events.list_events(pool, found.profile_id, start, end, None, MAX_POINTS)
    return Chart(
        profile_id=found.profile_id,
        window=window,
        start=start,
        end=end,
        bucket_s=bucket_s,
        points=sum(len(s.ts) for s in out),
        series=out,
        events=[event_out(e) for e in evs],
    )


__all__ = ["WINDOWS", "bucket_seconds", "router"]
