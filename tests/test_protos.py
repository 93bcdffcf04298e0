"""The committed generated protobuf code must be what `make protos` produces now."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.harness import REPO


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    (tmp_path / "protos").mkdir()
    for proto in (REPO / "protos").glob("*.proto"):
        shutil.copy(proto, tmp_path / "protos" / proto.name)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            *sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "protos").glob("*.proto")),
        ],
        cwd=tmp_path,
        check=True,
    )
    generated = sorted(p.name for p in (tmp_path / "protos").iterdir() if not p.name.endswith(".proto"))
    assert generated, "protoc produced nothing"
    stale = [
        name
        for name in generated
        if not (REPO / "protos" / name).exists()
        or (REPO / "protos" / name).read_bytes() != (tmp_path / "protos" / name).read_bytes()
    ]
    assert not stale, f"generated code is stale, run `make protos`: {stale}"


def test_oip_service_matches_tritonclient_wire_definition(tmp_path: Path) -> None:
    """Every field of our OIP messages must exist in tritonclient's with the same number and type.

    A subset, not equality: that is what wire compatibility needs, and fields Triton adds upstream
    (which we do not read) must not fail it.

    tritonclient registers the same `inference.*` names in protobuf's default pool as
    protos.oip_pb2, so neither is imported next to the other: ours is read from a descriptor set,
    theirs in a child process.
    """
    from google.protobuf import descriptor_pb2

    out = tmp_path / "oip.desc"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            f"--descriptor_set_out={out}",
            "protos/oip.proto",
        ],
        cwd=REPO,
        check=True,
    )
    ours = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file[0]
    assert ours.package == "inference"
    assert [s.name for s in ours.service] == ["GRPCInferenceService"]

    def shape_of_proto(message: descriptor_pb2.DescriptorProto) -> dict[str, object]:
        return {
            "fields": {f.name: (f.number, f.type) for f in message.field},
            "nested": {n.name: shape_of_proto(n) for n in message.nested_type},
        }

    # tritonclient's side, read in a child process (its names collide with protos.oip_pb2 here).
    script = (
        "import json\n"
        "from tritonclient.grpc import service_pb2 as t\n"
        "service = t.DESCRIPTOR.services_by_name['GRPCInferenceService']\n"
        "def shape(d):\n"
        "    return {'fields': {f.name: [f.number, f.type] for f in d.fields},\n"
        "            'nested': {n.name: shape(n) for n in d.nested_types}}\n"
        "print(json.dumps({'messages': {n: shape(m) for n, m in t.DESCRIPTOR.message_types_by_name.items()},\n"
        "                  'methods': [m.name for m in service.methods]}))\n"
    )
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=REPO)
    theirs = json.loads(child.stdout)

    def as_json(shape: dict[str, object]) -> Any:
        return json.loads(json.dumps(shape))

    def mismatches(mine: Any, other: Any, path: str) -> list[str]:
        """Where `mine` has a field or nested message that `other` lacks or defines differently."""
        found = [
            f"{path}.{name}: ours {spec}, theirs {other['fields'].get(name)}"
            for name, spec in mine["fields"].items()
            if other["fields"].get(name) != spec
        ]
        for name, nested in mine["nested"].items():
            if name not in other["nested"]:
                found.append(f"{path}.{name}: no such message in tritonclient")
            else:
                found += mismatches(nested, other["nested"][name], f"{path}.{name}")
        return found

    for message in ours.message_type:
        assert message.name in theirs["messages"], f"{message.name}: no such message in tritonclient"
        assert not mismatches(as_json(shape_of_proto(message)), theirs["messages"][message.name], message.name)
    assert {m.name for m in ours.service[0].method} <= set(theirs["methods"])
