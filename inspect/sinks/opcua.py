"""OPC UA: the station as an object the MES reads (an asyncua server in its own thread and event loop).

Under ``Objects`` the station is an object (named after the station, in namespace :data:`NAMESPACE`) with
typed, read-only variables, node ids ``ns=<idx>;s=<station>.<Name>``:

======================  ==========  ===================================================================
State                   String      the source's state: connecting, connected, reconnecting, ended
Inspected, Pass, Fail,  UInt64      boards since start, by verdict
Review, Error
Dropped                 UInt64      frames the loop dropped because the engine was behind
YieldPct                Double      PASS share of the judged boards, in percent (NaN before the first)
LastVerdict             String      the latest inspection: verdict, board id, reported defects, capture time
LastBoardId             String
LastDefectCount         UInt32
LastTime                DateTime
ModelSha256             String      the model that judges now (follows a hot swap)
======================  ==========  ===================================================================

The last inspection comes from ``write()``. The counters, state and model come from the runtime's status when
one is attached (:meth:`OpcUaSink.attach_status`; ``lineio`` does it), refreshed with every write and once a
second, so they equal ``/api/status``; without it the sink counts what it was given. The server binds
127.0.0.1 unless told otherwise, with no security and anonymous access only: it is meant for the plant's
network behind the line's own firewall; use ``host`` to expose it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Inspection, Verdict
from pcb_inspect.inspect.sinks.base import Result, Sink, SinkError, one_line

NAMESPACE = "urn:pcb-inspect"
REFRESH_S = 1.0
#: name -> OPC UA variant type name; the order is the browse order.
VARIABLES: dict[str, str] = {
    "State": "String", "Inspected": "UInt64", "Pass": "UInt64", "Fail": "UInt64", "Review": "UInt64",
    "Error": "UInt64", "Dropped": "UInt64", "YieldPct": "Double", "LastVerdict": "String",
    "LastBoardId": "String", "LastDefectCount": "UInt32", "LastTime": "DateTime", "ModelSha256": "String",
}
_INITIAL = {"String": "", "UInt64": 0, "UInt32": 0, "Double": math.nan,
            "DateTime": datetime(1970, 1, 1, tzinfo=UTC)}


def endpoint_url(host: str, port: int) -> str:
    return f"opc.tcp://{f'[{host}]' if ':' in host else host}:{port}/pcb-inspect/"


async def _cancel_tasks() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


class OpcUaSink(Sink):
    """Serves the station's state over OPC UA.

    Args:
        port: the TCP port to listen on (4840 is OPC UA's own).
        host: the address to bind (default 127.0.0.1).
        station: the object's name.
        status: a callable returning the runtime's status dict (or attach it later with ``attach_status``).
        **options: the queue and retry options of :class:`Sink` (on_full defaults to drop_oldest here:
            only the latest inspection is shown, so the loop never waits on this sink).
    """

    name = "opcua"
    wants_images = "none"

    def __init__(self, port: int = 4840, host: str = "127.0.0.1", *, station: str,
                 status: Callable[[], dict] | None = None, **options) -> None:
        options.setdefault("on_full", "drop_oldest")
        super().__init__(**options)
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ConfigError(f"opcua sink: port {port!r} is not in 1..65535")
        if not isinstance(host, str) or not host.strip():
            raise ConfigError("opcua sink: host is empty")
        if not isinstance(station, str) or not station.strip():
            raise ConfigError("opcua sink: station is empty")
        self.port, self.host, self.station = port, host.strip(), station
        self.url = endpoint_url(self.host, port)
        self._status = status
        self._counts = {v: 0 for v in Verdict}  # used only while no runtime status is attached
        self._last: Inspection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server_thread: threading.Thread | None = None
        self._server = None
        self._nodes: dict = {}
        self._shown: dict[str, object] = {}
        self._refresher: asyncio.Task | None = None

    def attach_status(self, status: Callable[[], dict]) -> None:
        """Take counters, state and model from the runtime (``Runtime.status``) from now on."""
        self._status = status

    # -- the sink's thread ---------------------------------------------------------------------------------

    def open(self) -> None:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=f"opcua-{self.port}", daemon=True)
        thread.start()
        self._loop, self._server_thread = loop, thread
        try:
            asyncio.run_coroutine_threadsafe(self._start(), loop).result(timeout=60)
        except Exception as exc:  # noqa: BLE001 - a port in use, a bad host: retried by the base
            self._stop_loop()
            raise SinkError(f"OPC UA server on {self.host}:{self.port}: {one_line(exc)}") from None

    def write(self, result: Result) -> None:
        inspection = result.inspection
        if self._last is None or self._last.id != inspection.id:  # a retried write counts once
            self._counts[inspection.verdict] += 1
        self._last = inspection
        if self._loop is None:
            raise SinkError(f"OPC UA server on {self.host}:{self.port} is not running")
        asyncio.run_coroutine_threadsafe(self._show(), self._loop).result(timeout=10)

    def teardown(self) -> None:
        if self._loop is not None and self._server is not None:
            try:
                asyncio.run_coroutine_threadsafe(self._stop_server(), self._loop).result(timeout=10)
            except Exception as exc:  # noqa: BLE001 - the loop stops below either way
                logging.getLogger(__name__).warning("OPC UA server on %s:%s: stop failed: %s", self.host,
                                                    self.port, one_line(exc))
        self._stop_loop()

    def stats(self) -> dict:
        return {"endpoint": self.url}

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._server_thread
        self._loop = self._server_thread = self._server = None
        if loop is not None:
            # end asyncua's own background tasks too, so none is left pending in a closed loop; a loop that
            # will not settle is stopped all the same
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(timeout=5)
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(10)
            if not loop.is_running():
                loop.close()

    # -- the server's event loop -----------------------------------------------------------------------------

    async def _start(self) -> None:
        from asyncua import Server, ua

        logging.getLogger("asyncua").setLevel(logging.ERROR)  # its INFO/WARNING chatter is per connection
        server = Server()
        await server.init()
        server.set_endpoint(self.url)
        server.set_server_name(f"pcb-inspect {self.station}")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        idx = await server.register_namespace(NAMESPACE)
        station = await server.nodes.objects.add_object(ua.NodeId(self.station, idx),
                                                        ua.QualifiedName(self.station, idx))
        self._nodes, self._shown = {}, {}
        for name, kind in VARIABLES.items():
            vtype = getattr(ua.VariantType, kind)
            self._nodes[name] = (await station.add_variable(ua.NodeId(f"{self.station}.{name}", idx),
                                                            ua.QualifiedName(name, idx),
                                                            ua.Variant(_INITIAL[kind], vtype)), vtype)
        await server.start()
        self._server = server
        await self._show()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh())

    async def _stop_server(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            self._refresher = None
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_S)
            try:
                await self._show()
            except Exception as exc:  # noqa: BLE001 - a failed refresh must not end the refreshing
                logging.getLogger(__name__).debug("OPC UA refresh failed: %s", one_line(exc))

    async def _show(self) -> None:
        from asyncua import ua

        for name, value in self._values().items():
            if name in self._shown and _same(self._shown[name], value):
                continue
            node, vtype = self._nodes[name]
            await node.write_value(ua.DataValue(ua.Variant(value, vtype)))
            self._shown[name] = value

    def _values(self) -> dict[str, object]:
        status = self._status() if self._status is not None else None
        if status is not None:
            counts = {v: int(status.get(str(v).lower(), 0)) for v in Verdict}
            state, dropped = str(status.get("source_state", "")), int(status.get("dropped", 0))
            model = str(status.get("model_sha256", ""))
        else:
            counts, state, dropped = dict(self._counts), "running" if self._last else "starting", 0
            model = self._last.model_sha256 if self._last else ""
        judged = sum(counts.values()) - counts[Verdict.ERROR]
        out: dict[str, object] = {
            "State": state, "Inspected": sum(counts.values()), "Pass": counts[Verdict.PASS],
            "Fail": counts[Verdict.FAIL], "Review": counts[Verdict.REVIEW], "Error": counts[Verdict.ERROR],
            "Dropped": dropped, "YieldPct": 100.0 * counts[Verdict.PASS] / judged if judged else math.nan,
            "ModelSha256": model,
        }
        last = self._last
        if last is not None:
            out.update(LastVerdict=str(last.verdict), LastBoardId=last.board_id,
                       LastDefectCount=len(last.defects), LastTime=datetime.fromtimestamp(last.time, UTC))
        return out
