"""Train the candidate classifier: seeded, resumable, early-stopped, scored end to end on held-out groups.

Every epoch the model scores the held-out boards' real candidates and is judged by the DeepPCB protocol's
F-score, so "best" means best at the job, not lowest loss. Under ``torchrun`` each process trains on its own
share of every epoch's sample (DistributedDataParallel); rank 0 validates and writes checkpoints.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from pcb_inspect.inspect.engine import configs_as_dict, scores_to_detections
from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.proposals import ProposalConfig
from pcb_inspect.inspect.records import CLASSIFIER_CLASSES
from pcb_inspect.inspect.registration import RegistrationConfig
from pcb_inspect.models.architectures import build_model
from pcb_inspect.models.contract import ModelContract
from pcb_inspect.training.augment import augment_crop, train_transform
from pcb_inspect.training.candidates import (
    NO_DEFECT_INDEX,
    BoardCandidates,
    CropSet,
    build_board_candidates,
    build_crop_set,
    crops_as_float,
)
from pcb_inspect.inspect.deeppcb import read_split, split_by_group
from pcb_inspect.inspect.degrade import VARIANTS
from pcb_inspect.inspect.metrics import BoardEval, evaluate
from pcb_inspect.training.torch_backend import TorchBackend


EXTRA_SPLIT = "PCBData/trainval.txt"  # the split list read from each --extra-data folder


@dataclass
class TrainConfig:
    data: Path
    out: Path
    split: str = "PCBData/trainval.txt"
    arch: str = "small"
    epochs: int = 20
    batch: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.05
    neg_ratio: float = 3.0  # no-defect crops sampled per defect crop, fresh every epoch
    patience: int = 6  # epochs without a better held-out F-score before stopping
    val_fraction: float = 0.2
    val_groups: list[str] | None = None
    seed: int = 0
    device: str = "cpu"
    input_size: int = 48
    crop_margin: int = 4
    variants: tuple[str, ...] = VARIANTS
    resume: bool = False
    max_boards: int | None = None  # for quick runs and tests
    workers: int | None = None
    registration: RegistrationConfig = field(default_factory=RegistrationConfig)
    proposals: ProposalConfig = field(default_factory=ProposalConfig)
    #: More DeepPCB-layout folders (``feedback export`` writes one) whose PCBData/trainval.txt boards are
    #: added to the training set only, never to validation: held-out scores stay comparable between runs.
    extra_data: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        self.extra_data = [Path(p) for p in self.extra_data or []]
        for extra in self.extra_data:
            if not (extra / EXTRA_SPLIT).is_file():
                raise ConfigError(f"--extra-data {extra}: no {EXTRA_SPLIT} there (a DeepPCB-layout folder, "
                                  "as 'pcb-inspect feedback export' writes)")
        if self.epochs < 1 or self.batch < 1 or self.lr <= 0 or self.neg_ratio <= 0:
            raise ConfigError("epochs and batch must be >= 1, lr and neg_ratio > 0")
        if not self.device.startswith(("cpu", "cuda")):
            raise ConfigError(f"--device {self.device!r}: use cpu or cuda")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available here (torch.cuda.is_available() is False)")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) when run plainly."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def class_weights(labels: np.ndarray, neg_ratio: float) -> torch.Tensor:
    """Inverse-sqrt frequency over the classes as sampled per epoch, so rare defect types are not drowned."""
    counts = np.bincount(labels, minlength=len(CLASSIFIER_CLASSES)).astype(np.float64)
    counts[NO_DEFECT_INDEX] = min(counts[NO_DEFECT_INDEX], neg_ratio * counts[:NO_DEFECT_INDEX].sum())
    w = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def epoch_indices(labels: np.ndarray, neg_ratio: float, rng: np.random.Generator) -> np.ndarray:
    pos = np.nonzero(labels != NO_DEFECT_INDEX)[0]
    neg = np.nonzero(labels == NO_DEFECT_INDEX)[0]
    n_neg = min(len(neg), int(round(neg_ratio * max(len(pos), 1))))
    idx = np.concatenate([pos, rng.choice(neg, n_neg, replace=False)]) if n_neg else pos
    return rng.permutation(idx)


def score_boards(backend: TorchBackend, boards: list[BoardCandidates], nms_iou: float) -> list[BoardEval]:
    """Score every board's candidates in large batches, then turn each board's scores into detections."""
    if not boards:
        return []
    probs = backend.run(crops_as_float(np.concatenate([b.crops for b in boards])))
    ends = np.cumsum([len(b.crops) for b in boards])
    return [
        BoardEval(b.board_id, b.ground_truth, scores_to_detections(b.boxes, p, nms_iou))
        for b, p in zip(boards, np.split(probs, ends[:-1]))
    ]


def _fingerprint(cfg: TrainConfig, train_ids: list[str], val_groups: list[str], extra: list | None = None,
                 extra_key: str = "") -> dict:
    split_path = cfg.data / cfg.split
    out = {
        "split": cfg.split,
        "split_sha256": hashlib.sha256(split_path.read_bytes()).hexdigest(),
        "train_boards": len(train_ids),
        "train_ids_sha256": hashlib.sha256("\n".join(sorted(train_ids)).encode()).hexdigest(),
        "val_groups": sorted(val_groups),
        "seed": cfg.seed,
        "variants": list(cfg.variants),
    }
    if extra:
        out["extra_data"] = {"folders": [str(p) for p in cfg.extra_data], "boards": len(extra),
                             "files_sha256": extra_key or _extra_key(extra)}
    return out


def read_extra_data(cfg: TrainConfig) -> list:
    """The boards of every ``--extra-data`` folder (its PCBData/trainval.txt), for the training set only."""
    return [rec for extra in cfg.extra_data for rec in read_split(extra, EXTRA_SPLIT)]


def _extra_key(extra: list) -> str:
    """Extra boards by their files' content: an export of other judgements on the same numbered boards is
    another training set (and another crop cache), though its board ids are the same."""
    h = hashlib.sha256()
    for rec in extra:
        for path in (rec.annotation_path, rec.tested_path, rec.template_path):
            h.update(str(path).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def training_records(cfg: TrainConfig) -> tuple[list, list, list]:
    """(training pairs, held-out pairs, extra pairs): held-out groups from ``--data`` only; the extra folders'
    boards are appended to the training pairs (and returned alone too)."""
    records = read_split(cfg.data, cfg.split)
    train_recs, val_recs = split_by_group(records, cfg.val_fraction, cfg.seed, cfg.val_groups)
    if cfg.max_boards:
        train_recs, val_recs = train_recs[: cfg.max_boards], val_recs[: max(1, cfg.max_boards // 2)]
    extra = read_extra_data(cfg)
    return train_recs + extra, val_recs, extra


def train(cfg: TrainConfig) -> dict:
    """Train and return the summary written to ``out/results.json``."""
    rank, world, local_rank = _dist_info()
    distributed = world > 1
    device = cfg.device
    if distributed:
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        if device.startswith("cuda"):
            device = f"cuda:{local_rank}"
            torch.cuda.set_device(local_rank)
    main = rank == 0
    seed_everything(cfg.seed)
    cfg.out.mkdir(parents=True, exist_ok=True)

    train_recs, val_recs, extra = training_records(cfg)
    if extra and main:
        print(f"extra training data: {len(extra)} board(s) from {', '.join(map(str, cfg.extra_data))}")
    val_groups = sorted({r.group for r in val_recs})
    common = dict(size=cfg.input_size, margin=cfg.crop_margin, registration=cfg.registration, proposals=cfg.proposals)
    extra_key = _extra_key(extra) if extra else ""
    train_set = _cached_crops(cfg, train_recs, common, main, distributed, extra_key)
    val_boards = build_board_candidates(val_recs, seed=cfg.seed, workers=cfg.workers, **common) if main else []

    contract = ModelContract(
        input_size=cfg.input_size,
        crop_margin=cfg.crop_margin,
        arch=cfg.arch,
        training_data=_fingerprint(cfg, [r.board_id for r in train_recs], val_groups, extra, extra_key),
        **configs_as_dict(cfg.registration, cfg.proposals),
    )
    model = build_model(cfg.arch, len(CLASSIFIER_CLASSES), len(contract.input_channels)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = len(epoch_indices(train_set.labels, cfg.neg_ratio, np.random.default_rng(0)))
    steps_per_epoch = max(1, int(np.ceil(per_epoch / (cfg.batch * world))))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    use_amp = device.startswith("cuda")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    start_epoch, best_f, stale, history = 0, -1.0, 0, []
    last_path, best_path = cfg.out / "last.pt", cfg.out / "best.pt"
    if cfg.resume and last_path.is_file():
        ckpt = torch.load(last_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        start_epoch, best_f, stale, history = ckpt["epoch"] + 1, ckpt["best_f"], ckpt["stale"], ckpt["history"]
        if main:
            print(f"resuming from {last_path} at epoch {start_epoch + 1}")
    net = nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_amp else None) if distributed else model
    loss_fn = nn.CrossEntropyLoss(
        weight=class_weights(train_set.labels, cfg.neg_ratio).to(device), label_smoothing=cfg.label_smoothing
    )
    transform = train_transform(seed=cfg.seed + rank)

    for epoch in range(start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        idx = epoch_indices(train_set.labels, cfg.neg_ratio, np.random.default_rng(cfg.seed * 1000 + epoch))
        idx = idx[: len(idx) - len(idx) % world][rank::world]  # equal shares: DDP ranks must step together
        mean_loss = _run_epoch(
            net, train_set, idx, cfg.batch, transform, loss_fn, (optimizer, scheduler, scaler), device,
            desc=f"epoch {epoch + 1}/{cfg.epochs}", show=main,
        )
        stop = torch.zeros(1)
        if main:
            report = evaluate(score_boards(TorchBackend(model, contract, device), val_boards, contract.nms_iou))
            history.append(_history_entry(epoch, mean_loss, report, time.perf_counter() - t0))
            improved = report.f_score > best_f
            if improved:
                best_f, stale = report.f_score, 0
            else:
                stale += 1
            ckpt = {
                "arch": cfg.arch,
                "model": model.state_dict(),
                "contract": asdict(contract),
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "best_f": best_f,
                "stale": stale,
                "history": history,
                "config": {k: _plain(v) for k, v in asdict(cfg).items()},
            }
            _atomic_save(ckpt, last_path)
            if improved:
                _atomic_save(ckpt, best_path)
            stop[0] = float(stale >= cfg.patience)
        if distributed:
            dist.broadcast(stop, 0)
        if stop.item():
            if main:
                print(f"early stop: no better held-out F-score for {cfg.patience} epochs")
            break
    summary = {"best_val_f_score": best_f, "epochs_run": len(history), "history": history, "val_groups": val_groups}
    if main:
        (cfg.out / "results.json").write_text(json.dumps(summary, indent=2))
    if distributed:
        dist.destroy_process_group()
    return summary


def _run_epoch(
    net: nn.Module,
    train_set: CropSet,
    idx: np.ndarray,
    batch: int,
    transform,  # noqa: ANN001 - an albumentations Compose
    loss_fn: nn.Module,
    stepping: tuple,
    device: str,
    desc: str,
    show: bool,
) -> float:
    """One pass over this rank's share of the epoch's sample; returns the mean loss."""
    optimizer, scheduler, scaler = stepping
    use_amp = device.startswith("cuda")
    net.train()
    total, seen = 0.0, 0
    bar = tqdm(range(0, len(idx), batch), desc=desc, disable=not show)
    for start in bar:
        sel = np.sort(idx[start : start + batch])
        x = np.stack([augment_crop(transform, c) for c in train_set.as_float(sel)])
        y = torch.from_numpy(train_set.labels[sel]).to(device)
        with torch.autocast("cuda", enabled=use_amp):
            loss = loss_fn(net(torch.from_numpy(x).to(device)), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        if scheduler.last_epoch < scheduler.total_steps - 1:
            scheduler.step()
        total += loss.item() * len(sel)
        seen += len(sel)
        bar.set_postfix(loss=f"{total / seen:.4f}")
    return total / max(seen, 1)


def _history_entry(epoch: int, loss: float, report, seconds: float) -> dict:  # noqa: ANN001 - DetectionReport
    entry = {
        "epoch": epoch + 1,
        "loss": loss,
        "val_f_score": report.f_score,
        "val_precision": report.precision,
        "val_recall": report.recall,
        "val_ap": report.ap,
        "val_escapes": report.escapes,
        "seconds": seconds,
    }
    print(
        f"epoch {epoch + 1}: loss {loss:.4f}  held-out P {report.precision:.4f} R {report.recall:.4f} "
        f"F {report.f_score:.4f} AP {report.ap:.4f} escapes {report.escapes}  ({seconds:.0f} s)"
    )
    return entry


def _plain(value: object) -> object:
    """A config value as plain data for the checkpoint: paths (and lists of them: --extra-data) as text."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list) and any(isinstance(v, Path) for v in value):
        return [str(v) for v in value]
    return value


def _atomic_save(obj: dict, path: Path) -> None:
    """Write then rename, so a crash never leaves a torn checkpoint behind."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _cached_crops(cfg: TrainConfig, recs: list, common: dict, main: bool, distributed: bool,
                  extra_key: str = "") -> CropSet:
    """Build the training crops once (rank 0) and keep them next to the checkpoints, for resume and DDP ranks."""
    keyed = [[r.board_id for r in recs], list(cfg.variants), cfg.seed, repr(common)]
    keyed += [extra_key] if extra_key else []  # the extra boards' content: their ids say nothing of it
    key = hashlib.sha256(json.dumps(keyed).encode()).hexdigest()[:16]
    path = cfg.out / f"crops-{key}.npz"
    if main and not path.is_file():
        crops = build_crop_set(recs, cfg.variants, cfg.seed, workers=cfg.workers, desc="training crops", **common)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, crops=crops.crops, labels=crops.labels, board=crops.board)
        tmp.replace(path)
        print(f"training crops: {len(crops)} ({crops.class_counts()})")
    if distributed:
        dist.barrier()
    z = np.load(path)
    return CropSet(z["crops"], z["labels"], z["board"])
