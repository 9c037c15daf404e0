"""Faults the shim answers like CUDA does: no crash, no leak (tests/cuda/shim_faults.cu)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "shim_faults.cu"


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def _record(tmp_path: Path, program: Path, *args: str) -> tuple[dict[str, str], Path]:
    out = tmp_path / "t.duckdb"
    proc = run_cli("record", "--quiet", "-o", str(out), "--", str(program), *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line), out


def test_null_host_pointer_copies_are_refused_not_crashed(tmp_path: Path, faults: Path) -> None:
    values, out = _record(tmp_path, faults, "null_copy")
    assert values == {"copy_to_null": "1", "copy_from_null": "1", "memset_null": "1"}
    # the refused calls are in the trace with their error, and moved nothing
    calls = q(out, "SELECT name, result FROM api_calls WHERE name <> 'cudaMalloc' ORDER BY call_id")
    assert calls == [("cudaMemcpy", 1), ("cudaMemcpy", 1), ("cudaMemset", 1)]
    assert q(out, "SELECT count(*) FROM copies") == [(0,)]


def test_graph_clone_out_of_memory_frees_its_partial_copy(tmp_path: Path, faults: Path) -> None:
    values, _ = _record(tmp_path, faults, "clone_oom")
    assert values == {"clone_oom": "2", "leaked_blocks": "0", "clone_after": "0"}


def test_every_error_the_shim_returns_has_its_name(tmp_path: Path, faults: Path) -> None:
    values, _ = _record(tmp_path, faults, "error_names")
    assert values == {
        "func_attributes": "98",
        "name": "cudaErrorInvalidDeviceFunction",
        "name_904": "cudaErrorStreamCaptureUnjoined",
        "name_999": "cudaErrorUnknown",
    }


EARLY_LIB = r"""
#include <poll.h>
#include <stdio.h>
#include <time.h>
__attribute__((constructor(101))) static void early(void) {
    struct timespec ts = {0, 1000};
    nanosleep(&ts, NULL);
    printf("early_poll=%d\n", poll(NULL, 0, 0));
    fflush(stdout);
}
"""
MANY_THREADS = r"""
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
static void *work(void *arg) {
    (void)arg;
    struct timespec ts;
    for (int i = 0; i < 200; i++) poll(NULL, 0, 0);
    for (int i = 0; i < 5; i++) poll(NULL, 0, 1); /* a 1 ms wait in virtual time */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return NULL;
}
int main(void) {
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, work, NULL);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    printf("threads=8\n");
    return 0;
}
"""


def test_interposers_work_from_a_constructor_and_many_threads_at_once(tmp_path: Path) -> None:
    """The hooks table is filled once, whoever calls first: another library's constructor (which
    may run before the shim's) or eight threads at the same moment."""
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "no C compiler: the shim cannot be built either"
    (tmp_path / "early.c").write_text(EARLY_LIB)
    (tmp_path / "main.c").write_text(MANY_THREADS)
    lib, exe = tmp_path / "libearly.so", tmp_path / "many_threads"
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib), str(tmp_path / "early.c")], check=True)
    subprocess.run(
        [cc, "-o", str(exe), str(tmp_path / "main.c"), "-Wl,--no-as-needed", f"-L{tmp_path}",
         "-learly", f"-Wl,-rpath,{tmp_path}", "-lpthread"],
        check=True,
    )  # fmt: skip
    values, out = _record(tmp_path, exe)
    assert values == {"early_poll": "0", "threads": "8"}
    waits = q(out, "SELECT count(DISTINCT thread_id), count(*) FROM syncs WHERE kind = 'poll'")
    assert waits == [(8, 40)]
