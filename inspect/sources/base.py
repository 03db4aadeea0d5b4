"""The source seam: anything that yields board frames, opened from a URI by its scheme.

A source is a small class: ``open()`` (raises :class:`SourceError` naming the URI when it cannot be reached),
``read() -> Frame | None`` (None: no frame within the timeout; raises :class:`SourceEnded` when a finite
source is done and :class:`SourceError` when a live one is lost), ``close()``. The loop owns reconnection,
back-off and the latest-frame queue; a source only reads.

A frame that arrives broken (a corrupt file in a folder, say) is not an exception: it is a :class:`Frame`
with ``error`` set, which the loop turns into an ERROR inspection while the run goes on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.errors import PcbInspectError
from pcb_inspect.inspect.records import GroundTruth


class SourceError(PcbInspectError):
    """A source cannot be opened, or a live source was lost."""


class SourceEnded(PcbInspectError):
    """A finite source (a file, a folder, a dataset split, a video file) has no more frames."""


@dataclass
class Frame:
    """One board as captured: the tested image (or where to decode it), and how to find its template.

    Decoding can be left to the inspection worker (``path`` instead of ``image``): a folder or dataset source
    then costs the capture thread nothing per frame, and a corrupt file becomes that board's ERROR there.
    """

    index: int  # 0, 1, ... in capture order, per source
    timestamp: float  # time.time() at capture
    source: str  # the source's URI (credentials removed)
    image: np.ndarray | None = None  # the tested image, 2-D uint8 gray; None: decode ``path``
    path: Path | None = None
    board_id: str = ""
    product: str = ""  # key into a template folder; "" = the one template, or the board id
    template: np.ndarray | None = None  # the frame's own template (datasets, synthetic boards)
    template_path: Path | None = None
    truth: list[GroundTruth] | None = None  # known defects, where the source knows them (datasets, synthetic)
    error: str = ""  # set when the frame arrived broken: the board is an ERROR inspection with this reason


class Source(ABC):
    """A camera, a file, a folder, a stream or a dataset, seen as a sequence of frames."""

    #: Live sources (cameras, streams, the synthetic conveyor) run at their own pace: when the engine is
    #: behind, the loop drops the oldest waiting frame. Offline sources (files, folders, datasets, video
    #: files) wait for the engine instead: no board of theirs is ever dropped.
    live: bool = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.index = 0

    @abstractmethod
    def open(self) -> None:
        """Connect or open; raises SourceError with one line naming the URI when it cannot."""

    @abstractmethod
    def read(self) -> Frame | None:
        """The next frame, None when none came within the source's timeout; SourceEnded when done."""

    def close(self) -> None:
        """Release the device, stream or file; safe to call twice."""

    def __enter__(self) -> Source:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
