"""The committed generated protobuf code must be what `make protos` produces now."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

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
    """Field numbers and types of the OIP messages must equal those tritonclient speaks.

    tritonclient registers the same `inference.*` names in protobuf's default pool, so our
    side is read from a descriptor set, never imported next to it.
    """
    from google.protobuf import descriptor_pb2
    from tritonclient.grpc import service_pb2 as triton

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

    def shape_of_descriptor(descriptor: object) -> dict[str, object]:
        return {
            "fields": {f.name: (f.number, f.type) for f in descriptor.fields},  # type: ignore[attr-defined]
            "nested": {n.name: shape_of_descriptor(n) for n in descriptor.nested_types},  # type: ignore[attr-defined]
        }

    for message in ours.message_type:
        theirs = triton.DESCRIPTOR.message_types_by_name[message.name]
        assert shape_of_proto(message) == shape_of_descriptor(theirs), message.name
    triton_methods = {m.name for m in triton.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods}
    assert {m.name for m in ours.service[0].method} <= triton_methods
