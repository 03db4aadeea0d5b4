"""The operator page's live feed: the last boards in memory, and a wake-up for each page that listens.

:class:`FeedSink` is a sink like the others (its own thread, a bounded queue that drops the oldest rather
than ever holding up the line). It keeps:

- the last ``keep`` inspections (JSON-sized records), for "one inspection" before the database has it;
- the tested images of the last ``keep_pictures`` rejects, the templates of the last ``keep`` rejects (few
  and shared: a line has a template per product) and both pictures of the newest ``LATEST`` boards (a page
  asks for the newest board's picture a moment after it was announced), for the current-board view, the
  reject review and feedback on boards the reject sink did not keep (PASS boards the operator says were
  escapes). Pictures are held by reference (the loop's arrays, never copied), within ``keep_bytes``;
  templates are shared by content, so a line with one product holds one template;
- the shift's counts (:class:`~pcb_inspect.inspect.shift.ShiftTally`).

It asks the loop for pictures of rejects only (``wants_images="rejects"``); with ``"all"`` a worker process
sends every board's tested image and template back (``--feed-images all``). Frames captured in the main
process (cameras, streams, the synthetic conveyor) carry their image anyway, so the current board is shown
there either way; from folders and datasets a PASS board is then shown without its picture.

Each write wakes the pages' event streams (``subscribe``) through their asyncio loops; the stream itself sends
at most ~10 events a second, whatever the line's rate (``inspect/dashboard_api.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Inspection, Verdict
from pcb_inspect.inspect.shift import ShiftTally
from pcb_inspect.inspect.sinks.base import Result, Sink

FEED_IMAGES = ("rejects", "all")
LATEST = 4  # newest boards whose pictures are kept whatever their verdict


@dataclass
class Pictures:
    """A board's tested image and the template it was judged against (either may be None)."""

    image: np.ndarray | None
    template: np.ndarray | None


