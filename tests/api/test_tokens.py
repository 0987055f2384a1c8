"""Signing keys: replicas starting together agree on one key; tokens verify across replicas."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from api.tokens import InvalidToken, KeyStore
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
