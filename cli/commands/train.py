"""`sluice train`: the built-in trainer (scikit-learn -> ONNX, with a baseline sample).

Runs locally, no control plane needed. As a retraining command it can take its output paths
from the environment the control plane sets (SLUICE_OUTPUT, SLUICE_BASELINE_OUTPUT).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from cli.commands.common import add_json, whole_number
from cli.output import CliError, print_json

KINDS = ("logreg", "gbm", "constant", "ridge", "gbr")


def register(sub: argparse._SubParsersAction) -> None:
    tr = sub.add_parser(
        "train",
        help="train a scikit-learn model on a CSV/Parquet/NPY file and export it to ONNX (+ a baseline)",
    )
    tr.add_argument(
        "--data",
        type=Path,
        required=True,
        help="CSV with a header or Parquet (label last; numeric, text and empty cells), or .npy",
    )
    tr.add_argument(
        "--out",
        type=Path,
        default=Path(os.environ["SLUICE_OUTPUT"]) if os.environ.get("SLUICE_OUTPUT") else None,
        help="the .onnx file to write (default: $SLUICE_OUTPUT, set by retraining triggers)",
    )
    tr.add_argument(
        "--baseline-out",
        type=Path,
        default=Path(os.environ["SLUICE_BASELINE_OUTPUT"]) if os.environ.get("SLUICE_BASELINE_OUTPUT") else None,
        help="the baseline sample to write: .npy for numeric data, .parquet for mixed columns (default: "
        "$SLUICE_BASELINE_OUTPUT or OUT.baseline.npy / OUT.baseline.parquet)",
    )
    tr.add_argument("--kind", choices=KINDS, default="logreg", help="model kind (default %(default)s)")
    tr.add_argument("--label", default=None, metavar="COLUMN", help="label column of a CSV (default: last)")
    tr.add_argument("--seed", type=whole_number(0, 2**32 - 1), default=0)
    add_json(tr)
    tr.set_defaults(handler=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from controlplane.training import train_command

    if args.out is None:
        raise CliError("--out is required (or set SLUICE_OUTPUT)")
    if args.out.suffix != ".onnx":
        raise CliError(f"--out must name a .onnx file, got {args.out}")
    if args.baseline_out is not None and args.baseline_out.suffix not in (".npy", ".parquet"):
        raise CliError(f"--baseline-out must name a .npy or .parquet file, got {args.baseline_out}")
    if not args.data.is_file():
        raise CliError(f"{args.data} does not exist or is not a file")
    result = train_command(args.data, args.out, args.baseline_out, args.kind, args.label, args.seed)
    if args.json:
        print_json(
            {
                "kind": result.kind,
                "rows": result.n_rows,
                "features": result.n_features,
                "out": str(result.out),
                "baseline": str(result.baseline),
                "holdout_accuracy": result.holdout_accuracy,
                "holdout_mae": result.holdout_mae,
                "columns": result.columns,
            }
        )
        return 0
    metric = (
        f"holdout accuracy {result.holdout_accuracy:.3f}"
        if result.holdout_accuracy is not None
        else f"holdout MAE {result.holdout_mae:.4g}"
    )
    print(
        f"trained {result.kind} on {result.n_rows} rows x {result.n_features} features: {metric}; "
        f"wrote {result.out} and baseline {result.baseline}"
    )
    return 0
