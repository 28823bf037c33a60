"""``/readyz`` tells an orchestrator the truth when a backing service goes away and comes back."""

from __future__ import annotations

import httpx

from satchel.runtime.embedded import EmbeddedRedis

from support.processes import SatchelProcess


def test_readyz_turns_503_naming_redis_when_it_stops_and_200_when_it_returns(
    base_env: dict[str, str], owned_redis: EmbeddedRedis
) -> None:
    env = {**base_env, "REDIS_URL": owned_redis.url, "SATCHEL_READY_TIMEOUT": "1"}
    process = SatchelProcess("web", env=env)
    url = f"http://127.0.0.1:{env['PORT']}"
    try:
        process.wait_http(f"{url}/readyz")

        owned_redis.stop()
        response = httpx.get(f"{url}/readyz", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["redis"] != "ok"
        assert body["checks"]["database"] == "ok" and body["checks"]["storage"] == "ok"
        assert "redis" in body["detail"]
        assert httpx.get(f"{url}/healthz").status_code == 200, "alive, just not ready"

        def redis_breaker() -> str:
            breaker: str = httpx.get(f"{url}/readyz", timeout=10).json()["breakers"]["redis"]
            return breaker

        # Repeated failures open the circuit; /readyz shows it, so an operator sees Redis is no longer even tried.
        process.wait_for(lambda: redis_breaker() == "open", timeout=15, what="an open Redis breaker in /readyz")

        owned_redis.start()  # same port: the process reconnects by itself
        process.wait_http(f"{url}/readyz", timeout=30)
        process.wait_for(lambda: redis_breaker() == "closed", timeout=10, what="the Redis breaker closed again")
        assert "breaker.opened" in {e.get("event") for e in process.events_so_far()}
    finally:
        process.stop()
