"""The ``vigil`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Literal, cast

import typer
from rich.console import Console

from cluster.keys import keys_app
from cluster.logs import quiet_http_clients
from cluster.settings import Settings
from storage.embedded import EmbeddedPostgres, EmbeddedPostgresError

app = typer.Typer(help="Vigil: backend for body-worn health sensors.", no_args_is_help=True)
db_app = typer.Typer(help="The embedded local PostgreSQL.", no_args_is_help=True)
app.add_typer(db_app, name="db")
admin_app = typer.Typer(help="Platform operators (the admin role).", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(keys_app, name="keys")
console = Console(soft_wrap=True)  # long URLs and commands stay copy-pasteable

DEMO_EMAIL = "demo@example.com"
DEMO_PASSWORD = "vigil-demo-password"


def _settings(address: str | None = None) -> Settings:
    """The process settings; ``address`` (``--address``) overrides VIGIL_RAY_ADDRESS."""
    settings = Settings()
    return settings.model_copy(update={"ray_address": address}) if address else settings


def _pid_file(settings: Settings) -> Path:
    return settings.run_dir / "vigil-up.pid"


# -- the stack --------------------------------------------------------------------------------


@app.command()
def up(
    demo: Annotated[
        bool, typer.Option(help="Also stream simulated sensors as a demo user")
    ] = False,
    devices: Annotated[int, typer.Option(help="Simulated devices with --demo")] = 20,
    speed: Annotated[float, typer.Option(help="Simulated time per real second, --demo")] = 1.0,
    address: Annotated[
        str | None,
        typer.Option(help="Deploy to this running Ray cluster (default: VIGIL_RAY_ADDRESS)"),
    ] = None,
) -> None:
    """Start the database (embedded if no VIGIL_DATABASE_URL), Ray, shards and the HTTP API;
    run until Ctrl-C."""
    from cluster.environments import UnsafeSettings
    from cluster.stack import start_stack

    settings = _settings(address)
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = _pid_file(settings)
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        console.print(
            f"[red]Vigil is already running (pid {pid_file.read_text()}); `vigil down` first."
        )
        raise typer.Exit(1)
    pid_file.write_text(str(os.getpid()))
    console.print("Starting Vigil: database, Ray, device shards, HTTP API …")
    started = time.monotonic()
    try:
        stack = start_stack(settings, demo=demo)
    except UnsafeSettings as exc:
        pid_file.unlink(missing_ok=True)
        console.print(f"[red]{exc}")
        raise typer.Exit(2) from None
    try:
        console.print(
            f"[green]Vigil is up[/] in {time.monotonic() - started:.0f} s at {stack.url}\n"
            f"  API docs:   {stack.url}/docs\n"
            f"  readiness:  {stack.url}/readyz"
        )
        asyncio.run(_serve_until_stopped(stack.url, demo, devices, speed))
    finally:
        console.print("Stopping Vigil …")
        stack.stop()
        pid_file.unlink(missing_ok=True)
        console.print("Stopped.")


async def _serve_until_stopped(url: str, demo: bool, devices: int, speed: float) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if not demo:
        console.print("Press Ctrl-C to stop.")
        await stop.wait()
        return
    quiet_http_clients()  # one httpx INFO line per simulated upload would flood the terminal
    task = asyncio.create_task(_demo_sensors(url, devices, speed, stop))
    await _print_demo_banner(url, devices)
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await task


async def _demo_sensors(url: str, devices: int, speed: float, stop: asyncio.Event) -> None:
    """The demo's virtual sensors reach Vigil over Bluetooth through the gateway (a virtual
    bumble link); over HTTP with the simulator if the BLE path cannot start."""
    from sensor_ingest.ble.demo import BleDemoConfig, run_ble_demo

    config = BleDemoConfig(
        base_url=url,
        email=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        name="Demo Person",
        devices=devices,
        queue_path=_settings().data_dir / "demo-gateway-queue.sqlite3",
        speed=speed,
        tz_offset_s=time.localtime().tm_gmtoff,
    )
    try:
        gateway = await run_ble_demo(config, stop)
    except Exception as exc:  # the demo must come up: fall back to the HTTP simulator
        console.print(f"[yellow]BLE demo unavailable ({exc!r}); streaming over HTTP instead.")
        await _demo_over_http(url, devices, speed, stop)
        return
    console.print(f"Demo gateway: {gateway.counters()}")


async def _demo_over_http(url: str, devices: int, speed: float, stop: asyncio.Event) -> None:
    from sensor_ingest.simulate.runner import SimulationConfig, run_simulation

    config = SimulationConfig(
        base_url=url,
        email=DEMO_EMAIL,
        password=DEMO_PASSWORD,
        name="Demo Person",
        devices=devices,
        kind="mixed",
        speed=speed,
        backfill_s=3 * 3600,
        seed=2026,
        serial_prefix="demo",
    )
    await run_simulation(config, stop)


async def _print_demo_banner(url: str, devices: int) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        for _ in range(120):
            token = await client.post(
                "/v1/auth/token", data={"username": DEMO_EMAIL, "password": DEMO_PASSWORD}
            )
            if token.status_code == 200:
                headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
                listed = (await client.get("/v1/devices", headers=headers)).json()
                if len(listed) >= devices:
                    break
            await asyncio.sleep(1)
        else:
            console.print("[yellow]The demo devices are not registered yet.")
            return
    first = listed[0]["id"]
    console.print(
        f"\n[bold]Demo[/]: {devices} virtual Bluetooth sensors (CGM and thermometers) reach"
        " Vigil through the BLE gateway over a virtual bumble link, as "
        f"{DEMO_EMAIL} "
        f"(password {DEMO_PASSWORD}).\n"
        f"  live latest reading: {url}/v1/devices/{first}/latest\n"
        "  try it:\n"
        f"    TOKEN=$(curl -s -d username={DEMO_EMAIL} -d password={DEMO_PASSWORD}"
        f" {url}/v1/auth/token"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'    curl -H "Authorization: Bearer $TOKEN" {url}/v1/devices/{first}/latest\n'
        "Press Ctrl-C (or run `make stop`) to stop.\n"
        f"[bold]The dashboard[/]: sign in as {DEMO_EMAIL} — open {url}/"
    )


@app.command()
def down(timeout_s: Annotated[float, typer.Option(help="Seconds to wait")] = 60) -> None:
    """Stop a running `vigil up` and the embedded database it started."""
    settings = _settings()
    pid_file = _pid_file(settings)
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _alive(pid) and not _is_vigil_up(pid):
            console.print(
                f"[yellow]pid {pid} in {pid_file} is no longer `vigil up` (the pid was reused):"
                " not signalling it."
            )
        elif _alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if _alive(pid):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
        pid_file.unlink(missing_ok=True)
        console.print(f"Stopped vigil up (pid {pid}).")
    else:
        console.print("vigil up is not running.")
    if not settings.database_url:
        _embedded(settings).stop()
        console.print("Embedded PostgreSQL stopped.")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie has exited
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _is_vigil_up(pid: int) -> bool:
    """Is ``pid`` still a `vigil up` (its command line: a ``vigil`` program or the
    ``cluster.cli`` module, with ``up``)? A stale pid file may name a process that reused the
    pid after Vigil died, and `vigil down` must never signal someone else's process group."""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    vigil = any(Path(a).name == "vigil" or a == "cluster.cli" for a in args)
    return vigil and "up" in args


