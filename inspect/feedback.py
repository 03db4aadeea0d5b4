"""The operator's judgement of a board, checked and stored, and the ``pcb-inspect feedback`` verb.

On any inspection the operator marks each reported defect ``confirmed``, ``false_call`` or ``other_class``
(with the right class), may judge below-threshold detections the same way (unjudged ones stay "not a defect",
as the model said) and may add boxes it missed. :func:`build_feedback` checks all of that against the
inspection and returns the row :func:`~pcb_inspect.inspect.sinks.sqlite.write_feedback` stores, with who and
when. The corrected annotations of a board (:func:`corrected_truth`) are the confirmed defects, the class
corrections and the added boxes: the false calls are gone, so in training their candidates are "no defect".

A board's tested image and template are kept beside the database when feedback arrives
(``<db stem>_feedback/<id>_test.png`` and ``<id>_temp.png``, lossless, each written atomically), since the
reject folder's retention may delete them and it never kept templates. ``feedback export`` turns it all into
a DeepPCB-layout folder for ``train --extra-data`` (``inspect/feedback_export.py``).
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import DEFECT_CLASSES, GroundTruth, Inspection

JUDGEMENTS = ("confirmed", "false_call", "other_class")
MAX_OPERATOR_CHARS = 64
MAX_NOTE_CHARS = 500
MAX_ADDED = 50
_ID = re.compile(r"[0-9a-f]{32}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Judgement:
    """The operator's word on one detection: ``ref`` indexes the inspection's defects + below_threshold."""

    ref: int
    judgement: str
    cls: str | None = None  # the right class, for "other_class"


@dataclass(frozen=True)
class AddedBox:
    """A defect the model missed, drawn by the operator, in the tested image's pixels."""

    cls: str
    box: tuple[int, int, int, int]


def feedback_folder(db_path: str | Path) -> Path:
    """Where a results database keeps the pictures of boards with feedback: ``<db stem>_feedback/``."""
    db_path = Path(db_path)
    return db_path.with_name(db_path.stem + "_feedback")


def _text(value: object, what: str, most: int, required: bool) -> str:
    text = " ".join(str(value or "").split())
    if required and not text:
        raise ConfigError(f"feedback: {what} is empty")
    if len(text) > most or _CONTROL.search(text):
        raise ConfigError(f"feedback: {what} must be at most {most} printable characters")
    return text


def _box(box: object, size: tuple[int, int] | None, what: str) -> tuple[int, int, int, int]:
    try:
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise ConfigError(f"feedback: {what}: box {box!r} is not four numbers x1, y1, x2, y2") from None
    if x2 <= x1 or y2 <= y1 or min(x1, y1) < 0:
        raise ConfigError(f"feedback: {what}: box {box!r} is empty or starts left of or above the image")
    if size is not None and (x2 > size[0] or y2 > size[1]):
        raise ConfigError(f"feedback: {what}: box {box!r} goes past the {size[0]}x{size[1]} image")
    return x1, y1, x2, y2


def build_feedback(inspection: Inspection, operator: str, judgements: list[Judgement], added: list[AddedBox],
                   note: str = "", size: tuple[int, int] | None = None, images: bool = False,
                   now: float | None = None) -> dict:
    """Check the operator's judgements against the inspection; the row for ``write_feedback``.

    Every reported defect must be judged exactly once; below-threshold ones may be. ``size`` (width, height)
    of the tested image bounds added boxes when known. One-line ConfigError for anything else.
    """
    operator = _text(operator, "operator", MAX_OPERATOR_CHARS, required=True)
    note = _text(note, "note", MAX_NOTE_CHARS, required=False)
    shown = [*inspection.defects, *inspection.below_threshold]
    by_ref: dict[int, Judgement] = {}
    for j in judgements:
        if isinstance(j.ref, bool) or not isinstance(j.ref, int) or not 0 <= j.ref < len(shown):
            raise ConfigError(f"feedback: defect {j.ref!r} is not one of 0..{len(shown) - 1} on this board")
        if j.ref in by_ref:
            raise ConfigError(f"feedback: defect {j.ref} is judged twice")
        if j.judgement not in JUDGEMENTS:
            raise ConfigError(f"feedback: defect {j.ref}: {j.judgement!r} is not one of "
                              f"{', '.join(JUDGEMENTS)}")
        if j.judgement == "other_class" and (j.cls not in DEFECT_CLASSES or j.cls == shown[j.ref].cls):
            raise ConfigError(f"feedback: defect {j.ref}: other_class needs the right class, one of "
                              f"{', '.join(c for c in DEFECT_CLASSES if c != shown[j.ref].cls)}")
        by_ref[j.ref] = j
    missing = [k for k in range(len(inspection.defects)) if k not in by_ref]
    if missing:
        raise ConfigError(f"feedback: reported defect(s) {', '.join(map(str, missing))} not judged "
                          "(each needs confirmed, false_call or other_class)")
    if len(added) > MAX_ADDED:
        raise ConfigError(f"feedback: {len(added)} added boxes; at most {MAX_ADDED}")
    items = []
    for ref in sorted(by_ref):
        j, d = by_ref[ref], shown[ref]
        items.append({"judgement": j.judgement, "defect_seq": ref, "model_cls": d.cls,
                      "confidence": d.confidence, "cls": j.cls if j.judgement == "other_class" else d.cls,
                      "box": list(d.box)})
    for k, a in enumerate(added):
        if a.cls not in DEFECT_CLASSES:
            raise ConfigError(f"feedback: added box {k}: class {a.cls!r} is not one of "
                              f"{', '.join(DEFECT_CLASSES)}")
        items.append({"judgement": "added", "defect_seq": None, "model_cls": None, "confidence": None,
                      "cls": a.cls, "box": list(_box(a.box, size, f"added box {k}"))})
    width, height = size or (0, 0)
    return {"inspection_id": inspection.id, "board_id": inspection.board_id, "operator": operator,
            "time": time.time() if now is None else now, "note": note, "images": int(bool(images)),
            "width": width, "height": height, "items": items}


