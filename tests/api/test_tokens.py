"""Signing keys: replicas starting together agree on one key; tokens verify across replicas."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import pytest

from api.tokens import InvalidToken, KeyStore
from cluster.keys import rotate_keys
from storage.pools import open_pool


async def test_replicas_starting_together_share_one_key(fresh_database_url: str) -> None:
    pools = [await open_pool(fresh_database_url) for _ in range(4)]
    try:
        stores = [KeyStore(p, "http://vigil.test", 900) for p in pools]
        await asyncio.gather(*(s.load() for s in stores))
        user = uuid.uuid4()
        tokens = [s.issue(user)[0] for s in stores]
        for store in stores:  # every replica verifies every other replica's token
            for token in tokens:
                assert (await store.verify(token)).user_id == user
        rows = await pools[0].fetchval("SELECT count(*) FROM signing_keys")
        assert rows == 1
        other = KeyStore(pools[0], "http://elsewhere.test", 900)
        await other.load()
        with pytest.raises(InvalidToken):
            await other.verify(tokens[0])  # wrong issuer
        with pytest.raises(InvalidToken):
            await stores[0].verify(tokens[0][:-4] + "AAAA")  # tampered signature
    finally:
        await asyncio.gather(*(p.close() for p in pools))


async def test_a_verified_token_is_remembered_only_while_it_and_its_key_live(
    fresh_database_url: str,
) -> None:
    pool = await open_pool(fresh_database_url)
    try:
        store = KeyStore(pool, "http://vigil.test", 2, reload_every_s=0)
        await store.load()
        user = uuid.uuid4()
        short = store.issue(user)[0]
        assert (await store.verify(short)).user_id == user
        assert (await store.verify(short)).user_id == user  # answered from memory
        await asyncio.sleep(2.1)
        with pytest.raises(InvalidToken):
            await store.verify(short)  # expired: memory never outlives the token

        lasting = KeyStore(pool, "http://vigil.test", 900, reload_every_s=0)
        await lasting.load()
        token = lasting.issue(user)[0]
        assert (await lasting.verify(token)).user_id == user
        await rotate_keys(fresh_database_url, 900)
        await pool.execute(  # its key withdrawn: the token it signed is dead at once
            "UPDATE signing_keys SET retired_at = now() - interval '2 hours' WHERE kid = $1",
            jwt.get_unverified_header(token)["kid"],
        )
        with pytest.raises(InvalidToken, match="unknown signing key"):
            await lasting.verify(token)
        await lasting.settle()
    finally:
        await pool.close()
