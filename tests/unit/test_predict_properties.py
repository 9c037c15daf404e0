"""Property tests: the predictor answers every record, whatever its fields hold."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from revati.predict import OpBatch, load_predictor

PREDICTOR = load_predictor("h100-sxm")
NAMES = st.sampled_from(
    ["sm90_xmma_gemm_bf16", "flash_fwd_kernel", "ncclDevKernel_AllReduce", "gemm:mlp_up_proj",
     "elementwise:add", "Memcpy DtoD", "", "ünïcode_kernel", "nvjet_tst_x"]
)  # fmt: skip
INTS = st.integers(min_value=-(2**40), max_value=2**40)
RECORD = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["kernel", "copy", "memset", "collective", "other"]),
        "name": NAMES,
        "grid_x": INTS, "block_x": INTS, "bytes": INTS, "gemm_m": INTS, "gemm_n": INTS,
        "gemm_k": INTS, "batch": INTS, "world_size": INTS, "attn_q_len": INTS,
        "attn_kv_len": INTS, "attn_heads": INTS, "attn_head_dim": INTS,
        "dtype": st.sampled_from(["", "bf16", "fp8", "fp32", "int4"]),
        "copy_kind": st.sampled_from(["", "HtoD", "DtoH", "DtoD", "PtoP"]),
        "collective": st.sampled_from(["", "allreduce", "allgather", "sendrecv", "alltoall"]),
    }
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(RECORD, min_size=1, max_size=40))
def test_every_record_gets_a_positive_duration_and_a_model(records):
    columns = {key: [r[key] for r in records] for key in records[0]}
    pred = PREDICTOR.predict(OpBatch.from_columns(len(records), **columns))
    assert pred.duration_ns.dtype == np.int64 and (pred.duration_ns >= 1).all()
    assert all(isinstance(m, str) and m for m in pred.model)
    assert (pred.unmodelled == np.char.endswith(pred.model.astype(str), ":unmodelled")).all()


def test_absurd_shapes_are_capped_not_overflowed():
    pred = PREDICTOR.predict(
        OpBatch.from_columns(2, name="sm90_gemm", gemm_m=2**40, gemm_n=2**40, gemm_k=2**40)
    )
    assert (pred.duration_ns == 10**15).all()
