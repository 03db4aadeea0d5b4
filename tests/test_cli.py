"""The CLI through its real console script, in subprocesses, over a table of verbs (Ultralytics' test_cli idea)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = shutil.which("pcb-inspect", path=os.path.dirname(sys.executable)) or "pcb-inspect"
VERBS = ["demo", "run", "feedback", "deploy", "train", "eval", "predict", "bench", "export", "info", "doctor", "synth"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.parametrize("verb", VERBS)
def test_help_for_every_verb(verb: str) -> None:
    r = run(verb, "--help")
    assert r.returncode == 0 and "usage: pcb-inspect" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--data", "/nonexistent", "--split", "PCBData/test.txt"], "/nonexistent: dataset folder not found"),
        (["info", "--model", "/nonexistent/m.onnx"], "m.onnx: model file not found"),
        (["export", "/nonexistent/best.pt", "--format", "trt"], "--format trt: choose one of onnx"),
        (["export", "/nonexistent/m.onnx", "--format", "engine"], "need the [gpu] extra"),
        (["demo", "--max-frames", "0"], "argument --max-frames: 0 is not at least 1"),
        (["run", "--source", "ftp://camera/1", "--http", "off"], "ftp://camera/1"),
        (["run", "--source", "/nonexistent/boards/", "--http", "off"], "/nonexistent/boards"),
        (["run", "--source", "synthetic://?fps=30", "--template", "/nonexistent/t.png"], "--template"),
        (["run", "--source", "synthetic://?fps=30", "--db", "/nonexistent/dir/r.db"], "/nonexistent/dir"),
        (["run", "--source", "synthetic://?fps=30", "--http", "localhost:99999"], "99999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr


def test_eval_writes_the_contracted_json(synthetic_root: Path, shipped_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    r = run("eval", "--data", str(synthetic_root), "--split", "PCBData/test.txt", "--json", str(out),
            "--plots", str(tmp_path / "plots"))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    for key in ("precision", "recall", "f_score", "ap", "per_class", "boards", "escapes", "seconds"):
        assert key in result
    assert result["boards"] == 4 and result["model_sha256"]
    for picture in ("confusion_matrix.png", "pr_curves.png"):
        assert (tmp_path / "plots" / picture).stat().st_size > 1000


def test_predict_writes_deeppcb_result_files(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred"
    r = run("predict", "--data", str(synthetic_root), "--split", "PCBData/test.txt", "--format", "deeppcb",
            "--out", str(out))
    assert r.returncode == 0, r.stderr
    names = [line.split()[0] for line in (synthetic_root / "PCBData/test.txt").read_text().splitlines()]
    files = sorted(out.glob("*.txt"))
    assert [f.stem for f in files] == sorted(Path(n).stem for n in names)
    lines = [line for f in files for line in f.read_text().splitlines()]
    assert lines, "the shipped model found nothing on synthetic boards with defects"
    for line in lines:
        x1, y1, x2, y2, conf, kind = line.split(",")
        assert int(x2) > int(x1) and int(y2) > int(y1) and 0 <= float(conf) <= 1
        assert kind in {"open", "short", "mousebite", "spur", "copper", "pin-hole"}


def test_demo_runs_the_line_on_the_synthetic_conveyor(tmp_path: Path) -> None:
    r = run("demo", "--max-frames", "12", "--fps", "0", "--pictures", "4", "--http", "off",
            "--out", str(tmp_path / "demo"))
    assert r.returncode == 0, r.stderr
    assert "summary: frames 12  inspected 12" in r.stdout and "F-score" in r.stdout
    assert (tmp_path / "demo" / "summary.png").stat().st_size > 10_000
    assert len(list((tmp_path / "demo").glob("0*_syn-*.png"))) == 4


def test_info_prints_the_shipped_contract() -> None:
    r = run("info")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["class_names"][-1] == "no-defect" and len(info["sha256"]) == 64
    from pcb_inspect.models.registry import resolve_model

    assert info["file"] == str(resolve_model(None))  # INT8 where the CPU classifies, FP32 beside a GPU


def test_bench_reports_the_contracted_json_and_histogram(synthetic_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = run("bench", "--data", str(synthetic_root), "--split", "PCBData/trainval.txt", "--workers", "2",
            "--json", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    for key in ("boards_per_s", "floor_boards_per_s", "ratio_to_floor", "p50_ms", "p99_ms", "backend", "stages"):
        assert key in result
    assert result["boards"] == 8 and result["boards_per_s"] > 0
    assert result["classify_in"] == "workers"  # a CPU model is classified in each worker process
    assert set(result["stages"]) == {"decode", "register", "propose", "crop", "classify", "verdict"}
    assert result["p50_ms"] <= result["p99_ms"]
    assert out.with_suffix(".png").stat().st_size > 5_000


@pytest.mark.parametrize(("pool", "classify_in"), [("thread", "workers"), ("thread", "main"), ("process", "main")])
def test_bench_pools_and_classifier_placement_agree(
    synthetic_root: Path, tmp_path: Path, pool: str, classify_in: str
) -> None:
    """Wherever the classifier runs, the same boards give the same candidates."""
    out = tmp_path / "bench.json"
    r = run("bench", "--data", str(synthetic_root), "--split", "PCBData/trainval.txt", "--workers", "1",
            "--pool", pool, "--classify-in", classify_in, "--json", str(out), "--limit", "4")
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["pool"] == pool and result["boards"] == 4 and result["classify_in"] == classify_in
    reference = tmp_path / "reference.json"
    run("bench", "--data", str(synthetic_root), "--split", "PCBData/trainval.txt", "--workers", "1",
        "--json", str(reference), "--limit", "4")
    assert result["candidates_per_board"] == json.loads(reference.read_text())["candidates_per_board"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers 0 must be at least 1"),
        (["--pool", "fiber"], "--pool 'fiber': choose one of"),
    ],
)
def test_bench_refuses_bad_options(synthetic_root: Path, args: list[str], message: str) -> None:
    r = run("bench", "--data", str(synthetic_root), "--split", "PCBData/trainval.txt", *args)
    assert r.returncode == 2 and message in r.stderr


def test_int8_export_needs_calibration_data(shipped_model: Path, tmp_path: Path) -> None:
    r = run("export", str(shipped_model), "--format", "onnx-int8", "--out", str(tmp_path / "q.onnx"))
    assert r.returncode == 2 and "needs --calib DIR" in r.stderr
