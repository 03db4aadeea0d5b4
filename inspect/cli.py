"""The ``pcb-inspect`` command line: one verb per job, each importing only what it needs.

Verbs that need torch (train, export) import it lazily, so the edge install runs eval, predict and demo
without it. Any :class:`PcbInspectError` becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError, PcbInspectError
from pcb_inspect.inspect.memory import keep_freed_memory
from pcb_inspect.inspect.options import add_demo_options, add_run_options, positive_int, unit_float

DEFAULT_SPLIT = "PCBData/trainval.txt"


def _add_data(p: argparse.ArgumentParser, split_default: str | None = None) -> None:
    p.add_argument("--data", required=True, type=Path, help="dataset root holding PCBData/ (DeepPCB layout)")
    p.add_argument(
        "--split",
        default=split_default,
        required=split_default is None,
        help="split list relative to --data, e.g. PCBData/test.txt",
    )


def _add_model(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", type=Path, help="model file (.onnx, or a training .pt); default: the shipped "
                   "model, INT8 where the CPU classifies, else FP32")
    p.add_argument(
        "--backend",
        default="auto",
        help="auto (onnxruntime: TensorRT > CUDA > CPU provider, what is usable), onnxruntime-cpu, "
        "onnxruntime-cuda, onnxruntime-tensorrt, or tensorrt (native engine, built and cached on first use)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    from pcb_inspect.training.train import TrainConfig, train

    cfg = TrainConfig(
        data=args.data,
        out=args.out,
        split=args.split,
        arch=args.arch,
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        device=args.device,
        seed=args.seed,
        resume=args.resume,
        patience=args.patience,
        val_groups=args.val_groups.split(",") if args.val_groups else None,
        max_boards=args.max_boards,
        extra_data=args.extra_data,
    )
    summary = train(cfg)
    print(f"best held-out F-score {summary['best_val_f_score']:.4f}; checkpoints in {args.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from pcb_inspect.training.evaluate import cmd_eval as verb  # a training verb: imported only when called

    return verb(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.batch import cmd_predict as verb

    return verb(args)


def cmd_bench(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.batch import cmd_bench as verb

    return verb(args)


def cmd_export(args: argparse.Namespace) -> int:
    from pcb_inspect.training.export import EXPORT_FORMATS, export_onnx, load_metrics

    if args.format not in EXPORT_FORMATS:
        raise ConfigError(f"--format {args.format}: choose one of {', '.join(EXPORT_FORMATS)}")
    if args.format == "onnx-int8":
        return _export_int8(args)
    if args.format == "engine":
        return _export_engine(args)
    out = args.out or Path(args.checkpoint).with_suffix(EXPORT_FORMATS[args.format])
    export_onnx(args.checkpoint, out, metrics=load_metrics(args.metrics))
    return 0


def _export_engine(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.tensorrt_engine import TensorRTBackend

    model = Path(args.checkpoint)
    if model.suffix != ".onnx":
        raise ConfigError(f"{model}: --format engine builds from an .onnx model (export the checkpoint first)")
    precision = "int8" if args.int8 else "fp16" if args.fp16 else "fp32"
    if args.int8:  # explicit quantization: the gated QDQ model is what TensorRT builds in INT8
        from pcb_inspect.training.quantize import quantize_int8

        if args.calib is None:
            raise ConfigError("--int8 needs --calib DIR (a DeepPCB-layout dataset with the model's groups)")
        qdq = model.with_name(model.stem + "-int8.onnx")
        report = quantize_int8(model, qdq, args.calib, max_drop_points=args.max_drop)
        print(report.table())
        if not report.written:
            raise ConfigError(f"INT8 refused: held-out F-score dropped {report.drop_points:.2f} points; no engine built")
        model = qdq
    backend = TensorRTBackend(model, precision, cache_dir=args.out)
    print(f"TensorRT engine ready ({precision}, sha256 of model {backend.model_sha256[:12]}) in {args.out or model.parent / '.engines'}")
    return 0


def _export_int8(args: argparse.Namespace) -> int:
    from pcb_inspect.training.quantize import quantize_int8

    if args.calib is None:
        raise ConfigError("--format onnx-int8 needs --calib DIR (a DeepPCB-layout dataset with the model's groups)")
    out = args.out or Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "-int8.onnx")
    report = quantize_int8(args.checkpoint, out, args.calib, max_drop_points=args.max_drop)
    print(report.table())
    if not report.written:
        raise ConfigError(
            f"INT8 model refused: held-out F-score dropped {report.drop_points:.2f} points (> --max-drop "
            f"{args.max_drop}); nothing written"
        )
    print(f"wrote {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from pcb_inspect.models.registry import open_backend

    backend = open_backend(args.model, backend=args.backend)
    where = {"file": str(getattr(backend, "path", args.model)), "sha256": backend.model_sha256, "backend": backend.name}
    print(json.dumps(asdict(backend.contract) | where, indent=2))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.backends import doctor

    for name, usable, detail in doctor():
        print(f"{name:26s} {'yes' if usable else 'no ':3s}  {detail}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.synthetic import write_dataset

    root = write_dataset(args.out, args.boards, seed=args.seed)
    print(f"wrote {args.boards} synthetic boards to {root}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.demo import cmd_demo as demo

    return demo(args)


def cmd_run(args: argparse.Namespace) -> int:
    from pcb_inspect.inspect.run import cmd_run as run

    return run(args)


class _OneLineParser(argparse.ArgumentParser):
    """Bad options are one line naming the option and what is wrong (argparse's default adds the usage)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="pcb-inspect", description="PCB defect inspection: train, evaluate, run.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("demo", help="the line on a synthetic conveyor with the shipped model and its status page")
    add_demo_options(p)
    add_run_options(p, demo=True)
    _add_model(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="inspect frames from a camera, stream, folder or dataset: the line station")
    add_run_options(p)
    _add_model(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("train", help="train the candidate classifier (needs the [train] extra)")
    _add_data(p, DEFAULT_SPLIT)
    p.add_argument("--out", required=True, type=Path, help="run folder for checkpoints and logs")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--arch", default="small", help="small (default), tiny, resnet18 or mobilenet_v3_small")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda (AMP on)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patience", type=int, default=6, help="early stop after this many epochs without gain")
    p.add_argument("--val-groups", help="comma-separated groups to hold out (default: chosen by --seed)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--max-boards", type=int, help="use only this many boards (quick runs)")
    p.add_argument("--extra-data", type=Path, action="append", default=[], metavar="DIR",
                   help="a DeepPCB-layout folder (e.g. from 'feedback export') whose PCBData/trainval.txt boards are "
                   "added to training only, never validation; repeatable")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="evaluate by the DeepPCB protocol (IoU > 0.33, same class)")
    _add_data(p)
    _add_model(p)
    p.add_argument("--json", type=Path, help="write the metrics here")
    p.add_argument("--plots", type=Path, help="folder for confusion matrix, PR curves and per-class table")
    p.add_argument("--variant", default="clean", choices=["clean", "moved", "defect-free"])
    p.add_argument("--groups", help="only these comma-separated groups (e.g. held-out ones)")
    p.add_argument("--limit", type=positive_int, help="only the first N pairs")
    p.add_argument("--seed", type=int, default=0, help="seed of the moved/defect-free variants")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("predict", help="write one result file per board in the dataset's format")
    _add_data(p)
    _add_model(p)
    p.add_argument("--format", default="deeppcb", help="deeppcb: lines x1,y1,x2,y2,confidence,type")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--min-score", type=unit_float, help="write detections from this score in [0, 1] (default: each "
                   "class's threshold in the model; detections under 0.01 are never kept)")
    p.add_argument("--groups", help="only these comma-separated groups")
    p.add_argument("--limit", type=positive_int, help="only the first N pairs")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="boards/s and per-stage latency, against the decode+difference floor")
    _add_data(p)
    _add_model(p)
    p.add_argument("--workers", type=int, default=2, help="workers for decode, registration and proposals")
    p.add_argument("--pool", default="process", help="process (default) or thread workers")
    p.add_argument("--classify-in", default="auto", choices=["auto", "workers", "main"],
                   help="where candidates are classified: auto = in each worker for onnxruntime-cpu, else main")
    p.add_argument("--json", type=Path, help="write the results here (and the histogram next to it)")
    p.add_argument("--plot", type=Path, help="latency histogram PNG (default: next to --json, else bench.png)")
    p.add_argument("--groups", help="only these comma-separated groups")
    p.add_argument("--limit", type=positive_int, help="only the first N pairs")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("export", help="export a training checkpoint (needs the [train] extra)")
    p.add_argument("checkpoint", type=Path, help="RUN_DIR/best.pt (onnx), or an FP32 .onnx model (onnx-int8)")
    p.add_argument("--format", default="onnx", help="onnx, or onnx-int8 (static QDQ quantization, gated)")
    p.add_argument("--calib", type=Path, help="onnx-int8: dataset root for calibration and the accuracy gate")
    p.add_argument("--max-drop", type=float, default=0.5, help="onnx-int8: largest F-score drop allowed, in points")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="engine: build in FP16")
    precision.add_argument("--int8", action="store_true", help="engine: build in INT8 from the gated QDQ model")
    p.add_argument("--out", type=Path, help="output file (default: next to the input); engine: the cache folder")
    p.add_argument("--metrics", type=Path, help="eval JSON to embed in the model's metadata")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("info", help="print a model's contract (classes, input, thresholds, metrics)")
    _add_model(p)
    p.set_defaults(func=cmd_info)

    from pcb_inspect.edge_deploy.cli import add_deploy_parser

    add_deploy_parser(sub)

    from pcb_inspect.inspect.feedback import add_feedback_parser

    add_feedback_parser(sub)

    p = sub.add_parser("doctor", help="which inference backends this machine can use, and why not")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("synth", help="write synthetic boards in the DeepPCB layout")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--boards", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_synth)
    return parser


def _quiet_opencv() -> None:
    """OpenCV's own warnings (a camera backend it tried first) are not our one line; errors still show."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_opencv()
    keep_freed_memory()  # every verb handles boards: reuse their buffers instead of page-faulting them in again
    try:
        return args.func(args)
    except PcbInspectError as exc:
        print(f"pcb-inspect {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
