"""``satchel files …``: bring files that are already on the server into an account, and share them."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from satchel.cli.context import process_settings, run_use_case

if TYPE_CHECKING:
    from satchel.services.imports import Imported

app = typer.Typer(help="Bring files already on the server into an account.", no_args_is_help=True)

_DURATION = re.compile(r"(?:[0-9]+(?:\.[0-9]+)?[dhm])+")
_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)([dhm])")
_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m`` or a sum of them (``1d12h``, ``1.5h``) as a time span; anything else is refused."""
    compact = text.strip().lower()
    if not _DURATION.fullmatch(compact):
        raise typer.BadParameter(f"expected a duration like 7d, 12h, 30m or 1d12h, not {text!r}")
    try:
        return sum((float(number) * _UNITS[unit] for number, unit in _PART.findall(compact)), timedelta())
    except OverflowError:
        raise typer.BadParameter(f"{text!r} is longer than any link can last") from None


# One line per paragraph: the help renderer keeps line breaks inside paragraphs after the first.
IMPORT_HELP = "\n\n".join(
    [
        "Import files that are on this server's disk into an account, and print each one's id and name "
        "(with --share, then the link and its terms).",
        "All or nothing: every path is checked before the first byte is stored (it exists, is a regular file, "
        "can be read), then the account, each name and size, and the quota for all the files together. If "
        "anything is refused or fails, even while the bytes stream, nothing of the import is kept: no bytes, "
        "no records. The exit code is then 1, with one line on stderr saying why.",
        "A folder brings every file below it, sub-folders and hidden files included, each under its own name: "
        "sub-folders are flattened (photos/2024/a.jpg becomes a.jpg). Inside a folder, a symbolic link that "
        "leads out of it stops the import; one to a folder inside it is not walked twice.",
        'Progress: a bar on a terminal, JSON "progress" events (bytes stored of all the files) otherwise.',
    ]
)


Paths = Annotated[list[Path], typer.Argument(help="Files, or folders whose files (all below them) to import.")]
ExpiresIn = Annotated[
    timedelta | None,
    typer.Option(
        "--expires-in",
        parser=parse_duration,
        metavar="DURATION",
        help="How long the link lasts: 7d, 12h, 30m, 1d12h (default and maximum: the server's).",
    ),
]
MaxDownloads = Annotated[int | None, typer.Option("--max-downloads", help="Downloads the link allows.", min=1)]
PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Lock the link with a password read from stdin.")]


@app.command("import", help=IMPORT_HELP)
def import_files(
    paths: Paths,
    owner: Annotated[str, typer.Option("--owner", help="Email address of the account the files go into.")],
    share: Annotated[bool, typer.Option("--share", help="Make one link to all of the imported files.")] = False,
    expires_in: ExpiresIn = None,
    max_downloads: MaxDownloads = None,
    password_stdin: PasswordStdin = False,
    title: Annotated[str | None, typer.Option("--title", help="The link's title, the heading of its page.")] = None,
    note: Annotated[str | None, typer.Option("--note", help="A note shown with the link's files.")] = None,
) -> None:
    """Import files on this server's disk into an account, all or nothing (see IMPORT_HELP)."""
    if not share and (password_stdin or any(term is not None for term in (expires_in, max_downloads, title, note))):
        _stop("--expires-in, --max-downloads, --password-stdin, --title and --note describe the link: add --share.", 2)
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    if password_stdin and not password:
        _stop("--password-stdin: no password on the first line of stdin.", 2)

    from satchel.cli.local_files import Unreadable, gather
    from satchel.runtime.progress import reporter
    from satchel.services.imports import ShareRequest, Source

    settings = process_settings("admin")
    try:
        found = gather(paths)
    except Unreadable as exc:
        _stop(f"{exc.message} Nothing was imported.", 1)
    sources = [Source(f.shown, f.name, f.size, f.blocks) for f in found]

    request = None
    if share:
        hours = None if expires_in is None else expires_in.total_seconds() / 3600
        request = ShareRequest(hours, max_downloads, note, title, password)

    try:
        with reporter("import") as progress:
            imported = run_use_case(
                lambda s: s.imports.import_files(owner, sources, share=request, progress=progress), settings
            )
    except KeyboardInterrupt:
        _stop("interrupted.", 130)
    for file in imported.files:
        typer.echo(f"{file.id}\t{file.name}")
    if imported.share is not None:
        typer.echo(_link_line(imported, settings.links_base))


def _stop(message: str, code: int) -> NoReturn:
    typer.echo(f"satchel: {message}", err=True)
    raise typer.Exit(code)


def _link_line(imported: Imported, base: str) -> str:
    """The link and its terms, on one line: what the operator sends on."""
    assert imported.share is not None
    share = imported.share.share
    terms = [f"expires {share.expires_at.isoformat(timespec='seconds')}"]
    if share.max_downloads is not None:
        terms.append(f"{share.max_downloads} download{'' if share.max_downloads == 1 else 's'}")
    if share.has_password:
        terms.append("password")
    if share.title:
        terms.append(f"title {share.title}")
    return "\t".join([f"{base}/s/{share.token}", *terms])
