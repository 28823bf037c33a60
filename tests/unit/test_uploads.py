"""The resumable-upload aggregate and the checksums of its requests, in plain Python."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from satchel.domain.requests import UploadRequest
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
        upload().ensure_reached(2)
    upload().ensure_reached(1)


def test_an_upload_through_a_link_is_reached_through_that_link_only() -> None:
    through_link = upload(request_id=7)
    through_link.ensure_reached(1, 7)
    for owner_id, request_id in ((1, None), (1, 8), (2, 7)):  # the owner's own API, another link, another owner
        with pytest.raises(UploadNotFound):
            through_link.ensure_reached(owner_id, request_id)
    with pytest.raises(UploadNotFound):  # nor is the owner's own upload reached through a link of theirs
        upload().ensure_reached(1, 7)


def link(**changes: object) -> UploadRequest:
    fields: dict[str, object] = {
        "id": 7, "token": "t" * 32, "owner_id": 1, "created_at": NOW, "expires_at": NOW + timedelta(days=1),
        "max_files": 3, "max_bytes": 1000, "received_files": 0, "received_bytes": 0, "password_hash": None,
        "note": None,
    }  # fmt: skip
    return UploadRequest(**{**fields, **changes})  # type: ignore[arg-type]


def test_an_upload_is_abandoned_once_idle_past_its_expiry_or_its_link_cannot_take_it() -> None:
    assert not upload().abandoned(NOW) and upload().abandoned(NOW + timedelta(hours=24))
    through = upload(request_id=7)
    assert not through.abandoned(NOW, link())
    for ended in (
        link(revoked_at=NOW), link(expires_at=NOW), link(received_files=3), link(received_bytes=901),  # 99 left < 100
    ):  # fmt: skip
        assert through.abandoned(NOW, ended), ended
    finished = upload(request_id=7, offset=100, file_id="f" * 32)
    assert not finished.abandoned(NOW, link(received_files=3)), "a finished one stays until its own expiry"


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
