"""The framework's own cost: a minimal FastAPI JSON route, on the same Gunicorn + Uvicorn stack as Satchel."""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/")
async def hello() -> dict[str, str]:
    return {"status": "ok"}
