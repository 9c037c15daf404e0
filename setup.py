"""Package layout: the design card's top-level folders installed under the `revati` namespace.

`revati/` is `revati`; `recorder/`, `replay/` and `tui/` become `revati.recorder`,
`revati.replay` and `revati.tui` (see `[tool.setuptools] package-dir` in pyproject.toml).
Sub-packages are discovered here so a new folder needs no edit.
"""

from setuptools import find_packages, setup

ROOTS = {"revati": "revati", "revati.recorder": "recorder", "revati.replay": "replay", "revati.tui": "tui"}


def discover_packages() -> list[str]:
    packages = []
    for name, folder in ROOTS.items():
        packages.append(name)
        packages += [f"{name}.{sub}" for sub in find_packages(folder)]
    return sorted(set(packages))


setup(packages=discover_packages())
