"""The revati debugger TUI (Textual): timeline, stepping, state, details, barriers, compare.

Only this package imports textual; it renders what the reader, the replay cursor and the
alignment return. Entry point: `revati tui TRACE [--against REAL]` or `run_app(...)`.
"""
