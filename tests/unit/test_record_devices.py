"""`revati record`'s default --devices: one virtual GPU per torchrun worker."""

from __future__ import annotations

import sys

import pytest

from revati.commands.record import default_devices, torchrun_nproc


@pytest.mark.parametrize(
    "argv, nproc",
    [
        (("torchrun", "--nproc-per-node", "4", "train.py"), 4),
        (("/usr/bin/torchrun", "--standalone", "--nproc_per_node=8", "train.py"), 8),
        ((sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "x.py"), 2),
        (("torchrun", "--nproc-per-node", "gpu", "train.py"), None),  # torchrun counts GPUs
        (("torchrun", "train.py"), None),
        (("python", "train.py", "--nproc-per-node", "4"), None),  # not torchrun's flag
    ],
)
def test_torchrun_nproc(argv: tuple[str, ...], nproc: int | None) -> None:
    assert torchrun_nproc(argv) == nproc
    assert default_devices(argv) == (nproc or 1)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--nproc", "2", "--", "true"), "--nproc starts the Llama example under torchrun"),
        (("--example", "llama", "--nproc", "0"), "--nproc must be at least 1"),
    ],
)
def test_nproc_misuse_is_one_line(args: tuple[str, ...], message: str) -> None:
    from tests.integration.record_helpers import run_cli

    r = run_cli("record", "-o", "/nonexistent/t.duckdb", *args)
    assert r.returncode == 2 and r.stderr.strip().startswith(f"revati: error: {message}")
    assert len(r.stderr.strip().splitlines()) == 1
