"""The bleak adapter against a fake bleak at the two seams it uses (``BleakScanner.discover``
and ``BleakClient``); and ``vigil gateway scan`` on this machine, which has no adapter."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from bleak.exc import BleakError
from typer.testing import CliRunner

from cluster.cli import app
from sensor_ingest.ble import cgm, uuids
from sensor_ingest.ble.bleak_link import BleakLink, short_uuid
from sensor_ingest.ble.link import LinkError, NoAdapterError
from sensor_ingest.ble.uuids import full_uuid


def _service(short: int, chars: list[int]) -> SimpleNamespace:
    return SimpleNamespace(
        uuid=full_uuid(short),
        characteristics=[SimpleNamespace(uuid=full_uuid(c)) for c in chars],
    )


@dataclass
class FakeBleakClient:
    """The subset of ``BleakClient`` the adapter calls, with a CGM behind it."""

    address: str
    disconnected_callback: Any
    timeout: float
    fail_connect: Exception | None = None
    values: dict[str, bytes] = field(default_factory=dict)
    written: list[tuple[str, bytes, bool]] = field(default_factory=list)
    notify: dict[str, Any] = field(default_factory=dict)
    connected: bool = False

    @property
    def services(self) -> list[SimpleNamespace]:
        return [
            _service(uuids.CGM_SERVICE, [uuids.CGM_MEASUREMENT, uuids.CGM_FEATURE]),
            SimpleNamespace(uuid="6e400001-b5a3-f393-e0a9-e50e24dcca9e", characteristics=[]),
        ]

    async def connect(self) -> None:
        if self.fail_connect is not None:
            raise self.fail_connect
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False
        self.disconnected_callback(self)

    async def read_gatt_char(self, uuid: str) -> bytearray:
        if uuid not in self.values:
            raise BleakError(f"characteristic {uuid} not found")
        return bytearray(self.values[uuid])

    async def write_gatt_char(self, uuid: str, data: bytes, response: bool) -> None:
        self.written.append((uuid, bytes(data), response))

    async def start_notify(self, uuid: str, callback: Any) -> None:
        self.notify[uuid] = callback


class Radio:
    def __init__(self, fail_connect: Exception | None = None) -> None:
        self.clients: list[FakeBleakClient] = []
        self.fail_connect = fail_connect

    def client(self, address: str, *, disconnected_callback: Any, timeout: float) -> Any:
        c = FakeBleakClient(address, disconnected_callback, timeout, self.fail_connect)
        c.values[full_uuid(uuids.CGM_FEATURE)] = cgm.encode_feature(
            cgm.CgmFeature(cgm.Features.E2E_CRC, 9, 5)
        )
        self.clients.append(c)
        return c


def test_short_uuid() -> None:
    assert short_uuid("0000181F-0000-1000-8000-00805F9B34FB") == 0x181F
    assert short_uuid("6e400001-b5a3-f393-e0a9-e50e24dcca9e") is None


async def test_connect_read_write_subscribe_disconnect() -> None:
    radio = Radio()
    link = BleakLink(client_factory=radio.client)
    await link.open()
    conn = await link.connect("F0:F1:F2:F3:F4:F5", 7.0)
    (client,) = radio.clients
    assert client.connected and client.timeout == 7.0
    assert conn.has(uuids.CGM_SERVICE, uuids.CGM_MEASUREMENT)
    assert not conn.has(uuids.CGM_SERVICE, uuids.RECORD_ACCESS_CONTROL_POINT)
    feature = cgm.decode_feature(await conn.read(uuids.CGM_SERVICE, uuids.CGM_FEATURE))
    assert feature.crc
    await conn.write(uuids.CGM_SERVICE, uuids.RECORD_ACCESS_CONTROL_POINT, b"\x01\x01")
    assert client.written == [(full_uuid(0x2A52), b"\x01\x01", True)]
    got: list[bytes] = []
    await conn.subscribe(uuids.CGM_SERVICE, uuids.CGM_MEASUREMENT, got.append)
    client.notify[full_uuid(uuids.CGM_MEASUREMENT)](None, bytearray(b"\x06\x00"))
    assert got == [b"\x06\x00"]
    with pytest.raises(LinkError, match="GATT"):
        await conn.read(uuids.CGM_SERVICE, uuids.CGM_STATUS)
    await conn.disconnect()
    await asyncio.wait_for(conn.wait_disconnected(), 1)
    assert not client.connected
    await link.close()


async def test_peer_leaving_ends_the_connection() -> None:
    radio = Radio()
    conn = await BleakLink(client_factory=radio.client).connect("F0:F1:F2:F3:F4:F5", 5)
    radio.clients[0].disconnected_callback(radio.clients[0])
    await asyncio.wait_for(conn.wait_disconnected(), 1)


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (BleakError("Device with address F0:F1:F2:F3:F4:F5 was not found"), LinkError),
        (TimeoutError(), LinkError),
        (FileNotFoundError(2, "No such file or directory"), NoAdapterError),
    ],
)
async def test_connect_failures(error: Exception, raised: type[Exception]) -> None:
    link = BleakLink(client_factory=Radio(fail_connect=error).client)
    with pytest.raises(raised):
        await link.connect("F0:F1:F2:F3:F4:F5", 1)


async def test_scan_lists_services() -> None:
    async def discover(timeout_s: float) -> dict:
        adv = SimpleNamespace(
            service_uuids=[full_uuid(0x181F), "6e400001-b5a3-f393-e0a9-e50e24dcca9e"],
            local_name="CGM 1",
            rssi=-60,
        )
        return {"f0:f1:f2:f3:f4:f5": (SimpleNamespace(name=None), adv)}

    (found,) = await BleakLink(discover=discover).scan(1.0)
    assert (found.address, found.name, found.services, found.rssi) == (
        "F0:F1:F2:F3:F4:F5",
        "CGM 1",
        (0x181F,),
        -60,
    )


async def test_scan_without_adapter() -> None:
    async def discover(timeout_s: float) -> dict:
        raise BleakError("No Bluetooth adapters found.")

    with pytest.raises(NoAdapterError, match="no Bluetooth adapter"):
        await BleakLink(discover=discover).scan(1.0)


def test_vigil_gateway_scan_without_an_adapter_fails_clearly() -> None:
    result = CliRunner().invoke(app, ["gateway", "scan", "--seconds", "0.5"])
    assert result.exit_code == 1
    assert "no Bluetooth adapter found" in result.output


def test_vigil_gateway_config_errors(tmp_path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[vigil]\nurl = "ftp://x"\n')
    result = CliRunner().invoke(app, ["gateway", "--config", str(path)])
    assert result.exit_code == 2 and "vigil.url" in result.output
    result = CliRunner().invoke(app, ["gateway"])
    assert result.exit_code == 2 and "--config" in result.output
