"""``GET /metrics`` for the plant's Prometheus: what the line did, how fast, and how its outputs are doing.

Two kinds of series, one registry per app (never the process-global one, so two apps in one process, as in
the tests, never share or collide):

- counted per inspection by :class:`MetricsSink`, a sink like any other, so it sees every result the loop
  emits: ``pcb_inspect_inspections_total{verdict}``, ``pcb_inspect_defects_total{class}`` (reported defects),
  ``pcb_inspect_stage_seconds{stage}`` (each stage of ``Inspection.stage_ms``) and
  ``pcb_inspect_capture_to_verdict_seconds`` (capture to the result reaching the sinks);
- read from ``runtime.status()`` at scrape time by :class:`RuntimeCollector`: frames captured and dropped,
  the source's state, each sink's state, backlog, written, dropped and errors, and
  ``pcb_inspect_model_info{sha256,model,backend}``, the model judging now (so it follows a hot swap).

The metrics sink drops the oldest result rather than make the loop wait (it never falls behind in
practice: a write is a few counter increments); what it drops is in its own ``dropped`` count.
"""

from __future__ import annotations

import time

from pcb_inspect.inspect.records import DEFECT_CLASSES, Verdict
from pcb_inspect.inspect.sinks.base import STATES, Result, Sink

#: The engine's stages (and ``wait``, capture to start of inspection) that get a latency histogram.
STAGES = ("wait", "decode", "register", "propose", "crop", "classify", "verdict")
STAGE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0)
SOURCE_STATES = ("connecting", "connected", "reconnecting", "ended")


class MetricsSink(Sink):
    """Counts every inspection into its own Prometheus registry (``self.registry``)."""

    name = "metrics"
    wants_images = "none"

    def __init__(self, **options) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        options.setdefault("on_full", "drop_oldest")
        options.setdefault("queue_size", 10_000)
        super().__init__(**options)
        self.registry = CollectorRegistry()
        self.inspections = Counter("pcb_inspect_inspections", "Boards inspected, by verdict", ["verdict"],
                                   registry=self.registry)
        self.defects = Counter("pcb_inspect_defects", "Reported defects, by class", ["class"],
                               registry=self.registry)
        self.stages = Histogram("pcb_inspect_stage_seconds", "Time in each stage of an inspection", ["stage"],
                                buckets=STAGE_BUCKETS, registry=self.registry)
        self.latency = Histogram("pcb_inspect_capture_to_verdict_seconds",
                                 "Capture to the result reaching the sinks", buckets=LATENCY_BUCKETS,
                                 registry=self.registry)
        for v in Verdict:  # every series from the start: a rate over a missing series is no rate at all
            self.inspections.labels(str(v))
        for c in DEFECT_CLASSES:
            self.defects.labels(c)
        self._collector: RuntimeCollector | None = None

    def open(self) -> None:
        """Nothing to open: the registry lives in memory."""

    def write(self, result: Result) -> None:
        i = result.inspection
        self.inspections.labels(str(i.verdict)).inc()
        for d in i.defects:
            self.defects.labels(d.cls).inc()
        for stage in STAGES:
            if stage in i.stage_ms:
                self.stages.labels(stage).observe(i.stage_ms[stage] / 1e3)
        if i.time > 0:
            self.latency.observe(max(0.0, time.time() - i.time))

    def collect_runtime(self, runtime) -> None:  # noqa: ANN001 - anything with status() -> dict
        """Also report ``runtime.status()`` at each scrape (once per registry)."""
        if self._collector is None:
            self._collector = RuntimeCollector(runtime)
            self.registry.register(self._collector)
        else:
            self._collector.runtime = runtime


class RuntimeCollector:
    """Series read from ``runtime.status()`` when Prometheus scrapes (see the module's docstring)."""

    def __init__(self, runtime) -> None:  # noqa: ANN001
        self.runtime = runtime

    def describe(self) -> list:
        return []  # unchecked collector: its series depend on the sinks present

    def collect(self):  # noqa: ANN201 - yields metric families
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

        s = self.runtime.status()
        yield CounterMetricFamily("pcb_inspect_frames", "Frames captured", value=s.get("frames", 0))
        yield CounterMetricFamily("pcb_inspect_dropped_frames", "Frames dropped: the engine was behind",
                                  value=s.get("dropped", 0))
        source = GaugeMetricFamily("pcb_inspect_source_state", "1 for the source's current state",
                                   labels=["state"])
        current = s.get("source_state", "")
        for state in dict.fromkeys((*SOURCE_STATES, current)):
            if state:
                source.add_metric([state], float(state == current))
        yield source
        yield InfoMetricFamily("pcb_inspect_model", "The model judging now", value={
            "sha256": str(s.get("model_sha256", "")), "model": str(s.get("model", "")),
            "backend": str(s.get("backend", ""))})
        yield from _sink_families(s.get("sinks", []))


def _sink_families(sinks: list[dict]):  # noqa: ANN202
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    state = GaugeMetricFamily("pcb_inspect_sink_state", "1 for each sink's current state",
                              labels=["sink", "state"])
    backlog = GaugeMetricFamily("pcb_inspect_sink_backlog",
                                "Results waiting to be written (MQTT: and unacknowledged)", labels=["sink"])
    helps = (("written", "Results a sink has written"),
             ("dropped", "Results a sink dropped (queue full, closed or failed)"),
             ("errors", "Failed opens and writes of a sink"))
    counters = {key: CounterMetricFamily(f"pcb_inspect_sink_{key}", text, labels=["sink"])
                for key, text in helps}
    seen: dict[str, int] = {}
    for sink in sinks:
        name = str(sink.get("name", "sink"))
        seen[name] = seen.get(name, 0) + 1
        label = name if seen[name] == 1 else f"{name}#{seen[name]}"  # two sinks of one kind stay apart
        for st in STATES:
            state.add_metric([label, st], float(sink.get("state") == st))
        backlog.add_metric([label], float(sink.get("backlog", 0)))
        for key, family in counters.items():
            family.add_metric([label], float(sink.get(key, 0)))
    yield state
    yield backlog
    yield from counters.values()


def mount_metrics(app, runtime, sink: MetricsSink | None) -> None:  # noqa: ANN001
    """``GET /metrics`` on ``app``: the sink's registry plus the runtime's scrape-time series. Without a
    metrics sink (none was made for this runtime) only the scrape-time series are there."""
    from fastapi import Response
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    if sink is None:
        registry = CollectorRegistry()
        registry.register(RuntimeCollector(runtime))
    else:
        sink.collect_runtime(runtime)
        registry = sink.registry

    @app.get("/metrics", tags=["runtime"], response_class=Response,
             responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}})
    def metrics():  # noqa: ANN202 - no annotation: FastAPI would read it as a response model
        """Counters, latency histograms, sink state and the model, in Prometheus' text format."""
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
