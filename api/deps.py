"""Shared dependencies: the database pool, the shard router, the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, NoReturn
from uuid import UUID

import asyncpg
from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer

from actors.router import ShardRouter
from api.config import ApiConfig
from api.errors import error
from api.tokens import InvalidToken, KeyStore
from storage import accounts

oauth2 = OAuth2PasswordBearer(tokenUrl="/v1/auth/token", auto_error=False)


async def get_pool(request: Request) -> asyncpg.Pool:
    return request.app.state.pool


async def get_router(request: Request) -> ShardRouter:
    return request.app.state.router


async def get_keys(request: Request) -> KeyStore:
    return request.app.state.keys


async def get_config(request: Request) -> ApiConfig:
    return request.app.state.config


Pool = Annotated[asyncpg.Pool, Depends(get_pool)]
Router = Annotated[ShardRouter, Depends(get_router)]
Keys = Annotated[KeyStore, Depends(get_keys)]
Config = Annotated[ApiConfig, Depends(get_config)]


@dataclass(frozen=True, slots=True)
class User:
    id: UUID
    email: str
    name: str


_UNAUTHORISED = {"WWW-Authenticate": "Bearer"}


async def user_of_token(keys: KeyStore, token: str | None) -> UUID:
    """The user id of a valid bearer token (signature, issuer, audience, expiry); 401 otherwise.

    Whether the account is still active is checked by the query that reads the data."""
    if not token:
        raise error(401, "not authenticated: send 'Authorization: Bearer <token>'", _UNAUTHORISED)
    try:
        return (await keys.verify(token)).user_id
    except InvalidToken as exc:
        raise error(401, f"invalid token: {exc}", _UNAUTHORISED) from exc


async def caller_id(request: Request, token: Annotated[str | None, Depends(oauth2)]) -> UUID:
    """Dependency: :func:`user_of_token` of the request's bearer token. (The key store comes
    straight from the app, not as one more dependency: this runs on every request.)"""
    return await user_of_token(request.app.state.keys, token)


CallerId = Annotated[UUID, Depends(caller_id)]


def active_account(row: asyncpg.Record | None) -> User:
    """The user of an active account's row; 401 when there is none (unknown or disabled)."""
    if row is None:
        raise error(401, "invalid token: account not found or disabled", _UNAUTHORISED)
    return User(id=row["id"], email=row["email"], name=row["name"])


async def current_user(pool: Pool, user_id: CallerId) -> User:
    """The caller, from a valid bearer token of an active account; 401 otherwise."""
    return active_account(await accounts.active_user(pool, user_id))


Caller = Annotated[User, Depends(current_user)]


def refuse(found: bool, scope: str, what: str) -> NoReturn:
    """404 when the caller has no relation to the resource; 403 when a share lacks the scope."""
    if not found:
        raise error(404, f"{what} not found")
    raise error(403, f"your access to this {what} does not include the {scope!r} scope")
