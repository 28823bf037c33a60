"""What ``satchel files import`` reads from the command line and the disk: durations, and which files a path names."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from pathlib import Path

import pytest
import typer

from satchel.cli.files import parse_duration
from satchel.cli.local_files import BLOCK, Unreadable, gather


@pytest.mark.parametrize(
    ("text", "span"),
    [
        ("7d", timedelta(days=7)),
        ("12h", timedelta(hours=12)),
        ("30m", timedelta(minutes=30)),
        ("1d12h", timedelta(hours=36)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5h", timedelta(minutes=90)),
        (" 2D ", timedelta(days=2)),
        ("0m", timedelta(0)),  # well-formed; the sharing rules refuse a link that ends at once
    ],
)
def test_a_duration_is_days_hours_and_minutes_added_up(text: str, span: timedelta) -> None:
    assert parse_duration(text) == span


@pytest.mark.parametrize("text", ["", "7", "d", "7 d", "7days", "-1d", "1w", "7d-", "1e3h", "12h30", "\u0667d", "1.d"])
def test_anything_else_is_not_a_duration(text: str) -> None:
    with pytest.raises(typer.BadParameter, match="expected a duration like 7d, 12h, 30m"):
        parse_duration(text)


def test_a_duration_beyond_any_calendar_is_refused_not_overflowed() -> None:
    with pytest.raises(typer.BadParameter, match="longer than any link can last"):
        parse_duration("9" * 30 + "d")


def write(path: Path, data: bytes = b"bytes") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_brings_every_file_below_it_in_name_order_under_its_own_name(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for name in ("b.txt", "a.txt", "sub/deeper/c.txt", "sub/a.txt", ".hidden"):
        write(tree / name)
    found = gather([tree])
    assert [f.shown for f in found] == [
        f"{tree}/.hidden",
        f"{tree}/a.txt",
        f"{tree}/b.txt",
        f"{tree}/sub/a.txt",
        f"{tree}/sub/deeper/c.txt",
    ]
    assert [f.name for f in found] == [".hidden", "a.txt", "b.txt", "a.txt", "c.txt"], "flattened"


def test_links_inside_the_folder_are_taken_and_a_linked_folder_is_not_walked_twice(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    real = write(tree / "sub" / "real.txt", b"real bytes")
    (tree / "alias.txt").symlink_to(real)
    (tree / "again").symlink_to(tree / "sub", target_is_directory=True)
    found = gather([tree])
    assert [(f.shown, f.path, f.size) for f in found] == [
        (f"{tree}/alias.txt", real, len(b"real bytes")),
        (f"{tree}/sub/real.txt", real, len(b"real bytes")),
    ]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_link_that_leaves_the_folder_refuses_the_whole_import(tmp_path: Path, kind: str) -> None:
    outside = write(tmp_path / "secret" / "key.pem")
    tree = tmp_path / "tree"
    write(tree / "a.txt")
    (tree / "out").symlink_to(outside if kind == "file" else outside.parent)
    with pytest.raises(Unreadable, match=r"tree/out: a link out of the folder .*secret"):
        gather([tree])


def test_a_link_to_nothing_or_a_loop_of_links_refuses_the_import(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    write(tree / "a.txt")
    (tree / "gone").symlink_to(tree / "nothing")
    with pytest.raises(Unreadable, match="tree/gone: a link that leads nowhere"):
        gather([tree])
    (tree / "gone").unlink()
    (tree / "loop").symlink_to(tree / "loop")
    with pytest.raises(Unreadable, match="tree/loop: a link that leads nowhere"):
        gather([tree])


def test_a_link_named_on_the_command_line_is_followed_as_the_operator_chose(tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "report.pdf")
    (tmp_path / "link.pdf").symlink_to(outside)
    [found] = gather([tmp_path / "link.pdf"])
    assert (found.name, found.path) == ("link.pdf", tmp_path / "link.pdf")


def test_a_missing_path_or_a_special_file_refuses_the_import(tmp_path: Path) -> None:
    with pytest.raises(Unreadable, match="nothing-here: no such file or folder"):
        gather([tmp_path / "nothing-here"])
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(Unreadable, match="pipe: not a regular file"):
        gather([tmp_path])


def test_a_files_bytes_come_in_large_blocks(tmp_path: Path) -> None:
    data = os.urandom(BLOCK * 2 + 5)
    [found] = gather([write(tmp_path / "big.bin", data)])

    async def read() -> list[bytes]:
        return [block async for block in found.blocks()]

    blocks = asyncio.run(read())
    assert [len(b) for b in blocks] == [BLOCK, BLOCK, 5] and b"".join(blocks) == data
