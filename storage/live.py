"""The live messages: what crosses processes on the ``vigil_live`` NOTIFY channel.

PostgreSQL delivers a NOTIFY only when its transaction commits, so the channel tells every
API replica (live streams) and the alert notifier what is now stored. Several processes write
it (the shards after each batch, the notifier when it escalates, storage when someone
acknowledges, snoozes or changes preferences, and two SQL triggers: ``0031`` for share
changes, ``0055`` for account events) and two read it, so this module owns the one contract:
a dataclass per kind of message, :func:`encode` for the writers and :func:`decode` for the
readers. Nothing else knows the wire keys, which stay short because a payload is limited to
8000 bytes and the shards send one per device per batch. The triggers build their JSON in
SQL; ``tests/storage/test_live.py`` passes what they send through :func:`decode`.

A payload may carry several messages, one per line: the readers take it apart with
:func:`messages`. The writers still send one message per payload, because during an
upgrade's overlap (docs/operations.md) the old cluster's replicas and notifier read what the
new cluster's shards send, and code older than this reads a payload as one message. Once
every reader in service understands lines, a shard can send its commit's updates together
(1 or 2 notifications for 50 devices instead of 50; docs/benchmarks.md, 2026-12-03).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from storage import json_text

log = logging.getLogger(__name__)

CHANNEL = "vigil_live"
# The same ``DeviceUpdate`` again, for a batch (or tick) that changed an alert: what the
# notifier listens to, so that it is not woken (nor PostgreSQL made to signal it) for every
# reading committed.
ALERTS_CHANNEL = "vigil_alerts"


def iso(ts_s: float | None) -> str | None:
    """A unix time as ISO 8601 (UTC), as every channel shows times: ``datetime.isoformat``'s
    text, written by orjson (0.6 µs against 2.8 for ``isoformat``; once per reading sent on
    a live stream; tests/storage/test_live.py holds them equal)."""
    if ts_s is None:
        return None
    return json_text.dumps(datetime.fromtimestamp(ts_s, UTC))[1:-1].decode()


@dataclass(frozen=True, slots=True)
class LiveReading:
    """The newest reading of a committed batch."""

    ts_s: float
    value: float
    rate_per_min: float | None = None
    direction: str | None = None
    prediction_20: float | None = None


@dataclass(frozen=True, slots=True)
class LiveAlert:
    """One alert event: ``fired``, ``repeated``, ``cleared`` or ``escalated``."""

    id: UUID
    rule: str
    event: str
    severity: str
    value: float | None
    threshold: float
    reading_ts_s: float
    received_s: float
    decided_s: float | None

    @property
    def urgent(self) -> bool:
        return self.severity == "urgent"

    def fields(self) -> dict[str, Any]:
        """What every channel (stream, webhook, push, email) shows of the alert."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "value": self.value,
            "threshold": self.threshold,
            "reading_ts": iso(self.reading_ts_s),
            "received_at": iso(self.received_s),
            "fired_at": iso(self.decided_s),
        }


@dataclass(frozen=True, slots=True)
class DeviceUpdate:
    """A device's committed batch (or clock tick, or escalation): its newest reading and
    the alert events decided with it."""

    profile_id: UUID
    device_id: UUID
    kind: str | None = None
    reading: LiveReading | None = None
    alerts: tuple[LiveAlert, ...] = field(default_factory=tuple)
    # The HTTP request whose batch decided the alerts (only sent with alerts): the notifier
    # logs it, so one request id follows a reading to its deliveries.
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class AccountEnded:
    """The account's streams must end: ``why`` is disabled, deleted, password or logout."""

    account_id: UUID
    why: str


@dataclass(frozen=True, slots=True)
class ShareChanged:
    """A share was revoked or lost scopes: the follower's access to the profile is rechecked."""

    profile_id: UUID
    follower_id: UUID


@dataclass(frozen=True, slots=True)
class PersonalChanged:
    """Someone acknowledged or snoozed an alert for themselves, or changed their notification
    preferences for a profile: their streams reload what they filter by."""

    profile_id: UUID
    user_id: UUID


LiveMessage = DeviceUpdate | AccountEnded | ShareChanged | PersonalChanged


# -- wire form -----------------------------------------------------------------------------


def _id(u: UUID) -> UUID | str:
    """An id for orjson, which writes a ``uuid.UUID`` as ``str()`` does (faster than
    ``str()``) but refuses other types of UUID (asyncpg's, read from the database)."""
    return u if type(u) is UUID else str(u)


def _alert_wire(a: LiveAlert) -> dict[str, Any]:
    return {
        "id": _id(a.id),
        "rule": a.rule,
        "type": a.event,
        "sev": a.severity,
        "value": a.value,
        "thr": a.threshold,
        "ts": a.reading_ts_s,
        "rx": a.received_s,
        "at": a.decided_s,
    }


# A reading's fields in LiveReading's order: ts_s, value, rate_per_min, direction, prediction_20
ReadingFields = tuple[float, float, float | None, str | None, float | None]


