"""Varlen attention under `revati record`: the shim reads the sequence lengths a launch passes in
backed device memory and keeps their totals (a varlen summary, revati/native/kernel_args.c), and
the attention shape the trace gets is the batch's mean lengths; where the lengths cannot be read
(virtual memory, a graph node), the parameters' maximum lengths stand."""

from __future__ import annotations

import json

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "varlen_args.cu"
HEADS = (32, 8, 128)  # query heads, KV heads, head dim


@pytest.fixture(scope="module")
def features(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    base = tmp_path_factory.mktemp("varlen")
    program = build_cuda(base, SOURCE, "-cudart", "shared")
    trace = base / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(trace), "--", str(program))
    assert proc.returncode == 0 and "done" in proc.stdout, proc.stderr
    rows = q(
        trace,
        """SELECT f.features FROM kernels k LEFT JOIN kernel_features f USING (kernel_id)
           WHERE k.name LIKE 'void flash::flash_fwd_kernel%' ORDER BY k.kernel_id""",
    )
    assert len(rows) == 4 and all(f for (f,) in rows), rows
    return [json.loads(f) for (f,) in rows]


def dims(f: dict) -> tuple[int, ...]:
    keys = ("attn_batch", "attn_q_len", "attn_kv_len", "attn_heads", "attn_kv_heads")
    return (*(f[k] for k in keys), f["attn_head_dim"])


def test_lengths_read_from_backed_memory_give_the_batch_means(features: list[dict]) -> None:
    # queries 100, 1, 1 and keys 100, 50, 30: per-sequence KV lengths, then cumulative ones
    for f in (features[0], features[2]):
        assert f["layout"] == "vllm_fa2_fwd" and dims(f) == (3, 34, 60, *HEADS), f
        assert (f["attn_total_q"], f["attn_total_kv"]) == (102, 180)
        assert (f["attn_sum_qk"], f["attn_sum_qq"]) == (100 * 100 + 50 + 30, 100 * 100 + 2)


def test_lengths_that_cannot_be_read_leave_the_maximum(features: list[dict]) -> None:
    # in virtual memory (no bytes kept), and in a replayed graph node
    for f in (features[1], features[3]):
        assert dims(f) == (3, 100, 100, *HEADS) and "attn_total_q" not in f, f
        assert f["attn_max_kv_len"] == 100
