"""`sluice version register|list|show`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cli.commands.common import add_json, client_from
from cli.output import CliError, print_json, print_table, shape, when
from core.names import parse_version_ref, validate_name


def register(sub: argparse._SubParsersAction) -> None:
    version = sub.add_parser("version", help="the model registry")
    vsub = version.add_subparsers(dest="version_command", metavar="ACTION")
    vsub.required = True

    reg = vsub.add_parser("register", help="upload an ONNX model as MODEL --version V")
    reg.add_argument("model")
    reg.add_argument("file", type=Path, help="the .onnx file")
    reg.add_argument("--version", required=True, dest="version_label")
    reg.add_argument(
        "--baseline",
        type=Path,
        help="sample of inputs for drift bins: .npy [rows, features], or a CSV/Parquet table with a column per input",
    )
    reg.add_argument("--description", default="")
    reg.add_argument("--feature-names", default="", help="comma-separated feature names")
    add_json(reg)
    reg.set_defaults(handler=cmd_register)

    ls = vsub.add_parser("list", help="list versions (of one model)")
    ls.add_argument("model", nargs="?", default="")
    add_json(ls)
    ls.set_defaults(handler=cmd_list)

    show = vsub.add_parser("show", help="one version: its schema, baseline and offline verdict")
    show.add_argument("version", metavar="MODEL:VERSION")
    add_json(show)
    show.set_defaults(handler=cmd_show)


def cmd_register(args: argparse.Namespace) -> int:
    validate_name("model", args.model)
    validate_name("version", args.version_label)
    for path in (args.file, args.baseline):
        if path is not None and not path.is_file():
            raise CliError(f"{path} does not exist or is not a file")
    names = [n.strip() for n in args.feature_names.split(",") if n.strip()]
    with client_from(args) as client:
        version = client.register_version(
            args.model,
            args.version_label,
            args.file,
            args.baseline,
            description=args.description,
            feature_names=names,
        )
    if args.json:
        print_json(version)
    else:
        print(
            f"registered {version.ref.model}:{version.ref.version} sha256 {version.sha256[:12]} "
            f"({version.size_bytes} bytes, {version.task}, inputs "
            + ", ".join(f"{i.name}{shape(i)}" for i in version.inputs)
            + ")"
        )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    with client_from(args) as client:
        versions = client.list_versions(args.model)
    if args.json:
        print_json(versions)
        return 0
    print_table(
        ["model:version", "task", "sha256", "inputs", "outputs", "baseline", "created", "by"],
        [
            [
                f"{v.ref.model}:{v.ref.version}",
                v.task,
                v.sha256[:12],
                ", ".join(f"{i.name}{shape(i)}" for i in v.inputs),
                ", ".join(f"{o.name}{shape(o)}" for o in v.outputs),
                f"{v.baseline.n_rows} rows" if v.baseline.n_rows else "-",
                when(v.created_at),
                v.created_by,
            ]
            for v in versions
        ],
        empty=(
            f"model {args.model!r} has no versions (`sluice version list` shows every model)"
            if args.model
            else "no versions registered yet: `sluice version register MODEL FILE.onnx --version V`"
        ),
    )
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    parse_version_ref(args.version)
    with client_from(args) as client:
        v = client.get_version(args.version)
    if args.json:
        print_json(v)
        return 0
    print(f"{v.ref.model}:{v.ref.version}  {v.task}  sha256 {v.sha256}  {v.size_bytes} bytes")
    print(f"registered {when(v.created_at)} by {v.created_by or '-'}" + (f": {v.description}" if v.description else ""))
    print("inputs (what a request must carry, by name):")
    for spec in v.inputs:
        print(f"  {spec.name:<24} {spec.dtype:<8} {shape(spec)}")
    print("outputs:")
    for spec in v.outputs:
        print(f"  {spec.name:<24} {spec.dtype:<8} {shape(spec)}")
    if v.baseline.n_rows:
        named = ", ".join(f.name for f in v.baseline.features[:8])
        more = f" (+{len(v.baseline.features) - 8} more)" if len(v.baseline.features) > 8 else ""
        print(f"baseline: {v.baseline.n_rows} rows, {len(v.baseline.features)} features with drift bins: {named}{more}")
        for c in v.baseline.categories:
            top = ", ".join(c.categories[:8]) + (f" (+{len(c.categories) - 8} more)" if len(c.categories) > 8 else "")
            print(f"  categorical {c.name}: top {len(c.categories)} categories + other: {top}")
    else:
        print("baseline: none (no drift bins; register with --baseline)")
    e = v.offline_evaluation
    if e.n:
        print(
            f"offline verdict: vs {e.champion.model}:{e.champion.version} on {e.deployment}, {e.metric} "
            f"{e.challenger_metric:.4g} vs {e.champion_metric:.4g} over {e.n} rows: {e.verdict}"
        )
    return 0
