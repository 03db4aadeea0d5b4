"""``GET /api/model`` and ``POST /api/model``: which model judges the boards, and a hot swap to another one.

The swap itself is :class:`pcb_inspect.inspect.swap.ModelSwap` (loaded and self-checked beside the running
model, switched between frames). POST needs the station's token whatever the address (``inspect/auth.py``).
"""

from __future__ import annotations

import argparse

from pydantic import BaseModel, Field


class SwapRequest(BaseModel):
    model: str | None = Field(None, description="model file on the station (.onnx); omitted: the configured "
                              "--model again (after `deploy activate` repointed it)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """No options: the route is always there when HTTP is."""


def make_sinks(args: argparse.Namespace) -> list:
    return []


def mount(app, runtime, args: argparse.Namespace) -> None:  # noqa: ANN001
    from fastapi import Depends, HTTPException

    from pcb_inspect.inspect.auth import require_token
    from pcb_inspect.inspect.errors import PcbInspectError

    def current() -> dict:
        backend = runtime.inspector.backend
        return {"model": str(getattr(backend, "path", "")), "model_sha256": backend.model_sha256,
                "backend": backend.name, "swap": runtime.swap.status()}

    @app.get("/api/model", tags=["model"])
    def get_model() -> dict:
        """The model judging the boards now, and the state of the last swap."""
        return current()

    @app.post("/api/model", status_code=202, tags=["model"], dependencies=[Depends(require_token)])
    def swap_model(request: SwapRequest) -> dict:
        """Load a model beside the running one; boards switch to it once it loaded and passed its self-check
        (poll GET /api/model: swap.state loading -> done, or failed with the reason while the old one runs)."""
        try:
            runtime.swap.request(request.model)
        except PcbInspectError as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from None
        return current()
