"""The operator page's HTTP API: the page itself, its live event stream, inspections, pictures and feedback.

Everything is read by inspection id (32 hex digits, checked by the route before any lookup): pictures come
from the feed's memory, the reject sink's folder (``RejectImageSink.find``) or the feedback folder, each a
file name built from the checked id, so no request can name a path. Read-only routes depend on
:func:`~pcb_inspect.inspect.auth.require_reader`, feedback on :func:`~pcb_inspect.inspect.auth.require_token`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from pcb_inspect.inspect.auth import SESSION_COOKIE, SESSION_S, client_is_local, require_reader, require_token
from pcb_inspect.inspect.dashboard_state import EVENT_INTERVAL_S, MEDIA, Dashboard, picture_size, png_size
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.feedback import AddedBox, Judgement, build_feedback
from pcb_inspect.inspect.records import DEFECT_CLASSES

KEEPALIVE_S = 15.0
ID = PathParam(pattern=r"^[0-9a-f]{32}$", description="the inspection's id, 32 lowercase hex digits")
PAGE_HEADERS = {
    # Nothing from anywhere else: a factory network has no internet, and the page must not try.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache",
}


class DefectOut(BaseModel):
    cls: str = Field(description=f"one of {', '.join(DEFECT_CLASSES)}")
    confidence: float
    box: list[int] = Field(description="x1, y1, x2, y2 in the tested image's pixels")


class InspectionOut(BaseModel):
    """An inspection as the loop recorded it (``Inspection.to_dict``)."""

    model_config = ConfigDict(extra="allow")
    id: str
    board_id: str
    verdict: str
    defects: list[DefectOut]
    below_threshold: list[DefectOut]
    time: float
    station: str
    error: str


class JudgementIn(BaseModel):
    ref: int = Field(ge=0, description="index into the inspection's defects followed by its below_threshold")
    judgement: Literal["confirmed", "false_call", "other_class"]
    cls: str | None = Field(None, description="the right class, for other_class")


class AddedBoxIn(BaseModel):
    cls: str = Field(description=f"one of {', '.join(DEFECT_CLASSES)}")
    box: list[float] = Field(min_length=4, max_length=4,
                             description="x1, y1, x2, y2 in the tested image's pixels")


class FeedbackIn(BaseModel):
    """The operator's word on one board: every reported defect judged; missed defects added as boxes."""

    operator: str = Field(min_length=1, max_length=64, description="who (the name or badge signed in with)")
    judgements: list[JudgementIn] = Field(default_factory=list, max_length=1000)
    added: list[AddedBoxIn] = Field(default_factory=list, max_length=50)
    note: str = Field("", max_length=500)


class FeedbackItemOut(BaseModel):
    judgement: str
    defect_seq: int | None
    model_cls: str | None
    confidence: float | None
    cls: str
    box: list[int]


class FeedbackOut(BaseModel):
    id: int
    inspection_id: str
    board_id: str
    operator: str
    time: float
    note: str
    images: bool = Field(description="the tested image and template are kept for training")
    width: int
    height: int
    items: list[FeedbackItemOut]


class InspectionDetail(BaseModel):
    inspection: InspectionOut
    pictures: dict[str, bool] = Field(description="which of raw, annotated and template can be fetched")
    feedback: list[FeedbackOut] = Field(description="every feedback on this board, oldest first")


class PageConfig(BaseModel):
    station: str
    classes: list[str]
    token_configured: bool = Field(description="changes (feedback) are possible on this station")
    local: bool = Field(description="this client is on the station's machine (read-only views open)")
    reader: bool = Field(description="this client may read (local, or signed in)")


def _dashboard(request: Request) -> Dashboard:
    return request.app.state.dashboard


