"""Bad input through the real console script: one clear line naming the file (and line), the good boards
still finished, exit 1 when any board or line failed and 2 when the command refuses before starting; nothing
written that lies (results whole or absent, never a stale one for a board that failed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

EXE = shutil.which("pcb-inspect", path=os.path.dirname(sys.executable)) or "pcb-inspect"
SPLIT = "PCBData/test.txt"  # four boards of group 90002 in the synthetic set
GROUP = "PCBData/group90002"
BAD = "90002001"  # the board each case damages
BOARDS = ["90002000", "90002001", "90002002", "90002003"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def show(r: subprocess.CompletedProcess) -> str:
    """What the command said, printed for `pytest -s` and given with a failed assertion."""
    text = f"exit {r.returncode}\n--- stdout\n{r.stdout}--- stderr\n{r.stderr}"
    print(text)
    return text


def lines_with(stderr: str, text: str) -> list[str]:
    return [line for line in stderr.splitlines() if text in line]


def one_line(r: subprocess.CompletedProcess) -> str:
    """The single line a refused command prints."""
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, show(r)
    return lines[0]


@pytest.fixture
def data(synthetic_root: Path, tmp_path: Path) -> Path:
    """A copy of the synthetic dataset to damage."""
    return Path(shutil.copytree(synthetic_root, tmp_path / "data"))


def image(data: Path, board: str, kind: str = "test") -> Path:
    return data / GROUP / "90002" / f"{board}_{kind}.jpg"


def annotation(data: Path, board: str) -> Path:
    return data / GROUP / "90002_not" / f"{board}.txt"


def corrupt_middle(path: Path) -> None:
    """64 bytes a third of the way in overwritten with 0xFF; the end marker stays."""
    raw = bytearray(path.read_bytes())
    at = len(raw) // 3
    raw[at:at + 64] = b"\xff" * 64
    path.write_bytes(bytes(raw))


def predict(data: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("predict", "--data", str(data), "--split", SPLIT, "--out", str(out), *extra)


def evaluate(data: Path, report: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    r = run("eval", "--data", str(data), "--split", SPLIT, "--json", str(report), *extra)
    return r, json.loads(report.read_text()) if report.is_file() else {}


# 1. a JPEG corrupted in the middle
def test_corrupt_jpeg_is_that_boards_error_predict(data: Path, tmp_path: Path) -> None:
    corrupt_middle(image(data, BAD))
    r = predict(data, tmp_path / "out")
    assert r.returncode == 1, show(r)
    (line,) = lines_with(r.stderr, BAD)
    assert f"{BAD}_test.jpg: JPEG is corrupt" in line, show(r)
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.txt")) == [b for b in BOARDS if b != BAD]


def test_corrupt_jpeg_is_that_boards_error_eval(data: Path, tmp_path: Path) -> None:
    corrupt_middle(image(data, BAD))
    r, report = evaluate(data, tmp_path / "eval.json")
    assert r.returncode == 1, show(r)
    (line,) = lines_with(r.stderr, f"board {BAD}")
    assert f"{BAD}_test.jpg: JPEG is corrupt" in line, show(r)
    assert report["boards"] == 4 and [e["board_id"] for e in report["errors"]] == [BAD]
    assert report["verdicts"]["ERROR"] == 1 and report["recall"] < 1.0  # its defects count as missed


# 2. results are written whole, and a board that fails leaves none
def test_failed_board_leaves_no_result_and_no_partial_files(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{BAD}.txt").write_text("10,10,20,20,0.9900,short\n")  # from an earlier run, when the board read
    (out / f".{BAD}.txt.partial").write_text("10,10")  # an earlier run killed mid-write
    (out / ".90002000.txt.partial").write_text("10,10")
    (out / "90002009.txt").write_text("10,10,20,20,0.9900,short\n")  # a board whose images are gone now
    listing = data / SPLIT
    listing.write_text(listing.read_text().rstrip("\n") + "\ngroup90002/90002/90002009.jpg x/90002009.txt\n")
    corrupt_middle(image(data, BAD))
    r = predict(data, out)
    assert r.returncode == 1, show(r)
    assert lines_with(r.stderr, "90002009_test.jpg not found"), show(r)
    assert sorted(p.name for p in out.iterdir()) == ["90002000.txt", "90002002.txt", "90002003.txt"]


def test_interrupted_write_keeps_the_old_file_and_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pcb_inspect.inspect import atomic

    result = tmp_path / "90002000.txt"
    result.write_text("old\n")

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic.atomic_write_text(result, "new\n")
    assert result.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["90002000.txt"]


# 3. options out of range
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-score", "nan"], "argument --min-score: nan is not a number in [0, 1]"),
        (["--min-score", "2"], "argument --min-score: 2 is not a number in [0, 1]"),
        (["--limit", "0"], "argument --limit: 0 is not at least 1"),
        (["--limit", "-2"], "argument --limit: -2 is not at least 1"),
    ],
)
def test_bad_options_refused(synthetic_root: Path, tmp_path: Path, args: list[str], message: str) -> None:
    r = predict(synthetic_root, tmp_path / "out", *args)
    assert message in one_line(r)
    assert not (tmp_path / "out").exists()


# 4. a huge pair
def test_huge_image_is_refused_before_decoding(data: Path, tmp_path: Path) -> None:
    ok, png = cv2.imencode(".png", np.zeros((8000, 8000), np.uint8))
    for kind in ("test", "temp"):  # PNG bytes under the .jpg name: the reader goes by content
        image(data, BAD, kind).write_bytes(png.tobytes())
    r = predict(data, tmp_path / "out")
    assert r.returncode == 1, show(r)
    (line,) = lines_with(r.stderr, BAD)
    assert f"{BAD}_test.jpg: image is 8000x8000, larger than 4096 px" in line, show(r)
    assert len(list((tmp_path / "out").glob("*.txt"))) == 3


# 5. a model whose contract is out of range
BAD_CONTRACT = [("input_size", 0), ("score_threshold", 1.5), ("crop_margin", -1)]


@pytest.mark.parametrize(("field", "value"), BAD_CONTRACT)
def test_model_with_bad_contract_field_refused(
    synthetic_root: Path, shipped_model: Path, tmp_path: Path, field: str, value: float
) -> None:
    onnx = pytest.importorskip("onnx")
    from pcb_inspect.models.contract import METADATA_KEY

    proto = onnx.load(str(shipped_model))
    (entry,) = [p for p in proto.metadata_props if p.key == METADATA_KEY]
    contract = json.loads(entry.value)
    contract[field] = value
    entry.value = json.dumps(contract)
    model = tmp_path / f"bad_{field}.onnx"
    onnx.save(proto, str(model))
    r = predict(synthetic_root, tmp_path / "out", "--model", str(model))
    line = one_line(r)
    assert str(model) in line and f"{field} {value}" in line, show(r)
    assert not list((tmp_path / "out").glob("*.txt"))


# 6. output paths that cannot be used, refused before any work
@pytest.mark.parametrize(
    ("verb", "option", "where", "message"),
    [
        ("predict", "--out", "afile.txt", "--out {tmp}/afile.txt: is a file, not a folder"),
        ("predict", "--out", "afile.txt/out", "--out {tmp}/afile.txt/out: {tmp}/afile.txt is a file, not a"),
        ("eval", "--json", "adir", "--json {tmp}/adir: is a folder, need a file name"),
        ("bench", "--json", "afile.txt/b.json", "--json {tmp}/afile.txt/b.json: {tmp}/afile.txt is a file"),
        ("eval", "--plots", "afile.txt", "--plots {tmp}/afile.txt: is a file, not a folder"),
    ],
)
def test_unusable_output_path_refused_before_any_work(
    synthetic_root: Path, tmp_path: Path, verb: str, option: str, where: str, message: str
) -> None:
    (tmp_path / "afile.txt").write_text("not a folder\n")
    (tmp_path / "adir").mkdir()
    t0 = time.perf_counter()
    r = run(verb, "--data", str(synthetic_root), "--split", SPLIT, option, str(tmp_path / where))
    seconds = time.perf_counter() - t0
    line = one_line(r)  # one line and nothing else: no progress bar, so no board was inspected
    assert message.format(tmp=tmp_path) in line, show(r)
    assert seconds < 20, f"took {seconds:.1f} s to refuse"
    assert (tmp_path / "afile.txt").read_text() == "not a folder\n" and not any((tmp_path / "adir").iterdir())


# 7. tested image and template of different sizes
def test_pair_of_different_sizes_names_both_files(data: Path, tmp_path: Path) -> None:
    template = image(data, BAD, "temp")
    cv2.imwrite(str(template), cv2.imread(str(template), cv2.IMREAD_GRAYSCALE)[:600, :620])
    r = predict(data, tmp_path / "out")
    assert r.returncode == 1, show(r)
    (line,) = lines_with(r.stderr, BAD)
    assert f"{BAD}_test.jpg (640x640)" in line and f"{BAD}_temp.jpg (620x600)" in line, show(r)
    assert "differ in size" in line


# 8. a BOM is fine; inf or nan in an annotation is that board's one line
def test_annotation_bom_read_and_non_finite_numbers_refused(data: Path, tmp_path: Path) -> None:
    bom = annotation(data, "90002000")
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    with annotation(data, BAD).open("a") as f:
        f.write("1 2 inf 40 1\n")
    with annotation(data, "90002002").open("a") as f:
        f.write("1 nan 3 40 1\n")
    r, report = evaluate(data, tmp_path / "eval.json")
    assert r.returncode == 1, show(r)
    bad_lines = {board: len(annotation(data, board).read_text().splitlines()) for board in (BAD, "90002002")}
    for board, word in ((BAD, "inf"), ("90002002", "nan")):
        (line,) = lines_with(r.stderr, f"{board}.txt")
        assert f"{board}.txt:{bad_lines[board]}: '{word}' is not a finite number" in line, show(r)
    assert "Traceback" not in r.stderr
    truth = sum(len(annotation(data, b).read_text().strip().splitlines()) for b in ("90002000", "90002003"))
    assert report["boards"] == 2 and not report["errors"] and len(report["bad_split_lines"]) == 2
    assert sum(c["gt"] for c in report["per_class"].values()) == truth  # the BOM board's boxes were scored


# 9. a split list that is not UTF-8
def test_split_list_not_utf8_refused(data: Path, tmp_path: Path) -> None:
    listing = data / SPLIT
    listing.write_bytes(listing.read_bytes().replace(b"90002001.jpg", b"9000200\xe9.jpg"))
    r = predict(data, tmp_path / "out")
    assert f"{listing}:2: split list is not UTF-8 text" in one_line(r)


# 10. a .pt model where torch is not installed
def test_pt_model_without_torch_says_what_to_install(synthetic_root: Path, tmp_path: Path) -> None:
    (tmp_path / "x.pt").write_bytes(b"not really a checkpoint")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # as on the edge install
        from pcb_inspect.inspect.cli import main
        sys.exit(main(["predict", "--data", {str(synthetic_root)!r}, "--split", {SPLIT!r},
                       "--out", {str(tmp_path / "out")!r}, "--model", {str(tmp_path / "x.pt")!r}]))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    line = one_line(r)
    assert "x.pt: a training .pt checkpoint needs torch" in line and "pcb-inspect[train]" in line, show(r)


# 11. annotations missing
def test_predict_never_needs_annotations(data: Path, tmp_path: Path) -> None:
    for board in BOARDS:
        annotation(data, board).unlink()
    r = predict(data, tmp_path / "out")
    assert r.returncode == 0 and not r.stderr.strip(), show(r)
    assert sorted(p.stem for p in (tmp_path / "out").glob("*.txt")) == BOARDS


def test_eval_skips_the_line_whose_annotation_is_missing(data: Path, tmp_path: Path) -> None:
    annotation(data, BAD).unlink()
    r, report = evaluate(data, tmp_path / "eval.json")
    assert r.returncode == 1, show(r)
    (line,) = lines_with(r.stderr, "skipped:")
    assert f"{data / SPLIT}:2: annotation {annotation(data, BAD)} not found" in line, show(r)
    assert report["boards"] == 3 and len(report["bad_split_lines"]) == 1


# 12. lines repeated in the split list
def test_repeated_split_lines_are_counted_once(data: Path, tmp_path: Path) -> None:
    listing = data / SPLIT
    first, second = listing.read_text().splitlines()[:2]
    listing.write_text(listing.read_text().rstrip("\n") + f"\n{first}\n\n{second}\n")
    r, report = evaluate(data, tmp_path / "eval.json")
    assert r.returncode == 0, show(r)
    notes = lines_with(r.stderr, "note:")
    assert len(notes) == 2, show(r)
    assert f"{listing}:5: repeats line 1" in notes[0] and "counted once" in notes[0]
    assert report["boards"] == 4


# 13. paths that leave --data
def test_split_paths_leaving_the_dataset_are_refused(
    data: Path, synthetic_root: Path, tmp_path: Path
) -> None:
    listing = data / SPLIT
    outside = synthetic_root / "PCBData/group90000/90000/90000001.jpg"
    listing.write_text(listing.read_text().rstrip("\n") + "\n"
                       "../../elsewhere/group90000/90000/90000000.jpg group90000/90000_not/90000000.txt\n"
                       f"{outside} group90000/90000_not/90000001.txt\n")
    r, report = evaluate(data, tmp_path / "eval.json")
    assert r.returncode == 1, show(r)
    skipped = lines_with(r.stderr, "skipped:")
    assert len(skipped) == 2, show(r)
    assert f"{listing}:5: " in skipped[0] and f"points outside the dataset folder {data}" in skipped[0]
    assert f"{listing}:6: absolute path" in skipped[1]
    assert report["boards"] == 4 and len(report["bad_split_lines"]) == 2
