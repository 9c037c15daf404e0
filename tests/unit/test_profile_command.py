"""`revati profile` without a GPU, and the measurements files it writes, read back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from revati.errors import RevatiConfigError
from revati.predict.calibration.measured import (
    is_measurements_file,
    read_measurements,
    write_measurements,
)
from revati.predict.calibration.measurements import Measurements
from revati.predict.calibration.sources import load_sources
from revati.predict.profiling import RecordList
from tests.conftest import run_cli


def test_without_a_gpu_profile_exits_with_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "m.json"
    proc = run_cli("profile", "-o", str(out), "--quick")
    assert proc.returncode == 6, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a CUDA GPU" in lines[0]
    assert not out.exists()


def test_unknown_model_is_a_usage_error(tmp_path):
    proc = run_cli("profile", "-o", str(tmp_path / "m.json"), "--models", "gpt-9")
    assert proc.returncode == 2 and "unknown model(s) gpt-9" in proc.stderr


def _records() -> Measurements:
    """What `profile_device` collects, built the same way (RecordList) without a GPU."""
    records = RecordList()
    rng = np.random.default_rng(3)
    for i, m in enumerate((16, 128, 512, 2048) * 4):
        model = ("llama-2-7b", "llama-3-8b", "phi-2", "qwen2.5-7b")[i // 4]
        ns = 4000.0 + m * 20 * (1 + 0.05 * rng.standard_normal())
        records.add(
            ns, model, name="gemm:mlp_up_proj", gemm_m=m, gemm_n=8192, gemm_k=4096,
            batch=1, dtype="bf16", bytes=(m * 4096 + 4096 * 8192 + m * 8192) * 2,
        )  # fmt: skip
        records.add(
            30_000.0 + m * 50, model, name="attention:prefill", attn_batch=1, attn_q_len=m,
            attn_kv_len=m, attn_heads=32, attn_kv_heads=8, attn_head_dim=128, attn_causal=1,
            dtype="bf16",
        )  # fmt: skip
        records.add(
            2000.0 + m, f"size-fold-{i % 4}", kind="copy", name="memcpy HtoD",
            copy_kind="HtoD", bytes=m * 4096,
        )  # fmt: skip
    return records.measurements("h100-sxm")


def test_measurements_round_trip_through_the_file(tmp_path):
    data = _records()
    path = tmp_path / "h100.measurements.json"
    write_measurements(path, data, "NVIDIA H100 80GB HBM3", {"torch": "test"})
    assert is_measurements_file(path)
    back = read_measurements(path)
    assert back.device == "h100-sxm" and len(back) == len(data) == 48
    for col in ("gemm_m", "gemm_n", "attn_kv_heads", "attn_causal", "bytes"):
        assert (getattr(back.batch, col) == getattr(data.batch, col)).all(), col
    for col in ("name", "kind", "copy_kind", "dtype"):
        assert list(getattr(back.batch, col)) == list(getattr(data.batch, col)), col
    assert back.measured_ns == pytest.approx(data.measured_ns, abs=0.1)
    assert list(back.group) == list(data.group)
    assert list(np.unique(back.families)) == ["attention", "gemm", "memcpy"]


def test_calibrate_and_predict_report_read_a_measurements_file(tmp_path):
    path = tmp_path / "h100.measurements.json"
    write_measurements(path, _records(), "NVIDIA H100 80GB HBM3")
    assert len(load_sources([str(path)], None)) == 48
    profile = tmp_path / "p.json"
    run_cli("calibrate", str(path), "-o", str(profile), check=True)
    models = json.loads(profile.read_text())["models"]
    assert {"gemm", "attention", "bandwidth"} <= set(models)
    proc = run_cli("predict-report", str(profile), "--against", str(path), "--json", check=True)
    families = {f["family"]: f for f in json.loads(proc.stdout)["families"]}
    assert families["gemm"]["count"] == 16 and families["gemm"]["mape"] < 15


def test_damaged_or_foreign_files_are_refused(tmp_path):
    path = tmp_path / "x.json"
    path.write_text('{"format": "revati-measurements", "version": 9, "columns": {}}')
    with pytest.raises(RevatiConfigError, match="version 9"):
        read_measurements(path)
    path.write_text(
        '{"format": "revati-measurements", "version": 1, '
        '"columns": {"measured_ns": [1, 2], "gemm_m": [1]}}'
    )
    with pytest.raises(RevatiConfigError, match="different lengths"):
        read_measurements(path)
    other = tmp_path / "trace.json"
    other.write_text('{"traceEvents": []}')
    assert not is_measurements_file(other)
