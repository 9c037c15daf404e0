"""The native LD_PRELOAD shim: its C sources, its build, and the table of intercepted entry points."""
