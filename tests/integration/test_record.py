"""`revati record` on real CUDA programs built with nvcc at test time (skipped without nvcc)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from revati.recorder.reader import open_trace
from revati.replay.invariants import violations

from tests.integration.record_helpers import build_modes, q, run_cli


def _build(tmp_factory: pytest.TempPathFactory, *flags: str) -> Path:
    return build_modes(tmp_factory.getbasetemp(), *flags)


@pytest.fixture(scope="session")
def modes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "-cudart", "shared")


def record(
    tmp_path: Path, *cmd: str, extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path / "t.duckdb"
    proc = run_cli("record", "-o", str(out), *extra, "--", *cmd, timeout=120)
    return proc, out


def values(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)


def assert_time_invariants(path: Path) -> None:
    """The invariants of docs/time-model.md, checked on the trace (revati.replay.invariants)."""
    found = violations(path)
    assert found == dict.fromkeys(found, 0)


def test_bundled_example_runs_and_records_its_calls(tmp_path: Path) -> None:
    out = tmp_path / "demo.duckdb"
    proc = run_cli("record", "-o", str(out), "--example", timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "NVIDIA H100 80GB HBM3" in proc.stdout
    assert "→" in proc.stderr and "kernels" in proc.stderr
    names = {n for (n,) in q(out, "SELECT DISTINCT name FROM api_calls")}
    assert {
        "cudaMalloc",
        "cudaMemcpy",
        "__cudaLaunchKernel",
        "cudaDeviceSynchronize",
        "cudaFree",
    } <= names
    assert q(out, "SELECT count(*), min(name) FROM kernels") == [
        (100, "vector_add(float const*, float const*, float*, int)")
    ]
    assert q(out, "SELECT source, device, exit_status FROM run") == [("emulated", "h100-sxm", 0)]
    assert open_trace(out).counts()["kernels"] == 100
    assert_time_invariants(out)


def test_recording_the_example_twice_gives_the_same_virtual_times(tmp_path: Path) -> None:
    """Every sync of the example that waits resumes exactly at its deadline (the first one too:
    opening the thread's connection is not program time), so the GPU timeline is reproducible.
    The final device sync has nothing left to wait for: it resumes at once.

    Kernel durations are the same in both recordings and each kernel starts at its launch (plus
    the launch latency) or at the end of the one before it. Launch times are host time: a launch loop preempted on a
    loaded machine leaves the GPU idle for a while, so the whole timeline is compared only when
    neither recording had such a gap (the GPU stayed busy from the first kernel to the last)."""
    timelines, idle = [], []
    for i in range(2):
        out = tmp_path / f"demo{i}.duckdb"
        proc = run_cli("record", "-o", str(out), "--example", timeout=120)
        assert proc.returncode == 0, proc.stderr
        syncs = q(out, "SELECT kind, deadline_ns, resumed_ns FROM syncs ORDER BY sync_id")
        assert [k for k, _, _ in syncs] == ["copy", "copy", "event", "copy", "device"]
        assert [r - d for _, d, r in syncs[:4]] == [0] * 4, syncs
        assert 0 <= syncs[4][2] - syncs[4][1] < 20_000, syncs
        kernels = q(
            out,
            """SELECT launch_ns, start_ns, end_ns,
                      lag(end_ns) OVER (ORDER BY kernel_id) AS before
               FROM kernels ORDER BY kernel_id""",
        )
        assert len(kernels) == 100
        latency = kernels[0][1] - kernels[0][0]  # the device's launch latency
        assert all(s == max(la + latency, b or 0) for la, s, _, b in kernels), kernels
        idle.append(sum(1 for la, s, _, b in kernels[1:] if la + latency > b))
        timelines.append([(s - kernels[0][0], e - kernels[0][0]) for _, s, e, _ in kernels])
        assert_time_invariants(out)
    durations = [[e - s for s, e in t] for t in timelines]
    assert durations[0] == durations[1]
    if idle == [0, 0]:
        assert timelines[0] == timelines[1]


def test_event_elapsed_time_is_exactly_the_predicted_durations(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "streams")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    scales = q(
        out, "SELECT end_ns - start_ns FROM kernels WHERE name LIKE 'scale%' ORDER BY kernel_id"
    )
    assert len(scales) == 2
    assert float(v["elapsed01_ns"]) == pytest.approx(sum(d for (d,) in scales), abs=1)
    assert float(v["elapsed12_ns"]) == 0  # s2 waited for e1: e2 completes when e1 does
    (busy_s2,) = q(
        out,
        """SELECT k.end_ns - k.start_ns FROM kernels k JOIN streams s USING (stream_id)
                         WHERE k.name LIKE 'busy%' ORDER BY kernel_id DESC LIMIT 1""",
    )
    assert float(v["elapsed23_ns"]) == pytest.approx(busy_s2[0], abs=1)
    # the kernel on s2 starts only after s1's last scale kernel ended (cudaStreamWaitEvent)
    (last_scale_end,) = q(out, "SELECT max(end_ns) FROM kernels WHERE name LIKE 'scale%'")[0]
    (s2_start,) = q(out, "SELECT start_ns FROM kernels ORDER BY kernel_id DESC LIMIT 1")[0]
    assert s2_start >= last_scale_end
    assert_time_invariants(out)


def test_memory_round_trip_and_capacity(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "memory")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    assert v["roundtrip_equal"] == "1" and v["memset_ok"] == "1" and v["attr_device"] == "1"
    assert v["too_big"] == "cudaErrorMemoryAllocation"
    assert v["second_half"] == "cudaErrorMemoryAllocation"
    assert int(v["total"]) == q(out, "SELECT memory_bytes FROM devices")[0][0]
    rows = q(
        out, "SELECT bytes, backed, result FROM allocations WHERE kind = 'device' ORDER BY alloc_id"
    )
    assert rows[0] == (4096, True, 0)
    assert any(not backed and result == 0 and b > 1 << 30 for b, backed, result in rows)
    assert sum(1 for _, _, result in rows if result == 2) == 2  # the two refused allocations


def test_sleep_30s_takes_virtual_time_not_wall_time(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "sleep")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    # the sleep returns at virtual +30 s; host time after the wake-up flows at real speed
    assert 30.0 <= float(v["slept_monotonic_s"]) < 30.05
    assert 30.0 <= float(v["slept_realtime_s"]) < 30.05
    (wall_ns, virtual_ns) = q(out, "SELECT wall_ns, virtual_end_ns FROM run")[0]
    assert wall_ns < 1e9 and virtual_ns >= 30e9
    (jump,) = q(out, "SELECT to_ns - from_ns, cause_kind FROM jumps WHERE to_ns - from_ns > 1e9")
    assert jump[0] == pytest.approx(30e9, rel=1e-3) and jump[1] == "sleep"
    assert_time_invariants(out)


def test_gpu_bound_loop_runs_far_faster_than_virtual_time(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "gpubound")
    assert proc.returncode == 0, proc.stderr
    assert float(values(proc.stdout)["virtual_s"]) >= 60
    (wall_ns, virtual_ns) = q(out, "SELECT wall_ns, virtual_end_ns FROM run")[0]
    assert virtual_ns >= 60e9 and wall_ns < 10e9
    assert q(out, "SELECT count(*) FROM kernels") == [(10000,)]
    assert q(out, "SELECT count(*) FROM copies WHERE kind = 'DtoD'") == [(10000,)]
    assert_time_invariants(out)


def test_two_threads_launch_and_sync_concurrently(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "threads")
    assert proc.returncode == 0, proc.stderr
    per_thread = q(
        out,
        """SELECT thread_id, count(*) FROM api_calls WHERE name = '__cudaLaunchKernel'
                          GROUP BY thread_id""",
    )
    assert sorted(n for _, n in per_thread) == [200, 200]
    assert q(out, "SELECT count(DISTINCT stream_id) FROM kernels") == [(2,)]
    assert_time_invariants(out)


def test_fork_exec_child_joins_the_same_run(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "fork")
    assert proc.returncode == 0, proc.stderr
    assert values(proc.stdout)["child_status"] == "0"
    procs = q(out, "SELECT pid, parent_pid FROM processes ORDER BY started_ns")
    assert len(procs) == 2 and procs[1][1] == procs[0][0]
    per_pid = dict(
        q(
            out,
            """SELECT t.pid, count(*) FROM kernels k JOIN api_calls c USING (call_id)
                            JOIN threads t USING (thread_id) GROUP BY t.pid""",
        )
    )
    assert per_pid == {procs[0][0]: 2, procs[1][0]: 10}
    assert_time_invariants(out)


def test_parent_in_waitpid_leaves_running_until_its_child_exits(
    tmp_path: Path, modes: Path
) -> None:
    """The parent blocked in waitpid does not count as running: the child's usleep is a jump,
    and the parent resumes when the child has exited, never before its last call."""
    proc, out = record(tmp_path, str(modes), "fork")
    assert proc.returncode == 0, proc.stderr
    assert values(proc.stdout)["child_status"] == "0"
    (parent, _), (child, _) = q(out, "SELECT pid, parent_pid FROM processes ORDER BY started_ns")
    ((blocked, resumed, kind),) = q(
        out,
        """SELECT s.blocked_ns, s.resumed_ns, s.kind FROM syncs s
           JOIN api_calls c USING (call_id) WHERE c.name = 'waitpid'""",
    )
    assert kind == "poll"
    ((child_first, child_last),) = q(
        out,
        f"""SELECT min(c.enter_ns), max(c.exit_ns) FROM api_calls c JOIN threads t
            USING (thread_id) WHERE t.pid = {child}""",
    )
    assert blocked < child_first and resumed >= child_last
    # the child's exit is real time (process teardown), a few ms at most, even under load
    assert resumed - child_last < 50_000_000
    # the child's 1 ms sleep jumped while the parent waited: nobody else was running
    sleeps = q(
        out,
        f"""SELECT j.to_ns - j.from_ns FROM jumps j JOIN threads t ON t.thread_id =
            j.cause_thread_id WHERE t.pid = {child} AND j.cause_kind = 'sleep'
            AND j.from_ns > {blocked} AND j.to_ns <= {resumed}""",
    )
    assert len(sleeps) == 1 and 900_000 < sleeps[0][0] <= 1_000_000
    assert parent != child
    assert_time_invariants(out)


def test_threads_in_sem_wait_and_cond_wait_leave_running(tmp_path: Path, modes: Path) -> None:
    """A thread in sem_wait / pthread_cond_wait is not running: the other thread's 200 ms sleep
    is a jump (not 200 ms of real time), and the waiter is handed its share back by the post."""
    proc, out = record(tmp_path, str(modes), "waits")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    assert 0.2 <= float(v["sem_s"]) < 0.25 and 0.2 <= float(v["cond_s"]) < 0.25
    jumps = q(out, "SELECT cause_kind, to_ns - from_ns FROM jumps ORDER BY jump_id")
    assert [k for k, _ in jumps] == ["sleep", "sleep"]
    assert all(150_000_000 < d <= 200_000_000 for _, d in jumps)
    ((wall, virtual),) = q(out, "SELECT wall_ns, virtual_end_ns FROM run")
    assert virtual > 400_000_000 and wall < virtual
    assert_time_invariants(out)


def test_unemulated_call_gets_not_supported_and_is_named(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "unsupported")
    assert proc.returncode == 0, proc.stderr
    assert values(proc.stdout)["unsupported"] == "cudaErrorNotSupported"
    rows = q(out, "SELECT name, library, result FROM unsupported_calls")
    assert ("cudaMallocArray", "libcudart.so.13", 801) in rows
    calls = q(out, "SELECT result FROM api_calls WHERE name = 'cudaMallocArray'")
    assert calls == [(801,)]


def test_graph_capture_and_launches(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "graph")
    assert proc.returncode == 0, proc.stderr
    assert q(out, "SELECT count(*), count(DISTINCT graph_id) FROM kernels") == [(15, 3)]
    assert q(out, "SELECT count(*) FROM memsets") == [(3,)]
    assert_time_invariants(out)


def test_graph_built_by_hand(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "graph_manual")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    assert v["host_calls"] == "2" and v["memset_word"] == "01010101"
    assert q(out, "SELECT count(*), count(DISTINCT graph_id) FROM kernels") == [(2, 2)]
    assert q(out, "SELECT count(*) FROM api_calls WHERE result <> 0") == [(0,)]


def test_captured_fork_join_graph_runs_its_branches_in_parallel(
    tmp_path: Path, modes: Path
) -> None:
    proc, out = record(tmp_path, str(modes), "graph_fork")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    assert v["nodes"] == "5"
    k = q(
        out,
        """SELECT grid_x, stream_id, start_ns, end_ns FROM kernels WHERE graph_id IS NOT NULL
           ORDER BY kernel_id""",
    )
    assert len(k) == 5
    root, a1, b, a2, last = k[0], k[1], k[2], k[3], k[4]
    assert b[0] == 16384 and a1[0] == a2[0] == 4096
    # the two branches run side by side on two streams, each after the root
    assert b[1] != a1[1] == a2[1] == root[1]
    assert a1[2] == root[3] and b[2] == root[3] and a2[2] == a1[3]
    assert b[2] < a1[3]  # overlap
    # the join waits for both branches
    assert last[2] == max(a2[3], b[3])
    # cudaEventElapsedTime around the launch is the critical path, not the sum of the nodes
    (t0,) = q(out, "SELECT min(enter_ns) FROM api_calls WHERE name = 'cudaEventRecord'")[0]
    durations = [end - start for _, _, start, end in k]
    critical = durations[0] + max(durations[1] + durations[3], durations[2]) + durations[4]
    elapsed = int(v["graph_elapsed_ns"])
    assert abs(elapsed - ((root[2] - t0) + critical)) <= 2
    assert elapsed < (root[2] - t0) + sum(durations)
    assert_time_invariants(out)


def test_host_functions_run_on_another_thread_when_the_stream_reaches_them(
    tmp_path: Path, modes: Path
) -> None:
    proc, out = record(tmp_path, str(modes), "hostfn")
    assert proc.returncode == 0, proc.stderr
    v = values(proc.stdout)
    assert v["hostfn_other_thread"] == "1" and v["callback_other_thread"] == "1"
    (k1, k2) = q(out, "SELECT start_ns, end_ns FROM kernels ORDER BY kernel_id")
    ran = dict(
        q(
            out,
            """SELECT name, struct_pack(enter_ns, exit_ns) FROM api_calls
               WHERE name LIKE '% callback'""",
        )
    )
    fn, cb = ran["cudaLaunchHostFunc callback"], ran["cudaStreamAddCallback callback"]
    (call_exit,) = q(out, "SELECT min(exit_ns) FROM api_calls WHERE name = 'cudaLaunchHostFunc'")[0]
    # the host function starts once the kernel before it ended, not when it was enqueued ...
    assert fn["enter_ns"] >= k1[1]
    hostfn_after_return = int(v["hostfn_at_ns"]) - int(v["returned_ns"])
    assert hostfn_after_return >= (k1[1] - call_exit) - 50_000
    # ... and the kernel after it waits for its 2 ms of (virtual) host time
    assert k2[0] >= fn["enter_ns"] + 2_000_000
    assert cb["enter_ns"] >= k2[1]
    assert int(v["callback_at_ns"]) > int(v["hostfn_at_ns"])
    assert_time_invariants(out)


def test_aborting_program_leaves_a_readable_trace(tmp_path: Path, modes: Path) -> None:
    proc, out = record(tmp_path, str(modes), "abort")
    assert proc.returncode == 128 + 6  # SIGABRT, like `time`
    assert open_trace(out).counts()["kernels"] == 50
    assert q(out, "SELECT exit_status FROM run") == [(134,)]


def test_static_cudart_program_is_refused(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    static = _build(tmp_path_factory, "-cudart", "static")
    proc, out = record(tmp_path, str(static), "streams")
    assert proc.returncode == 6
    assert "rebuild with `-cudart shared`" in proc.stderr
    assert not out.exists()


def test_exit_status_and_output_pass_through(tmp_path: Path) -> None:
    proc, _ = record(tmp_path, "sh", "-c", "echo hello; echo oops >&2; exit 7")
    assert proc.returncode == 7
    assert proc.stdout == "hello\n"
    assert proc.stderr.startswith("oops\n")
