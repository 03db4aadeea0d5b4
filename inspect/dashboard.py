"""The operator's page (``/``) on ``run --http`` and ``demo``: live verdict, shift counters, reject review and
false-call feedback that becomes training data.

An extension (``inspect/extensions.py``): :func:`add_options` (light: ``--help`` imports this module),
:func:`make_sinks` (the live feed, when HTTP is on; a station bound beyond loopback without a token is refused
here, before the model loads) and :func:`mount` (the page, its assets and its API on the runtime's app).
The pieces: ``feed.py`` (the in-memory feed sink), ``shift.py`` (shift counts), ``auth.py`` (the token),
``dashboard_api.py`` (routes), ``dashboard_state.py`` (what they share, pictures by id), ``feedback.py`` /
``feedback_export.py`` (judgements, the export verb) and ``web/`` (the page: HTML, CSS, JS and its English /
Simplified Chinese text; nothing fetched from elsewhere).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pcb_inspect.inspect.shift import DEFAULT_SHIFT_STARTS  # light: the standard library and records

WEB = Path(__file__).resolve().parent / "web"


def add_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("operator page (served at / with --http)")
    g.add_argument("--token-file", type=Path, metavar="FILE",
                   help="the station token (first line), needed for feedback and other changes from the page "
                        "and for serving beyond 127.0.0.1; or set PCB_INSPECT_TOKEN")
    g.add_argument("--feed-images", choices=("rejects", "all"), default="rejects",
                   help="which boards' pictures the page's feed gets from the workers: rejects (default; "
                        "cameras and the demo show every board anyway) or all (folders and datasets too)")
    g.add_argument("--shift-starts", default=DEFAULT_SHIFT_STARTS, metavar="HH:MM,...",
                   help="local times shifts begin, for the page's shift counters "
                        f"(default {DEFAULT_SHIFT_STARTS})")


def _http(args: argparse.Namespace) -> str:
    http = str(getattr(args, "http", "off") or "off")
    return "" if http.lower() == "off" else http


def _token(args: argparse.Namespace, http: str) -> str | None:
    from pcb_inspect.inspect.auth import check_exposure, load_token

    token = load_token(getattr(args, "token_file", None))
    check_exposure(http, token)
    return token


def make_sinks(args: argparse.Namespace) -> list:
    """The page's live feed when HTTP is on (and the token check, before anything starts)."""
    http = _http(args)
    if not http:
        return []
    _token(args, http)
    from pcb_inspect.inspect.feed import FeedSink
    from pcb_inspect.inspect.shift import ShiftTally, parse_shift_starts

    tally = ShiftTally(parse_shift_starts(getattr(args, "shift_starts", DEFAULT_SHIFT_STARTS)))
    return [FeedSink(images=getattr(args, "feed_images", "rejects"), tally=tally)]


def mount(app, runtime, args: argparse.Namespace) -> None:  # noqa: ANN001
    """The page at ``/``, its assets under ``/ui/``, its API under ``/api/`` (documented in ``/docs``)."""
    http = _http(args)
    if not http:
        return
    token = _token(args, http)
    from pcb_inspect.inspect.auth import install_guard
    from pcb_inspect.inspect.dashboard_api import build_router
    from pcb_inspect.inspect.dashboard_state import Dashboard
    from pcb_inspect.inspect.feed import FeedSink
    from pcb_inspect.inspect.sinks.rejects import RejectImageSink
    from pcb_inspect.inspect.sinks.sqlite import SQLiteSink

    sinks = runtime.sinks
    feed = next((s for s in sinks if isinstance(s, FeedSink)), None)
    if feed is None:  # mounted without make_sinks (an embedding of the app): feed from now on
        feed = make_sinks(args)[0]
        feed.start()
        sinks.append(feed)
    db = next((s.path for s in sinks if isinstance(s, SQLiteSink)), None)
    rejects = next((s for s in sinks if isinstance(s, RejectImageSink)), None)
    if db is not None:  # this shift's boards from before this process started
        stats = getattr(runtime, "stats", None)
        feed.tally.seed(db, until=getattr(stats, "started", 0.0))
    install_guard(app, token)
    app.state.dashboard = Dashboard(runtime, feed, db, rejects, WEB)
    app.include_router(build_router())
