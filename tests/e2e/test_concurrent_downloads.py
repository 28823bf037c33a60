"""A download limit holds across processes: the count is taken in one SQL statement."""

from __future__ import annotations

import concurrent.futures

import httpx

from satchel.runtime.embedded import free_port

from support.processes import SatchelProcess, create_account


def test_twenty_simultaneous_downloads_of_a_one_download_share_let_exactly_one_through(
    base_env: dict[str, str],
) -> None:
    token = create_account(base_env, "racer@example.test")
    webs = []
    for _ in range(2):  # two separate web processes (each with its own workers) on the same backing services
        env = {**base_env, "PORT": str(free_port()), "WEB_CONCURRENCY": "2"}
        webs.append((SatchelProcess("web", env=env), f"http://127.0.0.1:{env['PORT']}"))
    try:
        for process, url in webs:
            process.wait_http(f"{url}/healthz")
        first = webs[0][1]
        uploaded = httpx.put(
            f"{first}/api/files/prize.bin",
            content=b"only one of you gets this" * 1000,
            params={"max_downloads": 1},
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        path = f"/s/{uploaded['share']['token']}/download"

        def download(i: int) -> int:
            return httpx.get(webs[i % 2][1] + path, timeout=30).status_code

        with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
            codes = list(pool.map(download, range(20)))
        assert codes.count(200) == 1, codes
        assert codes.count(410) == 19, codes
    finally:
        for process, _ in webs:
            process.stop()