# -- the database -----------------------------------------------------------------------------


def _embedded(settings: Settings) -> EmbeddedPostgres:
    from cluster.db_ops import embedded_database

    return embedded_database(settings)


def _database_url(settings: Settings) -> str:
    from cluster.db_ops import database_url

    return database_url(settings)


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (initialising it on first use) and migrate it."""
    from storage.migrate import migrate as apply

    settings = _settings()
    db = _embedded(settings)
    try:
        db.start()
    except EmbeddedPostgresError as exc:
        console.print(f"[red]{exc}")
        raise typer.Exit(1) from exc
    applied = apply(db.url())
    console.print(f"PostgreSQL running on 127.0.0.1:{db.port} ({len(applied)} migrations applied)")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    _embedded(_settings()).stop()
    console.print("PostgreSQL stopped.")


@db_app.command("status")
def db_status() -> None:
    """Whether the embedded PostgreSQL runs, its port and data directory."""
    status = _embedded(_settings()).status()
    state = f"running (pid {status.pid})" if status.running else "stopped"
    console.print(f"{state}, port {status.port}, data in {status.data_dir}")
    if not status.running:
        raise typer.Exit(3)


@db_app.command("url")
def db_url() -> None:
    """Print the database URL (the configured one, or the embedded server's)."""
    print(_database_url(_settings()))


@db_app.command("backup")
def db_backup() -> None:
    """Take a base backup into VIGIL_BACKUP_TARGET, record it, and keep the newest
    VIGIL_BACKUP_KEEP backups (and the archived WAL they need)."""
    from cluster.db_ops import run_backup

    settings = _settings()
    try:
        info, deleted = run_backup(settings, _database_url(settings))
    except (ValueError, RuntimeError) as exc:
        console.print(f"[red]backup failed: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"backup {info.label} done: {info.size_bytes} bytes stored, WAL from {info.start_wal}"
        + (f"; retention removed {len(deleted)} old objects" if deleted else "")
    )


@db_app.command("backups")
def db_backups() -> None:
    """List the complete base backups in VIGIL_BACKUP_TARGET, oldest first."""
    from storage.backup import list_backups

    target = _settings().backup_target
    if not target:
        console.print("[red]VIGIL_BACKUP_TARGET is not set")
        raise typer.Exit(1)
    for info in list_backups(target):
        print(f"{info.label}  finished {info.finished_at.isoformat()}  {info.size_bytes} bytes")


@db_app.command("backup-key")
def db_backup_key() -> None:
    """Print a new random key for VIGIL_BACKUP_ENCRYPTION_KEY (keep a copy off the machine)."""
    from storage.wal_archive import generate_key

    print(generate_key())


@db_app.command("restore")
def db_restore(
    to: Annotated[str, typer.Option(help="Restore to this time, ISO 8601 with time zone")],
) -> None:
    """Point-in-time restore of the embedded database (stop `vigil up` first): the newest
    base backup before --to plus the archived WAL up to it; the old cluster is kept aside."""
    from datetime import datetime

    from cluster.db_ops import restore_embedded

    settings = _settings()
    try:
        to_time = datetime.fromisoformat(to)
        if to_time.tzinfo is None:
            raise ValueError("add a time zone, e.g. 2026-11-30T10:00:00+00:00")
        info, aside = restore_embedded(settings, _embedded(settings), to_time)
    except (ValueError, RuntimeError) as exc:
        console.print(f"[red]restore failed: {exc}")
        raise typer.Exit(1) from exc
    console.print(
        f"restored to {to_time.isoformat()} from backup {info.label}; the database runs."
        f" The previous cluster is in {aside} (remove it once satisfied)."
    )


@db_app.command("standby")
def db_standby() -> None:
    """Start a streaming standby of the embedded primary on VIGIL_STANDBY_PORT (cloning
    it on first use)."""
    from cluster.db_ops import start_standby

    settings = _settings()
    try:
        standby = start_standby(settings, _embedded(settings))
    except (OSError, RuntimeError) as exc:
        console.print(f"[red]standby failed: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"standby streaming on 127.0.0.1:{standby.port}, data in {standby.data_dir}")


@db_app.command("promote")
def db_promote() -> None:
    """Promote the standby to primary after the primary is lost."""
    from cluster.db_ops import promote_standby

    try:
        standby = promote_standby(_settings())
    except RuntimeError as exc:
        console.print(f"[red]promote failed: {exc}")
        raise typer.Exit(1) from exc
    console.print(f"the standby on port {standby.port} is now the primary")


@app.command()
def migrate() -> None:
    """Apply pending schema migrations to the configured (or embedded) database."""
    from storage.migrate import migrate as apply

    for migration in apply(_database_url(_settings())):
        console.print(f"applied {migration.path.name}")


# -- tools ------------------------------------------------------------------------------------


@app.command()
def simulate(
    devices: Annotated[int, typer.Option(help="How many virtual sensors")] = 10,
    kind: Annotated[str, typer.Option(help="glucose, temperature or mixed")] = "glucose",
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second while replaying the history")
    ] = 1.0,
    history_hours: Annotated[
        float,
        typer.Option(help="History before now: uploaded at once (speed 1) or replayed at --speed"),
    ] = 3.0,
    url: Annotated[str | None, typer.Option(help="API base URL")] = None,
    email: Annotated[str, typer.Option()] = DEMO_EMAIL,
    password: Annotated[str, typer.Option()] = DEMO_PASSWORD,
    seed: Annotated[int, typer.Option()] = 1,
    transport: Annotated[
        str, typer.Option(help="http: POST each batch; ws: one ingest WebSocket per device")
    ] = "http",
) -> None:
    """Stream virtual sensors through the HTTP API, like phones would, until Ctrl-C."""
    from sensor_ingest.simulate.fleet import FleetKind
    from sensor_ingest.simulate.runner import SimulationConfig, run_simulation

    if kind not in ("glucose", "temperature", "mixed"):
        raise typer.BadParameter("kind must be glucose, temperature or mixed", param_hint="--kind")
    if transport not in ("http", "ws"):
        raise typer.BadParameter("transport must be http or ws", param_hint="--transport")
    config = SimulationConfig(  # kind and transport: checked against their literals above
        base_url=url or _settings().public_url,
        email=email,
        password=password,
        name="Simulated Person",
        devices=devices,
        kind=cast(FleetKind, kind),
        speed=speed,
        backfill_s=history_hours * 3600 if speed <= 1 else 0.0,
        start_lag_s=history_hours * 3600 if speed > 1 else 0.0,
        seed=seed,
        transport=cast(Literal["http", "ws"], transport),
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    quiet_http_clients()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        stats = await run_simulation(config, stop)
        console.print(stats)

    asyncio.run(main())


@app.command()
def openapi(
    out: Annotated[Path | None, typer.Option(help="Write here instead of stdout")] = None,
) -> None:
    """Print (or write) the OpenAPI document generated from the code."""
    from api.openapi import openapi_document

    text = json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"
    if out is None:
        print(text, end="")
    else:
        out.write_text(text, encoding="utf-8")
        console.print(f"wrote {out}")


# -- administration ---------------------------------------------------------------------------


@admin_app.command("create")
def admin_create(
    email: Annotated[str, typer.Option(help="The admin's email (login)")],
    name: Annotated[str, typer.Option(help="The admin's name")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True,
            hide_input=True,
            confirmation_prompt=True,
            help="Prompted for when not given",
        ),
    ],
) -> None:
    """Create a platform admin in the configured (or embedded) database, or give the admin
    role to the existing user with this email (whose password then stays as it is)."""
    from api.password_policy import MAX_LENGTH, MIN_LENGTH, check_password
    from api.passwords import hash_password
    from storage import admin
    from storage.migrate import migrate as apply
    from storage.pools import open_pool

    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        console.print(f"[red]password: {MIN_LENGTH} to {MAX_LENGTH} characters")
        raise typer.Exit(2)
    try:
        check_password(password)
    except ValueError as exc:
        console.print(f"[red]password: {exc}")
        raise typer.Exit(2) from exc
    url = _database_url(_settings())
    apply(url)

    async def create() -> tuple:
        pool = await open_pool(url, max_size=2)
        try:
            return await admin.make_admin(pool, email, name, await hash_password(password))
        finally:
            await pool.close()

    user, created = asyncio.run(create())
    verb = "created admin" if created else "gave the admin role to existing user"
    console.print(f"{verb} {user['email']} ({user['id']})")


# -- shards -----------------------------------------------------------------------------------

shards_app = typer.Typer(help="The DeviceShard actors of a running Vigil.")
app.add_typer(shards_app, name="shards", no_args_is_help=True)


@shards_app.command("scale")
def shards_scale(
    count: Annotated[int, typer.Argument(min=1, help="The new number of shards")],
    address: Annotated[
        str | None, typer.Option(help="The Ray cluster (default: VIGIL_RAY_ADDRESS, or local)")
    ] = None,
) -> None:
    """Change the number of shards online: only the devices that must move do, each handed
    over after its rows are committed (its uploads meanwhile get 503 with Retry-After)."""
    from cluster.shards import scale_shards

    settings = _settings(address)
    _join_ray(settings)
    configured = settings.shard_config(_database_url(settings))
    result = scale_shards(configured, count, settings.namespace)
    console.print(
        f"Shards {result.before} -> {result.after}: {result.virtual_moved} of 4096 virtual"
        f" shards moved, {result.devices_handed_over} hosted devices handed over."
        f" Set VIGIL_SHARD_COUNT={result.after} for the next start."
    )


@shards_app.command("rebalance")
def shards_rebalance(
    address: Annotated[
        str | None, typer.Option(help="The Ray cluster (default: VIGIL_RAY_ADDRESS, or local)")
    ] = None,
) -> None:
    """Spread the shards evenly over the alive nodes, moving as few as that allows (after
    nodes returned or were added; with VIGIL_SHARD_REBALANCE=true Vigil does this itself)."""
    from cluster.shards import rebalance
    from cluster.stack import with_recorded_shard_count

    settings = _settings(address)
    url = _database_url(settings)
    settings = with_recorded_shard_count(settings, url)
    _join_ray(settings)
    moved = rebalance(url, settings.shard_config(url), settings.namespace)
    console.print(f"Moved shards: {', '.join(map(str, moved)) or 'none'}.")


def _join_ray(settings: Settings) -> None:
    """Connect this command to the running Vigil's Ray cluster."""
    import ray

    ray.init(
        address=settings.ray_address or "auto",
        namespace=settings.namespace,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )


# -- batch report jobs ------------------------------------------------------------------------

reports_app = typer.Typer(help="Report jobs over many profiles, on the Ray cluster.")
app.add_typer(reports_app, name="reports", no_args_is_help=True)


@reports_app.command("batch")
def reports_batch(
    out: Annotated[Path, typer.Option(help="Directory for the Parquet table (and PDFs)")],
    days: Annotated[int, typer.Option(min=1, max=90, help="Report window in days")] = 15,
    profiles: Annotated[
        str | None, typer.Option(help="Comma-separated profile ids (default: every profile)")
    ] = None,
    pdf: Annotated[bool, typer.Option("--pdf", help="Also write each profile's PDF")] = False,
    end: Annotated[
        str | None,
        typer.Option(help="Window end, ISO 8601 (default: the last UTC midnight)"),
    ] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Profiles per Ray task")] = 50,
    address: Annotated[
        str | None,
        typer.Option(help="Run on this Ray cluster (default: VIGIL_RAY_ADDRESS, else local)"),
    ] = None,
    batch_nodes: Annotated[
        bool,
        typer.Option(
            "--batch-nodes/--any-node",
            help="Run tasks only on nodes offering the `batch` resource (default on a cluster)",
        ),
    ] = True,
) -> None:
    """Compute the report metrics of every profile (or --profiles) as Ray tasks and write
    metrics_<days>d_<end>.parquet; re-running for the same window rewrites the same files."""
    import uuid
    from datetime import UTC, datetime

    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from actors.router import BATCH_RESOURCE
    from cluster.batch_reports import run_batch

    settings = _settings(address)
    url = _database_url(settings)
    try:
        ids = [uuid.UUID(p.strip()) for p in profiles.split(",") if p.strip()] if profiles else None
        end_at = datetime.fromisoformat(end) if end else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if end_at is not None and end_at.tzinfo is None:
        end_at = end_at.replace(tzinfo=UTC)
    if not ray.is_initialized():
        ray.init(
            address=settings.ray_address,
            namespace=settings.namespace,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
        )
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("profiles", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        try:
            result = run_batch(
                url,
                out,
                days=days,
                end=end_at,
                profile_ids=ids,
                pdf=pdf,
                chunk_size=chunk_size,
                on_progress=progress,
                resources={BATCH_RESOURCE: 1} if batch_nodes and settings.on_cluster else None,
            )
        except ValueError as exc:
            console.print(f"[red]{exc}")
            raise typer.Exit(1) from None
    console.print(
        f"{result.profiles} profiles in {result.seconds:.1f} s"
        f" ({result.profiles_per_s:.1f}/s) -> {result.parquet}"
        + (f", {result.pdfs} PDFs in {out / 'pdf'}" if pdf else "")
    )


# -- logs and metrics -------------------------------------------------------------------------


@app.command()
def logs(
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new lines")] = False,
) -> None:
    """Print the stack's logs (every process's JSON lines, merged by time, each with the
    file it came from as `source`)."""
    from cluster.logs import LogReader, stack_log_dirs
    from cluster.logs import follow as follow_logs

    settings = _settings()
    reader = LogReader(stack_log_dirs(settings.run_dir, settings.log_dir))
    records = follow_logs(reader) if follow else iter(reader.new_records())
    try:
        for record in records:
            print(json.dumps(record, ensure_ascii=False), flush=True)
    except (KeyboardInterrupt, BrokenPipeError):
        pass


metrics_app = typer.Typer(help="Prometheus metrics.", no_args_is_help=True)
app.add_typer(metrics_app, name="metrics")


@metrics_app.command("targets")
def metrics_targets(
    out: Annotated[
        Path | None, typer.Option(help="Write a Prometheus file_sd JSON file here")
    ] = None,
) -> None:
    """The scrape targets of the running Ray cluster: one per node (its metrics agent)."""
    import ray

    from cluster.observability import scrape_targets, write_targets

    settings = _settings()
    ray.init(
        address=settings.ray_address or "auto",
        namespace=settings.namespace,
        log_to_driver=False,
        logging_level=logging.WARNING,
    )
    targets = scrape_targets()
    if out is None:
        print(json.dumps(targets, indent=2))
    else:
        write_targets(out, targets)
        console.print(f"wrote {len(targets)} target(s) to {out}")


from cluster.gateway_cli import gateway_app  # noqa: E402

app.add_typer(gateway_app, name="gateway")


if __name__ == "__main__":
    app()