def _update_wire(
    profile_id: UUID,
    device_id: UUID,
    kind: str | None,
    reading: ReadingFields | None,
    alerts: Sequence[LiveAlert],
    request_id: str | None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"p": _id(profile_id), "d": _id(device_id)}  # "p" first: update_profile
    if kind is not None:
        out["k"] = kind
    if reading is not None:
        ts, value, rate, direction, pred = reading
        out["r"] = {"ts": ts, "v": value, "rate": rate, "dir": direction, "pred20": pred}
    if alerts:
        out["a"] = [_alert_wire(a) for a in alerts]
        if request_id:
            out["rid"] = request_id
    return out


def _wire(msg: LiveMessage) -> dict[str, Any]:
    if isinstance(msg, AccountEnded):
        return {"account": str(msg.account_id), "why": msg.why}
    if isinstance(msg, ShareChanged):
        return {"revoked": str(msg.profile_id), "f": str(msg.follower_id)}
    if isinstance(msg, PersonalChanged):
        return {"changed": str(msg.profile_id), "f": str(msg.user_id)}
    r = msg.reading
    fields = None if r is None else (r.ts_s, r.value, r.rate_per_min, r.direction, r.prediction_20)
    return _update_wire(msg.profile_id, msg.device_id, msg.kind, fields, msg.alerts, msg.request_id)


def encode(msg: LiveMessage) -> str:
    """The NOTIFY payload of a message."""
    return json_text.dumps_text(_wire(msg))


def encode_update(
    profile_id: UUID,
    device_id: UUID,
    kind: str | None,
    reading: ReadingFields | None,
    alerts: Sequence[LiveAlert] = (),
    request_id: str | None = None,
) -> str:
    """``encode(DeviceUpdate(...))`` of these fields, without making the message (a shard
    encodes one per device and batch)."""
    return json_text.dumps_text(
        _update_wire(profile_id, device_id, kind, reading, alerts, request_id)
    )


async def publish(conn: asyncpg.Pool | asyncpg.Connection, msg: LiveMessage) -> None:
    """Send ``msg`` on the channel; inside a transaction it leaves when that commits."""
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, encode(msg))


def _alert(a: dict[str, Any]) -> LiveAlert:
    return LiveAlert(
        id=UUID(a["id"]),
        rule=a["rule"],
        event=a["type"],
        severity=a["sev"],
        value=a["value"],
        threshold=a["thr"],
        reading_ts_s=a["ts"],
        received_s=a["rx"],
        decided_s=a.get("at"),
    )


def _reading(r: dict[str, Any]) -> LiveReading:
    return LiveReading(r["ts"], r["v"], r.get("rate"), r.get("dir"), r.get("pred20"))


def _message(d: dict[str, Any], profile: UUID | None = None) -> LiveMessage:
    if "account" in d:
        return AccountEnded(UUID(d["account"]), d.get("why", "disabled"))
    if "revoked" in d:
        return ShareChanged(UUID(d["revoked"]), UUID(d["f"]))
    if "changed" in d:
        return PersonalChanged(UUID(d["changed"]), UUID(d["f"]))
    r, a = d.get("r"), d.get("a")
    return DeviceUpdate(  # positional: a live stream decodes one per reading it sends
        UUID(d["p"]) if profile is None else profile,
        UUID(d["d"]),
        d.get("k"),
        None if r is None else _reading(r),
        () if a is None else tuple(_alert(x) for x in a),
        d.get("rid"),
    )


# JSON text written without indentation has no line break (one inside a string is written
# ``\n``), so a line break separates messages in a payload.
SEPARATOR = "\n"


def messages(payload: str) -> list[str]:
    """The encoded messages a payload carries, in the order they were sent."""
    return payload.split(SEPARATOR)


# Every device update's payload starts with its profile: ``_wire`` puts it first and
# ``encode`` writes no spaces.
_UPDATE_HEAD = '{"p":"'
_UUID_END = len(_UPDATE_HEAD) + 36


def update_profile(payload: str) -> UUID | None:
    """The profile of a device update (one of a payload's :func:`messages`), read from its
    head without decoding the rest (a replica passes over the updates of profiles none of its
    streams follows: every replica receives every committed batch's); None for any other
    message."""
    if not payload.startswith(_UPDATE_HEAD) or payload[_UUID_END : _UUID_END + 1] != '"':
        return None
    try:
        return UUID(payload[len(_UPDATE_HEAD) : _UUID_END])
    except ValueError:
        return None


def decode(payload: str, profile: UUID | None = None) -> LiveMessage | None:
    """One encoded message (a NOTIFY payload, or one of its :func:`messages`); ``None``
    (logged) for one that is not ours. ``profile``: a device update's profile as
    :func:`update_profile` read it from this payload, not read again."""
    try:
        d = json_text.loads(payload)
        return _message(d, profile)
    except (ValueError, KeyError, TypeError, AttributeError):
        log.warning("ignored a live message that is not one of ours (%d bytes)", len(payload))
        return None
