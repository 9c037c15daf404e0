"""Run at the start of every Python process `revati record` traces (on its PYTHONPATH).

It turns PyTorch's cuDNN switch off as soon as `torch` is imported: cuDNN carries its own static
CUDA runtime, which talks to the driver through private tables that revati does not emulate, so
cuDNN cannot initialise under emulation. With the switch off PyTorch takes its own kernels for
convolutions, normalisations and attention (SDPA's flash path, its cuDNN backend switched off
too), which revati records. The trace's
run configuration says so (`cudnn = "off"`). Nothing else is changed, and a `sitecustomize` that
the environment had before is run after this one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any


def _cudnn_off(torch: ModuleType) -> None:
    torch.backends.cudnn.enabled = False
    torch.backends.cuda.enable_cudnn_sdp(False)  # SDPA's cuDNN backend has its own switch


class _AfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `torch` like the path finder would, and runs `_cudnn_off` once it has loaded."""

    def __init__(self) -> None:
        self._inner: importlib.abc.Loader | None = None

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torch":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        self._inner = spec.loader
        spec.loader = self
        return spec

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec) if self._inner else None

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)  # type: ignore[union-attr]
        sys.meta_path[:] = [f for f in sys.meta_path if f is not self]
        _cudnn_off(module)


def _chain_previous() -> None:
    """Run the sitecustomize this one shadows (the next one on sys.path), if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is None or spec.loader is None or spec.origin == os.path.abspath(__file__):
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)


if os.environ.get("REVATI_RUN_DIR"):
    sys.meta_path.insert(0, _AfterImport())
_chain_previous()
