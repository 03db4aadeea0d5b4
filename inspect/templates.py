"""Golden templates for the boards a source delivers: the frame's own, a per-product folder, or one file.

Precedence for a frame: its own ``template`` array > its ``template_path`` > the folder's entry for its
``product`` > the folder's entry for its ``board_id`` > the single template file. A folder is keyed by file
stem (``templates/A1234.png`` serves product ``A1234``). Decoded templates are cached (bounded, keyed by
path and modification time, so a re-taught template is picked up); the store is picklable for worker
processes, which build their own caches.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from pcb_inspect.inspect.errors import ConfigError, ImageError
from pcb_inspect.inspect.imageio import read_gray
from pcb_inspect.inspect.sources.base import Frame
from pcb_inspect.inspect.sources.uri import IMAGE_SUFFIXES

_SHOWN_KEYS = 5  # how many existing keys an error message lists


class TemplateStore:
    """Finds and decodes the template for each frame.

    Args:
        path: a template image (every board is the same product), a folder of templates keyed by file stem,
            or None (frames must bring their own template, as dataset and synthetic sources do).
        cache_size: decoded templates kept in memory.

    Raises:
        ConfigError: ``path`` does not exist, is not an image, or a folder holds two templates with one stem.
    """

    def __init__(self, path: str | Path | None, *, cache_size: int = 64) -> None:
        if cache_size < 1:
            raise ConfigError(f"template cache_size {cache_size} must be >= 1")
        self.path = Path(path) if path is not None else None
        self.cache_size = cache_size
        self._index: dict[str, Path] = {}
        self.is_folder = self.path is not None and self.path.is_dir()
        if self.path is not None:
            if self.is_folder:
                self._index = self._scan(self.path)
            elif not self.path.is_file():
                raise ConfigError(f"{self.path}: template file or folder not found")
            elif self.path.suffix.lower() not in IMAGE_SUFFIXES:
                raise ConfigError(f"{self.path}: template is not an image file ({' '.join(IMAGE_SUFFIXES)})")
        self._init_cache()

    def keys(self) -> list[str]:
        """The product / board keys the folder holds (empty for a single file)."""
        return sorted(self._index)

    def _init_cache(self) -> None:
        self._cache: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _scan(folder: Path) -> dict[str, Path]:
        index: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
                continue
            if p.stem in index:
                raise ConfigError(f"{folder}: two templates for key {p.stem!r}: "
                                  f"{index[p.stem].name}, {p.name}")
            index[p.stem] = p
        return index

    def resolve(self, frame: Frame) -> np.ndarray:
        """The frame's template as 2-D uint8 gray (shared: do not draw on it).

        Raises:
            ConfigError: no template fits the frame (names the keys tried, the folder and keys it has).
            ImageError: the template file cannot be decoded, or the frame's own template is not 2-D uint8.
        """
        if frame.template is not None:
            t = frame.template
            if t.ndim != 2 or t.dtype != np.uint8:
                raise ImageError(f"frame {frame.board_id or frame.index}: template must be 2-D uint8, "
                                 f"got {t.dtype} {t.shape}")
            return t
        if frame.template_path is not None:
            return self._load(Path(frame.template_path))
        if self.path is None:
            raise ConfigError(f"frame {frame.board_id or frame.index} from {frame.source} brings no template "
                              "and no template file or folder was given")
        if not self.is_folder:
            return self._load(self.path)
        return self._load(self._lookup(frame, self.path))

    def _lookup(self, frame: Frame, folder: Path) -> Path:
        keys = [k for k in (frame.product, frame.board_id) if k]
        for attempt in range(2):  # a key not found rescans once: templates added while running are seen
            for key in keys:
                if key in self._index:
                    return self._index[key]
            if attempt == 0:
                self._index = self._scan(folder)
        tried = " or ".join(repr(k) for k in keys) or "no key (frame has neither product nor board_id)"
        have = self.keys()
        some = ", ".join(have[:_SHOWN_KEYS])
        if len(have) > _SHOWN_KEYS:
            some += f", ... ({len(have)} in all)"
        raise ConfigError(f"{folder}: no template for {tried}; the folder has {some or 'no image files'}")

    def _load(self, path: Path) -> np.ndarray:
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ImageError(f"{path}: template file not found") from None
        except OSError as exc:
            raise ImageError(f"{path}: cannot read template ({exc.strerror or exc})") from None
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        image = read_gray(path)
        image.setflags(write=False)
        with self._lock:
            self._cache[key] = image
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return image

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_cache"], state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_cache()
