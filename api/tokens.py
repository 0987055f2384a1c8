"""Access tokens: short-lived JWTs signed with Ed25519 keys kept in the database.

The newest unretired key signs; every stored key verifies, so a rotated key does not log
anyone out. A token naming a key this process has not seen makes it reload the keys once.
Refresh tokens are opaque random strings, stored only as SHA-256 hashes.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from dataclasses import dataclass

import asyncpg
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

from storage import accounts

ALGORITHM = "EdDSA"
AUDIENCE = "vigil"
_RELOAD_MIN_INTERVAL_S = 1.0


class InvalidToken(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Claims:
    user_id: uuid.UUID
    expires_at: int


def new_refresh_token() -> tuple[str, bytes]:
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _generate_key() -> tuple[str, str, dict]:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(OKPAlgorithm.to_jwk(key.public_key()))
    kid = hashlib.sha256(json.dumps(jwk, sort_keys=True).encode()).hexdigest()[:16]
    jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    return kid, pem, jwk


class KeyStore:
    def __init__(self, pool: asyncpg.Pool, issuer: str, access_ttl_s: int) -> None:
        self._pool = pool
        self.issuer = issuer
        self.access_ttl_s = access_ttl_s
        self._signing: tuple[str, Ed25519PrivateKey] | None = None
        self._public: dict[str, object] = {}
        self._loaded_at = 0.0

    async def load(self) -> None:
        """Load the keys, creating the first one if the database has none."""
        rows = await accounts.signing_keys(self._pool)
        if not any(r["retired_at"] is None for r in rows):
            kid, pem, jwk = _generate_key()
            await accounts.add_signing_key(
                self._pool, kid, ALGORITHM, pem, jwk, only_if_none_active=True
            )
            rows = await accounts.signing_keys(self._pool)
        active = next(r for r in rows if r["retired_at"] is None)
        private = serialization.load_pem_private_key(active["private_pem"].encode(), password=None)
        assert isinstance(private, Ed25519PrivateKey)
        self._signing = (active["kid"], private)
        self._public = {r["kid"]: OKPAlgorithm.from_jwk(_as_json(r["public_jwk"])) for r in rows}
        self._loaded_at = time.monotonic()

    def issue(self, user_id: uuid.UUID) -> tuple[str, int]:
        assert self._signing is not None, "KeyStore.load() first"
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
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        if kid not in self._public and time.monotonic() - self._loaded_at > _RELOAD_MIN_INTERVAL_S:
            await self.load()
        key = self._public.get(kid)
        if key is None:
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
            return Claims(uuid.UUID(claims["sub"]), int(claims["exp"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(str(exc)) from exc


def _as_json(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)