class _Subscriber:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.event = loop, asyncio.Event()

    def wake(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # its loop has closed: the page went away with the server
            pass


class FeedSink(Sink):
    """The last boards and their pictures in memory, for the operator page.

    Args:
        keep: inspections kept (most recent first served).
        keep_pictures: rejects whose tested images are kept (plus the newest boards').
        keep_bytes: bytes of reject images and templates kept at most (the oldest go first; a 16-megapixel
            camera's rejects are 16 MB each).
        images: ``"rejects"`` (default) or ``"all"``: which boards' pictures the loop sends.
        tally: the shift's counts to update (one is made when not given).
    """

    name = "feed"

    def __init__(self, keep: int = 500, keep_pictures: int = 32, images: str = "rejects",
                 tally: ShiftTally | None = None, keep_bytes: int = 200_000_000) -> None:
        if images not in FEED_IMAGES:
            raise ConfigError(f"--feed-images {images!r} is not one of {', '.join(FEED_IMAGES)}")
        for what, value in (("keep", keep), ("keep_pictures", keep_pictures), ("keep_bytes", keep_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"feed: {what} {value!r} must be a whole number >= 1")
        self.wants_images = images
        super().__init__(queue_size=256, on_full="drop_oldest", block_s=0.0)
        from pcb_inspect.inspect.shift import DEFAULT_SHIFT_STARTS, parse_shift_starts

        self.tally = tally or ShiftTally(parse_shift_starts(DEFAULT_SHIFT_STARTS))
        self.keep, self.keep_pictures, self.keep_bytes = keep, keep_pictures, keep_bytes
        self._bytes = 0  # of the rejects' images and templates held (each template once)
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self._inspections: OrderedDict[str, tuple[int, Inspection]] = OrderedDict()  # id -> (seq, record)
        self._pictures: OrderedDict[str, np.ndarray] = OrderedDict()  # reject id -> its image, oldest first
        self._template_of: OrderedDict[str, str] = OrderedDict()  # reject id -> its template's content key
        self._templates: dict[str, list] = {}  # content key -> [template, references from _template_of]
        self._latest: deque[tuple[str, np.ndarray, np.ndarray | None]] = deque(maxlen=LATEST)
        self._subscribers: set[_Subscriber] = set()

    # -- the sink ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Nothing to connect to."""

    def write(self, result: Result) -> None:
        i = result.inspection
        with self._lock:
            self._seq += 1
            self._inspections.pop(i.id, None)
            self._inspections[i.id] = (self._seq, i)
            while len(self._inspections) > self.keep:
                self._inspections.popitem(last=False)
            if result.image is not None:
                self._latest.append((i.id, result.image, result.template))
                if i.verdict is not Verdict.PASS:
                    self._keep_pictures(i.id, result.image, result.template)
            subscribers = list(self._subscribers)
        self.tally.add(i)
        for s in subscribers:
            s.wake()

    def teardown(self) -> None:
        self._close_feed()

    def close(self, timeout: float = 5.0) -> None:
        super().close(timeout)
        self._close_feed()  # also when the thread never opened: the pages' streams must end

    def _close_feed(self) -> None:
        with self._lock:
            self._closed = True
            subscribers = list(self._subscribers)
        for s in subscribers:
            s.wake()

    def stats(self) -> dict:
        with self._lock:
            return {"kept": len(self._inspections), "pictures": len(self._pictures),
                    "picture_bytes": self._bytes,
                    "templates": len(self._templates), "subscribers": len(self._subscribers),
                    "seq": self._seq}

    # -- pictures ----------------------------------------------------------------------------------------

    def _keep_pictures(self, iid: str, image: np.ndarray, template: np.ndarray | None) -> None:
        """Under the lock: a reject's tested image (the last ``keep_pictures``) and the key of its template
        (the last ``keep`` rejects: templates are few and shared, so older rejects keep theirs), all within
        ``keep_bytes``."""
        self._forget(iid)
        if template is not None:
            key = hashlib.blake2b(np.ascontiguousarray(template).data, digest_size=16).hexdigest()
            key += f"-{template.shape}"
            if key not in self._templates:
                self._templates[key] = [template, 0]
                self._bytes += template.nbytes
            self._templates[key][1] += 1
            self._template_of[iid] = key
        self._pictures[iid] = image
        self._bytes += image.nbytes
        while len(self._pictures) > self.keep_pictures:
            self._bytes -= self._pictures.popitem(last=False)[1].nbytes
        while len(self._template_of) > self.keep:
            self._forget(next(iter(self._template_of)))
        while self._bytes > self.keep_bytes and len(self._pictures) + len(self._template_of) > 2:
            old = next(iter(self._template_of), None)  # the oldest reject still holding anything
            if old is None or old in self._pictures:
                old = next(iter(self._pictures))
            self._forget(old)

    def _forget(self, iid: str) -> None:
        """Under the lock: drop a reject's image and its hold on a template."""
        image = self._pictures.pop(iid, None)
        if image is not None:
            self._bytes -= image.nbytes
        key = self._template_of.pop(iid, None)
        if key is not None:
            entry = self._templates[key]
            entry[1] -= 1
            if entry[1] <= 0:
                self._bytes -= entry[0].nbytes
                del self._templates[key]

    def pictures(self, inspection_id: str) -> Pictures:
        """The board's pictures while the feed still holds them (else None)."""
        with self._lock:
            for iid, image, template in self._latest:
                if iid == inspection_id:
                    return Pictures(image, template)
            key = self._template_of.get(inspection_id)
            return Pictures(self._pictures.get(inspection_id), self._templates[key][0] if key else None)

    # -- reading -----------------------------------------------------------------------------------------

    @property
    def seq(self) -> int:
        """How many results the feed has taken; an event stream remembers the last one it sent."""
        with self._lock:
            return self._seq

    @property
    def closed(self) -> bool:
        with self._lock:
            return self._closed

    def get(self, inspection_id: str) -> Inspection | None:
        with self._lock:
            found = self._inspections.get(inspection_id)
        return found[1] if found else None

    def recent(self, limit: int, rejects_only: bool = False) -> list[Inspection]:
        """The newest inspections first."""
        out = []
        with self._lock:
            for _, inspection in reversed(self._inspections.values()):
                if len(out) >= limit:
                    break
                if not rejects_only or inspection.verdict is not Verdict.PASS:
                    out.append(inspection)
        return out

    def since(self, seq: int, most_rejects: int = 12) -> tuple[int, Inspection | None, list[Inspection], int]:
        """(newest seq, newest inspection, rejects newer than ``seq`` newest first, how many boards newer)."""
        rejects: list[Inspection] = []
        with self._lock:
            newest = self._seq
            latest = next(reversed(self._inspections.values()))[1] if self._inspections else None
            for s, inspection in reversed(self._inspections.values()):
                if s <= seq or len(rejects) >= most_rejects:
                    break
                if inspection.verdict is not Verdict.PASS:
                    rejects.append(inspection)
        return newest, latest, rejects, newest - seq

    def subscribe(self) -> _Subscriber:
        """Call from the event loop that will wait on ``.event``; ``unsubscribe`` when done."""
        sub = _Subscriber(asyncio.get_running_loop())
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            self._subscribers.discard(sub)
