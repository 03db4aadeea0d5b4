"""The Modbus reject signal against pymodbus's own server: one pulse per FAIL and none per PASS, from a real
run and from the sink alone; a PLC that goes away and comes back; late boards not pulsed; a wrong coil."""

from __future__ import annotations

import time
from pathlib import Path

from pcb_inspect.inspect.run import build_runtime
from pcb_inspect.inspect.runtime import RunConfig
from pcb_inspect.inspect.sinks.modbus import ModbusSink
from pcb_inspect.inspect.sinks.sqlite import ResultsDB

FAST = {"retry_s": 0.05, "retry_max_s": 0.2}


def test_one_pulse_per_fail_in_a_run(tmp_path: Path, modbus_server) -> None:
    plc = ModbusSink("127.0.0.1", modbus_server.port, 7, pulse_ms=5, **FAST)
    config = RunConfig(source="synthetic://?fps=0&boards=4", max_frames=24, workers=1, station="t")
    runtime = build_runtime(config, tmp_path / "r.db", None, (100, 50), extra_sinks=[plc])
    summary = runtime.run()
    counts = ResultsDB(tmp_path / "r.db").counts()
    assert counts["total"] == 24 and counts["FAIL"] == summary["fail"] >= 1 and counts["PASS"] >= 1
    assert len(modbus_server.pulses(7)) == counts["FAIL"]  # none for PASS (nor REVIEW, ERROR by default)
    assert {address for _, address, _ in modbus_server.writes} == {7}
    assert plc.status()["pulses"] == counts["FAIL"] and plc.status()["state"] == "closed"


def test_pulse_length_and_a_plc_that_goes_away(modbus_server, kit) -> None:
    plc = ModbusSink("127.0.0.1", modbus_server.port, 3, pulse_ms=80, **FAST)
    plc.start()
    try:
        for k, verdict in enumerate(("PASS", "FAIL", "PASS", "PASS", "FAIL")):
            plc.submit(kit.inspection(verdict, index=k))
        assert plc.flush(5)
        lengths = modbus_server.pulses(3)
        assert len(lengths) == 2 and all(0.075 <= s < 0.5 for s in lengths), lengths
        modbus_server.stop()  # the PLC goes away; the line keeps rejecting
        plc.submit(kit.inspection("FAIL", index=5))
        plc.submit(kit.inspection("PASS", index=6))
        plc.submit(kit.inspection("FAIL", index=7))
        kit.wait_for(lambda: plc.status()["state"] == "retrying", 5, "the sink to notice")
        s = plc.status()
        assert s["backlog"] >= 2 and f"PLC 127.0.0.1:{modbus_server.port}" in s["last_error"]
        modbus_server.start()  # same port: the sink reconnects and pulses the waiting boards
        kit.wait_for(lambda: len(modbus_server.pulses(3)) == 4, 10, "the two waiting pulses")
        assert plc.flush(5) and plc.status()["state"] == "ok" and plc.status()["pulses"] == 4
        # a board whose pulse would come too late is passed over, counted, never pulsed onto another board
        plc.submit(kit.inspection("FAIL", index=8, time=time.time() - 60))
        assert plc.flush(5)
        assert len(modbus_server.pulses(3)) == 4
        s = plc.status()
        assert (s["late"], s["skipped"]) == (1, 1)
        assert "60." in s["last_error"] and "not pulsed" in s["last_error"]
    finally:
        plc.close(2)


def test_verdicts_to_pulse_are_configurable_and_a_missing_coil_fails_the_sink(modbus_server, kit) -> None:
    plc = ModbusSink("127.0.0.1", modbus_server.port, 1, pulse_ms=1, verdicts=["FAIL", "REVIEW"], **FAST)
    plc.start()
    for k, verdict in enumerate(("REVIEW", "ERROR", "FAIL", "PASS")):
        plc.submit(kit.inspection(verdict, index=k))
    assert plc.flush(5)
    plc.close(2)
    assert len(modbus_server.pulses(1)) == 2
    wrong = ModbusSink("127.0.0.1", modbus_server.port, 5000, pulse_ms=1, **FAST)  # the server has 64 coils
    wrong.start()
    wrong.submit(kit.inspection("FAIL"))
    kit.wait_for(lambda: wrong.status()["state"] == "failed", 5, "the sink to give up")
    assert "refused coil 5000 (unit 1): illegal data address" in wrong.status()["last_error"]
    wrong.close(1)
