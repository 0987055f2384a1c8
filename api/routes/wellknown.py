"""OpenID Connect discovery and the JSON Web Key Set, so other services can verify Vigil's
access tokens (single sign-on) without calling Vigil on every request."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Config, Keys
from api.schemas import StrictJsonRoute
from api.tokens import ALGORITHM, AUDIENCE

router = APIRouter(prefix="/.well-known", tags=["tokens"], route_class=StrictJsonRoute)


class Jwk(BaseModel):
    kty: Literal["OKP"] = Field(examples=["OKP"])
    crv: Literal["Ed25519"] = Field(examples=["Ed25519"])
    x: str = Field(description="The public key, base64url", examples=["11qYAYKxCrfVS_7TyWQHOg7h"])
    kid: str = Field(description="Key id, as in the token header", examples=["3f1c0a9b2d4e6f70"])
    use: Literal["sig"] = "sig"
    alg: Literal["EdDSA"] = "EdDSA"


class JwkSet(BaseModel):
    keys: list[Jwk] = Field(
        description="Every key whose tokens may still be valid: the signing key first, then"
        " retired keys until the tokens they signed have expired"
    )


class OpenIdConfiguration(BaseModel):
    issuer: str = Field(examples=["https://vigil.example.org"])
    jwks_uri: str = Field(examples=["https://vigil.example.org/.well-known/jwks.json"])
    token_endpoint: str = Field(examples=["https://vigil.example.org/v1/auth/token"])
    grant_types_supported: list[str] = Field(examples=[["password", "refresh_token"]])
    response_types_supported: list[str] = Field(examples=[["token"]])
    subject_types_supported: list[str] = Field(examples=[["public"]])
    id_token_signing_alg_values_supported: list[str] = Field(examples=[["EdDSA"]])
    token_endpoint_auth_methods_supported: list[str] = Field(examples=[["none"]])
    claims_supported: list[str] = Field(examples=[["iss", "aud", "sub", "iat", "exp", "jti"]])
    audience: str = Field(description="The `aud` of Vigil's access tokens", examples=["vigil"])


@router.get("/jwks.json", response_model=JwkSet, summary="Public keys that verify access tokens")
async def jwks(keys: Keys) -> JwkSet:
    return JwkSet(keys=[Jwk(**k) for k in await keys.current_jwks()])


@router.get(
    "/openid-configuration",
    response_model=OpenIdConfiguration,
    summary="OpenID Connect discovery document",
)
async def openid_configuration(config: Config) -> OpenIdConfiguration:
    issuer = config.issuer.rstrip("/")
    return OpenIdConfiguration(
        issuer=issuer,
        jwks_uri=f"{issuer}/.well-known/jwks.json",
        token_endpoint=f"{issuer}/v1/auth/token",
        grant_types_supported=["password", "refresh_token"],
        response_types_supported=["token"],
        subject_types_supported=["public"],
        id_token_signing_alg_values_supported=[ALGORITHM],
        token_endpoint_auth_methods_supported=["none"],
        claims_supported=["iss", "aud", "sub", "iat", "exp", "jti"],
        audience=AUDIENCE,
    )
