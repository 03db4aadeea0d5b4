"""Class-agnostic candidate recall of the proposal stage (IoU > 0.33), candidates per board and stage time.

    python benchmarks/proposal_recall.py --data ../shared/datasets/deeppcb [--variant clean|moved] [--json F]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pcb_inspect.inspect.engine import front_end
from pcb_inspect.inspect.records import box_iou
from pcb_inspect.inspect.deeppcb import read_split
from pcb_inspect.inspect.degrade import variant_pair


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--split", default="PCBData/trainval.txt")
    ap.add_argument("--variant", default="clean", choices=["clean", "moved"])
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    records = read_split(args.data, args.split)
    hit, total = Counter(), Counter()
    candidates, ms, best_ious = [], [], []
    for i, rec in enumerate(tqdm(records, desc=f"proposals ({args.variant})")):
        tested, template, truth = variant_pair(rec, args.variant, i)
        t0 = time.perf_counter()
        boxes = front_end(tested, template).candidates.box_list()
        ms.append((time.perf_counter() - t0) * 1e3)
        candidates.append(len(boxes))
        for g in truth:
            total[g.cls] += 1
            best = max((box_iou(g.box, b) for b in boxes), default=0.0)
            best_ious.append(best)
            hit[g.cls] += best > 0.33
    result = {
        "variant": args.variant,
        "boards": len(records),
        "recall": sum(hit.values()) / sum(total.values()),
        "per_class_recall": {c: hit[c] / total[c] for c in sorted(total)},
        "candidates_per_board": float(np.mean(candidates)),
        "mean_best_iou": float(np.mean(best_ious)),
        "register_and_propose_ms_median": float(np.median(ms)),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
