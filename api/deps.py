"""Shared dependencies: the database pool, the shard router, the caller's identity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
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


async def current_user(
    pool: Pool, keys: Keys, token: Annotated[str | None, Depends(oauth2)]
) -> User:
    """The caller, from a valid bearer token of an active account; 401 otherwise."""
    if not token:
        raise error(401, "not authenticated: send 'Authorization: Bearer <token>'", _UNAUTHORISED)
    try:
        claims = await keys.verify(token)
    except InvalidToken as exc:
        raise error(401, f"invalid token: {exc}", _UNAUTHORISED) from exc
    row = await accounts.active_user(pool, claims.user_id)
    if row is None:
        raise error(401, "invalid token: account not found or disabled", _UNAUTHORISED)
    return User(id=row["id"], email=row["email"], name=row["name"])


Caller = Annotated[User, Depends(current_user)]
