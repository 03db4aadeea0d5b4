"""Reject images: the raw board (lossless) and an annotated picture for every FAIL, REVIEW and ERROR.

Files go to ``<folder>/<YYYY-MM-DD>/<id>_raw.png`` and ``<id>_annotated.jpg`` (the date is the capture's, in
local time, the day an operator looks under). Each is written under a temporary name in the same folder and
renamed into place, so a reader (the operator page) never sees half an image, and a killed process leaves at
most a stray ``.*.tmp`` that the next start removes.

Retention keeps the newest ``keep_count`` boards and at most ``keep_bytes`` of pictures: an index of what is
kept (oldest first) is built by one scan at start and kept up to date after each write, so the tree is not
walked per board. The newest board is always kept, even if it alone is larger than ``keep_bytes``.

A full disk or any other failure to write is counted (``disk_full``, ``write_errors``) and that board's
pictures skipped; the line never stops for a picture.
"""

from __future__ import annotations

import errno
import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.annotate import draw_inspection
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Verdict
from pcb_inspect.inspect.sinks.base import Result, Sink, SkipItem

KINDS = {"raw": "_raw.png", "annotated": "_annotated.jpg"}
_ID = re.compile(r"[0-9a-f]{32}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_FILE = re.compile(r"([0-9a-f]{32})(_raw\.png|_annotated\.jpg)")


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by a temporary name in the same folder and a rename."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _encode(suffix: str, image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(suffix, image, list(params))
    if not ok:
        raise ValueError(f"cannot encode a {image.shape} {image.dtype} image as {suffix}")
    return buf.tobytes()


class RejectImageSink(Sink):
    """Saves the pictures of boards that did not pass, keeping the newest within a count and a size.

    Args:
        folder: where the day folders go; created if missing (its parent must exist).
        keep_count: boards (pairs of pictures) kept at most.
        keep_bytes: bytes of pictures kept at most.
        jpeg_quality: of the annotated picture, 1..100.
        **options: the queue and retry options of :class:`Sink`.
    """

    name = "rejects"
    wants_images = "rejects"

    def __init__(self, folder: str | os.PathLike, keep_count: int = 1000, keep_bytes: int = 500_000_000,
                 jpeg_quality: int = 90, **options) -> None:
        super().__init__(**options)
        for what, value, low in (("keep_count", keep_count, 1), ("keep_bytes", keep_bytes, 1),
                                 ("jpeg_quality", jpeg_quality, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"rejects sink: {what} {value!r} must be a whole number >= {low}")
        if jpeg_quality > 100:
            raise ConfigError(f"rejects sink: jpeg_quality {jpeg_quality} must be in 1..100")
        self.folder = Path(folder)
        if not self.folder.parent.is_dir():
            raise ConfigError(f"rejects folder {self.folder}: its parent {self.folder.parent} does not exist")
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"rejects folder {self.folder}: cannot create ({exc.strerror})") from None
        if not self.folder.is_dir() or not os.access(self.folder, os.W_OK | os.X_OK):
            raise ConfigError(f"rejects folder {self.folder} is not a writable folder")
        self.keep_count, self.keep_bytes, self.jpeg_quality = keep_count, keep_bytes, jpeg_quality
        self._lock = threading.Lock()
        self._kept: OrderedDict[str, tuple[str, int]] = OrderedDict()  # id -> (day, bytes), oldest first
        self._kept_bytes = 0
        self._saved = self._disk_full = self._write_errors = self._no_image = self._deleted = 0

    # -- the sink ----------------------------------------------------------------------------------------

    def open(self) -> None:
        """Index what is on disk (oldest first, by modification time), remove stray temporaries, trim."""
        found: dict[str, list] = {}  # id -> [day, bytes, newest mtime]
        for day in sorted(p for p in self.folder.iterdir() if p.is_dir() and _DAY.fullmatch(p.name)):
            for f in day.iterdir():
                if f.name.startswith(".") and f.name.endswith(".tmp"):
                    f.unlink(missing_ok=True)
                    continue
                m = _FILE.fullmatch(f.name)
                if m is None:
                    continue
                try:
                    st = f.stat()
                except FileNotFoundError:
                    continue
                entry = found.setdefault(m.group(1), [day.name, 0, 0.0])
                entry[1] += st.st_size
                entry[2] = max(entry[2], st.st_mtime)
        with self._lock:
            oldest_first = sorted(found.items(), key=lambda kv: (kv[1][2], kv[0]))
            self._kept = OrderedDict((k, (v[0], v[1])) for k, v in oldest_first)
            self._kept_bytes = sum(v[1] for v in self._kept.values())
        self._trim()

    def write(self, result: Result) -> None:
        i = result.inspection
        if i.verdict is Verdict.PASS:
            return
        image = result.image
        if image is None:
            self._no_image += 1
            return
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise SkipItem(f"reject images for {i.id}: need a uint8 gray or BGR image, got "
                           f"{getattr(image, 'shape', type(image).__name__)}")
        shown = i.defects + i.below_threshold if i.verdict is Verdict.REVIEW else i.defects
        title = " ".join(x for x in (i.board_id, i.id[:8], i.error[:60]) if x)
        try:
            raw = _encode(".png", image)
            annotated = _encode(".jpg", draw_inspection(image, shown, i.verdict, title, result.truth or ()),
                                cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality)
        except (cv2.error, ValueError) as exc:
            self._write_errors += 1
            raise SkipItem(f"reject images for {i.id}: {' '.join(str(exc).split())[:200]}") from None
        day = time.strftime("%Y-%m-%d", time.localtime(i.time or time.time()))
        paths = [self.folder / day / f"{i.id}{suffix}" for suffix in KINDS.values()]
        done: list[Path] = []
        try:
            paths[0].parent.mkdir(exist_ok=True)
            for path, data in zip(paths, (raw, annotated)):
                _write_atomic(path, data)
                done.append(path)
        except OSError as exc:
            for path in done:  # a pair or nothing
                path.unlink(missing_ok=True)
            if exc.errno == errno.ENOSPC:
                self._disk_full += 1
                raise SkipItem(f"reject images for {i.id}: disk full under {self.folder}") from None
            self._write_errors += 1
            raise SkipItem(f"reject images for {i.id}: {exc.strerror or exc} "
                           f"({exc.filename or paths[0].parent})") from None
        with self._lock:
            old = self._kept.pop(i.id, None)
            self._kept_bytes += len(raw) + len(annotated) - (old[1] if old else 0)
            self._kept[i.id] = (day, len(raw) + len(annotated))
        if old and old[0] != day:  # the same board again on another day: keep only the new pair
            for suffix in KINDS.values():
                (self.folder / old[0] / f"{i.id}{suffix}").unlink(missing_ok=True)
        self._saved += 1
        self._trim()

    def stats(self) -> dict:
        with self._lock:
            kept, kept_bytes = len(self._kept), self._kept_bytes
        return {"saved": self._saved, "disk_full": self._disk_full, "write_errors": self._write_errors,
                "no_image": self._no_image, "deleted": self._deleted, "kept": kept, "kept_bytes": kept_bytes}

    # -- retention and lookup ----------------------------------------------------------------------------

    def _trim(self) -> None:
        """Delete the oldest boards' pictures until within keep_count and keep_bytes (the newest stays)."""
        while True:
            with self._lock:
                if len(self._kept) <= 1 or (len(self._kept) <= self.keep_count
                                            and self._kept_bytes <= self.keep_bytes):
                    return
                iid, (day, size) = self._kept.popitem(last=False)
                self._kept_bytes -= size
            folder = self.folder / day
            for suffix in KINDS.values():
                try:
                    (folder / f"{iid}{suffix}").unlink(missing_ok=True)
                except OSError:
                    self._write_errors += 1
            self._deleted += 1
            try:
                folder.rmdir()  # only when that day is now empty
            except OSError:
                pass

    def find(self, inspection_id: str) -> dict[str, Path]:
        """A board's pictures by inspection id: ``{"raw": path, "annotated": path}``, those that exist.

        Images are served by id, never by a path from a request: an id that is not 32 lowercase hex digits is
        refused (ConfigError), so no request can name a file outside the folder.
        """
        if not isinstance(inspection_id, str) or not _ID.fullmatch(inspection_id):
            raise ConfigError(f"inspection id {inspection_id!r} is not 32 lowercase hex digits")
        with self._lock:
            entry = self._kept.get(inspection_id)
        if entry is not None:
            days = [entry[0]]
        else:  # not indexed (the sink not opened here, say): look in each day folder, newest first
            days = sorted((p.name for p in self.folder.iterdir() if p.is_dir() and _DAY.fullmatch(p.name)),
                          reverse=True)
        for day in days:
            out = {kind: self.folder / day / f"{inspection_id}{suffix}" for kind, suffix in KINDS.items()}
            out = {kind: path for kind, path in out.items() if path.is_file()}
            if out:
                return out
        return {}
