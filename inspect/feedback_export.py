"""``pcb-inspect feedback export``: the boards operators judged, as a DeepPCB-layout dataset for training.

Layout (what :mod:`pcb_inspect.inspect.deeppcb` reads, so ``train --extra-data OUT`` takes it as it is)::

    OUT/PCBData/trainval.txt                              the split list, a line a board:
        groupfeedback/feedback/00000001.jpg groupfeedback/feedback_not/00000001.txt
    OUT/PCBData/groupfeedback/feedback/00000001_test.jpg  the tested board
    OUT/PCBData/groupfeedback/feedback/00000001_temp.jpg  its template
    OUT/PCBData/groupfeedback/feedback_not/00000001.txt   corrected annotations, "x1 y1 x2 y2 type" a line
    OUT/feedback.json                                     which board is which inspection, who said so, when

Images are JPEG (quality 95), as DeepPCB's own are. Boards are numbered in the order their first feedback
arrived, so an export of a later day keeps the earlier numbers. The newest feedback on a board is the one
used. Boards whose pictures were not kept are left out and counted. The folder is written beside ``OUT`` and
renamed into place: a reader sees the old export or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError, DataError, ImageError
from pcb_inspect.inspect.feedback import FeedbackImages, corrected_truth
from pcb_inspect.inspect.records import type_id_from_class

GROUP = "groupfeedback"
MANIFEST = "feedback.json"
SPLIT = "PCBData/trainval.txt"
JPEG_QUALITY = 95


@dataclass
class ExportReport:
    out: Path
    boards: int = 0
    defects: int = 0
    false_calls: int = 0
    added: int = 0
    skipped: list[str] = field(default_factory=list)  # inspection ids without pictures

    def summary(self) -> str:
        skipped = (f"; {len(self.skipped)} board(s) left out, their pictures were not kept "
                   f"(first {self.skipped[0]})" if self.skipped else "")
        return (f"wrote {self.boards} board(s) to {self.out} ({self.defects} defect(s) after feedback, "
                f"{self.false_calls} false call(s) removed, {self.added} added){skipped}; "
                f"train on it with --extra-data {self.out}")


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise ConfigError(f"--out {out}: folder is not empty and is not an earlier feedback export "
                          f"(no {MANIFEST}); give a new folder")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist")


def _jpeg(png_path: Path) -> bytes:
    import cv2

    from pcb_inspect.inspect.imageio import read_gray

    image = read_gray(png_path)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ImageError(f"{png_path}: cannot encode as JPEG")
    return buf.tobytes()


def export_feedback(db: str | os.PathLike, out: str | os.PathLike) -> ExportReport:
    """Write every board with feedback and kept pictures under ``out``; DataError when there is none."""
    from pcb_inspect.inspect.sinks.sqlite import check_db_path, read_feedback

    db, out = Path(db), Path(out)
    check_db_path(db, writable=False)
    if not db.is_file():
        raise ConfigError(f"--db {db}: no such file")
    _check_out(out)
    images = FeedbackImages(db)
    report = ExportReport(out)
    partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    boards_dir = partial / "PCBData" / GROUP / "feedback"
    notes_dir = partial / "PCBData" / GROUP / "feedback_not"
    lines, manifest = [], []
    try:
        boards_dir.mkdir(parents=True)
        notes_dir.mkdir(parents=True)
        for fb in read_feedback(db):
            tested, template = images.paths(fb["inspection_id"])
            if not (fb["images"] and tested.is_file() and template.is_file()):
                report.skipped.append(fb["inspection_id"])
                continue
            stem = f"{len(lines) + 1:08d}"
            (boards_dir / f"{stem}_test.jpg").write_bytes(_jpeg(tested))
            (boards_dir / f"{stem}_temp.jpg").write_bytes(_jpeg(template))
            truth = corrected_truth(fb)
            (notes_dir / f"{stem}.txt").write_text("".join(
                f"{g.box[0]} {g.box[1]} {g.box[2]} {g.box[3]} {type_id_from_class(g.cls)}\n" for g in truth))
            lines.append(f"{GROUP}/feedback/{stem}.jpg {GROUP}/feedback_not/{stem}.txt\n")
            kinds = [item["judgement"] for item in fb["items"]]
            manifest.append({"board": stem, "inspection_id": fb["inspection_id"], "board_id": fb["board_id"],
                             "operator": fb["operator"], "time": fb["time"], "note": fb["note"],
                             "defects": len(truth), "false_calls": kinds.count("false_call"),
                             "added": kinds.count("added")})
            report.defects += len(truth)
            report.false_calls += kinds.count("false_call")
            report.added += kinds.count("added")
        if not lines:
            without = f" ({len(report.skipped)} board(s) without pictures)" if report.skipped else ""
            raise DataError(f"--db {db}: no feedback with kept pictures to export{without}")
        (partial / SPLIT).write_text("".join(lines))
        record = {"db": str(db), "exported": time.time(), "boards": manifest, "skipped": report.skipped}
        (partial / MANIFEST).write_text(json.dumps(record, indent=1))
        _swap_in(partial, out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    report.boards = len(lines)
    return report


def _swap_in(partial: Path, out: Path) -> None:
    """Put the finished export where ``out`` is; an earlier export there is replaced."""
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        partial.rename(out)
        return
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
