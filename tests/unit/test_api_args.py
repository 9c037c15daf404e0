"""api_calls.args of the plain records the emulated runtime families write (revati/engine/api_args.py)."""

from __future__ import annotations

from revati.engine.api_args import api_args

U64 = 1 << 64


def test_access_policy_window_unpacks_size_ratio_and_properties() -> None:
    # d = bytes | hit_ratio * 1000 << 40 | hit property << 56 | miss property << 60
    d = (1 << 20) | (600 << 40) | (2 << 56) | (1 << 60)
    assert api_args("cudaStreamSetAttribute", 0x55AA00, 1, 0x7000, d) == (
        "stream=0x55aa00 attr=access_policy_window base=0x7000 bytes=1048576"
        " hit_ratio=0.6 hit=persisting miss=streaming"
    )


def test_stream_attribute_values_are_named_or_signed() -> None:
    assert api_args("cudaStreamSetAttribute", 0, 3, 4, 0).endswith("value=blocking_sync")
    assert api_args("cudaStreamSetAttribute", 2, 8, U64 - 3, 0) == (
        "stream=per_thread attr=priority value=-3"
    )
    assert api_args("cudaStreamSetAttribute", 0, 9, 0, 1).endswith("default=0 remote=1")


def test_conditional_node_says_which_body_runs() -> None:
    # b = type | bodies << 8, c = handle | value << 32, d = the body that runs (-1: none)
    made = api_args("cudaGraphAddNode", 13, 1 | 1 << 8, 3 | 1 << 32, 0)
    assert made is not None and made.startswith(
        "type=conditional cond=while bodies=1 handle=3 value=1 runs=body 0 once"
    )
    assert "runs=none" in (api_args("cudaGraphAddNode", 13, 2 | 3 << 8, 4 | 7 << 32, U64 - 1) or "")
    assert api_args("cudaGraphAddNode", 13, 0, 0, 0) == "type=conditional"  # not made
    assert (
        api_args("cudaGraphAddNode", 10, 0x1000, 4096, 0) == "type=mem_alloc ptr=0x1000 bytes=4096"
    )
    assert api_args("cudaGraphAddNode", 0, 0, 0, 0) == "type=kernel"


def test_pool_records_and_unknown_functions() -> None:
    assert api_args("cudaMemPoolTrimTo", 2, 0, 1 << 21, 0) == (
        "pool=2 keep=0 released=2097152 reserved=0"
    )
    assert api_args("cudaMemPoolSetAttribute", 1, 4, U64 - 1, 0) == (
        f"pool=1 attr=release_threshold value={U64 - 1}"
    )
    assert api_args("cudaMemPoolExportToShareableHandle", 1, U64 - 1, 1, 0) == "pool=1 fd=-1"
    assert api_args("cudaHostRegister", 1, 2, 3, 4) is None
