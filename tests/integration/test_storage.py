"""One specification for every object store ``STORAGE_URL`` can name: memory, a folder, S3."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from satchel.adapters.storage import ObstoreStorage, open_storage
from satchel.ports.health import ServiceUnavailable
from satchel.settings import load_settings

from support.moto import MotoServer

MIB = 1024 * 1024
CHUNKS = 20  # 20 MiB in 1 MiB chunks: more than one read block and one multipart part


def storage(storage_url: str, **aws: Any) -> ObstoreStorage:
    return open_storage(
        load_settings(
            database_url="postgresql://unused/unused",
            redis_url="redis://unused",
            secret_key="k" * 40,
            storage_url=storage_url,
            **aws,
        )
    )


def s3_settings(moto_server: MotoServer, bucket: str) -> dict[str, str]:
    return {
        "storage_url": f"s3://{bucket}",
        "aws_endpoint_url": moto_server.endpoint,
        "aws_access_key_id": "satchel-test",
        "aws_secret_access_key": "satchel-test-secret",
        "aws_region": "us-east-1",
    }


@pytest.fixture(params=["memory", "file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObstoreStorage:
    if request.param == "memory":
        return storage("memory://")
    if request.param == "file":
        return storage(f"file://{tmp_path / 'objects'}")
    moto_server: MotoServer = request.getfixturevalue("moto_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return storage(**s3_settings(moto_server, bucket))


def payload(index: int) -> bytes:
    """1 MiB that differs from chunk to chunk, so a misplaced chunk changes the hash."""
    return hashlib.sha256(str(index).encode()).digest() * (MIB // 32)


async def chunks() -> AsyncIterator[bytes]:
    for index in range(CHUNKS):
        yield payload(index)


EXPECTED = b"".join(payload(i) for i in range(CHUNKS))


async def read(store: ObstoreStorage, key: str, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([block async for block in store.get_stream(key, start, end)])


def test_a_streamed_upload_reads_back_identically(store: ObstoreStorage) -> None:
    async def scenario() -> None:
        stored = await store.put_stream("users/1/big.bin", chunks())
        assert stored.size == len(EXPECTED)
        head = await store.head("users/1/big.bin")
        assert head is not None
        assert head.size == len(EXPECTED)
        data = await read(store, "users/1/big.bin")
        assert hashlib.sha256(data).hexdigest() == hashlib.sha256(EXPECTED).hexdigest()

    asyncio.run(scenario())


def test_get_stream_honours_byte_ranges(store: ObstoreStorage) -> None:
    async def scenario() -> None:
        await store.put_stream("ranged.bin", chunks())
        assert await read(store, "ranged.bin", 0, 10) == EXPECTED[:10]
        assert await read(store, "ranged.bin", MIB - 5, MIB + 5) == EXPECTED[MIB - 5 : MIB + 5]
        tail = await read(store, "ranged.bin", len(EXPECTED) - 100)
        assert tail == EXPECTED[-100:]
        assert await read(store, "ranged.bin", 7, 7) == b""

    asyncio.run(scenario())


def test_head_of_a_missing_key_is_none(store: ObstoreStorage) -> None:
    assert asyncio.run(store.head("no/such/key")) is None


def test_delete_removes_and_deleting_a_missing_key_is_fine(store: ObstoreStorage) -> None:
    async def one_chunk() -> AsyncIterator[bytes]:
        yield b"hello"

    async def scenario() -> None:
        await store.put_stream("doomed.txt", one_chunk())
        assert await store.head("doomed.txt") is not None
        await store.delete("doomed.txt")
        assert await store.head("doomed.txt") is None
        await store.delete("doomed.txt")
        await store.delete("never/existed.txt")

    asyncio.run(scenario())


def test_ping_succeeds(store: ObstoreStorage) -> None:
    asyncio.run(store.ping())


def test_ping_of_a_bucket_that_does_not_exist_raises(moto_server: MotoServer) -> None:
    missing = storage(**s3_settings(moto_server, "satchel-no-such-bucket"))
    with pytest.raises(ServiceUnavailable):
        asyncio.run(missing.ping())
