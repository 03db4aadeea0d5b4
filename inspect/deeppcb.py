"""Reader for DeepPCB in its native layout, so a user's own download reads unchanged.

Layout: ``PCBData/<list>.txt`` with lines ``groupG/G/NNNNNNNN.jpg groupG/G_not/NNNNNNNN.txt``; on disk each
pair is ``NNNNNNNN_test.jpg`` (tested board) and ``NNNNNNNN_temp.jpg`` (template); annotation lines are
``x1 y1 x2 y2 type`` separated by spaces or commas. Nothing is dropped silently: a missing file or a bad line
raises :class:`DataError` naming the file and line.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pcb_inspect.inspect.errors import DataError, ImageError
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
        """(tested, template) as 2-D uint8 gray, of one size (else ImageError naming both files)."""
        tested, template = read_gray(self.tested_path), read_gray(self.template_path)
        if tested.shape != template.shape:
            raise ImageError(f"{self.tested_path} ({tested.shape[1]}x{tested.shape[0]}) and its template "
                             f"{self.template_path} ({template.shape[1]}x{template.shape[0]}) differ in size")
        return tested, template

    def load_ground_truth(self) -> list[GroundTruth]:
        return read_annotations(self.annotation_path)


def _read_text(path: Path, what: str) -> str:
    """A list or annotation file as text (a UTF-8 BOM dropped); one DataError naming the file otherwise."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} ({exc.strerror or exc})") from None
    data = data.removeprefix(b"\xef\xbb\xbf")  # a BOM, as Windows editors write it
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line_no}: {what} is not UTF-8 text (byte 0x{data[exc.start]:02x})") from None


def _whole(field_text: str) -> int:
    value = float(field_text)  # DeepPCB writes whole numbers; "12.0" is accepted as 12
    if not math.isfinite(value):
        raise ValueError(f"{field_text!r} is not a finite number")
    return int(value)


def read_annotations(path: Path) -> list[GroundTruth]:
    """Parse a DeepPCB annotation file; commas or spaces both accepted, blank lines and a UTF-8 BOM ignored."""
    text = _read_text(Path(path), "annotation file")
    boxes: list[GroundTruth] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        fields = [f for f in _SPLIT_FIELDS.split(line) if f]
        if len(fields) != 5:
            raise DataError(f"{path}:{line_no}: expected 'x1 y1 x2 y2 type', got {line!r}")
        try:
            x1, y1, x2, y2, type_id = (_whole(f) for f in fields)
            boxes.append(GroundTruth(class_from_type_id(type_id), (x1, y1, x2, y2)))
        except ValueError as exc:
            raise DataError(f"{path}:{line_no}: {exc} in {line!r}") from None
    return boxes


def _resolve_split(data_dir: Path, split: str | Path) -> Path:
    split_path = Path(split)
    if not split_path.is_absolute():
        split_path = data_dir / split_path
    if split_path.is_dir():
        raise DataError(f"{split_path}: is a folder, not a split list file (e.g. PCBData/test.txt)")
    if not split_path.is_file():
        raise DataError(f"{split_path}: split list not found (give it relative to --data, e.g. PCBData/test.txt)")
    return split_path


@dataclass
class SplitScan:
    """A split list read line by line: the usable pairs, the lines that are not (each one line naming the
    list, the line number and what is wrong) and notes (repeated lines, counted once)."""

    records: list[PairRecord]
    problems: list[str]
    notes: list[str]
    #: (board id, group) of each refused line that names a board, so a batch can drop its earlier results
    refused: list[tuple[str, str]] = field(default_factory=list)


def _inside(path: Path, root: Path) -> bool:
    """Lexically inside: '..' and absolute paths may not leave the dataset; symlinked folders in it may."""
    path_text, root_text = os.path.abspath(path), os.path.abspath(root)
    return os.path.commonpath([path_text, root_text]) == root_text


