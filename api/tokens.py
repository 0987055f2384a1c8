"""Access tokens: short-lived JWTs signed with Ed25519 keys kept in the database.

The newest unretired key signs; retired keys keep verifying until every token they may
have signed has expired, so rotating the key (``vigil keys rotate``) logs nobody out. Each
process reloads the keys every ``RELOAD_EVERY_S`` seconds, and at once (at most once a
second) when a token names a key it has not seen. Refresh tokens are opaque random
strings, stored only as SHA-256 hashes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from storage import accounts

log = logging.getLogger(__name__)
ALGORITHM = "EdDSA"
AUDIENCE = "vigil"
_RELOAD_MIN_INTERVAL_S = 1.0
RELOAD_EVERY_S = 60.0
VERIFIED_CACHE_SIZE = 50_000  # tokens remembered as verified, per replica
_CLOCK_SKEW_S = 60


def verify_window(access_ttl_s: int, reload_every_s: float = RELOAD_EVERY_S) -> timedelta:
    """How long a retired key must keep verifying: a replica may sign with it until it
    reloads, and those tokens live ``access_ttl_s``."""
    return timedelta(seconds=access_ttl_s + reload_every_s + _CLOCK_SKEW_S)


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: uuid.UUID
    expires_at: int


UPLOAD_TOKEN_PREFIX = "vdt_"  # device upload tokens are recognisable by it


def new_secret(prefix: str = "", nbytes: int = 32) -> tuple[str, bytes]:
    """A secret handed out once (refresh, upload, reset or report-link token, invitation
    code) and its digest, which is all Vigil stores of it."""
    secret = prefix + secrets.token_urlsafe(nbytes)
    return secret, hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def generate_key() -> tuple[str, str, dict]:
    """A new Ed25519 key: its kid, private PEM and public JWK (with kid, use, alg)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    kid = hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).hexdigest()[:16]
    jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    return kid, pem, jwk


class KeyStore:
    def __init__(
        self,
        pool: asyncpg.Pool,
        issuer: str,
        access_ttl_s: int,
        reload_every_s: float = RELOAD_EVERY_S,
        unknown_kid_reload_s: float = _RELOAD_MIN_INTERVAL_S,
    ) -> None:
        self._pool = pool
        self.issuer = issuer
        self.access_ttl_s = access_ttl_s
        self.reload_every_s = reload_every_s
        self.unknown_kid_reload_s = unknown_kid_reload_s
        self._signing: tuple[str, Ed25519PrivateKey] | None = None
        self._public: dict[str, object] = {}
        self.jwks: list[dict] = []
        self._loaded_at = 0.0
        self._reloading: asyncio.Task | None = None
        # Tokens whose signature verified, until they expire: a signature check costs more
        # than the rest of a small read. A hit still needs its key to be among the keys
        # that verify now (a withdrawn key stops its tokens at the next reload).
        self._verified: dict[str, tuple[Claims, str]] = {}

    @property
    def signing_kid(self) -> str | None:
        return None if self._signing is None else self._signing[0]

    async def load(self) -> None:
        """Load the keys, creating the first one if the database has none."""
        rows = await accounts.signing_keys(self._pool)
        if not any(r["retired_at"] is None for r in rows):
            kid, pem, jwk = generate_key()
            await accounts.add_signing_key(
                self._pool, kid, ALGORITHM, pem, jwk, only_if_none_active=True
            )
            rows = await accounts.signing_keys(self._pool)
        active = next(r for r in rows if r["retired_at"] is None)
        private = serialization.load_pem_private_key(active["private_pem"].encode(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        oldest = datetime.now(UTC) - verify_window(self.access_ttl_s, self.reload_every_s)
        live = [r for r in rows if r["retired_at"] is None or r["retired_at"] > oldest]
        self._signing = (active["kid"], private)
        self._public = {r["kid"]: OKPAlgorithm.from_jwk(_as_json(r["public_jwk"])) for r in live}
        self.jwks = [_public_jwk(r) for r in live]
        self._loaded_at = time.monotonic()

    def _stale(self) -> bool:
        return time.monotonic() - self._loaded_at > self.reload_every_s

    async def _reload_quietly(self) -> None:
        try:
            await self.load()
        except Exception:  # keep verifying with the keys we have
            log.exception("could not reload the signing keys")

    def _start_reload_if_stale(self) -> None:
        if self._stale() and (self._reloading is None or self._reloading.done()):
            with contextlib.suppress(RuntimeError):  # no event loop: nothing to reload with
                self._reloading = asyncio.get_running_loop().create_task(self._reload_quietly())

    async def settle(self) -> None:
        """Wait for a reload started in the background (before closing the pool)."""
        if self._reloading is not None:
            await self._reloading

    async def current_jwks(self) -> list[dict]:
        """The public keys that verify, as stored now (one small query: other services
        fetch this rarely and cache it)."""
        await self.load()
        return self.jwks

    async def _reload_if_stale(self) -> None:
        self._start_reload_if_stale()
        if self._reloading is not None and not self._reloading.done():
            await asyncio.shield(self._reloading)

    def issue(self, user_id: uuid.UUID) -> tuple[str, int]:
        assert self._signing is not None, "KeyStore.load() first"
        # sign with the current key now (it stays valid); pick up a rotation meanwhile
        self._start_reload_if_stale()
        kid, key = self._signing
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": str(user_id),
            "iat": now,
            "exp": now + self.access_ttl_s,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid}), self.access_ttl_s

    async def verify(self, token: str) -> Claims:
        await self._reload_if_stale()
        hit = self._verified.get(token)
        if hit is not None and hit[1] in self._public and time.time() < hit[0].expires_at:
            return hit[0]  # verified before, its key still current, not expired
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        since = time.monotonic() - self._loaded_at
        if kid not in self._public and since > self.unknown_kid_reload_s:
            await self.load()
        key = self._public.get(kid) if isinstance(kid, str) else None
        if key is None or not isinstance(kid, str):
            raise InvalidToken("unknown signing key")
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                options={"require": ["exp", "iat", "sub"]},
            )
            verified = Claims(uuid.UUID(claims["sub"]), int(claims["exp"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc
        self._remember(token, verified, kid)
        return verified

    def _remember(self, token: str, claims: Claims, kid: str) -> None:
        if len(self._verified) >= VERIFIED_CACHE_SIZE:
            now = time.time()
            live = [(t, v) for t, v in self._verified.items() if v[0].expires_at > now]
            self._verified = dict(live[-VERIFIED_CACHE_SIZE // 2 :])  # the newest half
        self._verified[token] = (claims, kid)


def _public_jwk(row: asyncpg.Record) -> dict:
    jwk = row["public_jwk"]
    jwk = json.loads(jwk) if isinstance(jwk, str) else dict(jwk)
    jwk.setdefault("kid", row["kid"])
    jwk.setdefault("use", "sig")
    jwk.setdefault("alg", row["algorithm"])
    return jwk


def _as_json(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
