"""Sizes as people read and type them: one unit system, binary, everywhere (pages, mails, commands)."""

from __future__ import annotations

import pytest

from satchel.domain.errors import InvalidInput
from satchel.domain.files import human_size, parse_size


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1 KiB"),
        (1536, "1.5 KiB"),
        (3 * 1024**2 + 123, "3 MiB"),
        (50 * 1024**3, "50 GiB"),
        (int(1.25 * 1024**4), "1.2 TiB"),
        (5 * 1024**5, "5120 TiB"),
    ],
)
def test_a_size_is_shown_in_binary_units_without_a_needless_decimal(size: int, shown: str) -> None:
    assert human_size(size) == shown


@pytest.mark.parametrize(
    ("typed", "size"),
    [
        ("100GiB", 100 * 1024**3),
        ("1.5 TiB", 3 * 1024**4 // 2),
        (" 512 mib ", 512 * 1024**2),
        ("1.1GiB", 1181116006),  # exact digits, rounded down: not what a float makes of 1.1
        ("4096", 4096),
        ("7 B", 7),
    ],
)
def test_a_size_is_typed_with_a_binary_unit_or_none_for_bytes(typed: str, size: int) -> None:
    assert parse_size(typed) == size


@pytest.mark.parametrize("typed", ["100GB", "1 MB", "", "GiB", "-1GiB", "1e9", "1,5 GiB", "ten GiB", "9" * 16])
def test_anything_else_is_refused_saying_how_to_type_a_size(typed: str) -> None:
    with pytest.raises(InvalidInput, match="binary unit: B, KiB, MiB, GiB or TiB"):
        parse_size(typed)


def test_what_is_shown_reads_back_as_the_same_size() -> None:
    for size in (1024, 50 * 1024**3, 3 * 1024**4):
        assert parse_size(human_size(size)) == size
