"""Where the front end spends its time, step by step, on one core (no pool, no classifier).

    python benchmarks/front_end_steps.py --data ../shared/datasets/deeppcb [--every 5] [--give-back-memory]

First times the work the way the engine runs it (``PairPreparer``, results freed board by board, in a fresh
process as a line worker is), then step by step; both count minor page faults a board. ``--give-back-memory``
leaves glibc's defaults, under which every board page-faults its image buffers in afresh (see
pcb_inspect/inspect/memory.py).
"""

from __future__ import annotations

import argparse
import resource
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.crops import build_crops
from pcb_inspect.inspect.engine import PairPreparer
from pcb_inspect.inspect.memory import keep_freed_memory
from pcb_inspect.inspect.proposals import ProposalConfig, _propose_once, binarize, refine_template_locally
from pcb_inspect.inspect.registration import (
    RegistrationConfig,
    covers_image,
    register,
    valid_region,
    warp_template,
)
from pcb_inspect.models.contract import ModelContract
from pcb_inspect.inspect.deeppcb import read_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="PCBData/trainval.txt")
    ap.add_argument("--every", type=int, default=5, help="use every Nth pair")
    ap.add_argument("--give-back-memory", action="store_true", help="glibc's default thresholds (the old way)")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    if not args.give_back_memory:
        keep_freed_memory()
    cfg = ProposalConfig()
    pairs = [r.load_images() for r in read_split(args.data, args.split)[:: args.every]]
    contract = ModelContract()
    prepare = PairPreparer(RegistrationConfig(), cfg, contract.input_size, contract.crop_margin)
    faults, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    for tested, template in pairs:
        prepare(tested, template)
    ms = 1e3 * (time.perf_counter() - t0) / len(pairs)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(pairs)
    print(f"engine path (PairPreparer): {ms:.2f} ms, {faults:.0f} minor page faults a board")
    spent: dict[str, float] = defaultdict(float)

    def step(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        spent[name] += t1 - t0
        return t1

    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for tested, template in pairs:
        t = time.perf_counter()
        reg = register(tested, template)
        t = step("register", t)
        tested_bin = binarize(tested)
        template_bin = warp_template(binarize(template), reg, cv2.INTER_NEAREST)
        t = step("binarise + warp", t)
        if not covers_image(tested.shape, reg):
            np.copyto(template_bin, tested_bin, where=valid_region(tested.shape, reg) == 0)
        t = step("valid region", t)
        first = _propose_once(tested_bin, template_bin, cfg)
        t = step("proposals pass 1", t)
        local = refine_template_locally(tested_bin, template_bin, first.tight, cfg.local_search_px, cfg.local_margin_px)
        t = step("local re-alignment", t)
        final = _propose_once(tested_bin, local, cfg)
        t = step("proposals pass 2", t)
        build_crops(tested_bin, local, final.diff, final.boxes, final.tight)
        step("crops + topology", t)
    for name, seconds in spent.items():
        print(f"{name:20s} {1e3 * seconds / len(pairs):6.2f} ms")
    print(f"{'total':20s} {1e3 * sum(spent.values()) / len(pairs):6.2f} ms  ({len(pairs)} pairs)")
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / len(pairs)
    print(f"minor page faults    {faults:6.0f} a board")


if __name__ == "__main__":
    main()
