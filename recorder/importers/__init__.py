"""Importers of real-GPU traces into revati traces (run.source = 'real', durations measured).

- `import_kineto(paths, out)`: PyTorch-profiler (Kineto) Chrome-trace JSON, one file per rank.
- `import_nsys(path, out)`: Nsight Systems SQLite export (`nsys export --type sqlite`).

Both parse their whole input before writing, write to a temporary file beside `out` and rename
it at the end, so a failed import leaves nothing behind; both raise `RevatiImportError` (one
line naming the file and the problem) for malformed input. docs/importers.md has the mapping.
"""

from revati.recorder.importers.builder import ImportSummary
from revati.recorder.importers.kineto import import_kineto
from revati.recorder.importers.nsys import import_nsys

__all__ = ["ImportSummary", "import_kineto", "import_nsys"]
