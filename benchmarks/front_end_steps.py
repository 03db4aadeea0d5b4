"""Where the front end spends its time, step by step, on one core (no pool, no classifier).

    python benchmarks/front_end_steps.py --data ../shared/datasets/deeppcb [--every 5]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from pcb_inspect.inspect.crops import build_crops
from pcb_inspect.inspect.proposals import ProposalConfig, _propose_once, binarize, refine_template_locally
from pcb_inspect.inspect.registration import covers_image, register, valid_region, warp_template
from pcb_inspect.training.deeppcb import read_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="PCBData/trainval.txt")
    ap.add_argument("--every", type=int, default=5, help="use every Nth pair")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    cfg = ProposalConfig()
    pairs = [r.load_images() for r in read_split(args.data, args.split)[:: args.every]]
    spent: dict[str, float] = defaultdict(float)

    def step(name: str, t0: float) -> float:
        t1 = time.perf_counter()
        spent[name] += t1 - t0
        return t1

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


if __name__ == "__main__":
    main()
