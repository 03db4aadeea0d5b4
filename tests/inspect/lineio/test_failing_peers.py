"""A sink whose peer is down (no broker, no PLC) never stops the line or the other sinks: SQLite gets every
row, and the failing sinks' state and backlog are in /api/status and /metrics."""

from __future__ import annotations

import json
import threading
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from pcb_inspect.inspect.run import build_runtime, serve
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.sqlite import ResultsDB


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_peers_down_the_line_and_the_database_go_on(tmp_path: Path, kit) -> None:
    nobody, nobody_too = kit.free_port(), kit.free_port()  # nothing listens on either
    args = kit.line_args("--station", "t", "--http", "127.0.0.1:0", "--mqtt", f"127.0.0.1:{nobody}",
                         "--modbus", f"127.0.0.1:{nobody_too}:4")
    config = RunConfig(source="synthetic://?fps=30&boards=4", max_frames=600, workers=1, station="t")
    runtime = build_runtime(config, tmp_path / "r.db", None, (100, 50), args=args)
    sinks = {s.name: s for s in runtime.sinks}
    runtime.start()
    server = serve(runtime, "127.0.0.1:0", args)
    summary: dict = {}
    loop = threading.Thread(target=lambda: summary.update(runtime.run()))
    loop.start()
    try:
        kit.wait_for(lambda: runtime.stats.inspected >= 20, 30, "20 inspections")
        kit.wait_for(lambda: sinks["mqtt"].status()["errors"] >= 2, 10, "MQTT retrying")
        status = json.loads(_get(f"{server.url}/api/status"))
        health = json.loads(_get(f"{server.url}/healthz"))
        metrics = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(_get(f"{server.url}/metrics")) for s in f.samples}
    finally:
        for name in ("mqtt", "modbus"):  # give up on the dead peers now, not after the close timeout
            sinks[name].close(0)
        runtime.stop()
        loop.join(60)
        server.stop()
    by_name = {s["name"]: s for s in status["sinks"]}
    mqtt, plc = by_name["mqtt"], by_name["modbus"]
    assert health == {"ok": True}  # a dead peer is not a dead line
    assert mqtt["state"] == "retrying" and mqtt["backlog"] >= 15 and mqtt["dropped"] == 0
    assert f"MQTT broker 127.0.0.1:{nobody}" in mqtt["last_error"] and "refused" in mqtt["last_error"]
    assert plc["state"] == "retrying" and f"PLC 127.0.0.1:{nobody_too}: cannot connect" in plc["last_error"]
    assert by_name["sqlite"]["state"] == "ok" and by_name["sqlite"]["written"] >= 15
    assert metrics[("pcb_inspect_sink_state", (("sink", "mqtt"), ("state", "retrying")))] == 1
    assert metrics[("pcb_inspect_sink_backlog", (("sink", "mqtt"),))] >= 15
    assert metrics[("pcb_inspect_sink_errors_total", (("sink", "modbus"),))] >= 1
    # every board the loop judged is in the database, whatever the dead peers did
    assert ResultsDB(tmp_path / "r.db").counts()["total"] == summary["inspected"] >= 20
