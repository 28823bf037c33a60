"""What ``satchel files import`` reads from this server's disk: the files its paths name, and their bytes.

The import's edge, as the request body is the upload's: it finds and reads files, the Imports service decides
what becomes of them. Every path is looked at before the first byte is stored, so a path that cannot be read
stops the whole import before it begins.

- A file is taken as named, a link named on the command line included (the operator chose it).
- A folder brings every file below it, recursively, in name order, each under its own name: sub-folders
  are flattened, so ``photos/2024/a.jpg`` is imported as ``a.jpg``.
- Inside a folder, a link must stay inside it: one that leads out of the folder given (or nowhere) is
  refused, never followed. A link to a folder inside it is not walked again: its files come from where they are.
- Anything but a regular file (a device, a pipe, a socket) is refused.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from satchel.domain.errors import InvalidInput

# Bytes read at a time. Measured into file storage (1 GiB): 1 MiB blocks read on the event loop went in ~1.4 s,
# 4 MiB blocks ~3 s, and a worker thread per read cost more than it saved. This process has no other work on
# its loop, and the store's writes run on threads of their own while the next block is read.
BLOCK = 1024 * 1024


class Unreadable(InvalidInput):
    """A path an import cannot take."""


@dataclass(frozen=True)
class LocalFile:
    """A file found for an import: how it is named to the operator, where its bytes are, its size when found."""

    shown: str
    path: Path
    size: int

    @property
    def name(self) -> str:
        """The name it is imported under: its own, without the folders it was found in."""
        return Path(self.shown).name

    async def blocks(self) -> AsyncIterator[bytes]:
        """The file's bytes in large blocks; a failed read names the file."""
        try:
            with self.path.open("rb", buffering=0) as source:
                while block := source.read(BLOCK):
                    yield block
        except OSError as exc:
            raise Unreadable(f"{self.shown}: cannot be read ({exc.strerror or exc}).") from None


def gather(paths: Sequence[Path]) -> list[LocalFile]:
    """Every file ``paths`` name, in order, each checked to be a regular file this process can open."""
    found: list[LocalFile] = []
    for path in paths:
        if not os.path.lexists(path):
            raise Unreadable(f"{path}: no such file or folder.")
        found.extend(_below(path) if path.is_dir() else [_readable(path, path)])
    return found


def _below(folder: Path) -> Iterator[LocalFile]:
    root = folder.resolve(strict=True)

    def refuse(error: OSError) -> None:
        raise Unreadable(f"{error.filename}: cannot be read ({error.strerror}).")

    for place, folders, names in os.walk(root, onerror=refuse):
        folders.sort()
        here = folder / Path(place).relative_to(root)
        for name in folders:
            if (Path(place) / name).is_symlink():
                _inside(root, here / name, Path(place) / name)  # refused if it leads out; else walked where it is
        for name in sorted(names):
            shown, actual = here / name, Path(place) / name
            yield _readable(shown, _inside(root, shown, actual) if actual.is_symlink() else actual)


def _inside(root: Path, shown: Path, link: Path) -> Path:
    """Where ``link`` leads, if that is inside ``root``: links out of the folder given are never followed."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # a link to nothing, or a loop of links
        raise Unreadable(f"{shown}: a link that leads nowhere.") from None
    if not target.is_relative_to(root):
        raise Unreadable(f"{shown}: a link out of the folder ({target}); links may not leave the folder imported.")
    return target


def _readable(shown: Path, path: Path) -> LocalFile:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):
            raise Unreadable(f"{shown}: not a regular file.")
        with path.open("rb"):  # can this process read it? Better known now than after the files before it landed
            pass
    except OSError as exc:
        raise Unreadable(f"{shown}: cannot be read ({exc.strerror or exc}).") from None
    return LocalFile(str(shown), path, status.st_size)
