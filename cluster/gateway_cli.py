"""``vigil gateway``: the BLE gateway (sensor_ingest/ble) from a TOML config, and ``scan``."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cluster.logs import quiet_http_clients

console = Console(soft_wrap=True)
gateway_app = typer.Typer(
    help="The BLE gateway: standard CGM and thermometer sensors to Vigil (docs/gateway.md).",
    invoke_without_command=True,
)


@gateway_app.callback()
def gateway(
    ctx: typer.Context,
    config: Annotated[
        Path | None, typer.Option(help="The gateway's TOML config (see docs/gateway.md)")
    ] = None,
) -> None:
    """Run the gateway until Ctrl-C: connect to the configured sensors, queue their readings
    durably and upload them to Vigil."""
    if ctx.invoked_subcommand is not None:
        return
    if config is None:
        console.print("[red]--config gateway.toml is required (or `vigil gateway scan`)")
        raise typer.Exit(2)
    from sensor_ingest.ble.config import ConfigError, load_config
    from sensor_ingest.ble.link import NoAdapterError
    from sensor_ingest.ble.run import run_gateway

    try:
        parsed = load_config(config)
    except (ConfigError, OSError) as exc:
        console.print(f"[red]{config}: {exc}")
        raise typer.Exit(2) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    quiet_http_clients()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gateway = await run_gateway(parsed, stop)
        console.print(gateway.counters())

    try:
        asyncio.run(main())
    except NoAdapterError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None


@gateway_app.command("scan")
def scan(
    backend: Annotated[str, typer.Option(help="bleak (radios) or bumble")] = "bleak",
    transport: Annotated[str | None, typer.Option(help="bumble HCI transport, e.g. usb:0")] = None,
    seconds: Annotated[float, typer.Option(help="How long to listen")] = 5.0,
) -> None:
    """List nearby sensors that offer the CGM (0x181F) or Health Thermometer (0x1809) service."""
    from sensor_ingest.ble.link import NoAdapterError
    from sensor_ingest.ble.run import make_link, scan_sensors

    if backend not in ("bleak", "bumble"):
        raise typer.BadParameter("bleak or bumble", param_hint="--backend")
    try:
        found = asyncio.run(scan_sensors(make_link(backend, transport), seconds))
    except NoAdapterError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from None
    if not found:
        console.print("No CGM or thermometer sensors found.")
    for adv, kind in found:
        console.print(f"{adv.address}  {kind:<11}  rssi={adv.rssi}  {adv.name or ''}")
