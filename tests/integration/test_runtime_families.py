"""Stream attributes, memory pools and stream-ordered allocation under `revati record`.

tests/cuda/runtime_families.cu is built with nvcc at test time; each test checks what the
program printed (the emulated API's answers) and what the trace holds.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.integration.record_helpers import REPO, build_cuda, q, run_cli

SOURCE = REPO / "tests" / "cuda" / "runtime_families.cu"
MB = 1 << 20


@pytest.fixture(scope="session")
def families(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_cuda(tmp_path_factory.getbasetemp(), SOURCE, "-cudart", "shared")


def record(
    tmp_path: Path, program: Path, mode: str, *extra: str
) -> tuple[dict[str, str], Path, subprocess.CompletedProcess[str]]:
    out = tmp_path / f"{mode}.duckdb"
    proc = run_cli("record", "-o", str(out), *extra, "--", str(program), mode, timeout=120)
    assert proc.returncode == 0, proc.stderr
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    return values, out, proc


def calls(path: Path, name: str) -> list[tuple[int, str]]:
    return q(path, f"SELECT result, args FROM api_calls WHERE name = '{name}' ORDER BY call_id")


def test_stream_attributes_read_back_what_was_set(tmp_path: Path, families: Path) -> None:
    v, out, _ = record(tmp_path, families, "stream_attrs")
    assert v["window_base_ok"] == "1"
    assert (v["window_bytes"], v["window_hit_ratio"]) == (str(MB), "0.60")
    assert (v["window_hit_prop"], v["window_miss_prop"]) == ("2", "1")  # persisting, streaming
    assert v["other_stream_window_bytes"] == "0"  # attributes are per stream
    assert (v["sync_policy_default"], v["sync_policy"]) == ("1", "4")
    assert v["priority"] == "-3"  # the priority attribute is the stream's priority
    assert (v["copied_window_bytes"], v["copied_priority"]) == (str(MB), "-3")
    for key in ("bad_miss_prop", "bad_window_size", "launch_only_attr"):
        assert v[key] == "cudaErrorInvalidValue", key
    rows = calls(out, "cudaStreamSetAttribute")
    assert [r for r, _ in rows] == [0, 0, 0, 1, 1, 1]
    window = rows[0][1]
    assert "attr=access_policy_window" in window and f"bytes={MB}" in window
    assert "hit_ratio=0.6 hit=persisting miss=streaming" in window
    assert rows[1][1].endswith("attr=synchronization_policy value=blocking_sync")
    assert rows[2][1].endswith("attr=priority value=-3")
    assert q(out, "SELECT count(*) FROM unsupported_calls") == [(0,)]


def test_default_pool_reuses_in_stream_order_and_releases_at_sync(
    tmp_path: Path, families: Path
) -> None:
    v, out, _ = record(tmp_path, families, "default_pool")
    assert v["current_is_default"] == "1"
    # the pool's memory is the device's: reserving it lowers cudaMemGetInfo's free bytes
    assert (v["used_after_alloc"], v["reserved_after_alloc"], v["free_drop"]) == (str(MB),) * 3
    assert (v["used_after_free"], v["reserved_after_free"]) == ("0", str(MB))
    assert v["same_stream_reuse"] == "1"
    assert (v["other_stream_reuse_before_sync"], v["reserved_two"]) == ("0", str(2 * MB))
    # release threshold 0: a synchronisation gives everything unused back
    assert (v["reserved_after_sync"], v["free_restored"], v["copy_back_ok"]) == ("0", "1", "1")
    assert v["reserved_kept_by_threshold"] == str(2 * MB)
    assert v["other_stream_reuse_after_sync"] == "1"
    assert (v["reserved_after_trim"], v["used_high"], v["used_high_reset"]) == (
        "0",
        str(2 * MB),
        "0",
    )
    assert v["high_set_nonzero"] == v["destroy_default"] == "cudaErrorInvalidValue"
    assert v["beyond_capacity"] == "cudaErrorMemoryAllocation"
    allocs = q(
        out,
        """SELECT a.address, a.bytes, a.backed, a.result, c.args FROM allocations a
           JOIN api_calls c USING (call_id) WHERE c.name = 'cudaMallocAsync' ORDER BY alloc_id""",
    )
    assert len(allocs) == 6
    assert allocs[1][0] == allocs[0][0] != allocs[2][0]  # reused on its stream only
    assert allocs[4][0] == allocs[3][0]  # reused across streams after a synchronisation
    assert all(args.endswith("pool=1") for *_, args in allocs)
    assert allocs[5][2:4] == (False, 2)  # beyond capacity: failed, recorded
    assert calls(out, "cudaMemPoolTrimTo") == [(0, f"pool=1 keep=0 released={2 * MB} reserved=0")]
    assert calls(out, "cudaMemPoolDestroy") == [(1, "pool=1")]
    freed = q(out, "SELECT count(*) FROM api_calls WHERE name = 'cudaFreeAsync' AND result = 0")
    assert freed == [(4,)]


@pytest.mark.parametrize("devices", [1, 2])
def test_explicit_pool_limits_access_and_current_pool(
    tmp_path: Path, families: Path, devices: int
) -> None:
    v, out, _ = record(tmp_path, families, "explicit_pool", "--devices", str(devices))
    assert v["over_max_size"] == "cudaErrorMemoryAllocation"
    assert (v["opportunistic"], v["follow_event_deps"]) == ("0", "1")
    assert (v["own_access"], v["own_access_none"]) == ("3", "cudaErrorInvalidDevice")
    if devices == 2:
        assert (v["peer_access_before"], v["peer_access_after"]) == ("0", "3")
    else:
        assert "peer_access_before" not in v
    assert (v["current_is_ours"], v["used_with_current"]) == ("1", str(3 * MB + MB // 2))
    assert v["current_after_destroy_is_default"] == "1"
    assert v["freed_after_destroy"] == str(3 * MB)  # the destroyed pool let go of its last block
    assert calls(out, "cudaMemPoolCreate") == [
        (0, f"pool=1 device=0 max_size={4 * MB} handle_types=0")
    ]
    assert [r for r, _ in calls(out, "cudaMallocFromPoolAsync")] == [0, 2]
    assert calls(out, "cudaDeviceSetMemPool") == [(0, "device=0 pool=1")]


def test_pool_ipc_shares_bytes_between_processes(tmp_path: Path, families: Path) -> None:
    v, out, _ = record(tmp_path, families, "pool_ipc")
    assert v["child_read"] == "hello from the parent"
    assert v["parent_read"] == "answer from the child"
    assert v["child_status"] == "0"
    assert v["export_plain_pool"] == "cudaErrorInvalidValue"
    by_pid = q(
        out,
        """SELECT c.name, t.pid, c.args FROM api_calls c JOIN threads t USING (thread_id)
           WHERE c.name LIKE 'cudaMemPool%port%' AND c.result = 0 ORDER BY c.call_id""",
    )
    pids = {name: pid for name, pid, _ in by_pid}
    assert pids["cudaMemPoolExportPointer"] != pids["cudaMemPoolImportPointer"]
    exported = next(a for n, _, a in by_pid if n == "cudaMemPoolExportPointer")
    imported = next(a for n, _, a in by_pid if n == "cudaMemPoolImportPointer")
    assert exported.split()[1] == "ptr=" + imported.split("exporter_ptr=")[1]
    assert "bytes=4096" in exported and "bytes=4096" in imported
    # the import is no allocation of its own: one allocation in the trace, the exporter's
    assert q(out, "SELECT count(*), min(bytes) FROM allocations") == [(1, 4096)]


def test_legacy_ipc_handles_share_an_allocation_with_a_child(
    tmp_path: Path, families: Path
) -> None:
    v, out, _ = record(tmp_path, families, "legacy_ipc")
    assert v["legacy_child_read"] == "legacy hello"
    assert v["legacy_parent_read"] == "legacy answer"
    assert v["legacy_child_status"] == "0"
    assert v["open_own_handle"] == "201"  # cudaErrorInvalidContext: not in the exporting process
    # the exported bytes live in a file of the run's folder until the allocation is freed
    assert (v["shared_files_before_free"], v["shared_files_after_free"]) == ("1", "0")
    rows = q(
        out,
        """SELECT c.name, t.pid, c.result, c.args FROM api_calls c JOIN threads t USING (thread_id)
           WHERE c.name LIKE 'cudaIpc%' ORDER BY c.call_id""",
    )
    assert [(name, result) for name, _, result, _ in rows] == [
        ("cudaIpcGetMemHandle", 0),
        ("cudaIpcOpenMemHandle", 201),
        ("cudaIpcOpenMemHandle", 0),
        ("cudaIpcCloseMemHandle", 0),
    ]
    exporter, importer = rows[0][1], rows[2][1]
    assert exporter != importer and rows[2][3].endswith(f"exporter_pid={exporter}")
    # the opened mapping is no allocation of its own
    assert q(out, "SELECT count(*) FROM allocations WHERE bytes = 4096") == [(1,)]


def test_graph_memory_nodes_hold_their_bytes_until_trimmed(tmp_path: Path, families: Path) -> None:
    v, out, _ = record(tmp_path, families, "graph_mem")
    assert v["params_ok"] == "1"
    # the node's bytes are held from its creation: reserved, counted against the device
    assert (v["reserved_after_create"], v["used_after_create"], v["free_drop"]) == (
        str(MB),
        "0",
        str(MB),
    )
    assert (v["used_after_launch"], v["used_high"]) == ("0", str(MB))  # allocated, then freed
    # captured cudaMallocAsync is an allocation node; its memory outlives the launch until freed
    assert (v["captured_nodes"], v["captured_bytes_ok"], v["used_while_live"]) == ("3", "1", "4096")
    assert v["used_after_free"] == "0"
    assert (v["reserved_after_trim"], v["free_restored"]) == ("0", "1")
    assert v["reserved_after_relaunch"] == str(MB)  # a launch takes the bytes back
    assert v["used_high_reset"] == "0"
    assert v["set_used_current"] == v["free_node_not_graph_memory"] == "cudaErrorInvalidValue"
    (alloc,) = calls(out, "cudaGraphAddMemAllocNode")
    assert alloc[0] == 0 and alloc[1].endswith(f"bytes={MB} device=0")
    frees = calls(out, "cudaGraphAddMemFreeNode")
    assert [r for r, _ in frees] == [0, 1] and frees[0][1] == alloc[1].split()[0]  # same ptr
    trims = calls(out, "cudaDeviceGraphMemTrim")
    assert trims == [(0, f"device=0 released={MB + 4096} reserved=0")]
    captured = [a for r, a in calls(out, "cudaMallocAsync") if a and a.startswith("captured")]
    assert len(captured) == 1 and captured[0].endswith("bytes=4096 device=0")


def test_add_node_makes_every_node_type(tmp_path: Path, families: Path) -> None:
    v, out, _ = record(tmp_path, families, "graph_nodes")
    assert v["ext_semaphore_node"] == "cudaErrorNotSupported"
    assert (v["child_nodes"], v["record_event_ok"]) == ("1", "1")
    assert v["node_types"] == "7,4,1"  # event record, child graph, memcpy
    assert v["instantiate_result"] == "0"  # cudaGraphInstantiateSuccess
    assert v["host_runs"] == "2"  # two launches
    assert (v["child_memset_ok"], v["memset_ok"]) == ("1", "1")  # the child graph's node ran
    assert v["elapsed_positive"] == "1"  # event record nodes fired around the graph's kernel
    types = [a for r, a in calls(out, "cudaGraphAddNode") if r == 0]
    kinds = {a.split()[0].removeprefix("type=") for a in types}
    assert kinds == {
        "kernel",
        "memcpy",
        "memset",
        "host",
        "graph",
        "empty",
        "wait_event",
        "event_record",
        "mem_alloc",
        "mem_free",
    }
    # both launches ran the graph's kernel, between the two event record nodes
    kernels = q(out, "SELECT start_ns, end_ns FROM kernels ORDER BY kernel_id")
    assert len(kernels) == 2 and all(e > s for s, e in kernels)


def test_conditional_nodes_follow_the_handles_default_value(tmp_path: Path, families: Path) -> None:
    v, out, _ = record(tmp_path, families, "graph_cond")
    assert v["while_two_bodies"] == "cudaErrorInvalidValue"
    assert (v["if"], v["else"], v["while"], v["switch"]) == ("1", "3", "4", "12")
    assert (v["while_off"], v["nested"]) == ("0", "6")
    made = [a for r, a in calls(out, "cudaGraphAddNode") if r == 0 and "conditional" in a]
    assert len(made) == 7
    assert all("device code does not run: the handle keeps its default value" in a for a in made)
    assert "cond=while bodies=1 handle=3 value=1 runs=body 0 once" in made[2]
    assert "cond=switch bodies=3 handle=4 value=2 runs=body 2" in made[3]
    assert "cond=while bodies=1 handle=5 value=0 runs=none" in made[4]
    handles = calls(out, "cudaGraphConditionalHandleCreate")
    assert handles[0] == (0, "handle=1 default=1 flags=1")


def test_capture_around_a_conditional_node_and_exec_kernel_params(
    tmp_path: Path, families: Path
) -> None:
    v, out, _ = record(tmp_path, families, "graph_capture_into")
    assert (v["capture_status"], v["capture_leaves"]) == ("1", "1")  # active, one leaf
    assert (v["graph_nodes"], v["body_nodes"], v["body_ran"]) == ("3", "1", "1")
    kernels = q(out, "SELECT grid_x, block_x, start_ns, end_ns FROM kernels ORDER BY kernel_id")
    assert [k[:2] for k in kernels] == [(32, 128), (8, 256)]  # the first took the exec's params
    # the second kernel hangs on the conditional node, whose body (a memset) runs in between
    memsets = q(out, "SELECT start_ns, end_ns FROM memsets WHERE value = 8")
    assert len(memsets) == 1 and kernels[0][3] <= memsets[0][0] <= memsets[0][1] <= kernels[1][2]
