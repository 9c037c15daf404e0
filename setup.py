"""Package layout: the design card's top-level folders installed under the `revati` namespace.

`revati/` is `revati`; `recorder/`, `replay/` and `tui/` become `revati.recorder`,
`revati.replay` and `revati.tui` (see `[tool.setuptools] package-dir` in pyproject.toml).
Sub-packages are discovered here so a new folder needs no edit.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOTS = {
    "revati": "revati",
    "revati.recorder": "recorder",
    "revati.replay": "replay",
    "revati.tui": "tui",
}


def discover_packages() -> list[str]:
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return sorted(set(packages))


class BuildPyWithShim(build_py):
    """Also compile the native shim (revati/native/build.py) with the system C compiler."""

    def run(self) -> None:
        super().run()
        # build.py reads the entry-point table from revati/native/entry_table.py; the isolated
        # build environment has no revati installed, so it is imported from this checkout.
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        spec = importlib.util.spec_from_file_location(
            "revati_native_build", Path("revati/native/build.py")
        )
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.build(Path(self.build_lib) / "revati" / "native" / "_build")


setup(packages=discover_packages(), cmdclass={"build_py": BuildPyWithShim})
