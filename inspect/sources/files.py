"""Image files as a camera: one file, a folder, or a glob pattern, in order, once or looping.

Frames carry the file's ``path`` and no pixels: the inspection worker decodes, so the capture thread costs
nothing per board and a corrupt file becomes that board's ERROR inspection, not a stopped run. A file that
vanished between listing and reading is likewise a frame with ``error`` set.
"""

from __future__ import annotations

import glob
import re
import time
from pathlib import Path

from pcb_inspect.inspect.sources.base import Frame, Source, SourceEnded, SourceError
from pcb_inspect.inspect.sources.uri import IMAGE_SUFFIXES, redact

_GLOB_CHARS = re.compile(r"[*?\[]")
_DIGITS = re.compile(r"(\d+)")


def is_glob(pattern: str) -> bool:
    return bool(_GLOB_CHARS.search(pattern))


def natural_key(path: Path) -> list[object]:
    """Sort key that puts ``board2`` before ``board10`` (digit runs compare as numbers)."""
    parts = _DIGITS.split(str(path))
    return [(0, int(p), p) if p.isdigit() else (1, p.lower(), p) for p in parts]


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


class _PathListSource(Source):
    """Yields a list of files made at open (and again at each loop restart)."""

    def __init__(self, uri: str, *, loop: bool = False) -> None:
        super().__init__(redact(uri))
        self.loop = loop
        self._paths: list[Path] = []
        self._next = 0

    def _list(self) -> list[Path]:
        """The files, in order; raises SourceError naming the URI when there are none."""
        raise NotImplementedError

    def open(self) -> None:
        self._paths = self._list()
        self._next = 0

    def read(self) -> Frame | None:
        if not self._paths:
            raise SourceError(f"{self.uri}: read before open()")
        if self._next >= len(self._paths):
            if not self.loop:
                raise SourceEnded(f"{self.uri}: all {len(self._paths)} image(s) read")
            self.open()  # a loop re-lists: files added since are seen, removed ones are not
        path = self._paths[self._next]
        self._next += 1
        frame = Frame(index=self.index, timestamp=time.time(), source=self.uri, path=path, board_id=path.stem)
        if not path.is_file():
            frame.error = f"{path}: image file vanished after {self.uri} was listed"
        self.index += 1
        return frame

    def close(self) -> None:
        self._paths = []
        self._next = 0


class ImageFileSource(_PathListSource):
    """One image file (a bare path or ``file://PATH``): one frame, or the same board forever with ``loop``."""

    def __init__(self, uri: str, path: str | Path, *, loop: bool = False) -> None:
        super().__init__(uri, loop=loop)
        self.path = Path(path)

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> ImageFileSource:
        return cls(uri, uri.removeprefix("file://"), loop=loop)

    def _list(self) -> list[Path]:
        if not self.path.is_file():
            raise SourceError(f"{self.uri}: image file {self.path} not found")
        return [self.path]


class FolderSource(_PathListSource):
    """Image files in a folder, or matching a glob pattern (``boards/*.jpg``, ``**`` recurses), in natural
    sorted order; ``loop`` starts over (listing again) after the last one."""

    def __init__(self, uri: str, pattern: str | Path, *, loop: bool = False) -> None:
        super().__init__(uri, loop=loop)
        self.pattern = str(pattern)

    @classmethod
    def from_uri(cls, uri: str, *, loop: bool = False, timeout_s: float = 2.0) -> FolderSource:
        return cls(uri, uri.removeprefix("file://"), loop=loop)

    def _list(self) -> list[Path]:
        suffixes = " ".join(IMAGE_SUFFIXES)
        if is_glob(self.pattern):
            found = [Path(p) for p in glob.glob(self.pattern, recursive=True)]
            where = f"files matching {self.pattern}"
        else:
            folder = Path(self.pattern)
            if not folder.is_dir():
                raise SourceError(f"{self.uri}: folder {folder} not found")
            found = list(folder.iterdir())
            where = f"folder {folder}"
        paths = sorted((p for p in found if _is_image(p) and p.is_file()), key=natural_key)
        if not paths:
            raise SourceError(f"{self.uri}: no image files ({suffixes}) among the {where}")
        return paths
