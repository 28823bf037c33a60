"""The resumable-upload aggregate and the checksums of its requests, in plain Python."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from satchel.domain.uploads import (
    BadChecksum,
    Checksum,
    OffsetMismatch,
    Upload,
    UploadExpired,
    UploadNotFound,
    UploadOverrun,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def upload(**changes: object) -> Upload:
    fields: dict[str, object] = {
        "id": "a" * 32, "owner_id": 1, "length": 100, "offset": 40, "name": "a.bin", "content_type": None,
        "storage_key": "files/2026/11/" + "a" * 32, "staging": {}, "created_at": NOW,
        "expires_at": NOW + timedelta(hours=24),
    }  # fmt: skip
    return Upload(**{**fields, **changes})  # type: ignore[arg-type]


def test_a_request_may_carry_only_what_is_left_from_the_current_offset() -> None:
    assert upload().room_at(40, None) == 60
    assert upload().room_at(40, 60) == 60
    with pytest.raises(UploadOverrun):
        upload().room_at(40, 61)
    with pytest.raises(OffsetMismatch) as wrong:
        upload().room_at(0, 10)
    assert wrong.value.expected == 40 and "40" in wrong.value.message


def test_a_finished_upload_takes_no_more_bytes() -> None:
    with pytest.raises(OffsetMismatch):
        upload(offset=100, file_id="f" * 32).room_at(100, 0)


def test_an_unfinished_upload_past_its_expiry_is_gone_but_a_finished_one_is_not() -> None:
    with pytest.raises(UploadExpired):
        upload().ensure_alive(NOW + timedelta(hours=24))
    upload(offset=100, file_id="f" * 32).ensure_alive(NOW + timedelta(days=3))


def test_someone_elses_upload_is_not_found() -> None:
    with pytest.raises(UploadNotFound):
        upload().ensure_owned_by(2)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "md5"])
def test_a_checksum_header_names_its_algorithm_and_carries_a_base64_digest(algorithm: str) -> None:
    digest = hashlib.new(algorithm, b"bytes").digest()
    checksum = Checksum.parse(f"{algorithm} {base64.b64encode(digest).decode()}")
    assert checksum.matches(digest) and not checksum.matches(hashlib.new(algorithm, b"other").digest())


@pytest.mark.parametrize(
    "header", ["crc32 AAAA", "sha1 not-base64!", "sha1 " + base64.b64encode(b"short").decode(), ""]
)
def test_a_checksum_this_server_cannot_check_is_a_bad_request(header: str) -> None:
    with pytest.raises(BadChecksum) as refused:
        Checksum.parse(header)
    assert refused.value.status == 400
