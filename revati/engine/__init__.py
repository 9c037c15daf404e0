"""The time-warp engine behind `revati record` (docs/time-model.md).

- `config`: the resolved run configuration (a dataclass stored in every trace);
- `device_model`: stream timelines, events, the legacy default stream, sync deadlines;
- `durations`: batches of kernels/copies/memsets to predicted durations;
- `trace_sink`: columnar rows for the trace writer;
- `coordinator`: the run directory, the sockets, draining rings, deadlines and jumps;
- `session`: spawning the traced program and running the coordinator until it exits.
"""
