"""The device catalog: every shipped device loads, figures are sane, bad input is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from revati.errors import RevatiConfigError
from revati.predict.catalog import DEVICES_DIR, _catalog, get_device, list_devices

SHIPPED = {"h100-sxm", "h100-pcie", "h200", "a100-sxm-80gb", "l40s", "b200"}


def test_every_contract_device_is_in_the_catalog():
    assert {d.id for d in list_devices()} == SHIPPED


@pytest.mark.parametrize("device_id", sorted(SHIPPED))
def test_figures_are_plausible(device_id):
    d = get_device(device_id)
    assert 80 <= d.sm_count <= 200
    assert 40 << 30 <= d.memory_bytes <= 200 << 30
    assert 500 <= d.memory_bandwidth_gbs <= 10_000
    assert (
        d.peak_tflops["bf16"]
        == d.peak_tflops["fp16"]
        > d.peak_tflops["tf32"]
        > d.peak_tflops["fp32"]
    )
    assert d.warp_size == 32 and d.max_threads_per_block == 1024
    assert d.shared_mem_per_block <= d.shared_mem_per_block_optin <= d.shared_mem_per_sm


def test_h100_sxm_matches_the_datasheet():
    d = get_device("h100-sxm")
    assert (d.name, d.sm_count, d.compute_capability) == ("NVIDIA H100 80GB HBM3", 132, (9, 0))
    assert d.memory_bandwidth_gbs == 3350.0 and d.l2_bytes == 50 * 1024 * 1024
    assert d.peak_flops("bf16") == pytest.approx(989.4e12)
    assert d.peak_flops("") == d.peak_flops("fp16")


def test_a100_without_fp8_falls_back_to_fp16_peak():
    d = get_device("a100-sxm-80gb")
    assert d.peak_tflops["fp8"] == 0.0
    assert d.peak_flops("fp8") == d.peak_flops("fp16")


def test_every_figure_line_names_its_source():
    for path in DEVICES_DIR.glob("*.toml"):
        for line in path.read_text().splitlines():
            if "=" in line and not line.startswith(("#", "[", "id =", "name =")):
                assert "#" in line, f"{path.name}: no source comment on {line!r}"


def test_unknown_device_names_the_known_ones():
    with pytest.raises(RevatiConfigError, match="known devices: a100-sxm-80gb, b200"):
        get_device("h800")


def test_malformed_device_file_is_a_config_error(tmp_path: Path):
    (tmp_path / "bad.toml").write_text('id = "bad"\nname = "x"\n')
    with pytest.raises(RevatiConfigError, match="lacks"):
        _catalog(tmp_path)
    (tmp_path / "bad.toml").write_text("id = [\n")
    with pytest.raises(RevatiConfigError, match="not readable TOML"):
        _catalog(tmp_path)
