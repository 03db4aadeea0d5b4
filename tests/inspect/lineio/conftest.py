"""Real peers for the line's I/O, started by the tests on free loopback ports: Debian's Mosquitto (skipped
with the reason where it is not installed) and pymodbus's own Modbus TCP server in a thread, recording coil
writes."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from pcb_inspect.inspect.records import Defect, Inspection

MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate: Callable[[], object], timeout: float, what: str, every: float = 0.02) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def inspection(verdict: str = "PASS", index: int = 0, **fields) -> Inspection:
    defects = [Defect("short", 0.9, (10, 20, 40, 50)), Defect("open", 0.8, (60, 20, 90, 50))] \
        if verdict == "FAIL" else []
    extra = {"error": "registration did not converge"} if verdict == "ERROR" else {}
    return Inspection(**{"board_id": f"b{index}", "verdict": verdict, "defects": defects,
                         "frame_index": index,
                         "time": time.time(), "station": "t", "model_sha256": "ab" * 32,
                         "stage_ms": {"wait": 1.0, "register": 2.0}, **extra, **fields})


def line_args(*argv: str) -> argparse.Namespace:
    """``run``'s options as the CLI parses them (every extension's options, with their defaults)."""
    from pcb_inspect.inspect.options import add_run_options

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    return parser.parse_args(["--source", "synthetic://", *argv])


class Broker:
    """One Mosquitto on 127.0.0.1:port with a generated config, persistence in its own folder."""

    def __init__(self, folder: Path, extra: str = "") -> None:
        self.folder, self.port, self.extra = folder, free_port(), extra
        self.proc: subprocess.Popen | None = None

    def start(self) -> Broker:
        self.folder.mkdir(parents=True, exist_ok=True)
        conf = self.folder / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\n{self.extra or 'allow_anonymous true'}\n"
                        f"persistence true\npersistence_location {self.folder}/\n"
                        f"log_dest file {self.folder}/mosquitto.log\nuser {getpass.getuser()}\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    log = (self.folder / "mosquitto.log")
                    text = log.read_text() if log.exists() else ""
                    raise RuntimeError(f"mosquitto did not start: {err} {text}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistent sessions and queued messages, as a service stop does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path):
    if MOSQUITTO is None:
        pytest.skip("needs Debian's mosquitto broker (apt-get install mosquitto); not installed here")
    made: list[Broker] = []

    def make(extra: str = "", start: bool = True) -> Broker:
        b = Broker(tmp_path / f"broker{len(made)}", extra)
        made.append(b)
        return b.start() if start else b

    yield make
    for b in made:
        b.stop()


class Subscriber:
    """A paho subscriber (QoS 1); ``clean_session=False`` with a fixed id is the MES's persistent session."""

    def __init__(self, port: int, topic: str, client_id: str = "", persistent: bool = False, **tls) -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  clean_session=not persistent)
        if tls.get("username"):
            self.client.username_pw_set(tls.pop("username"), tls.pop("password", None))
        if tls:
            self.client.tls_set(**tls)
        self.client.reconnect_delay_set(1, 1)
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port, keepalive=5)
        self.client.loop_start()
        wait_for(self.subscribed.is_set, 10, f"a subscription to {topic}")

    def _on_message(self, _c, _u, msg) -> None:  # noqa: ANN001
        with self._lock:
            self.messages.append((msg.topic, msg.payload, msg.retain))

    def records(self) -> list[dict]:
        with self._lock:
            return [json.loads(p) for t, p, _ in self.messages if t.endswith("/inspections")]

    def payloads(self) -> list[tuple[bytes, bool]]:
        with self._lock:
            return [(p, r) for _, p, r in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ModbusServer:
    """pymodbus's Modbus TCP server in a thread of its own on 127.0.0.1, recording each coil write as
    (monotonic time, coil, value); ``stop()`` and ``start()`` again on the same port play a PLC restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.writes: list[tuple[float, int, bool]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None

    def _trace(self, sending: bool, pdu):  # noqa: ANN001, ANN202
        if not sending and type(pdu).__name__ == "WriteSingleCoilRequest":
            self.writes.append((time.monotonic(), pdu.address, bool(pdu.bits[0])))
        return pdu

    def start(self) -> ModbusServer:
        from pymodbus.server import ModbusTcpServer
        from pymodbus.simulator import DataType, SimData, SimDevice

        ready = threading.Event()
        loop = asyncio.new_event_loop()
        bits = [SimData(0, count=64, values=False, datatype=DataType.BITS)]
        regs = [SimData(0, count=4, values=0, datatype=DataType.REGISTERS)]

        async def serve() -> None:
            self._server = ModbusTcpServer(SimDevice(0, simdata=(bits, bits, regs, regs)),
                                           address=("127.0.0.1", self.port), trace_pdu=self._trace)
            task = asyncio.ensure_future(self._server.serve_forever())
            ready.set()
            await task

        self._loop = loop
        self._thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        self._thread.start()
        ready.wait(5)
        wait_for(lambda: _accepts(self.port), 5, "the Modbus server to listen")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.shutdown(), self._loop).result(5)
            self._thread.join(5)
            self._loop.close()
        self._loop = self._server = self._thread = None

    def pulses(self, coil: int) -> list[float]:
        """Each True followed by a False on ``coil``: the pulse's length in seconds."""
        out, rose = [], None
        for t, address, value in list(self.writes):
            if address != coil:
                continue
            if value and rose is None:
                rose = t
            elif not value and rose is not None:
                out.append(t - rose)
                rose = None
        return out


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def modbus_server():
    server = ModbusServer().start()
    yield server
    server.stop()


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above (a test imports nothing from a conftest under --import-mode=importlib)."""
    return SimpleNamespace(inspection=inspection, wait_for=wait_for, free_port=free_port, line_args=line_args,
                           Subscriber=Subscriber)