def _pair(fields: list[str], root: Path, data_dir: Path, need_annotations: bool) -> PairRecord | str:
    """The pair a split line names, or what is wrong with it."""
    image_rel, ann_rel = fields
    stem = Path(image_rel).with_suffix("")
    tested, template, annotation = root / f"{stem}_test.jpg", root / f"{stem}_temp.jpg", root / ann_rel
    if not all(_inside(p, data_dir) for p in (tested, template, annotation)):
        return f"{' '.join(fields)!r} points outside the dataset folder {data_dir}"
    wanted = ((tested, "tested image"), (template, "template image"))
    missing = [f"{what} {path} not found" for path, what in wanted if not path.is_file()]
    if need_annotations and not annotation.is_file():
        missing.append(f"annotation {annotation} not found")
    if missing:
        return "; ".join(missing)
    return PairRecord(stem.name, Path(image_rel).parts[0], tested, template, annotation)


def _bad_annotation(path: Path) -> str | None:
    """What is wrong with an annotation file, as its own ``file:line: ...``; None when it reads."""
    try:
        read_annotations(path)
    except DataError as exc:
        return str(exc)
    return None


def scan_split(
    data_dir: str | Path, split: str | Path, need_annotations: bool = True, parse_annotations: bool = False
) -> SplitScan:
    """Read a split list without stopping at a bad line, so a batch can finish the good pairs.

    Paths in the list are relative to the list's own folder (``PCBData/``), as in the dataset, and must stay
    inside ``data_dir``. A line repeated is counted once. With ``parse_annotations`` (scoring: eval) each
    annotation file is parsed too, so a pair whose ground truth cannot be read is refused here, its own
    ``file:line`` named, rather than scored as a board without defects.
    """
    data_dir = Path(data_dir)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"{data_dir}: is a file, not the dataset folder (the one that holds PCBData/)")
    if not data_dir.is_dir():
        raise DataError(f"{data_dir}: dataset folder not found")
    split_path = _resolve_split(data_dir, split)
    text = _read_text(split_path, "split list")
    root = split_path.parent
    scan = SplitScan([], [], [])
    seen: dict[str, tuple[int, str]] = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        where = f"{split_path}:{line_no}"
        fields = line.split()
        if len(fields) != 2 or not Path(fields[0]).name:
            scan.problems.append(f"{where}: expected 'image.jpg annotation.txt', got {line!r}")
            continue
        image_rel, ann_rel = fields
        board = (Path(image_rel).stem, Path(image_rel).parts[0])
        if Path(image_rel).is_absolute() or Path(ann_rel).is_absolute():
            scan.problems.append(f"{where}: absolute path in {line!r}; paths are relative to {root}")
            scan.refused.append(board)
            continue
        key = os.path.normpath(image_rel)
        if key in seen:
            first, first_ann = seen[key]
            if os.path.normpath(ann_rel) == first_ann:
                scan.notes.append(f"{where}: repeats line {first} ({image_rel}); counted once")
            else:
                scan.problems.append(f"{where}: repeats {image_rel} of line {first} with another annotation "
                                     f"({ann_rel}, not {first_ann}); line {first} is used")
            continue
        seen[key] = (line_no, os.path.normpath(ann_rel))
        pair = _pair(fields, root, data_dir, need_annotations)
        if isinstance(pair, str):
            problem: str | None = f"{where}: {pair}"
        else:
            problem = _bad_annotation(pair.annotation_path) if parse_annotations else None
        if problem:
            scan.problems.append(problem)
            scan.refused.append(board)
        else:
            scan.records.append(pair)
    if not scan.records and not scan.problems:
        raise DataError(f"{split_path}: split list names no pairs")
    return scan


def read_split(data_dir: str | Path, split: str | Path, need_annotations: bool = True) -> list[PairRecord]:
    """Read a split list; every named file must exist (the first bad line raises DataError naming it)."""
    scan = scan_split(data_dir, split, need_annotations)
    if scan.problems:
        extra = f" (and {len(scan.problems) - 1} more bad lines)" if len(scan.problems) > 1 else ""
        raise DataError(scan.problems[0] + extra)
    return scan.records


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
