"""``GET /metrics``: counts equal to the results database after a real run served over real HTTP, the model
read at scrape time (so it follows a swap), one registry per app."""

from __future__ import annotations

import sqlite3
import urllib.request
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from pcb_inspect.inspect.prometheus import MetricsSink, mount_metrics
from pcb_inspect.inspect.records import DEFECT_CLASSES
from pcb_inspect.inspect.run import build_runtime, serve
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.server import create_app
from pcb_inspect.inspect.sinks.sqlite import ResultsDB


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(url: str) -> tuple[dict, str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return samples(r.read().decode()), r.headers["Content-Type"]


def test_metrics_equal_the_database_after_a_run(tmp_path: Path, kit) -> None:
    args = kit.line_args("--station", "t", "--http", "127.0.0.1:0")
    config = RunConfig(source="synthetic://?fps=0&boards=4", max_frames=30, workers=1, station="t")
    runtime = build_runtime(config, tmp_path / "r.db", None, (100, 50), args=args)
    assert [s.name for s in runtime.sinks].count("metrics") == 1  # made by lineio because HTTP is on
    runtime.start()
    server = serve(runtime, "127.0.0.1:0", args)
    try:
        summary = runtime.run()
        m, _ = scrape(server.url)
    finally:
        server.stop()
    counts = ResultsDB(tmp_path / "r.db").counts()
    for verdict in ("PASS", "FAIL", "REVIEW", "ERROR"):
        assert m[("pcb_inspect_inspections_total", (("verdict", verdict),))] == counts[verdict]
    with sqlite3.connect(tmp_path / "r.db") as db:
        by_class = dict(db.execute("SELECT cls, COUNT(*) FROM defects WHERE reported = 1 GROUP BY cls"))
    assert sum(by_class.values()) >= 1
    for cls in DEFECT_CLASSES:
        assert m[("pcb_inspect_defects_total", (("class", cls),))] == by_class.get(cls, 0)
    assert m[("pcb_inspect_frames_total", ())] == summary["frames"] == 30
    assert m[("pcb_inspect_dropped_frames_total", ())] == summary["dropped"]
    assert m[("pcb_inspect_stage_seconds_count", (("stage", "wait"),))] == counts["total"]
    for stage in ("register", "propose", "classify", "verdict"):  # a board in ERROR may stop before a stage
        seen = m[("pcb_inspect_stage_seconds_count", (("stage", stage),))]
        assert counts["total"] - counts["ERROR"] <= seen <= counts["total"]
    assert m[("pcb_inspect_capture_to_verdict_seconds_count", ())] == counts["total"]
    model = [labels for (name, labels), v in m.items() if name == "pcb_inspect_model_info" and v == 1]
    assert dict(model[0])["sha256"] == runtime.inspector.backend.model_sha256
    assert m[("pcb_inspect_sink_written_total", (("sink", "sqlite"),))] == 30
    assert m[("pcb_inspect_sink_state", (("sink", "sqlite"), ("state", "closed")))] == 1
    assert m[("pcb_inspect_sink_backlog", (("sink", "metrics"),))] == 0


class FakeRuntime:
    def __init__(self, sha: str) -> None:
        self.sha, self.sinks = sha, []

    def status(self) -> dict:
        return {"frames": 5, "dropped": 1, "source_state": "connected", "model_sha256": self.sha,
                "model": "/models/m.onnx", "backend": "onnxruntime-cpu",
                "sinks": [{"name": "mqtt", "state": "retrying", "backlog": 7, "written": 2, "dropped": 0,
                           "errors": 3}, {"name": "mqtt", "state": "ok", "backlog": 0}]}

    def health(self) -> tuple[bool, str]:
        return True, "ok"


def test_model_and_sinks_are_read_at_scrape_time_one_registry_per_app(kit) -> None:
    first, second = FakeRuntime("aa" * 32), FakeRuntime("cc" * 32)
    apps = []
    for runtime in (first, second):
        app = create_app(runtime)
        sink = MetricsSink()
        mount_metrics(app, runtime, sink)
        sink.write(type("R", (), {"inspection": kit.inspection("FAIL")})())
        apps.append(TestClient(app))
    m = samples(apps[0].get("/metrics").text)
    assert m[("pcb_inspect_model_info", (("backend", "onnxruntime-cpu"), ("model", "/models/m.onnx"),
                                         ("sha256", "aa" * 32)))] == 1
    first.sha = "bb" * 32  # a hot swap: the next scrape shows the new model, and only it
    m = samples(apps[0].get("/metrics").text)
    assert [dict(k[1])["sha256"] for k in m if k[0] == "pcb_inspect_model_info"] == ["bb" * 32]
    assert m[("pcb_inspect_sink_state", (("sink", "mqtt"), ("state", "retrying")))] == 1
    assert m[("pcb_inspect_sink_state", (("sink", "mqtt"), ("state", "ok")))] == 0
    assert m[("pcb_inspect_sink_state", (("sink", "mqtt#2"), ("state", "ok")))] == 1
    assert m[("pcb_inspect_sink_backlog", (("sink", "mqtt"),))] == 7
    assert m[("pcb_inspect_source_state", (("state", "connected"),))] == 1
    assert m[("pcb_inspect_inspections_total", (("verdict", "FAIL"),))] == 1  # this app's sink, not both
    assert m[("pcb_inspect_defects_total", (("class", "short"),))] == 1
    assert "pcb_inspect_inspections_total" in apps[1].get("/metrics").text
    assert "/metrics" in apps[0].get("/openapi.json").json()["paths"]
