"""The agent's model probe (agent/serving.py ModelProbe): each new artifact loads and warms up in the
sandbox first; a model onnxruntime cannot load and one over the limits are refused with a reason a
person can act on; outcomes are remembered per sha256 (the newest 256), so a refused version is
refused at once when a later snapshot names it again. Real sandbox, real onnxruntime."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from agent.serving import DEFAULT_PROBE_LIMITS, ApplyError, ModelProbe
from runtime import sandbox

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
ROOMY = sandbox.Limits(timeout_seconds=120.0, memory_mb=2048)


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_file_onnxruntime_cannot_load_is_refused_and_remembered(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    sha = sha_of(bad)
    probe = ModelProbe(ROOMY)
    with pytest.raises(ApplyError) as caught:
        await probe.check(bad, sha, "m:v1")
    assert str(caught.value).startswith("onnxruntime cannot load m:v1: ")
    bad.unlink()  # remembered by its sha256: not probed again (the file is gone)
    with pytest.raises(ApplyError) as again:
        await probe.check(bad, sha, "m:v1")
    assert str(again.value) == str(caught.value)


async def test_a_model_over_the_time_limit_is_refused_with_the_option_to_raise(tmp_path: Path) -> None:
    model = FIXTURES / "classifier-logreg.onnx"
    probe = ModelProbe(sandbox.Limits(timeout_seconds=0.001, memory_mb=2048))  # no load fits in 1 ms
    with pytest.raises(ApplyError) as caught:
        await probe.check(model, sha_of(model), "m:v1")
    message = str(caught.value)
    assert message.startswith("m:v1 was refused: loading and warming it up in the sandbox ")
    assert message.endswith("; raise `sluice agent --model-timeout` if the model is just slow")


async def test_a_model_that_loads_passes_and_without_limits_nothing_is_probed(tmp_path: Path) -> None:
    model = FIXTURES / "classifier-logreg.onnx"
    await ModelProbe(ROOMY).check(model, sha_of(model), "m:v1")  # no error
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x00")
    await ModelProbe(None).check(garbage, sha_of(garbage), "m:v2")  # the agent trusts what it loads


async def test_the_newest_256_outcomes_are_remembered(tmp_path: Path) -> None:
    probe = ModelProbe(ROOMY)
    missing = tmp_path / "missing.onnx"  # probing it would fail with another reason
    for i in range(ModelProbe.REMEMBERED + 1):
        probe._remember(f"sha-{i}", (True, f"reason {i}"))
    for i in (1, ModelProbe.REMEMBERED // 2, ModelProbe.REMEMBERED):
        with pytest.raises(ApplyError, match=f"reason {i}$"):
            await probe.check(missing, f"sha-{i}", "m:v")
    with pytest.raises(ApplyError) as oldest:  # forgotten: probed afresh
        await probe.check(missing, "sha-0", "m:v")
    assert "reason 0" not in str(oldest.value)


def test_the_documented_defaults() -> None:
    # docs/OPERATIONS.md: `--model-timeout` 30 s, `--model-memory-mb` 2048; docs/SECURITY.md: at nice +10.
    assert sandbox.Limits(timeout_seconds=30.0, memory_mb=2048, niceness=10) == DEFAULT_PROBE_LIMITS
