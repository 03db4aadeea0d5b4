"""``pcb-inspect run`` and ``pcb-inspect demo``: a station on the line, and the same on a synthetic conveyor.

Everything that can be wrong with the options (the model, the template, the database folder, the HTTP
address, the source) is found before the first frame and said in one line; after that the loop keeps going
through bad frames and a lost source. SIGINT or SIGTERM stop capture, finish the boards in flight, flush the
sinks and print a summary.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

from pcb_inspect.inspect.errors import PcbInspectError
from pcb_inspect.inspect.runtime import RunConfig, Runtime


def build_runtime(config: RunConfig, db: Path | None, rejects: Path | None, keep: tuple[int, int],
                  extra_sinks: list | None = None, args: argparse.Namespace | None = None) -> Runtime:
    """Check and open everything in the order that fails cheapest first."""
    from pcb_inspect.inspect import extensions
    from pcb_inspect.inspect.engine import Inspector
    from pcb_inspect.inspect.sinks.rejects import RejectImageSink
    from pcb_inspect.inspect.sinks.sqlite import SQLiteSink
    from pcb_inspect.inspect.sources.table import open_source
    from pcb_inspect.inspect.templates import TemplateStore
    from pcb_inspect.inspect.workers import WorkerSpec
    from pcb_inspect.models.registry import open_backend, resolve_model

    sinks = list(extra_sinks or [])
    if args is not None:  # the line's I/O and the operator page, as their options ask
        sinks += extensions.make_sinks(args)
    if db is not None:
        sinks.insert(0, SQLiteSink(db))
    if rejects is not None:
        sinks.append(RejectImageSink(rejects, keep_count=keep[0], keep_bytes=keep[1] * 1_000_000))
    source = open_source(config.source, loop=config.loop)
    model = resolve_model(config.model, config.backend)
    inspector = Inspector(open_backend(model, backend=config.backend))
    wants = {s.wants_images for s in sinks}
    images = "all" if "all" in wants else "rejects" if "rejects" in wants else "none"
    spec = WorkerSpec(str(model), config.backend, TemplateStore(config.template), config.station, images)
    return Runtime(config, source, inspector, spec, sinks)


def serve(runtime: Runtime, address: str, args: argparse.Namespace | None = None):  # noqa: ANN201
    """The runtime's HTTP app (status, health, and what the extensions mount) on ``address``; None for 'off'."""
    if address.lower() == "off":
        return None
    from pcb_inspect.inspect import extensions
    from pcb_inspect.inspect.server import HttpServer, create_app, parse_hostport

    host, port = parse_hostport(address)
    app = create_app(runtime)
    if args is not None:
        extensions.mount(app, runtime, args)
    server = HttpServer(app, host, port)
    server.start()
    return server


def _progress(runtime: Runtime) -> None:
    """The progress line: what an operator at a terminal wants to see moving."""
    s = runtime.status()
    print(f"[{time.strftime('%H:%M:%S')}] {s['inspected']} inspected  pass {s['pass']}  fail {s['fail']}  "
          f"review {s['review']}  error {s['error']}  dropped {s['dropped']}  {s['boards_per_s']:.1f} boards/s  "
          f"p99 {s['p99_ms']:.0f} ms  source {s['source_state']}", flush=True)


def run_station(runtime: Runtime, http: str, args: argparse.Namespace | None = None) -> int:
    """Start, serve, loop until done or signalled, then print the summary. 0 when every board was judged."""
    from pcb_inspect.edge_deploy import sdnotify
    from pcb_inspect.inspect import extensions

    extensions.bind(runtime)
    runtime.start()
    server = serve(runtime, http, args)
    sdnotify.notify("READY=1")  # under systemd (Type=notify): the station is serving
    if server is not None:
        print(f"station {runtime.config.station}: operator page {server.url}/  status {server.url}/api/status  "
              f"health {server.url}/healthz  metrics {server.url}/metrics", flush=True)
    printed = [0.0]  # when the last progress line went out: one every 5 s

    def tick(r: Runtime) -> None:
        if time.monotonic() - printed[0] >= 5.0:
            printed[0] = time.monotonic()
            _progress(r)
        sdnotify.notify("WATCHDOG=1")  # the loop is turning: systemd's watchdog restarts a hung station

    runtime.on_tick = tick
    previous = {}
    if threading.current_thread() is threading.main_thread():
        def on_signal(signum: int, _frame: object) -> None:
            if runtime.stop_event.is_set():  # a second Ctrl-C: the user really means it
                raise KeyboardInterrupt
            print(f"\n{signal.Signals(signum).name}: stopping capture, finishing boards in flight", file=sys.stderr)
            sdnotify.notify("STOPPING=1")
            runtime.stop()

        def on_hangup(_signum: int, _frame: object) -> None:
            print("SIGHUP: loading the model again beside the running one", file=sys.stderr, flush=True)
            try:
                runtime.swap.request(None)
            except PcbInspectError as exc:
                print(f"SIGHUP: {exc}", file=sys.stderr, flush=True)

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, on_hangup)
    try:
        summary = runtime.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if server is not None:
            server.stop()
    print(format_summary(summary, runtime))
    return 0


def format_summary(s: dict, runtime: Runtime) -> str:
    sinks = "; ".join(f"{x['name']} {x['state']} written {x.get('written', 0)} dropped {x.get('dropped', 0)}"
                      for x in (sink.status() for sink in runtime.sinks))
    return (f"summary: frames {s['frames']}  inspected {s['inspected']}  pass {s['pass']}  fail {s['fail']}  "
            f"review {s['review']}  error {s['error']}  dropped {s['dropped']}  {s['boards_per_s']:.1f} boards/s  "
            f"p50 {s['p50_ms']:.1f} ms  p99 {s['p99_ms']:.1f} ms (capture to verdict)"
            + (f"\nsinks: {sinks}" if sinks else ""))


def cmd_run(args: argparse.Namespace) -> int:
    if args.http.lower() != "off":  # a typo in the address should not cost a model load to find out
        from pcb_inspect.inspect.server import parse_hostport

        parse_hostport(args.http)
    config = RunConfig(source=args.source, template=args.template, model=args.model, backend=args.backend,
                       station=args.station, max_frames=args.max_frames, workers=args.workers, loop=args.loop)
    rejects = args.db.with_name(args.db.stem + "_rejects")
    runtime = build_runtime(config, args.db, rejects, (args.keep_rejects, args.keep_rejects_mb), args=args)
    print(f"model {runtime.inspector.backend.model_sha256[:12]} ({runtime.inspector.backend.name})  source "
          f"{runtime.source.uri}  results {args.db}", flush=True)
    return run_station(runtime, args.http, args)
