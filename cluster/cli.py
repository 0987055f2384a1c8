"""The ``vigil`` command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from cluster.keys import keys_app
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


def _settings() -> Settings:
    return Settings()


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
) -> None:
    """Start the database (embedded if no VIGIL_DATABASE_URL), Ray, shards and the HTTP API;
    run until Ctrl-C."""
    from cluster.stack import start_stack

    settings = _settings()
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
    stack = start_stack(settings)
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
    task = asyncio.create_task(run_simulation(config, stop))
    await _print_demo_banner(url, devices)
    stop_wait = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    stop.set()
    await task


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
        f"\n[bold]Demo[/]: {devices} simulated sensors stream as {DEMO_EMAIL} "
        f"(password {DEMO_PASSWORD}).\n"
        f"  live latest reading: {url}/v1/devices/{first}/latest\n"
        "  try it:\n"
        f"    TOKEN=$(curl -s -d username={DEMO_EMAIL} -d password={DEMO_PASSWORD}"
        f" {url}/v1/auth/token"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')\n"
        f'    curl -H "Authorization: Bearer $TOKEN" {url}/v1/devices/{first}/latest\n'
        "Press Ctrl-C (or run `make stop`) to stop."
    )


@app.command()
def down(timeout_s: Annotated[float, typer.Option(help="Seconds to wait")] = 60) -> None:
    """Stop a running `vigil up` and the embedded database it started."""
    settings = _settings()
    pid_file = _pid_file(settings)
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if _alive(pid):
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


# -- the database -----------------------------------------------------------------------------


def _embedded(settings: Settings) -> EmbeddedPostgres:
    from cluster.stack import embedded_database

    return embedded_database(settings)


def _database_url(settings: Settings) -> str:
    from cluster.stack import database_url

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
    from sensor_ingest.simulate.runner import SimulationConfig, run_simulation

    if kind not in ("glucose", "temperature", "mixed"):
        raise typer.BadParameter("kind must be glucose, temperature or mixed", param_hint="--kind")
    if transport not in ("http", "ws"):
        raise typer.BadParameter("transport must be http or ws", param_hint="--transport")
    config = SimulationConfig(
        base_url=url or _settings().public_url,
        email=email,
        password=password,
        name="Simulated Person",
        devices=devices,
        kind=kind,
        speed=speed,
        backfill_s=history_hours * 3600 if speed <= 1 else 0.0,
        start_lag_s=history_hours * 3600 if speed > 1 else 0.0,
        seed=seed,
        transport=transport,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)

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
) -> None:
    """Compute the report metrics of every profile (or --profiles) as Ray tasks and write
    metrics_<days>d_<end>.parquet; re-running for the same window rewrites the same files."""
    import uuid
    from datetime import UTC, datetime

    import ray
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from cluster.batch_reports import run_batch

    settings = _settings()
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


if __name__ == "__main__":
    app()