def corrected_truth(feedback: dict) -> list[GroundTruth]:
    """The board's annotations after the operator's word: everything but the false calls (and the
    below-threshold detections nobody judged, which were never in the feedback)."""
    return [GroundTruth(item["cls"], tuple(item["box"])) for item in feedback["items"]
            if item["judgement"] != "false_call"]


# -- the pictures kept for training --------------------------------------------------------------------------

class FeedbackImages:
    """``<db stem>_feedback/<id>_test.png`` and ``<id>_temp.png``: the pictures of boards with feedback."""

    def __init__(self, db_path: str | Path) -> None:
        self.folder = feedback_folder(db_path)

    def paths(self, inspection_id: str) -> tuple[Path, Path]:
        if not isinstance(inspection_id, str) or not _ID.fullmatch(inspection_id):
            raise ConfigError(f"inspection id {inspection_id!r} is not 32 lowercase hex digits")
        return self.folder / f"{inspection_id}_test.png", self.folder / f"{inspection_id}_temp.png"

    def has(self, inspection_id: str) -> bool:
        return all(p.is_file() for p in self.paths(inspection_id))

    def keep(self, inspection_id: str, image: object, template: object) -> bool:
        """Write both pictures (an array, or PNG bytes as the reject folder has them), each atomically; True
        when both are kept (now or already). A failure leaves neither and returns False."""
        import cv2
        import numpy as np

        from pcb_inspect.inspect.atomic import atomic_write_bytes

        paths = self.paths(inspection_id)
        if all(p.is_file() for p in paths):
            return True
        if image is None or template is None:
            return False
        data = []
        for picture in (image, template):
            if isinstance(picture, bytes):
                data.append(picture)
                continue
            ok, buf = cv2.imencode(".png", np.asarray(picture), [cv2.IMWRITE_PNG_COMPRESSION, 3])
            if not ok:
                return False
            data.append(buf.tobytes())
        try:
            self.folder.mkdir(exist_ok=True)
            for path, blob in zip(paths, data):
                atomic_write_bytes(path, blob)
        except OSError:
            for path in paths:
                path.unlink(missing_ok=True)
            return False
        return True


# -- the verb ------------------------------------------------------------------------------------------------

def cmd_feedback_export(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.feedback_export import export_feedback

    report = export_feedback(args.db, args.out)
    print(report.summary())
    return 0


def add_feedback_parser(subparsers: argparse._SubParsersAction) -> None:
    """``pcb-inspect feedback export --db FILE --out DIR`` on the main CLI's verb table."""
    p = subparsers.add_parser("feedback", help="the operators' feedback from the line page, for training")
    sub = p.add_subparsers(dest="feedback_verb", required=True, metavar="ACTION")
    e = sub.add_parser("export", help="write the boards with feedback as a DeepPCB-layout dataset "
                       "(for train --extra-data)")
    e.add_argument("--db", required=True, type=Path, help="the station's results database (its pictures of "
                   "boards with feedback are in the <db stem>_feedback/ folder beside it)")
    e.add_argument("--out", required=True, type=Path,
                   help="folder to write (new, empty, or an earlier export, which is replaced)")
    e.set_defaults(func=cmd_feedback_export)
