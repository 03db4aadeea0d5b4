"""The OPC UA server read with asyncua's own client: typed variables under the station's object, values rising
while the loop runs and equal to the runtime's status, the last inspection as it was written."""

from __future__ import annotations

import asyncio
import math
import threading
from datetime import UTC, datetime
from pathlib import Path

from pcb_inspect.inspect import lineio
from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.opcua import NAMESPACE, VARIABLES, OpcUaSink


async def _read(url: str, station: str, names: list[str] | None = None) -> dict:
    from asyncua import Client, ua

    async with Client(url, timeout=5) as client:
        idx = await client.get_namespace_index(NAMESPACE)
        obj = await client.nodes.objects.get_child([ua.QualifiedName(station, idx)])
        out = {}
        for child in await obj.get_children():
            name = (await child.read_browse_name()).Name
            if names is None or name in names:
                value = await child.read_data_value()
                out[name] = (value.Value.Value, value.Value.VariantType.name)
        return out


def _poll(url: str, station: str, stop: threading.Event, seen: list) -> None:
    """Read Inspected (and everything) once a few times over while the loop runs."""
    async def go() -> None:
        from asyncua import Client, ua

        async with Client(url, timeout=5) as client:
            idx = await client.get_namespace_index(NAMESPACE)
            node = client.get_node(ua.NodeId(f"{station}.Inspected", idx))
            while not stop.is_set():
                seen.append(await node.read_value())
                await asyncio.sleep(0.15)

    asyncio.run(go())


def test_values_rise_while_the_loop_runs(tmp_path: Path, kit) -> None:
    port = kit.free_port()
    server = OpcUaSink(port, station="t")
    config = RunConfig(source="synthetic://?fps=20&boards=4", max_frames=50, workers=1, station="t")
    runtime = build_runtime(config, tmp_path / "r.db", None, (100, 50), extra_sinks=[server])
    lineio.bind(runtime)  # counters, state and model from the runtime's status
    runtime.start()
    loop = threading.Thread(target=runtime.run)
    loop.start()
    seen: list[int] = []
    stop = threading.Event()
    try:
        kit.wait_for(lambda: server.status()["state"] == "ok", 30, "the OPC UA server")
        poller = threading.Thread(target=_poll, args=(server.url, "t", stop, seen))
        poller.start()
        kit.wait_for(lambda: len(set(seen)) >= 3, 20, "Inspected to change three times")
        stop.set()
        poller.join(10)
        values = asyncio.run(_read(server.url, "t"))
        status = runtime.status()
    finally:
        stop.set()
        runtime.stop()
        loop.join(60)
    assert seen == sorted(seen) and seen[-1] > seen[0]
    assert list(values) == list(VARIABLES)  # every variable, in order, typed
    assert {name: kind for name, (_, kind) in values.items()} == VARIABLES
    assert values["State"][0] == "connected"
    assert values["ModelSha256"][0] == runtime.inspector.backend.model_sha256
    assert values["LastBoardId"][0].startswith("syn-")
    assert values["LastVerdict"][0] in ("PASS", "FAIL", "REVIEW")
    # read just before the status: the counters are the runtime's, give or take the boards in between
    assert 0 <= status["inspected"] - values["Inspected"][0] <= 3
    by_verdict = [values[name][0] for name in ("Pass", "Fail", "Review", "Error")]
    assert sum(by_verdict) == values["Inspected"][0]


def test_without_a_runtime_it_counts_what_it_is_given(kit) -> None:
    server = OpcUaSink(kit.free_port(), station="line 2")
    server.start()
    try:
        kit.wait_for(lambda: server.status()["state"] == "ok", 30, "the OPC UA server")
        empty = asyncio.run(_read(server.url, "line 2", ["Inspected", "YieldPct", "LastTime"]))
        assert empty["Inspected"][0] == 0 and math.isnan(empty["YieldPct"][0])
        last = kit.inspection("FAIL", index=3, board_id="pcb-42", time=1_700_000_000.25)
        for item in (kit.inspection("PASS"), kit.inspection("ERROR"), kit.inspection("PASS"), last):
            server.submit(item)
        assert server.flush(10)
        values = {k: v for k, (v, _) in asyncio.run(_read(server.url, "line 2")).items()}
    finally:
        server.close(5)
    assert (values["Inspected"], values["Pass"], values["Fail"], values["Error"]) == (4, 2, 1, 1)
    assert values["YieldPct"] == 100.0 * 2 / 3 and values["State"] == "running"
    assert (values["LastVerdict"], values["LastBoardId"], values["LastDefectCount"]) == ("FAIL", "pcb-42", 2)
    assert values["LastTime"].replace(tzinfo=UTC) == datetime.fromtimestamp(1_700_000_000.25, UTC)
    assert values["ModelSha256"] == "ab" * 32
