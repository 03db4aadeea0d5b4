"""The line I/O sinks behind the seam: in the one table, and none overwrites the base's own state (a sink
that reuses a name such as ``_thread`` or ``_stop`` breaks the base's thread, queue or close silently)."""

from __future__ import annotations

import inspect
import re

import pytest

from pcb_inspect.inspect.sinks.base import Sink, make_sink, sink_table


class _Bare(Sink):
    def open(self) -> None: ...

    def write(self, result) -> None: ...  # noqa: ANN001


def _base_private() -> set[str]:
    return {n for n in (*vars(_Bare()), *vars(Sink)) if n.startswith("_") and not n.startswith("__")}


@pytest.mark.parametrize("kind", ["mqtt", "opcua", "modbus", "metrics"])
def test_each_is_in_the_table_and_keeps_off_the_bases_names(kind: str) -> None:
    cls = sink_table()[kind]
    assert cls.name == kind and cls.wants_images == "none"
    base = _base_private()
    assigned = set(re.findall(r"self\.(_[a-z]\w*)\s*(?:[:,=]|\+=)", inspect.getsource(cls)))
    defined = {n for n in vars(cls) if n.startswith("_") and not n.startswith("__") and n != "_abc_impl"}
    assert not (assigned | defined) & base, f"{cls.__name__} reuses the base's {(assigned | defined) & base}"


def test_they_are_made_by_kind_with_their_options_checked(kit) -> None:
    from pcb_inspect.inspect.errors import ConfigError

    sink = make_sink("modbus", host="plc", port=502, coil=4, pulse_ms=100, queue_size=5)
    assert (sink.coil, sink.pulse_s, sink.queue_size, sink.on_full) == (4, 0.1, 5, "drop_oldest")
    assert make_sink("mqtt", host="b", station="L1").topic == "pcb-inspect/L1/inspections"
    assert make_sink("opcua", port=kit.free_port(), station="L1").host == "127.0.0.1"
    assert make_sink("metrics").registry is not make_sink("metrics").registry
    with pytest.raises(ConfigError, match="unknown option.*colour"):
        make_sink("mqtt", host="b", station="L1", colour="red")
    with pytest.raises(ConfigError, match="station 'a/b' must be one MQTT topic level"):
        make_sink("mqtt", host="b", station="a/b")
    with pytest.raises(ConfigError, match="coil 70000 is not a whole number in 0..65535"):
        make_sink("modbus", host="plc", coil=70000)
