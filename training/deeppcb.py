"""Reader for DeepPCB in its native layout, so a user's own download reads unchanged.

Layout: ``PCBData/<list>.txt`` with lines ``groupG/G/NNNNNNNN.jpg groupG/G_not/NNNNNNNN.txt``; on disk each
pair is ``NNNNNNNN_test.jpg`` (tested board) and ``NNNNNNNN_temp.jpg`` (template); annotation lines are
``x1 y1 x2 y2 type`` separated by spaces or commas. Nothing is dropped silently: a missing file or a bad line
raises :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.errors import DataError
from pcb_inspect.inspect.imageio import read_gray
from pcb_inspect.inspect.records import GroundTruth, class_from_type_id

_SPLIT_FIELDS = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class PairRecord:
    """One tested/template pair and its annotation file, as named by a split list."""

    board_id: str
    group: str
    tested_path: Path
    template_path: Path
    annotation_path: Path

    def load_images(self) -> tuple[np.ndarray, np.ndarray]:
        """(tested, template) as 2-D uint8 gray."""
        return read_gray(self.tested_path), read_gray(self.template_path)

    def load_ground_truth(self) -> list[GroundTruth]:
        return read_annotations(self.annotation_path)


def read_annotations(path: Path) -> list[GroundTruth]:
    """Parse a DeepPCB annotation file; commas or spaces both accepted, blank lines ignored."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise DataError(f"{path}: annotation file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read annotation file ({exc})") from None
    boxes: list[GroundTruth] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        fields = [f for f in _SPLIT_FIELDS.split(line) if f]
        if len(fields) != 5:
            raise DataError(f"{path}:{line_no}: expected 'x1 y1 x2 y2 type', got {line!r}")
        try:
            x1, y1, x2, y2, type_id = (int(float(f)) for f in fields)
            boxes.append(GroundTruth(class_from_type_id(type_id), (x1, y1, x2, y2)))
        except ValueError as exc:
            raise DataError(f"{path}:{line_no}: {exc} in {line!r}") from None
    return boxes


def _resolve_split(data_dir: Path, split: str | Path) -> Path:
    split_path = Path(split)
    if not split_path.is_absolute():
        split_path = data_dir / split_path
    if not split_path.is_file():
        raise DataError(f"{split_path}: split list not found (give it relative to --data, e.g. PCBData/test.txt)")
    return split_path


def read_split(data_dir: str | Path, split: str | Path) -> list[PairRecord]:
    """Read a split list; every named file must exist.

    Paths in the list are relative to the list's own folder (``PCBData/``), as in the dataset.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: dataset folder not found")
    split_path = _resolve_split(data_dir, split)
    root = split_path.parent
    records: list[PairRecord] = []
    for line_no, line in enumerate(split_path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{split_path}:{line_no}: expected 'image.jpg annotation.txt', got {line!r}")
        image_rel, ann_rel = fields
        stem = Path(image_rel).with_suffix("")
        tested = root / f"{stem}_test.jpg"
        template = root / f"{stem}_temp.jpg"
        annotation = root / ann_rel
        for path, what in ((tested, "tested image"), (template, "template image"), (annotation, "annotation")):
            if not path.is_file():
                raise DataError(f"{split_path}:{line_no}: {what} {path} not found")
        group = Path(image_rel).parts[0]
        records.append(PairRecord(stem.name, group, tested, template, annotation))
    if not records:
        raise DataError(f"{split_path}: split list names no pairs")
    return records


def split_by_group(
    records: Sequence[PairRecord], val_fraction: float = 0.2, seed: int = 0, val_groups: Sequence[str] | None = None
) -> tuple[list[PairRecord], list[PairRecord]]:
    """Hold out whole groups (boards of one group are near-duplicates), chosen by a fixed seed.

    Groups are shuffled with ``seed`` and taken until at least ``val_fraction`` of the pairs are held out,
    unless ``val_groups`` names them.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction {val_fraction} is not in (0, 1)")
    by_group: dict[str, list[PairRecord]] = defaultdict(list)
    for rec in records:
        by_group[rec.group].append(rec)
    if val_groups is None:
        if len(by_group) < 2:
            raise DataError(f"group split needs at least 2 groups, the data has {len(by_group)}")
        order = sorted(by_group)
        random.Random(seed).shuffle(order)
        chosen: list[str] = []
        held = 0
        for g in order:
            if held >= val_fraction * len(records) or len(chosen) == len(order) - 1:
                break
            chosen.append(g)
            held += len(by_group[g])
        val_groups = chosen
    unknown = set(val_groups) - set(by_group)
    if unknown:
        raise DataError(f"validation groups {sorted(unknown)} are not in the data (have {sorted(by_group)})")
    val = [r for r in records if r.group in set(val_groups)]
    train = [r for r in records if r.group not in set(val_groups)]
    return train, val
