"""``satchel shell``: an interactive prompt with the services of this release and environment."""

from __future__ import annotations

from satchel import __version__
from satchel.cli.context import process_settings


def shell() -> None:
    """A Python prompt with `settings`, `services` and `run(coroutine)`, in this release and environment."""
    import asyncio
    import code

    settings = process_settings("admin")
    from satchel.bootstrap import open_services

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    services = open_services(settings, pooled=False)
    banner = (
        f"Satchel {__version__} (release {settings.release_id}) shell\n"
        "  settings, services      e.g. run(services.users.everyone())\n"
        "  run(coroutine)          runs it to completion and returns its result"
    )
    try:
        code.interact(banner=banner, local={"settings": settings, "services": services, "run": loop.run_until_complete})
    finally:
        loop.run_until_complete(services.close())
        loop.close()
