"""Kineto importer on the real PyTorch-profiler traces in tests/data/real-traces."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from revati.recorder.importers import import_kineto
from revati.recorder.importers.builder import collective_kind
from revati.recorder.reader import open_trace

from revati.errors import RevatiImportError

HTA = "real-traces/facebookresearch__HolisticTraceAnalysis/tests/data"
LENS = "real-traces/AMD-AGI__TraceLens/tests/traces"
DLRM = "real-traces/facebookresearch__param/et_replay/tests/inputs/dlrm_kineto.tar.gz.extracted/dlrm_kineto"
BERT = f"{LENS}/h100/gaunernst_bert-small-uncased__1016001.json.gz"

# (file, kernels, copies, memsets, runtime + driver calls), as tests/data/README.md lists them
MANIFEST_COUNTS = [
    (BERT, 60, 1, 0, 110 + 22),
    (f"{LENS}/h100/Falconsai_nsfw_image_detection__1016002.json.gz", 154, 0, 2, 334 + 49),
    (
        f"{HTA}/critical_path/alexnet/benchmark_result_2869224_1695835535_trace.json.gz",
        79,
        16,
        3,
        361,
    ),
    (f"{HTA}/critical_path/cuda_event_sync/event_sync_trace.json.gz", 4, 1, 0, 12),
    (f"{HTA}/critical_path/cuda_event_sync_multi_stream/event_sync_trace.json.gz", 3, 0, 3, 39),
    (f"{HTA}/triton_example/triton_example.json.gz", 1, 0, 0, 1 + 1),
    (f"{HTA}/trace_filter/sampled_rank-0.json.gz", 1154, 40, 10, 1204),
    (f"{DLRM}/worker3_step_12.1694128201557.pt.trace.json", 315, 16, 6, 541),
]


def _import(test_data: Path, out: Path, *rel: str):
    import_kineto([test_data / r for r in rel], out)
    return open_trace(out)


@pytest.fixture(scope="module")
def bert(tmp_path_factory, test_data):
    reader = _import(test_data, tmp_path_factory.mktemp("k") / "bert.duckdb", BERT)
    yield reader
    reader.close()


@pytest.fixture(scope="module")
def dlrm(tmp_path_factory, test_data):
    files = sorted((test_data / DLRM).glob("worker*_step_12.*.pt.trace.json"))
    assert len(files) == 8
    out = tmp_path_factory.mktemp("k") / "dlrm.duckdb"
    import_kineto(files, out)
    reader = open_trace(out)
    yield reader
    reader.close()


@pytest.mark.parametrize(
    ("rel", "kernels", "copies", "memsets", "calls"),
    MANIFEST_COUNTS,
    ids=lambda v: Path(v).name if isinstance(v, str) else None,
)
def test_counts_match_manifest(tmp_path, test_data, rel, kernels, copies, memsets, calls):
    with _import(test_data, tmp_path / "t.duckdb", rel) as r:
        counts = r.counts()
        assert (counts["kernels"], counts["copies"], counts["memsets"], counts["api_calls"]) == (
            kernels,
            copies,
            memsets,
            calls,
        )
        assert r.sql("SELECT source FROM run") == [("real",)]
        assert r.sql("SELECT DISTINCT duration_source, model FROM kernels") == [
            ("measured", "measured")
        ]
        starts = [
            r.sql(f"SELECT min({c}) FROM {t}")[0][0]
            for t, c in (
                ("api_calls", "enter_ns"),
                ("kernels", "start_ns"),
                ("nvtx_ranges", "start_ns"),
            )
        ]
        assert min(s for s in starts if s is not None) == 0  # rebased


def test_known_kernel_name_duration_launch_config_and_call(bert):
    # first kernel of the BERT trace: ts 1419247333430.849 us, dur 3.136 us, correlation 8218
    row = bert.sql(
        "SELECT k.name, k.end_ns - k.start_ns, k.grid_x, k.grid_y, k.grid_z, k.block_x,"
        " k.block_y, k.block_z, k.shared_mem, f.registers, f.correlation, a.name,"
        " k.launch_ns = a.enter_ns, k.start_ns FROM kernels k JOIN api_calls a USING (call_id)"
        " LEFT JOIN kernel_features f USING (kernel_id) ORDER BY k.start_ns LIMIT 1"
    )[0]
    assert row[0].startswith("void at::native::(anonymous namespace)::indexSelectLargeIndex<")
    assert row[1:12] == (3136, 564, 1, 1, 128, 1, 1, 0, 32, 8218, "cudaLaunchKernel")
    assert row[12] is True
    offset = json.loads(bert.sql("SELECT config FROM run")[0][0])["time_offset_ns"]
    assert offset + row[13] == 1751410836000000000 + 1419247333430849  # baseTimeNanoseconds + ts


def test_every_kernel_linked_to_its_launch_call(bert):
    assert bert.sql("SELECT count(*), count(call_id) FROM kernels") == [(60, 60)]
    assert bert.sql(
        "SELECT count(*) FROM kernels k JOIN api_calls a USING (call_id)"
        " WHERE a.enter_ns > k.start_ns"
    ) == [(0,)]


def test_device_process_thread_stream(bert):
    assert bert.sql("SELECT name, model, memory_bytes, ordinal FROM devices") == [
        ("NVIDIA H100 80GB HBM3", "h100-sxm", 85018279936, 0)
    ]
    assert bert.sql("SELECT device FROM run") == [("h100-sxm",)]
    assert bert.sql("SELECT pid, argv, rank FROM processes") == [(19392, ["python3"], None)]
    assert bert.sql("SELECT pid, tid, name FROM threads") == [(19392, 19392, "python3")]
    assert bert.sql("SELECT pid, name FROM streams") == [(19392, "stream 7")]


def test_profiler_step_becomes_iteration_marker_and_annotations_nest(bert):
    assert bert.sql("SELECT kind, name, at_ns FROM markers") == [("iteration", "ProfilerStep#6", 0)]
    host, gpu = bert.sql(
        "SELECT thread_id, domain, end_ns - start_ns FROM nvtx_ranges"
        " WHERE name = 'ProfilerStep#6' ORDER BY domain DESC"
    )
    assert host == (0, "user_annotation", 4426114)
    assert gpu == (0, "gpu_user_annotation", 3907827)  # on the thread that opened it


def test_ranks_from_distributed_info(dlrm):
    assert dlrm.sql("SELECT rank, world_size FROM processes ORDER BY rank") == [
        (r, 8) for r in range(8)
    ]
    assert dlrm.sql("SELECT count(DISTINCT pid) FROM processes") == [(8,)]
    assert dlrm.counts()["kernels"] == 245 + 310 + 246 + 315 + 251 + 245 + 246 + 246


def test_nccl_kernels_across_ranks_become_barriers(dlrm):
    assert dlrm.sql("SELECT count(*), min(world_size), max(world_size) FROM barriers") == [
        (8, 8, 8)
    ]
    assert dlrm.sql("SELECT collective, count(*) FROM barriers GROUP BY 1 ORDER BY 1") == [
        ("allreduce", 3),
        ("sendrecv", 5),
    ]
    assert dlrm.sql("SELECT DISTINCT model FROM barriers") == [("measured",)]
    # arrival = kernel start, release = last arrival, end = last kernel end
    bad = dlrm.sql(
        "SELECT b.barrier_id FROM barriers b JOIN barrier_arrivals a USING (barrier_id)"
        " JOIN kernels k USING (kernel_id) GROUP BY b.barrier_id, b.release_ns, b.end_ns"
        " HAVING b.release_ns <> max(a.arrival_ns) OR b.end_ns <> max(k.end_ns)"
        " OR bool_or(a.arrival_ns <> k.start_ns) OR count(DISTINCT a.rank) <> 8"
    )
    assert bad == []


def test_same_trace_twice_is_refused_not_made_two_ranks(tmp_path, test_data):
    f = test_data / HTA / "critical_path/cuda_event_sync/event_sync_trace.json.gz"
    copy = tmp_path / "copy.json.gz"
    shutil.copyfile(f, copy)
    for twice, fragment in (([f, f], "given twice"), ([f, copy], f"identical to {f}")):
        with pytest.raises(RevatiImportError, match=re.escape(fragment)):
            import_kineto(twice, tmp_path / "t.duckdb")
        assert not (tmp_path / "t.duckdb").exists()


def test_two_files_claiming_the_same_rank_are_refused(tmp_path):
    a = _rank_file(tmp_path, 0, ["a"])
    b = tmp_path / "other.json"
    b.write_text(a.read_text().replace('"dur": 50', '"dur": 60'))
    with pytest.raises(RevatiImportError, match="rank 0 again"):
        import_kineto([a, b], tmp_path / "t.duckdb")


def test_files_without_ranks_get_no_invented_barriers(tmp_path):
    files = [_rank_file(tmp_path, r, ["a", "a"]) for r in (0, 1)]
    for f in files:
        doc = json.loads(f.read_text())
        del doc["distributedInfo"]
        f.write_text(json.dumps(doc))
    summary = import_kineto(files, tmp_path / "t.duckdb")
    assert summary.counts.get("barriers", 0) == 0
    with open_trace(tmp_path / "t.duckdb") as r:
        assert r.counts()["kernels"] == 4 and r.counts()["barriers"] == 0


def test_sampled_ranks_match_collectives_pairwise(tmp_path, test_data):
    with _import(
        test_data,
        tmp_path / "t.duckdb",
        f"{HTA}/trace_filter/sampled_rank-0.json.gz",
        f"{HTA}/trace_filter/sampled_rank-1.json.gz",
    ) as r:
        assert r.sql("SELECT rank FROM processes ORDER BY rank") == [(0,), (1,)]
        n = r.sql("SELECT count(*) FROM barriers")[0][0]
        assert n > 0
        assert r.sql("SELECT count(*) FROM barrier_arrivals") == [(2 * n,)]


def test_collective_kind_from_kernel_names():
    assert collective_kind("ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)") == "allreduce"
    assert collective_kind("ncclDevKernel_SendRecv(ncclDevKernelArgsStorage<4096ul>)") == "sendrecv"
    assert collective_kind("void ncclKernel_AllGather_RING_LL_Sum_int8_t()") == "allgather"
    assert collective_kind("void at::native::elementwise_kernel<128, 4>()") is None


def test_cuda_sync_events_become_syncs(tmp_path, test_data):
    rel = f"{HTA}/critical_path/alexnet/benchmark_result_2869224_1695835535_trace.json.gz"
    with _import(test_data, tmp_path / "t.duckdb", rel) as r:
        assert r.counts()["syncs"] == 41  # its cuda_sync events
        assert r.sql(
            "SELECT count(*) FROM syncs s JOIN api_calls a USING (call_id)"
            " WHERE s.thread_id = a.thread_id"
        ) == [(41,)]
        assert ("stream", "stream 7") in r.sql("SELECT DISTINCT kind, target FROM syncs")


def test_legacy_capitalised_categories_and_string_tids(tmp_path):
    """Old Kineto (tb_plugin era) traces: 'Kernel'/'Runtime' and tid = 'stream 7'."""
    events = [
        {
            "ph": "X",
            "cat": "Runtime",
            "name": "cudaLaunchKernel",
            "pid": 42,
            "tid": 43,
            "ts": 100,
            "dur": 5,
            "args": {"correlation": 9},
        },
        {
            "ph": "X",
            "cat": "Kernel",
            "name": "k",
            "pid": 0,
            "tid": "stream 7",
            "ts": 110,
            "dur": 20,
            "args": {
                "device": 0,
                "stream": 7,
                "correlation": 9,
                "grid": [2, 1, 1],
                "block": [64, 1, 1],
            },
        },
        {
            "ph": "X",
            "cat": "Memcpy",
            "name": "Memcpy DtoH (Device -> Pageable)",
            "pid": 0,
            "tid": "stream 7",
            "ts": 140,
            "dur": 3,
            "args": {"device": 0, "stream": 7, "bytes": 4},
        },
    ]
    src = tmp_path / "old.json"
    src.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    import_kineto([src], tmp_path / "t.duckdb")
    with open_trace(tmp_path / "t.duckdb") as r:
        assert r.sql(
            "SELECT k.name, k.start_ns, k.end_ns, k.grid_x, k.block_x, a.name, a.enter_ns"
            " FROM kernels k JOIN api_calls a USING (call_id)"
        ) == [("k", 10000, 30000, 2, 64, "cudaLaunchKernel", 0)]
        assert r.sql("SELECT kind, bytes, start_ns, call_id FROM copies") == [
            ("DtoH", 4, 40000, None)
        ]


def test_nccl_kernel_args_give_dtype_bytes(tmp_path, test_data):
    rel = f"{HTA}/nccl_parser_config/nccl_data.json.gz"
    with _import(test_data, tmp_path / "t.duckdb", rel) as r:
        # first AllReduce in time: "In msg nelems": 2049000, "dtype": "Float"
        assert r.sql(
            "SELECT dtype, bytes FROM kernels JOIN kernel_features USING (kernel_id)"
            " WHERE name LIKE 'ncclKernel_AllReduce%'"
            " ORDER BY start_ns LIMIT 1"
        ) == [("fp32", 2049000 * 4)]


def _rank_file(folder: Path, rank: int, groups: list[str]) -> Path:
    events = []
    for i, group in enumerate(groups):
        events.append(
            {
                "ph": "X",
                "cat": "kernel",
                "name": "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(x)",
                "pid": 0,
                "tid": 7,
                "ts": 100 * i + 10 * rank,
                "dur": 50 + rank,
                "args": {
                    "device": 0,
                    "stream": 7,
                    "Collective name": "allreduce",
                    "In msg nelems": 1024,
                    "dtype": "BFloat16",
                    "Process Group Name": group,
                },
            }
        )
    path = folder / f"rank{rank}.json"
    path.write_text(
        json.dumps({"distributedInfo": {"rank": rank, "world_size": 2}, "traceEvents": events})
    )
    return path


def test_collectives_match_within_their_process_group(tmp_path):
    # rank 0 runs group "a" then "b"; rank 1 runs "b" then "a": matched by group, not by order
    files = [_rank_file(tmp_path, 0, ["a", "b"]), _rank_file(tmp_path, 1, ["b", "a"])]
    import_kineto(files, tmp_path / "t.duckdb")
    with open_trace(tmp_path / "t.duckdb") as r:
        rows = r.sql(
            "SELECT b.communicator, b.bytes, list(a.rank ORDER BY a.rank),"
            " list(f.features->>'$.collective') FROM barriers b"
            " JOIN barrier_arrivals a USING (barrier_id) JOIN kernel_features f USING (kernel_id)"
            " GROUP BY ALL ORDER BY b.communicator"
        )
        assert [(c, n, ranks) for c, n, ranks, _ in rows] == [
            ("a", 2048, [0, 1]),
            ("b", 2048, [0, 1]),
        ]
        # rank 0's "a" kernel starts at 0, rank 1's "a" at 110: release 110, end 161
        assert r.sql("SELECT release_ns, end_ns FROM barriers WHERE communicator = 'a'") == [
            (110_000, 161_000)
        ]


LEGACY = (
    "real-traces/pytorch__kineto/tb_plugin/samples/resnet50_num_workers_4/worker0.pt.trace.json"
)


def test_pytorch_1_8_trace_imports_runtime_calls_and_launch_links(tmp_path, test_data):
    """Categories `Runtime`/`Kernel`/`Memcpy`/`Memset`, tids as digit strings ("3004819264")."""
    events = json.loads((test_data / LEGACY).read_text())["traceEvents"]
    runtime = {e["args"]["correlation"] for e in events if e.get("cat") == "Runtime"}
    kernels = [e for e in events if e.get("cat") == "Kernel"]
    launched = sum(k["args"]["correlation"] in runtime for k in kernels)
    summary = import_kineto([test_data / LEGACY], tmp_path / "t.duckdb")
    assert "not imported: 47,256 host-only events (Operator 28,386, async 18,867" in summary.line()
    with open_trace(tmp_path / "t.duckdb") as r:
        c = r.counts()
        assert (c["api_calls"], c["kernels"], c["copies"], c["memsets"]) == (10686, 9456, 12, 351)
        # every kernel whose launch the file holds is linked to it (the rest began before it)
        assert r.sql("SELECT count(call_id) FROM kernels") == [(launched,)]
        assert launched == 8712
        assert r.sql(
            "SELECT count(*) FROM kernels k JOIN api_calls a USING (call_id)"
            " WHERE a.enter_ns > k.start_ns OR k.launch_ns <> a.enter_ns"
        ) == [(0,)]
        assert r.sql("SELECT pid, tid FROM threads ORDER BY tid") == [
            (120018, 1616066304),
            (120018, 3004819264),
        ]


def _malformed_file(folder: Path, good: int) -> Path:
    """A Kineto file with `good` readable kernels and four unreadable GPU/runtime events."""
    kernel = {"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "dur": 2,
              "args": {"device": 0, "stream": 7}}  # fmt: skip
    events = [{**kernel, "ts": 10 * i} for i in range(good)]
    events += [
        {**kernel, "ts": "soon"},
        {**kernel, "ts": 5, "dur": -3},
        {**kernel, "ts": 6, "args": {}, "tid": "stream ?"},
        {"ph": "X", "cat": "cuda_runtime", "name": "cudaLaunchKernel", "ts": 1, "dur": 1},
        {"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 1, "dur": 1},
    ]
    path = folder / f"malformed{good}.json"
    path.write_text(json.dumps({"traceEvents": events}))
    return path


def test_malformed_events_are_counted_in_the_summary_and_the_run(tmp_path):
    summary = import_kineto([_malformed_file(tmp_path, 3)], tmp_path / "t.duckdb")
    assert summary.counts["kernels"] == 3
    assert dict(summary.malformed) == {
        "kernel without a numeric ts/dur": 2,
        "kernel without device/stream": 1,
        "call without pid/tid": 1,
    }
    assert "skipped 4 malformed events (kernel without a numeric ts/dur 2," in summary.line()
    assert "not imported: 1 host-only events (cpu_op 1)" in summary.line()
    with open_trace(tmp_path / "t.duckdb") as r:
        config = json.loads(r.sql("SELECT config FROM run")[0][0])
    assert config["inputs"][0]["malformed"] == dict(summary.malformed)
    assert config["inputs"][0]["not_imported"] == {"cpu_op": 1}


def test_a_file_of_only_malformed_events_is_an_error(tmp_path):
    bad = _malformed_file(tmp_path, 0)
    with pytest.raises(RevatiImportError) as err:
        import_kineto([bad], tmp_path / "t.duckdb")
    assert str(err.value).startswith(f"{bad}: all 4 GPU and CUDA runtime events are malformed (")
    assert not (tmp_path / "t.duckdb").exists()


def test_a_file_without_gpu_events_is_an_error(tmp_path):
    cpu = tmp_path / "cpu.json"
    ops = [{"ph": "X", "cat": "cpu_op", "name": "aten::add", "pid": 1, "tid": 1, "ts": 1, "dur": 1}]
    cpu.write_text(json.dumps({"traceEvents": ops}))
    with pytest.raises(RevatiImportError, match="no GPU or CUDA runtime events to import"):
        import_kineto([cpu], tmp_path / "t.duckdb")
