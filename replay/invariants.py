"""The time model's invariants (docs/time-model.md, "Invariants"), checked on a recorded trace.

`violations(path)` counts, per invariant, the rows of a trace that break it; a sound trace gives
all zeros. Each check is one query over the trace's own tables, so any trace (recorded, replayed
or imported) can be checked, and a failing count points at the rows to look at:

- `time_goes_back`: a thread read a virtual time smaller than one it read before.
- `woke_early`: a thread woken by its deadline resumed before it (a wait on fds or on another
  thread's post, kind `poll`, may end earlier: when it is ready).
- `jump_passed_deadline`: a jump moved the clock past the deadline of a thread blocked across it
  (barrier waits have no deadline of their own: see `jump_passed_collective`).
- `stream_overlap`: two kernels of one stream overlap (NCCL operations of one group run as one
  kernel on a real GPU, so two collective kernels may).
- `barrier_end`: a barrier's release is not its last arrival, or a member's kernel does not end
  with the barrier.
- `jump_passed_collective`: a jump happened after every member of a thread's barriers had
  arrived and before that thread resumed, i.e. the clock moved past a collective that was
  already complete (its last member arrived on the host) while a member still waited for it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

CHECKS: dict[str, str] = {
    "time_goes_back": """
        SELECT count(*) FROM (SELECT enter_ns, lag(enter_ns) OVER (PARTITION BY thread_id
            ORDER BY seq) AS prev FROM api_calls) WHERE enter_ns < prev""",
    "woke_early": """
        SELECT count(*) FROM syncs WHERE deadline_ns IS NOT NULL
            AND kind NOT IN ('barrier', 'poll') AND resumed_ns < deadline_ns""",
    "jump_passed_deadline": """
        SELECT count(*) FROM jumps j JOIN syncs s ON s.blocked_ns <= j.from_ns
            AND s.resumed_ns >= j.to_ns AND s.deadline_ns IS NOT NULL AND s.kind <> 'barrier'
            WHERE s.deadline_ns < j.to_ns""",
    "stream_overlap": """
        SELECT count(*) FROM (SELECT start_ns, name, lag(end_ns) OVER w AS prev,
            lag(name) OVER w AS prev_name FROM kernels
            WINDOW w AS (PARTITION BY stream_id ORDER BY start_ns, end_ns))
        WHERE start_ns < prev AND NOT (name LIKE 'ncclDevKernel%'
            AND prev_name LIKE 'ncclDevKernel%')""",
    "barrier_end": """
        SELECT count(*) FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
            LEFT JOIN kernels k USING (kernel_id)
            WHERE b.release_ns IS NOT NULL AND (k.end_ns <> b.end_ns
                OR b.release_ns < a.arrival_ns)""",
    # A barrier wait of thread T covers T's arrivals since its previous barrier wait; L is the
    # latest host arrival of any member of those barriers. No jump may start in [L, resume).
    "jump_passed_collective": """
        WITH waits AS (
            SELECT sync_id, thread_id, blocked_ns, resumed_ns,
                   coalesce(lag(blocked_ns) OVER (PARTITION BY thread_id ORDER BY blocked_ns,
                            sync_id), -1) AS since_ns
            FROM syncs WHERE kind = 'barrier'),
        arrived AS (
            SELECT a.barrier_id, c.thread_id, k.launch_ns,
                   max(k.launch_ns) OVER (PARTITION BY a.barrier_id) AS last_ns
            FROM barrier_arrivals a JOIN kernels k USING (kernel_id)
            JOIN api_calls c ON c.call_id = k.call_id),
        covered AS (
            SELECT w.sync_id, w.blocked_ns, w.resumed_ns, max(ar.last_ns) AS complete_ns
            FROM waits w JOIN arrived ar ON ar.thread_id = w.thread_id
                 AND ar.launch_ns > w.since_ns AND ar.launch_ns <= w.blocked_ns
            GROUP BY 1, 2, 3)
        SELECT count(*) FROM covered c JOIN jumps j
            ON j.from_ns >= greatest(c.complete_ns, c.blocked_ns) AND j.from_ns < c.resumed_ns
            AND j.to_ns > j.from_ns""",
}


def violations(path: str | Path) -> dict[str, int]:
    """How many rows of the trace at `path` break each invariant (all 0: sound)."""
    with duckdb.connect(str(path), read_only=True) as con:
        return {name: int(con.execute(sql).fetchall()[0][0]) for name, sql in CHECKS.items()}
