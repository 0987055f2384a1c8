"""Key rotation: new tokens use the new key, old tokens keep verifying until their retired
key's window has passed, and replicas pick the new key up by themselves."""

from __future__ import annotations

import uuid

import jwt
import pytest

from api.tokens import InvalidToken, KeyStore
from cluster.keys import rotate_keys
from storage.pools import open_pool


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


async def test_rotation_switches_signing_and_keeps_old_tokens_valid(
    fresh_database_url: str,
) -> None:
    pool = await open_pool(fresh_database_url)
    try:
        # a replica that reloads on every call, and one that would wait an hour
        eager = KeyStore(pool, "http://vigil.test", 900, reload_every_s=0)
        lazy = KeyStore(pool, "http://vigil.test", 900, reload_every_s=3600, unknown_kid_reload_s=0)
        await eager.load()
        await lazy.load()
        user = uuid.uuid4()
        old_token = eager.issue(user)[0]
        old_kid = kid_of(old_token)

        new_kid, retired = await rotate_keys(fresh_database_url, 900)
        assert retired == [old_kid] and new_kid != old_kid

        assert (await eager.verify(old_token)).user_id == user  # reloads, still verifies
        new_token = eager.issue(user)[0]
        assert kid_of(new_token) == new_kid
        assert {k["kid"] for k in eager.jwks} == {old_kid, new_kid}
        # the lazy replica has not reloaded, but a token naming a key it has not seen
        # makes it reload at once
        assert kid_of(lazy.issue(user)[0]) == old_kid
        assert (await lazy.verify(new_token)).user_id == user
        assert kid_of(lazy.issue(user)[0]) == new_kid
        await eager.settle()
    finally:
        await pool.close()


async def test_a_key_retired_longer_than_tokens_live_no_longer_verifies(
    fresh_database_url: str,
) -> None:
    pool = await open_pool(fresh_database_url)
    try:
        store = KeyStore(pool, "http://vigil.test", 900, reload_every_s=0)
        await store.load()
        old_token = store.issue(uuid.uuid4())[0]
        await rotate_keys(fresh_database_url, 900)
        # the old key was retired 16 minutes + 60 s + 60 s ago: every token it signed is dead
        await pool.execute(
            "UPDATE signing_keys SET retired_at = now() - interval '18 minutes' WHERE kid = $1",
            kid_of(old_token),
        )
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await store.verify(old_token)
        assert kid_of(old_token) not in {k["kid"] for k in store.jwks}
        # a further rotation forgets it altogether (its private key is deleted)
        await pool.execute(
            "UPDATE signing_keys SET retired_at = now() - interval '2 hours' WHERE kid = $1",
            kid_of(old_token),
        )
        await rotate_keys(fresh_database_url, 900)
        kids = {r["kid"] for r in await pool.fetch("SELECT kid FROM signing_keys")}
        assert kid_of(old_token) not in kids and len(kids) == 2
        await store.settle()
    finally:
        await pool.close()
