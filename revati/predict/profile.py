"""Calibration profiles: a small JSON file of fitted parameters per model, for one device.

Format (`"format": "revati-profile"`, `"version": 1`)::

    {"format": "revati-profile", "version": 1, "name": "h100-vidur", "device": "h100-sxm",
     "sources": ["..."], "models": {"gemm": {...}, "bandwidth": {...}, ...}}

Shipped profiles live in `traces/profiles/<name>.json`; `DEFAULT_PROFILES` names the one each
device uses when the caller asks for none.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from revati.errors import RevatiConfigError

PROFILE_FORMAT = "revati-profile"
PROFILE_VERSION = 1
PROFILES_DIR = Path(__file__).resolve().parents[2] / "traces" / "profiles"
DEFAULT_PROFILES = {"h100-sxm": "h100-vidur", "a100-sxm-80gb": "a100-vidur"}


@dataclass
class Profile:
    """Fitted parameters per model name, for `device`; `sha256` identifies the file's bytes."""

    name: str
    device: str
    models: dict[str, dict[str, Any]]
    sources: list[str] = field(default_factory=list)
    sha256: str = ""

    def to_json(self) -> str:
        doc = {
            "format": PROFILE_FORMAT,
            "version": PROFILE_VERSION,
            "name": self.name,
            "device": self.device,
            "sources": self.sources,
            "models": self.models,
        }
        return _NUMBER_LIST.sub(_one_line, json.dumps(doc, indent=1, sort_keys=True)) + "\n"

    def save(self, path: Path) -> None:
        text = self.to_json()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.sha256 = hashlib.sha256(text.encode()).hexdigest()


# a JSON list of numbers (or "inf"), written one item per line by json.dumps(indent=...)
_NUMBER_LIST = re.compile(
    r'\[(?:\s*(?:-?[0-9][0-9.eE+-]*|"inf"),)*\s*(?:-?[0-9][0-9.eE+-]*|"inf")\s*\]'
)


def _one_line(match: re.Match) -> str:
    """A list of numbers on one line: fitted tables and trees stay a reviewable size."""
    return "[" + ", ".join(v.strip() for v in match.group(0)[1:-1].split(",")) + "]"


def resolve_profile_path(profile: str) -> Path:
    """A path as given, or the shipped profile of that name."""
    path = Path(profile)
    if path.exists():
        return path
    shipped = PROFILES_DIR / f"{profile}.json"
    if shipped.exists():
        return shipped
    known = ", ".join(sorted(p.stem for p in PROFILES_DIR.glob("*.json"))) or "none"
    raise RevatiConfigError(
        f"profile {profile!r} is neither a file nor a shipped profile (shipped: {known}); "
        "give a path or run `revati calibrate`"
    )


def load_profile(profile: str | Path) -> Profile:
    """Read and validate a profile file (or shipped profile name)."""
    path = resolve_profile_path(str(profile))
    try:
        raw = path.read_bytes()
        doc = json.loads(raw)
    except (OSError, ValueError) as e:
        raise RevatiConfigError(f"profile {path} is not readable JSON ({e}); recalibrate it") from e
    if not isinstance(doc, dict) or doc.get("format") != PROFILE_FORMAT:
        raise RevatiConfigError(
            f"profile {path} is not a revati profile (no format {PROFILE_FORMAT!r})"
        )
    if doc.get("version") != PROFILE_VERSION:
        raise RevatiConfigError(
            f"profile {path} has version {doc.get('version')!r}, this revati reads "
            f"{PROFILE_VERSION}; recalibrate it with `revati calibrate`"
        )
    models = doc.get("models")
    if not isinstance(models, dict) or not all(isinstance(v, dict) for v in models.values()):
        raise RevatiConfigError(f"profile {path}: 'models' must map model names to objects")
    if not isinstance(doc.get("device"), str) or not isinstance(doc.get("name"), str):
        raise RevatiConfigError(f"profile {path}: 'name' and 'device' must be strings")
    return Profile(
        name=doc["name"],
        device=doc["device"],
        models=models,
        sources=list(doc.get("sources", [])),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def default_profile_for(device_id: str) -> Profile | None:
    """The shipped profile a device uses when none is asked for (None: fallback models only)."""
    name = DEFAULT_PROFILES.get(device_id)
    if name is None or not (PROFILES_DIR / f"{name}.json").exists():
        return None
    return load_profile(PROFILES_DIR / f"{name}.json")
