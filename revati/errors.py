"""The one error tree of revati.

Every error a user can cause (bad input, bad trace, unsupported program) is a `RevatiError`
with an exit code and a message that names the problem and what to do next. They are raised
anywhere and caught only at the edges: the CLI (`revati.cli`) and the TUI. This module imports
nothing of revati, so every layer (recorder, replay, tui) may raise these.
"""


class RevatiError(Exception):
    """Base of all user-facing revati errors; `str(err)` is the one line shown to the user."""

    exit_code = 1


class RevatiUsageError(RevatiError):
    """The command line asks for something impossible (bad option value, missing argument)."""

    exit_code = 2


class RevatiTraceError(RevatiError):
    """A trace file is missing, not a DuckDB file, not a revati trace, or has another schema."""

    exit_code = 3


class RevatiImportError(RevatiError):
    """An importer's input (Kineto JSON, Nsight Systems SQLite) is malformed or unsupported."""

    exit_code = 4


class RevatiConfigError(RevatiError):
    """An unknown device, a malformed profile or an invalid configuration value."""

    exit_code = 5


class RevatiRunError(RevatiError):
    """A traced program cannot be run under emulation (static CUDA runtime, shim missing, ...)."""

    exit_code = 6
