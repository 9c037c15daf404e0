"""The settings a traced program gets unless its environment has them (run.config records them)."""

from __future__ import annotations

from pathlib import Path

from revati import shim
from revati.engine.config import PROGRAM_DEFAULTS, RecordConfig

SHIM = Path("/nonexistent/libcudart.so.13")


def test_a_default_is_set_where_the_environment_lacks_it() -> None:
    env = shim.traced_env(SHIM, {}, RecordConfig(argv=("x",)).program_defaults)
    assert env["VLLM_USE_V2_MODEL_RUNNER"] == "0"


def test_the_environment_wins_over_a_default() -> None:
    env = shim.traced_env(SHIM, {"VLLM_USE_V2_MODEL_RUNNER": "1"}, dict(PROGRAM_DEFAULTS))
    assert "VLLM_USE_V2_MODEL_RUNNER" not in env  # the program keeps its own setting


def test_the_trace_records_the_defaults() -> None:
    config = RecordConfig(argv=("x",)).to_json()
    assert config["program_defaults"] == {"VLLM_USE_V2_MODEL_RUNNER": "0"}
