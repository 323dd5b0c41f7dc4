"""The FastAPI app factory. For now only ``/healthz``, so ``rectiflow serve`` has something to
serve; pages and the API come with the web issue."""

from __future__ import annotations

from fastapi import FastAPI

from config.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="rectiflow", docs_url=None, redoc_url=None)
    app.state.settings = settings

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
