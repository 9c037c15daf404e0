"""A small, fully deterministic two-rank trace for cursor, alignment and TUI tests.

Each of `iterations` iterations, on each rank: launch a GEMM and an elementwise kernel on the
compute stream, launch an NCCL all-reduce (a barrier across both ranks), then block in
cudaStreamSynchronize until the all-reduce ends. Rank 1 launches 5 µs later than rank 0, so it
arrives last at every barrier (the straggler). When both ranks are blocked the clock jumps to
the barrier end. Rank 0 also does one HtoD copy and one memset before the loop.

`scale` multiplies every kernel duration of one family, to plant a prediction error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from revati.recorder.writer import RunInfo, TraceWriter

GEMM = "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_tn"
ELEMENTWISE = (
    "void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>(int, float*)"
)
ALLREDUCE = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
ITER_NS = 100_000


def build_sample_trace(
    path: Path,
    *,
    iterations: int = 3,
    source: str = "emulated",
    scale: dict[str, float] | None = None,
) -> Path:
    scale = scale or {}
    run = RunInfo(
        source=source,
        argv=["python", "train.py"],
        cwd="/work",
        started_at=datetime(2025, 1, 1, tzinfo=UTC),
        device="h100-sxm",
        predictor="revati-predict 1 device=h100-sxm" if source == "emulated" else None,
        host="testhost",
    )
    rows: dict[str, list[dict]] = {
        t: []
        for t in (
            "processes",
            "threads",
            "streams",
            "devices",
            "api_calls",
            "kernels",
            "copies",
            "memsets",
            "syncs",
            "jumps",
            "barriers",
            "barrier_arrivals",
            "markers",
        )
    }
    for rank in (0, 1):
        pid = 100 * (rank + 1)
        rows["processes"].append(
            dict(
                pid=pid,
                parent_pid=1,
                argv=["python", "train.py"],
                rank=rank,
                local_rank=rank,
                world_size=2,
                host="testhost",
                started_ns=0,
            )
        )
        rows["threads"].append(
            dict(thread_id=rank + 1, pid=pid, tid=pid, name="python", started_ns=0)
        )
        rows["devices"].append(
            dict(
                device_id=rank,
                pid=pid,
                ordinal=0,
                name="NVIDIA H100 80GB HBM3",
                model="h100-sxm",
                memory_bytes=80 << 30,
            )
        )
        for k, sid in enumerate((10 * (rank + 1), 10 * (rank + 1) + 1)):
            rows["streams"].append(
                dict(
                    stream_id=sid,
                    pid=pid,
                    device_id=rank,
                    handle=k,
                    flags=0,
                    priority=0,
                    is_default=k == 0,
                    name=f"stream {sid}",
                    created_ns=0,
                )
            )
    ids = {"call": 0, "kernel": 0, "sync": 0, "jump": 0, "barrier": 0}

    def nid(kind: str) -> int:
        ids[kind] += 1
        return ids[kind]

    def call(thread: int, name: str, enter: int, exit_: int, args: str = "") -> int:
        cid = nid("call")
        rows["api_calls"].append(
            dict(
                call_id=cid,
                thread_id=thread,
                seq=cid,
                name=name,
                enter_ns=enter,
                exit_ns=exit_,
                result=0,
                args=args,
            )
        )
        return cid

    def kernel(
        cid: int,
        sid: int,
        dev: int,
        name: str,
        launch: int,
        start: int,
        dur: int,
        family: str,
        **shape,
    ) -> tuple[int, int]:
        dur = int(dur * scale.get(family, 1.0))
        kid = nid("kernel")
        rows["kernels"].append(
            dict(
                kernel_id=kid,
                call_id=cid,
                device_id=dev,
                stream_id=sid,
                launch_ns=launch,
                start_ns=start,
                end_ns=start + dur,
                duration_source="predicted" if source == "emulated" else "measured",
                model=family if source == "emulated" else "measured",
                name=name,
                grid_x=108,
                grid_y=1,
                grid_z=1,
                block_x=256,
                block_y=1,
                block_z=1,
                shared_mem=0,
                registers=64,
                **shape,
            )
        )
        return kid, start + dur

    # rank 0 setup: one copy and one memset on its compute stream
    cid = call(1, "cudaMemcpyAsync", 0, 1500, "dst=0x7f00 src=0x1000 bytes=1048576 kind=HtoD")
    rows["copies"].append(
        dict(
            copy_id=1,
            call_id=cid,
            device_id=0,
            stream_id=10,
            launch_ns=0,
            start_ns=1000,
            end_ns=3000,
            duration_source="predicted",
            model="bandwidth",
            kind="HtoD",
            bytes=1 << 20,
            src=0x1000,
            dst=0x7F00,
        )
    )
    cid = call(1, "cudaMemsetAsync", 1500, 2500, "dst=0x7f00 value=0 bytes=4096")
    rows["memsets"].append(
        dict(
            memset_id=1,
            call_id=cid,
            device_id=0,
            stream_id=10,
            launch_ns=1500,
            start_ns=3000,
            end_ns=3500,
            duration_source="predicted",
            model="bandwidth",
            bytes=4096,
            value=0,
            dst=0x7F00,
        )
    )
    tails = {10: 3500, 20: 0}
    for it in range(iterations):
        base = 5000 + it * ITER_NS
        rows["markers"].append(
            dict(
                marker_id=it + 1,
                pid=100,
                thread_id=1,
                kind="iteration",
                name=f"step {it}",
                at_ns=base,
            )
        )
        arrivals, blocked = {}, {}
        nccl = {}
        for rank in (0, 1):
            thread, sid, dev = rank + 1, 10 * (rank + 1), rank
            t = base + 5000 * rank
            c = call(thread, "cudaLaunchKernel", t, t + 2000, f"func={GEMM[:20]} grid=(108,1,1)")
            _, tails[sid] = kernel(
                c,
                sid,
                dev,
                GEMM,
                t,
                max(t + 1000, tails[sid]),
                20_000,
                "gemm",
                gemm_m=4096,
                gemm_n=4096,
                gemm_k=4096,
                dtype="bf16",
            )
            t += 2000
            c = call(thread, "cudaLaunchKernel", t, t + 2000, "func=vectorized_elementwise")
            _, tails[sid] = kernel(
                c,
                sid,
                dev,
                ELEMENTWISE,
                t,
                max(t + 1000, tails[sid]),
                5000,
                "elementwise",
                bytes=1 << 24,
            )
            t += 2000
            c = call(thread, "ncclAllReduce", t, t + 2000, "count=1048576 datatype=bf16 op=sum")
            arrivals[rank] = max(t + 1000, tails[sid])
            nccl[rank] = (c, sid, dev, t)
            t += 2000
            blocked[rank] = (t, call(thread, "cudaStreamSynchronize", t, 0, f"stream={sid}"))
        release = max(arrivals.values())
        end = release + int(8000 * scale.get("collective", 1.0))
        bid = nid("barrier")
        rows["barriers"].append(
            dict(
                barrier_id=bid,
                collective="allreduce",
                communicator="comm0",
                bytes=2 << 20,
                world_size=2,
                release_ns=release,
                end_ns=end,
                model="alpha-beta" if source == "emulated" else "measured",
            )
        )
        for rank in (0, 1):
            c, sid, dev, launch = nccl[rank]
            kid = nid("kernel")
            rows["kernels"].append(
                dict(
                    kernel_id=kid,
                    call_id=c,
                    device_id=dev,
                    stream_id=sid,
                    launch_ns=launch,
                    start_ns=arrivals[rank],
                    end_ns=end,
                    duration_source="predicted",
                    model="collective",
                    name=ALLREDUCE,
                    grid_x=2,
                    grid_y=1,
                    grid_z=1,
                    block_x=640,
                    block_y=1,
                    block_z=1,
                    bytes=2 << 20,
                )
            )
            tails[sid] = end
            rows["barrier_arrivals"].append(
                dict(
                    barrier_id=bid,
                    rank=rank,
                    pid=100 * (rank + 1),
                    stream_id=sid,
                    kernel_id=kid,
                    arrival_ns=arrivals[rank],
                )
            )
            t, c = blocked[rank]
            rows["api_calls"][c - 1]["exit_ns"] = end
            rows["syncs"].append(
                dict(
                    sync_id=nid("sync"),
                    call_id=c,
                    thread_id=rank + 1,
                    kind="stream",
                    target=f"{sid}",
                    blocked_ns=t,
                    deadline_ns=end if rank == 0 else None,
                    resumed_ns=end,
                )
            )
        jid = nid("jump")
        rows["jumps"].append(
            dict(
                jump_id=jid,
                generation=jid,
                from_ns=max(b[0] for b in blocked.values()),
                to_ns=end,
                cause_thread_id=1,
                cause_kind="stream",
                cause_object=f"kernel {ids['kernel'] - 1}",
                wall_ns=jid * 1000,
            )
        )
    with TraceWriter(path, run, overwrite=True) as w:
        for table, table_rows in rows.items():
            w.append_rows(table, table_rows)
        w.update_run(
            virtual_end_ns=max(r["exit_ns"] for r in rows["api_calls"]),
            wall_ns=1_000_000,
            exit_status=0,
        )
    return path
