"""The gateway's TOML config (``vigil gateway --config gateway.toml``); see docs/gateway.md.

::

    [vigil]
    url = "https://vigil.example.org"

    [link]
    backend = "bleak"            # or "bumble"
    # transport = "usb:0"        # bumble only: any bumble HCI transport name

    [queue]
    path = "/var/lib/vigil-gateway/queue.sqlite3"
    max_readings = 1000000       # size bound: beyond it the oldest are dropped (and counted)

    [[sensors]]
    address = "F0:F1:F2:F3:F4:F5"
    kind = "glucose"             # or "temperature"
    device_id = "6f1c…"          # the Vigil device's id
    upload_token = "vdt_…"       # from POST /v1/devices
    # utc_offset_min = 60        # thermometers: the zone of their local time stamps
"""

from __future__ import annotations

import re
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ADDRESS = re.compile(r"^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}$")
MAX_SENSORS = 500


class ConfigError(ValueError):
    """The config file is wrong at ``field``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class SensorConfig:
    address: str
    kind: Literal["glucose", "temperature"]
    device_id: str
    upload_token: str = field(repr=False)
    utc_offset_min: int | None = None
    """Thermometers: offset of their local time stamps from UTC; None: this machine's."""

    @property
    def glucose(self) -> bool:
        return self.kind == "glucose"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    url: str
    sensors: tuple[SensorConfig, ...]
    backend: Literal["bleak", "bumble"] = "bleak"
    transport: str | None = None
    queue_path: Path = Path("vigil-gateway-queue.sqlite3")
    max_readings: int = 1_000_000
    connect_timeout_s: float = 20.0
    reconnect_max_s: float = 60.0


def _get(table: dict[str, Any], key: str, where: str, kind: type, default: Any = ...) -> Any:
    if key not in table:
        if default is ...:
            raise ConfigError(f"{where}.{key}", "missing")
        return default
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}.{key}", f"must be a {kind.__name__}")
    return value


def _closed(table: dict[str, Any], where: str, allowed: set[str]) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}", "unknown setting")


def _sensor(table: Any, i: int) -> SensorConfig:
    where = f"sensors[{i}]"
    if not isinstance(table, dict):
        raise ConfigError(where, "must be a table")
    _closed(table, where, {"address", "kind", "device_id", "upload_token", "utc_offset_min"})
    address = _get(table, "address", where, str)
    if not ADDRESS.match(address):
        raise ConfigError(f"{where}.address", "must look like F0:F1:F2:F3:F4:F5")
    kind = _get(table, "kind", where, str)
    if kind not in ("glucose", "temperature"):
        raise ConfigError(f"{where}.kind", "must be glucose or temperature")
    device_id = _get(table, "device_id", where, str)
    try:
        uuid.UUID(device_id)
    except ValueError:
        raise ConfigError(f"{where}.device_id", "must be the Vigil device's id (a UUID)") from None
    token = _get(table, "upload_token", where, str)
    if not token:
        raise ConfigError(f"{where}.upload_token", "must not be empty")
    offset = _get(table, "utc_offset_min", where, int, None)
    if offset is not None and not -720 <= offset <= 840:
        raise ConfigError(f"{where}.utc_offset_min", "must be within -720..840")
    return SensorConfig(address.upper(), kind, device_id, token, offset)


def parse_config(data: dict[str, Any]) -> GatewayConfig:
    """A config from a parsed TOML document; ``ConfigError`` names the first bad field."""
    _closed(data, "config", {"vigil", "link", "queue", "sensors"})
    vigil = _get(data, "vigil", "config", dict)
    _closed(vigil, "vigil", {"url"})
    url = _get(vigil, "url", "vigil", str)
    if not url.startswith(("http://", "https://")):
        raise ConfigError("vigil.url", "must start with http:// or https://")
    link = _get(data, "link", "config", dict, {})
    _closed(link, "link", {"backend", "transport"})
    backend = _get(link, "backend", "link", str, "bleak")
    if backend not in ("bleak", "bumble"):
        raise ConfigError("link.backend", "must be bleak or bumble")
    transport = _get(link, "transport", "link", str, None)
    if backend == "bumble" and not transport:
        raise ConfigError("link.transport", "bumble needs an HCI transport name")
    queue = _get(data, "queue", "config", dict, {})
    _closed(queue, "queue", {"path", "max_readings"})
    max_readings = _get(queue, "max_readings", "queue", int, 1_000_000)
    if max_readings < 1:
        raise ConfigError("queue.max_readings", "must be positive")
    sensors = _get(data, "sensors", "config", list)
    if not 1 <= len(sensors) <= MAX_SENSORS:
        raise ConfigError("sensors", f"between 1 and {MAX_SENSORS} sensors")
    parsed = tuple(_sensor(s, i) for i, s in enumerate(sensors))
    if len({s.address for s in parsed}) != len(parsed):
        raise ConfigError("sensors", "an address appears twice")
    return GatewayConfig(
        url=url.rstrip("/"),
        sensors=parsed,
        backend=backend,
        transport=transport,
        queue_path=Path(_get(queue, "path", "queue", str, "vigil-gateway-queue.sqlite3")),
        max_readings=max_readings,
    )


def load_config(path: Path) -> GatewayConfig:
    try:
        with path.open("rb") as f:
            return parse_config(tomllib.load(f))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
