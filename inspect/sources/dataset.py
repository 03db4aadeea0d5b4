"""A DeepPCB split as a camera: each tested board in list order, with its own template and ground truth.

``deeppcb://ROOT?split=PCBData/test.txt``: ROOT holds ``PCBData/`` (``deeppcb://data/deeppcb`` is relative
to the working folder, ``deeppcb:///abs/path`` absolute); the split defaults to ``PCBData/trainval.txt``.
Frames carry paths, not pixels (the worker decodes). The line runs on it exactly as on a camera, and since
every frame knows its truth, a run can score itself.
"""

from __future__ import annotations

import time
from pathlib import Path

from pcb_inspect.inspect.deeppcb import PairRecord, read_split
from pcb_inspect.inspect.errors import DataError
from pcb_inspect.inspect.sources.base import Frame, Source, SourceEnded, SourceError
from pcb_inspect.inspect.sources.uri import Param, parse_params, redact, split_query

DEFAULT_SPLIT = "PCBData/trainval.txt"
DEEPPCB_PARAMS = (Param("split", str, DEFAULT_SPLIT),)


class DeepPCBSource(Source):
    """The pairs of one DeepPCB split list, in list order; ends, or starts over with ``loop``; offline."""

    live = False

    def __init__(self, uri: str, root: str | Path, split: str | Path = DEFAULT_SPLIT, *,
                 loop: bool = False) -> None:
        super().__init__(redact(uri))
        self.root = Path(root)
        self.split = str(split)
        self.loop = loop
        self._records: list[PairRecord] = []
        self._next = 0

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> DeepPCBSource:
        body, query = split_query(uri, "deeppcb://")
        if not body:
            raise SourceError(f"{redact(uri)}: no dataset folder (give deeppcb://PATH, e.g. "
                              f"deeppcb://data/deeppcb?split=PCBData/test.txt)")
        p = parse_params(uri, query, DEEPPCB_PARAMS)
        return cls(uri, body, str(p["split"]), loop=loop)

    def open(self) -> None:
        try:
            self._records = read_split(self.root, self.split)
        except DataError as exc:
            raise SourceError(f"{self.uri}: {exc}") from None
        self._next = 0

    def read(self) -> Frame | None:
        if not self._records:
            raise SourceError(f"{self.uri}: read before open()")
        if self._next >= len(self._records):
            if not self.loop:
                raise SourceEnded(f"{self.uri}: all {len(self._records)} pair(s) of {self.split} read")
            self._next = 0
        rec = self._records[self._next]
        self._next += 1
        try:
            truth = rec.load_ground_truth()
        except DataError:
            truth = None  # the board is still inspected; it just cannot be scored
        frame = Frame(index=self.index, timestamp=time.time(), source=self.uri, path=rec.tested_path,
                      board_id=rec.board_id, template_path=rec.template_path, truth=truth)
        self.index += 1
        return frame

    def close(self) -> None:
        self._records = []
        self._next = 0
