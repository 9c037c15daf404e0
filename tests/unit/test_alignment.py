"""Alignment of kernel sequences and error attribution, without the TUI."""

from __future__ import annotations

import random

import numpy as np
import pytest
from revati.recorder.reader import open_trace  # noqa: E402
from revati.replay import alignment  # noqa: E402
from revati.replay.alignment import (  # noqa: E402
    DeviceOps,
    align_codes,
    align_names,
    align_streams,
    normalize_name,
)
from revati.replay.attribution import attribute_families, compare_traces  # noqa: E402

from tests.sample_trace import build_sample_trace  # noqa: E402


def _lcs(a: list[int], b: list[int]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def test_normalize_name_spellings_agree():
    assert normalize_name("void at::native::foo<float, 4>(int, float*)") == "at::native::foo"
    assert normalize_name("at::native::foo<at::Half>") == "at::native::foo"
    assert normalize_name("ampere_gemm") == "ampere_gemm"


def test_missing_and_extra_kernels_cost_one_gap_each():
    real = ["gemm", "add", "softmax", "gemm", "add", "nccl"]
    emulated = ["gemm", "softmax", "gemm", "add", "extra_k", "nccl"]  # 'add' missing, one extra
    pairs = align_names(emulated, real)
    assert pairs == [(0, 0), (1, 2), (2, 3), (3, 4), (5, 5)]


@pytest.mark.parametrize("seed", range(40))
def test_alignment_is_a_maximal_order_preserving_matching(seed):
    rng = random.Random(seed)
    a = [rng.randint(0, 4) for _ in range(rng.randint(0, 30))]
    b = [rng.randint(0, 4) for _ in range(rng.randint(0, 30))]
    pairs = align_codes(np.array(a, dtype=np.int64), np.array(b, dtype=np.int64))
    assert all(a[i] == b[j] for i, j in pairs)
    assert all(p[0] < q[0] and p[1] < q[1] for p, q in zip(pairs, pairs[1:], strict=False))
    assert len(pairs) == _lcs(a, b)


def test_long_similar_sequences_align_fast_and_fully():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 50, 200_000)
    emulated = np.delete(real, rng.choice(len(real), 30, replace=False))  # 30 missing
    pairs = align_codes(emulated, real)
    assert len(pairs) == len(emulated)


def test_greedy_fallback_past_the_edit_budget(monkeypatch):
    monkeypatch.setattr(alignment, "MAX_EDIT_DISTANCE", 2)
    a = [1, 2, 3, 9, 9, 9, 4, 5]
    b = [1, 2, 7, 7, 7, 3, 4, 5]
    pairs = align_codes(np.array(a), np.array(b))
    assert all(a[i] == b[j] for i, j in pairs) and len(pairs) >= 5


def _ops(rank, sid, names, durs):
    return DeviceOps(
        rank,
        sid,
        f"s{sid}",
        names,
        np.arange(len(names), dtype=np.int64) * 100,
        np.array(durs, dtype=np.int64),
    )


def test_streams_pair_by_shared_kernels_and_ranks_by_value():
    emu = [
        _ops(0, 1, ["nccl"] * 3, [5] * 3),
        _ops(0, 2, ["gemm", "add"] * 3, [10, 2] * 3),
        _ops(1, 3, ["gemm", "add"], [10, 2]),
    ]
    real = [
        _ops(0, 7, ["gemm", "add"] * 3, [8, 2] * 3),
        _ops(0, 8, ["nccl"] * 3, [5] * 3),
        _ops(1, 9, ["gemm", "add"], [8, 2]),
    ]
    als = align_streams(emu, real)
    pairs = {(a.emulated.stream_id, a.real.stream_id) for a in als}
    assert pairs == {(1, 8), (2, 7), (3, 9)}
    fams = attribute_families(als)
    assert fams[0].family == "gemm" and fams[0].delta_ns == 4 * 2 and fams[0].share == 1.0
    assert fams[0].error_pct == pytest.approx(25.0)


def test_extra_and_missing_ops_count_in_the_gap():
    emu = [_ops(0, 1, ["gemm", "add", "add"], [10, 2, 2])]
    real = [_ops(0, 1, ["gemm", "add", "nccl"], [10, 2, 6])]
    (al,) = align_streams(emu, real)
    assert al.extra == [2] and al.missing == [2]
    fams = {f.family: f for f in attribute_families([al])}
    assert fams["elementwise"].extra == 1 and fams["elementwise"].delta_ns == 2
    assert fams["collective"].missing == 1 and fams["collective"].delta_ns == -6


def test_compare_attributes_a_planted_error_to_the_right_family(tmp_path):
    emulated = build_sample_trace(tmp_path / "emu.duckdb", scale={"elementwise": 3.0})
    real = build_sample_trace(tmp_path / "real.duckdb", source="real")
    with open_trace(emulated) as e, open_trace(real) as r:
        c = compare_traces(e, r)
    assert c.missing == 0 and c.extra == 0 and c.matched == 20
    top = c.families[0]
    assert top.family == "elementwise" and top.count == 6
    assert top.delta_ns == 6 * 10_000 and top.error_pct == pytest.approx(200.0)
    assert top.share == pytest.approx(1.0)
    totals = {d.label: d for d in c.deltas}
    assert totals["total time"].delta_ns > 0
    assert totals["per iteration"].real_ns == pytest.approx(100_000)
