"""Labelled classifier crops, made by the same front end the line runs, so training sees what inference sees.

Each pair gives candidates by :func:`pcb_inspect.inspect.engine.front_end`; a candidate whose box overlaps a
ground-truth box with IoU > 0.33 takes its class, one that overlaps none is "no defect", and fragments that touch
a defect without matching it are left out (they are neither). Variants per pair make the classifier robust to a
real camera: the tested image moved and degraded, and the template moved and degraded against itself (a
defect-free board, all of whose candidates are registration residue).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.crops import build_crops
from pcb_inspect.inspect.records import CROP_CHANNELS
from pcb_inspect.inspect.engine import front_end
from pcb_inspect.inspect.proposals import ProposalConfig
from pcb_inspect.inspect.records import CLASSIFIER_CLASSES, GroundTruth, box_iou
from pcb_inspect.inspect.registration import RegistrationConfig
from pcb_inspect.inspect.deeppcb import PairRecord
from pcb_inspect.inspect.degrade import VARIANTS, variant_pair

MATCH_IOU = 0.33
IGNORE = -1
NO_DEFECT_INDEX = len(CLASSIFIER_CLASSES) - 1


def crops_as_float(crops: np.ndarray) -> np.ndarray:
    """int8 storage (value * 127) back to the classifier's float input."""
    return crops.astype(np.float32) / 127.0


@dataclass
class CropSet:
    """Crops stored as int8 (value * 127) to keep tens of thousands in memory; labels index CLASSIFIER_CLASSES."""

    crops: np.ndarray  # (N, C, S, S) int8
    labels: np.ndarray  # (N,) int64
    board: np.ndarray  # (N,) int32 index into the records used

    def __len__(self) -> int:
        return len(self.labels)

    def as_float(self, index: np.ndarray | slice) -> np.ndarray:
        return crops_as_float(self.crops[index])

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(CLASSIFIER_CLASSES))
        return {c: int(n) for c, n in zip(CLASSIFIER_CLASSES, counts)}


def label_candidates(boxes: np.ndarray, tight: np.ndarray, ground_truth: Sequence[GroundTruth]) -> np.ndarray:
    """Class index per candidate: matched GT class, NO_DEFECT, or IGNORE for a fragment of a defect."""
    labels = np.full(len(boxes), NO_DEFECT_INDEX, np.int64)
    for i, (box, tbox) in enumerate(zip(boxes, tight)):
        b = tuple(int(v) for v in box)
        t = tuple(int(v) for v in tbox)
        best, best_iou = None, 0.0
        for g in ground_truth:
            iou = box_iou(b, g.box)
            if iou > best_iou:
                best, best_iou = g, iou
        if best is not None and best_iou > MATCH_IOU:
            labels[i] = CLASSIFIER_CLASSES.index(best.cls)
        elif any(box_iou(t, g.box) > 0 for g in ground_truth):
            labels[i] = IGNORE
    return labels


@dataclass(frozen=True)
class CropJob:
    record: PairRecord
    board: int
    variant: str
    seed: int
    size: int
    margin: int
    registration: RegistrationConfig
    proposals: ProposalConfig


def _crops_for(job: CropJob) -> tuple[np.ndarray, np.ndarray, int]:
    crops, labels, _, _ = _front(job)
    keep = labels != IGNORE
    return crops[keep], labels[keep], job.board


def _front(job: CropJob) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[GroundTruth]]:
    """All candidates of one pair variant: int8 crops, labels (IGNORE included), boxes, ground truth."""
    tested, template, gt = variant_pair(job.record, job.variant, job.seed)
    fe = front_end(tested, template, job.registration, job.proposals)
    labels = label_candidates(fe.candidates.boxes, fe.candidates.tight, gt)
    c = fe.candidates
    crops = build_crops(fe.tested_bin, fe.template_bin, c.diff, c.boxes, c.tight, job.size, job.margin)
    return np.round(crops * 127).astype(np.int8), labels, fe.candidates.boxes, gt


@dataclass
class BoardCandidates:
    """One board's candidates as the engine sees them, for scoring a model end to end during training."""

    board_id: str
    crops: np.ndarray  # (N, C, S, S) int8
    boxes: np.ndarray  # (N, 4) int32
    ground_truth: list[GroundTruth]


def _jobs(records, variants, seed, size, margin, registration, proposals) -> list[CropJob]:  # noqa: ANN001
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise ValueError(f"unknown crop variants {sorted(unknown)}; choose from {', '.join(VARIANTS)}")
    return [
        CropJob(rec, b, v, seed * 1_000_003 + b * 7 + k, size, margin, registration, proposals)
        for b, rec in enumerate(records)
        for k, v in enumerate(variants)
    ]


def _map(fn, jobs: list[CropJob], workers: int | None, desc: str) -> list:  # noqa: ANN001
    workers = workers or min(len(jobs), os.cpu_count() or 1)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(tqdm(pool.map(fn, jobs, chunksize=8), total=len(jobs), desc=desc))
    return [fn(j) for j in tqdm(jobs, desc=desc)]


def build_board_candidates(
    records: Sequence[PairRecord],
    variant: str = "clean",
    seed: int = 0,
    size: int = 48,
    margin: int = 4,
    registration: RegistrationConfig = RegistrationConfig(),
    proposals: ProposalConfig = ProposalConfig(),
    workers: int | None = None,
    desc: str = "validation boards",
) -> list[BoardCandidates]:
    jobs = _jobs(records, [variant], seed, size, margin, registration, proposals)
    results = _map(_front, jobs, workers, desc)
    return [BoardCandidates(j.record.board_id, r[0], r[2], r[3]) for j, r in zip(jobs, results)]


def build_crop_set(
    records: Sequence[PairRecord],
    variants: Sequence[str] = VARIANTS,
    seed: int = 0,
    size: int = 48,
    margin: int = 4,
    registration: RegistrationConfig = RegistrationConfig(),
    proposals: ProposalConfig = ProposalConfig(),
    workers: int | None = None,
    desc: str = "crops",
) -> CropSet:
    """Run the front end over every pair and variant (in parallel processes) and collect labelled crops."""
    jobs = _jobs(records, variants, seed, size, margin, registration, proposals)
    results = _map(_crops_for, jobs, workers, desc)
    crops = np.concatenate([r[0] for r in results]) if results else np.zeros((0, len(CROP_CHANNELS), size, size), np.int8)
    labels = np.concatenate([r[1] for r in results]) if results else np.zeros(0, np.int64)
    board = np.concatenate([np.full(len(r[1]), r[2], np.int32) for r in results]) if results else np.zeros(0, np.int32)
    return CropSet(crops, labels, board)
