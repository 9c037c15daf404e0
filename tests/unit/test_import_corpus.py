"""The importers on every trace of the optional larger corpus ($REVATI_TEST_CORPUS).

Without the variable this module holds no test (pytest's header says the corpus is not used);
tests/data/README.md says how the corpus is laid out.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from revati.recorder.importers import import_kineto, import_nsys
from revati.recorder.reader import open_trace

from tests.conftest import corpus

CORPUS = corpus()
FILES = (
    sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and p.name.endswith((".json", ".json.gz", ".sqlite"))
    )
    if CORPUS
    else []
)

if CORPUS:

    @pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CORPUS)))
    def test_corpus_trace_imports_with_measured_durations(tmp_path: Path, path: Path) -> None:
        out = tmp_path / "t.duckdb"
        if path.suffix == ".sqlite":
            import_nsys(path, out)
        else:
            import_kineto([path], out)
        with open_trace(out) as r:
            counts = r.counts()
            assert counts["kernels"] + counts["copies"] + counts["memsets"] > 0
            assert r.sql("SELECT source FROM run") == [("real",)]
            assert r.sql("SELECT count(*) FROM kernels WHERE duration_source <> 'measured'") == [
                (0,)
            ]
            assert r.sql("SELECT count(*) FROM kernels WHERE end_ns < start_ns") == [(0,)]