def build_router() -> APIRouter:  # noqa: C901 - one route each, read top to bottom
    router = APIRouter()
    reader = [Depends(require_reader)]

    @router.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page(request: Request) -> Response:
        d = _dashboard(request)
        if "index.html" not in d.assets:
            raise HTTPException(404, "the operator page is not installed (inspect/web/ missing)")
        return Response(d.assets["index.html"].read_bytes(), media_type=MEDIA[".html"], headers=PAGE_HEADERS)

    @router.get("/ui/{name}", include_in_schema=False)
    def asset(name: str, request: Request) -> Response:
        path = _dashboard(request).assets.get(name)  # only the files the page folder had at start
        if path is None:
            raise HTTPException(404, "no such page asset")
        return Response(path.read_bytes(), media_type=MEDIA[path.suffix], headers=PAGE_HEADERS)

    @router.get("/api/config", response_model=PageConfig, tags=["operator page"])
    def config(request: Request) -> dict:
        """What the page needs first: the classes, and whether this client may read and change."""
        d, guard = _dashboard(request), request.app.state.guard
        local = client_is_local(request)
        reader_ok = local or guard.session_ok(request.cookies.get(SESSION_COOKIE))
        return {"station": str(d.status().get("station", "")), "classes": list(DEFECT_CLASSES),
                "token_configured": guard.configured, "local": local, "reader": reader_ok}

    @router.post("/api/session", status_code=204, dependencies=[Depends(require_token)],
                 tags=["operator page"])
    def session(request: Request) -> Response:
        """Check the token; a client elsewhere also gets a session cookie for the read-only views."""
        response = Response(status_code=204)
        response.set_cookie(SESSION_COOKIE, request.app.state.guard.new_session(), max_age=int(SESSION_S),
                            httponly=True, samesite="strict", path="/")
        return response

    @router.get("/api/events", dependencies=reader, tags=["operator page"], response_class=StreamingResponse,
                responses={200: {"content": {"text/event-stream": {}},
                                 "description": "one `inspection` event per board, at most ~10 a second: the "
                                                "newest board, rejects since the last event, status, shift"}})
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: the live line, without polling."""
        d = _dashboard(request)

        async def stream():  # noqa: ANN202
            last = -1
            sub = d.feed.subscribe()  # here, so a stream never started leaves no subscriber behind
            try:
                while not d.feed.closed:
                    if d.feed.seq == last:
                        sub.event.clear()
                        if d.feed.seq == last:
                            try:
                                await asyncio.wait_for(sub.event.wait(), KEEPALIVE_S)
                            except asyncio.TimeoutError:
                                yield ": keep-alive\n\n"
                            continue
                    last, text = d.event(last)
                    yield text
                    await asyncio.sleep(EVENT_INTERVAL_S)
            finally:
                d.feed.unsubscribe(sub)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @router.get("/api/shift", dependencies=reader, tags=["operator page"])
    def shift(request: Request) -> dict:
        """This shift's counts and yield, defects by class (this shift, and the last boards), yield trend."""
        return _dashboard(request).feed.tally.snapshot()

    @router.get("/api/inspections", response_model=list[InspectionOut], dependencies=reader,
                tags=["inspections"])
    def inspections(request: Request, limit: int = Query(20, ge=1, le=200),
                    verdict: Literal["PASS", "FAIL", "REVIEW", "ERROR", "rejects"] | None = None
                    ) -> list[dict]:
        """The newest inspections first; ``verdict=rejects`` for FAIL, REVIEW and ERROR."""
        return [i.to_dict() for i in _dashboard(request).recent(limit, verdict)]

    @router.get("/api/inspections/{inspection_id}", response_model=InspectionDetail, dependencies=reader,
                tags=["inspections"])
    def inspection(request: Request, inspection_id: str = ID) -> dict:
        """One inspection, which of its pictures can be fetched, and the feedback on it."""
        d = _dashboard(request)
        found = d.inspection(inspection_id)
        if found is None:
            raise HTTPException(404, f"inspection {inspection_id} not found")
        return {"inspection": found.to_dict(), "pictures": d.available(inspection_id),
                "feedback": d.feedback(inspection_id)}

    @router.get("/api/inspections/{inspection_id}/image", dependencies=reader, tags=["inspections"],
                response_class=Response,
                responses={200: {"content": {"image/png": {}, "image/jpeg": {}}},
                           404: {"description": "not kept"}})
    def image(request: Request, inspection_id: str = ID,
              kind: Literal["raw", "annotated", "template"] = Query(
                  "raw", description="raw: the tested image; annotated: with its defects (JPEG)"),
              size: Literal["full", "thumb"] = Query("full", description="thumb: 320 pixels a side, JPEG"),
              format: Literal["png", "jpeg"] = Query(
                  "png", description="raw and template: png (lossless) or jpeg (smaller, for the live view)")
              ) -> Response:
        """A board's picture by inspection id, while the feed, the reject or the feedback folder has it."""
        found = _dashboard(request).picture(inspection_id, kind, size, format)
        if found is None:
            raise HTTPException(404, f"no {kind} picture kept for inspection {inspection_id}")
        return Response(found[0], media_type=found[1], headers={"Cache-Control": "private, max-age=3600"})

    @router.get("/api/inspections/{inspection_id}/feedback", response_model=list[FeedbackOut],
                dependencies=reader, tags=["feedback"])
    def feedback_list(request: Request, inspection_id: str = ID) -> list[dict]:
        """Every feedback on a board, oldest first (the newest is the one training uses)."""
        return _dashboard(request).feedback(inspection_id)

    @router.post("/api/inspections/{inspection_id}/feedback", response_model=FeedbackOut, status_code=201,
                 dependencies=[Depends(require_token)], tags=["feedback"],
                 responses={401: {"description": "no or wrong token"},
                            404: {"description": "no such inspection"},
                            422: {"description": "judgements do not fit the board"}})
    def feedback_post(body: FeedbackIn, request: Request, inspection_id: str = ID) -> dict:
        """The operator's judgement of a board; its pictures are kept beside the database for training."""
        return _store_feedback(_dashboard(request), inspection_id, body)

    return router


def _store_feedback(d: Dashboard, iid: str, body: FeedbackIn) -> dict:
    from pcb_inspect.inspect.sinks.base import SinkError
    from pcb_inspect.inspect.sinks.sqlite import write_feedback

    if d.db_path is None or d.images is None:
        raise HTTPException(503, "this station keeps no results database: feedback cannot be stored")
    inspection = d.inspection(iid)
    if inspection is None:
        raise HTTPException(404, f"inspection {iid} not found")
    image, template = d.source_pictures(iid)
    kept = d.images.has(iid)
    size = picture_size(image) or (png_size(d.images.paths(iid)[0].read_bytes()) if kept else None)
    try:
        row = build_feedback(inspection, body.operator,
                             [Judgement(j.ref, j.judgement, j.cls) for j in body.judgements],
                             [AddedBox(a.cls, tuple(a.box)) for a in body.added], body.note, size=size)
    except ConfigError as exc:
        raise HTTPException(422, str(exc)) from None
    row["images"] = int(d.images.keep(iid, image, template))
    try:
        feedback_id = write_feedback(d.db_path, row)
    except (SinkError, ConfigError, sqlite3.Error) as exc:
        raise HTTPException(503, f"feedback not stored: {' '.join(str(exc).split())[:200]}") from None
    return {**row, "id": feedback_id, "images": bool(row["images"])}
