"""``vigil keys``: the keys that sign access tokens.

``rotate`` adds a new key and retires the one signing now. The retired key keeps verifying
until every token it may have signed has expired, and every API replica picks up the new
key within a minute (or at once, on meeting a token signed with it): nobody is logged out.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import typer
from rich.console import Console
from rich.table import Table

from cluster.settings import Settings

keys_app = typer.Typer(help="The keys that sign access tokens.", no_args_is_help=True)
console = Console(soft_wrap=True)


def _database_url(settings: Settings) -> str:
    from cluster.db_ops import database_url

    return database_url(settings)


async def rotate_keys(database_url: str, access_ttl_s: int) -> tuple[str, list[str]]:
    """Add a new signing key, retire the current one, forget keys whose tokens have all
    expired. Returns the new kid and the retired kids."""
    from api.tokens import ALGORITHM, generate_key, verify_window
    from storage import sessions
    from storage.pools import open_pool

    kid, pem, jwk = generate_key()
    pool = await open_pool(database_url, min_size=1, max_size=1)
    try:
        # keys retired longer ago than the verify window (twice, for margin) are dead
        forget_before = datetime.now(UTC) - 2 * verify_window(access_ttl_s)
        retired = await sessions.rotate_signing_key(pool, kid, ALGORITHM, pem, jwk, forget_before)
    finally:
        await pool.close()
    return kid, retired


@keys_app.command("rotate")
def rotate() -> None:
    """Start signing with a new key; tokens signed by the old one stay valid until expiry."""
    settings = Settings()
    kid, retired = asyncio.run(rotate_keys(_database_url(settings), settings.access_token_ttl_s))
    console.print(f"signing with new key {kid}; retired {', '.join(retired) or 'none'}")


@keys_app.command("list")
def list_keys() -> None:
    """The stored signing keys, newest first."""
    from storage import accounts
    from storage.pools import open_pool

    async def fetch():
        pool = await open_pool(_database_url(Settings()), min_size=1, max_size=1)
        try:
            return await accounts.signing_keys(pool)
        finally:
            await pool.close()

    table = Table("kid", "algorithm", "created", "retired")
    for row in asyncio.run(fetch()):
        retired = row["retired_at"]
        table.add_row(
            row["kid"],
            row["algorithm"],
            f"{row['created_at']:%Y-%m-%d %H:%M:%S}",
            "signing" if retired is None else f"{retired:%Y-%m-%d %H:%M:%S}",
        )
    console.print(table)
