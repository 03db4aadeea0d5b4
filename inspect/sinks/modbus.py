"""Modbus TCP reject signal: a coil pulse on the PLC for every rejected board (pymodbus client).

A FAIL (or each verdict in ``verdicts``) writes the coil True, waits ``pulse_ms`` and writes it False; a PASS
writes nothing. The pulse waits in this sink's own thread, so it never holds up the loop or another sink; at
200 ms a pulse the coil can signal about 5 rejects a second, more than a line makes, and a burst waits in the
sink's queue in order. A PLC that goes away makes the write fail; the base reconnects with back-off and
pulses the waiting boards when it is back. A pulse whose True reached the PLC but whose False did not is
finished (False only) on reconnect, never started again: one rising edge per rejected board.

A pulse is only worth sending while its board is still before the reject gate: a rejected board captured
more than ``max_age_s`` ago when its turn comes (the PLC was away, or pulses queued up) is passed over and
counted (``skipped``, ``late``) rather than pulsed late onto whichever board is at the gate by then. For the
same reason the queue drops its oldest entries when full instead of making the loop wait.

An exception answer that no retry can change (illegal function, address or value: a wrong coil or a PLC that
has no coils) fails the sink at once with the PLC's answer; a busy or failing device is retried.
"""

from __future__ import annotations

import logging
import time

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Verdict
from pcb_inspect.inspect.sinks.base import Result, Sink, SinkError, SkipItem, one_line

#: Modbus exception codes no retry can fix: illegal function, data address, data value.
PERMANENT_CODES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value"}


class ModbusSink(Sink):
    """Pulses a coil on a Modbus TCP device (the PLC that drives the reject gate).

    Args:
        host, port: the PLC.
        coil: the coil's address (0-based, as on the wire).
        unit: the Modbus unit (device) id, 0..247.
        pulse_ms: how long the coil stays True.
        verdicts: the verdicts that pulse (default FAIL only).
        timeout_s: connect and answer timeout.
        max_age_s: a board captured longer ago than this is not pulsed any more (counted as late).
        **options: the queue and retry options of :class:`Sink` (here retry_max_s defaults to 5 s and
            on_full to drop_oldest).
    """

    name = "modbus"
    wants_images = "none"

    def __init__(self, host: str, port: int = 502, coil: int = 0, *, unit: int = 1, pulse_ms: int = 200,
                 verdicts: tuple[str, ...] | list[str] = ("FAIL",), timeout_s: float = 1.0,
                 max_age_s: float = 5.0, **options) -> None:
        options.setdefault("retry_max_s", 5.0)
        options.setdefault("on_full", "drop_oldest")
        super().__init__(**options)
        if not isinstance(host, str) or not host.strip():
            raise ConfigError("modbus sink: host is empty")
        for what, value, low, high in (("port", port, 1, 65535), ("coil", coil, 0, 65535),
                                       ("unit", unit, 0, 247), ("pulse_ms", pulse_ms, 1, 60_000)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"modbus sink: {what} {value!r} is not a whole number in {low}..{high}")
        try:
            self.verdicts = frozenset(Verdict(str(v).upper()) for v in verdicts)
        except ValueError:
            raise ConfigError(f"modbus sink: verdicts {list(verdicts)!r}: each one of "
                              f"{', '.join(Verdict)}") from None
        if not self.verdicts:
            raise ConfigError("modbus sink: verdicts is empty; give at least one (e.g. FAIL)")
        if not 0 < timeout_s <= 60:
            raise ConfigError(f"modbus sink: timeout_s {timeout_s!r} must be in (0, 60]")
        if not 0 < max_age_s <= 3600:
            raise ConfigError(f"modbus sink: max_age_s {max_age_s!r} must be in (0, 3600]")
        self.host, self.port, self.coil, self.unit = host.strip(), port, coil, unit
        self.pulse_s, self.timeout_s, self.max_age_s = pulse_ms / 1000.0, float(timeout_s), float(max_age_s)
        self._client = None
        self._releasing: str | None = None  # the inspection whose pulse went True and has not gone False yet
        self._pulsed: str | None = None  # the last inspection whose pulse is complete
        self._pulses = self._late = 0

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def open(self) -> None:
        from pymodbus.client import ModbusTcpClient

        # pymodbus logs every failed attempt; the base reports the sink's failures (once a minute in the log,
        # always in status), so the library's own lines would only repeat them on each retry
        logging.getLogger("pymodbus.logging").setLevel(logging.CRITICAL)
        client = ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=0)
        if not client.connect():
            client.close()
            raise SinkError(f"PLC {self.address}: cannot connect (refused, unreachable or no answer within "
                            f"{self.timeout_s:g} s)")
        self._client = client
        if self._releasing is not None:  # finish the pulse the last connection cut short
            self._set(False)
            self._pulsed, self._releasing = self._releasing, None
            self._pulses += 1

    def write(self, result: Result) -> None:
        inspection = result.inspection
        if inspection.verdict not in self.verdicts:
            return
        if self._pulsed == inspection.id:  # retried after its release failed; open() has finished the pulse
            return
        age = time.time() - inspection.time
        if inspection.time > 0 and age > self.max_age_s:
            self._late += 1
            raise SkipItem(f"PLC {self.address}: board {inspection.board_id or inspection.id} captured "
                           f"{age:.1f} s ago, past the {self.max_age_s:g} s a reject pulse is worth; "
                           "not pulsed")
        self._set(True)
        self._releasing = inspection.id
        time.sleep(self.pulse_s)
        self._set(False)
        self._pulsed, self._releasing = inspection.id, None
        self._pulses += 1

    def _set(self, value: bool) -> None:
        from pymodbus.exceptions import ModbusException

        if self._client is None:
            raise SinkError(f"PLC {self.address}: not connected")
        try:
            answer = self._client.write_coil(self.coil, value, device_id=self.unit)
        except ModbusException as exc:
            raise SinkError(f"PLC {self.address}: coil {self.coil}: {one_line(exc)}") from None
        if answer.isError():
            code = getattr(answer, "exception_code", None)
            what = PERMANENT_CODES.get(code, f"exception code {code}")
            raise SinkError(f"PLC {self.address} refused coil {self.coil} (unit {self.unit}): {what}",
                            permanent=code in PERMANENT_CODES)

    def close(self, timeout: float = 5.0) -> None:
        """Flush for at most ``max_age_s``: a pulse still waiting after that would be skipped as late anyway,
        so a stopping line does not wait out a long close timeout for a PLC that is away."""
        super().close(min(timeout, self.max_age_s))

    def teardown(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def stats(self) -> dict:
        return {"plc": self.address, "coil": self.coil, "pulses": self._pulses, "late": self._late}
