"""Single sign-on with an organisation's OpenID Connect provider (authorization code flow
with PKCE and a nonce; Authlib is the OAuth client).

``GET /v1/auth/sso/{provider}/login`` starts a sign-in: it stores the PKCE verifier and the
nonce under the hash of a fresh ``state`` (in the database, so any replica can finish it) and
answers the provider's authorization URL. The provider sends the browser back to
``/callback``, which takes the stored sign-in (once), exchanges the code, checks the ID token
(signature, issuer, audience, expiry, nonce), requires a verified email in an allowed domain,
links the account by that email and answers Vigil's own tokens, as the password login does.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
import jwt
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.config import ApiConfig, SsoProvider
from api.deps import Config, Keys, Pool
from api.errors import ErrorBody, error, responses
from api.routes.auth import TokenResponse, issue_tokens
from api.schemas import StrictJsonRoute
from api.tokens import hash_secret
from storage import sso

# When StrictJsonRoute (api/schemas.py) is merged, pass route_class=StrictJsonRoute here.
router = APIRouter(prefix="/v1/auth/sso", tags=["auth"], route_class=StrictJsonRoute)

LOGIN_TTL = timedelta(minutes=10)
METADATA_TTL_S = 3600.0
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}

ProviderName = Annotated[str, Path(max_length=40, examples=["acme"])]


class SsoStart(BaseModel):
    authorization_url: str = Field(
        description="Open this in the user's browser; the provider redirects back to"
        " /v1/auth/sso/{provider}/callback, which answers Vigil's tokens",
        examples=["https://login.acme.example/authorize?response_type=code&client_id=vigil&…"],
    )


def provider_of(config: ApiConfig, name: str) -> SsoProvider:
    for provider in config.sso_providers:
        if provider.name == name:
            return provider
    raise error(404, f"no single sign-on provider {name!r}")


def redirect_uri(config: ApiConfig, provider: SsoProvider) -> str:
    return f"{config.issuer}/v1/auth/sso/{provider.name}/callback"


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(url)
            response.raise_for_status()
            return response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise error(502, f"the sign-in provider did not answer: {type(exc).__name__}") from None


async def metadata(provider: SsoProvider) -> dict[str, Any]:
    """The provider's discovery document, cached per replica for an hour."""
    cached = _metadata.get(provider.issuer)
    if cached and time.monotonic() - cached[0] < METADATA_TTL_S:
        return cached[1]
    doc = await _get_json(provider.issuer.rstrip("/") + "/.well-known/openid-configuration")
    _metadata[provider.issuer] = (time.monotonic(), doc)
    return doc


def oauth_client(config: ApiConfig, provider: SsoProvider) -> AsyncOAuth2Client:
    return AsyncOAuth2Client(
        client_id=provider.client_id,
        client_secret=provider.client_secret,
        scope=provider.scope,
        redirect_uri=redirect_uri(config, provider),
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if provider.client_secret else "none",
        timeout=10,
    )


@router.get(
    "/{provider}/login",
    response_model=SsoStart,
    summary="Start signing in with an organisation's OpenID Connect provider",
    responses=responses(404) | {502: {"model": ErrorBody, "description": "Provider down"}},
)
async def login(provider: ProviderName, pool: Pool, config: Config) -> SsoStart:
    """Answers the provider's authorization URL (authorization code flow with PKCE S256 and a
    nonce); the sign-in must be finished within ten minutes."""
    chosen = provider_of(config, provider)
    doc = await metadata(chosen)
    state, verifier, nonce = generate_token(32), generate_token(48), generate_token(32)
    expires = datetime.now(UTC) + LOGIN_TTL
    await sso.save_login(pool, hash_secret(state), chosen.name, verifier, nonce, expires)
    async with oauth_client(config, chosen) as client:
        url, _ = client.create_authorization_url(
            doc["authorization_endpoint"], state=state, code_verifier=verifier, nonce=nonce
        )
    return SsoStart(authorization_url=url)


@router.get(
    "/{provider}/callback",
    response_model=TokenResponse,
    summary="Finish signing in with an OpenID Connect provider: Vigil's tokens",
    responses=responses(401, 403, 404, 422)
    | {502: {"model": ErrorBody, "description": "The provider did not answer"}},
)
async def callback(
    provider: ProviderName,
    pool: Pool,
    keys: Keys,
    config: Config,
    state: Annotated[str, Query(max_length=200)],
    code: Annotated[str | None, Query(max_length=2000)] = None,
    error_code: Annotated[str | None, Query(alias="error", max_length=200)] = None,
) -> TokenResponse:
    """Where the provider sends the browser back. A verified email in one of the provider's
    allowed domains signs in as the Vigil account with that email (made on first sign-in);
    the answer is Vigil's own access and refresh tokens."""
    chosen = provider_of(config, provider)
    started = await sso.take_login(pool, hash_secret(state), chosen.name)
    if started is None:
        raise error(401, "unknown or expired sign-in: start again")
    if error_code is not None or not code:
        raise error(401, f"the provider refused the sign-in: {error_code or 'no code'}")
    doc = await metadata(chosen)
    async with oauth_client(config, chosen) as client:
        try:
            token = await client.fetch_token(
                doc["token_endpoint"], code=code, code_verifier=started["code_verifier"]
            )
        except Exception as exc:  # an OAuth error answer or a transport failure
            raise error(401, f"the provider refused the code: {type(exc).__name__}") from None
    claims = await id_token_claims(chosen, doc, token.get("id_token"), started["nonce"])
    email = checked_email(chosen, claims)
    user = await sso.user_for_identity(
        pool, chosen.name, str(claims["sub"]), email, str(claims.get("name") or email)
    )
    if user["disabled_at"] is not None:
        raise error(401, "account disabled")
    return await issue_tokens(pool, keys, config, user["id"], uuid.uuid4())


async def id_token_claims(
    provider: SsoProvider, doc: dict[str, Any], id_token: str | None, nonce: str
) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, expiry and nonce hold."""
    if not id_token:
        raise error(401, "the provider sent no ID token")
    keys = jwt.PyJWKSet.from_dict(await _get_json(doc["jwks_uri"]))
    try:
        kid = jwt.get_unverified_header(id_token).get("kid")
        key = next(k for k in keys.keys if kid is None or k.key_id == kid)
        claims = jwt.decode(
            id_token,
            key,
            algorithms=ID_TOKEN_ALGORITHMS,
            audience=provider.client_id,
            issuer=doc.get("issuer", provider.issuer),
            leeway=60,
            options={"require": ["exp", "iat", "sub", "nonce"]},
        )
    except (jwt.PyJWTError, StopIteration):
        raise error(401, "invalid ID token") from None
    if claims["nonce"] != nonce:
        raise error(401, "ID token nonce does not match this sign-in")
    return claims


def checked_email(provider: SsoProvider, claims: dict[str, Any]) -> str:
    email = str(claims.get("email") or "")
    if claims.get("email_verified") not in (True, "true"):
        raise error(403, "the provider has not verified this account's email")
    domain = email.rpartition("@")[2].lower()
    if domain not in {d.lower() for d in provider.allowed_domains}:
        raise error(403, f"email domain {domain!r} may not sign in through {provider.name!r}")
    return email
