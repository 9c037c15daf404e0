"""Per-kernel launch models: fit per kernel name over grid, block and bytes; stem and fallback."""

from __future__ import annotations

import numpy as np
import pytest

from revati.predict import OpBatch, get_device
from revati.predict.calibration.fit import fit_profile
from revati.predict.calibration.measurements import Measurements
from revati.predict.models.gemm import GemmModel
from revati.predict.models.launch import LaunchModel, name_stem, normalise_name
from revati.predict.predictor import Predictor

H100 = get_device("h100-sxm")
COPY = "void at::native::vectorized_elementwise_kernel<4, at::native::copy_kernel<float>>"
SILU = "void at::native::vectorized_elementwise_kernel<4, at::native::silu_kernel<c10::Half>>"


def test_names_lose_their_parameter_list_and_stems_their_template_arguments():
    assert normalise_name(f"{COPY}(int, std::array<char*, 2ul>)") == COPY
    assert normalise_name("triton_poi_fused_add_0") == "triton_poi_fused_add_0"
    assert normalise_name("f<(anonymous namespace)::op>(int)") == "f<(anonymous namespace)::op>"
    assert name_stem(COPY) == "void at::native::vectorized_elementwise_kernel"


def _measured(name: str, blocks: np.ndarray, threads: int = 128) -> tuple[OpBatch, np.ndarray]:
    batch = OpBatch.from_columns(len(blocks), name=name, grid_x=blocks, block_x=threads)
    return batch, 1500.0 * (blocks / 100.0) ** 0.7  # ns


def test_fit_recovers_a_power_law_in_blocks_and_predicts_between_the_points():
    batch, ns = _measured(f"{COPY}(int)", np.array([10, 40, 160, 640, 2560]))
    model = LaunchModel(H100, LaunchModel.fit(H100, batch, ns))
    query = OpBatch.from_columns(2, name=f"{COPY}(long)", grid_x=[80, 1280], block_x=128)
    claimed = model.claims(query, np.full(2, "elementwise", dtype=object))
    assert claimed.all()
    want = 1500.0 * (np.array([80, 1280]) / 100.0) ** 0.7
    assert model.predict(query) == pytest.approx(want, rel=0.02)
    assert list(model.labels(query)) == ["launch", "launch"]


def test_unseen_name_of_a_seen_stem_is_labelled_stem_and_unknown_ones_fall_back():
    batch, ns = _measured(COPY, np.array([10, 40, 160, 640]))
    data = Measurements(batch, ns, np.full(batch.n, "t", dtype=object), "h100-sxm")
    predictor = Predictor(H100, fit_profile(data, "launch", [], models=("launch",)))
    query = OpBatch.from_columns(
        3, name=[COPY, SILU, "my_custom_kernel"], grid_x=[40, 40, 40], block_x=128
    )
    pred = predictor.predict(query)
    assert list(pred.model) == ["launch", "launch:stem", "grid:unmodelled"]
    assert list(pred.unmodelled) == [False, False, True]
    assert pred.duration_ns[0] == pytest.approx(1500.0 * 0.4**0.7, rel=0.02)


def test_bytes_enter_the_fit_only_where_every_launch_had_them():
    blocks = np.array([10, 20, 40, 80, 160, 320])
    nbytes = np.array([1, 3, 2, 8, 5, 30]) * 1_000_000
    batch = OpBatch.from_columns(
        6, name="sm90_xmma_gemm_x", grid_x=blocks, block_x=256, bytes=nbytes
    )
    ns = 2000.0 * (nbytes / 1e6) ** 0.5
    params = LaunchModel.fit(H100, batch, ns)
    fit = params["by_name"]["sm90_xmma_gemm_x"]
    assert set(fit) == {"grid", "bytes"}
    model = LaunchModel(H100, params)
    query = OpBatch.from_columns(
        2, name="sm90_xmma_gemm_x", grid_x=[40, 40], block_x=256, bytes=[16_000_000, 0]
    )
    pred = model.predict(query)
    assert pred[0] == pytest.approx(2000.0 * 4.0, rel=0.1)  # through bytes
    grid = params["by_name"]["sm90_xmma_gemm_x"]["grid"]
    assert pred[1] == pytest.approx(np.exp(grid[0] + grid[1] * np.log(40) + grid[2] * np.log(256)))
    batch.bytes[0] = 0
    assert set(LaunchModel.fit(H100, batch, ns)["by_name"]["sm90_xmma_gemm_x"]) == {"grid"}


def test_shaped_kernels_stay_with_their_family_model():
    m = np.arange(1, 17) * 128
    batch, ns = _measured("sm90_xmma_gemm_y", m // 64)
    shaped = OpBatch.from_columns(
        16, name="sm90_xmma_gemm_y", grid_x=m // 64, gemm_m=m, gemm_n=4096, gemm_k=4096,
        dtype="bf16",
    )  # fmt: skip
    data = Measurements(shaped, ns, np.full(16, "t", dtype=object), "h100-sxm")
    profile = fit_profile(data, "p", [], models=("gemm", "launch"))
    pred = Predictor(H100, profile).predict(
        OpBatch.from_columns(
            2,
            name="sm90_xmma_gemm_y",
            grid_x=[16, 16],
            gemm_m=[256, 0],
            gemm_n=[4096, 0],
            gemm_k=[4096, 0],
            dtype="bf16",
        )  # fmt: skip
    )
    assert list(pred.model) == [GemmModel.name, "launch"]
