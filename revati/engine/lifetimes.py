"""How and when each participant process ended: exit code or signal, virtual and wall time.

The coordinator opens a pidfd for every process that registers and watches it: a pidfd becomes
readable the moment its process ends, whoever its parent is. The wait status then comes from
the first of these that knows it:
1. `/proc/<pid>/stat` while the process is a zombie (its parent has not reaped it yet);
2. the pidfd itself once it has been reaped (`PIDFD_GET_INFO` with `PIDFD_INFO_EXIT`, Linux
   6.15 and later: the kernel keeps the status for whoever holds a pidfd);
3. the return code revati's own `waitpid` got, for the program revati started.
A process none of these can tell about keeps a NULL status; its end time is still recorded.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from revati.recorder.records import exit_text

# linux/pidfd.h: struct pidfd_info (first version, 64 bytes) and its ioctl
_PIDFD_INFO = struct.Struct("<QQ11Ii")  # mask, cgroupid, pid .. fsgid, exit_code
_PIDFD_INFO_SIZE = 64
_PIDFD_INFO_EXIT = 1 << 3
_PIDFD_GET_INFO = (3 << 30) | (_PIDFD_INFO_SIZE << 16) | (0xFF << 8) | 11
_STAT_EXIT_CODE = 52  # field of /proc/<pid>/stat: the wait status of a zombie


@dataclass(frozen=True)
class ExitCause:
    """How a process ended: an exit code, or the signal that killed it (and whether it dumped
    core)."""

    code: int | None = None
    signal: int | None = None
    core_dumped: bool = False

    @classmethod
    def from_wait_status(cls, status: int) -> ExitCause:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status), core_dumped=os.WCOREDUMP(status))
        return cls(code=os.WEXITSTATUS(status))

    @classmethod
    def from_returncode(cls, returncode: int) -> ExitCause:
        """From `subprocess.Popen.returncode` (negative: killed by that signal)."""
        return cls(signal=-returncode) if returncode < 0 else cls(code=returncode)

    @property
    def status(self) -> int:
        """The shell's view: the exit code, or 128 + the signal."""
        return 128 + self.signal if self.signal is not None else self.code or 0

    def describe(self) -> str:
        """'exited with code 3', 'killed by SIGSEGV (core dumped)'."""
        return exit_text(self.code, self.signal, self.core_dumped)


@dataclass
class Lifetime:
    """One process of the run: its pidfd while it lives, then when and how it ended."""

    pid: int
    pidfd: int | None
    ended_ns: int | None = None
    ended_wall_ns: int | None = None
    cause: ExitCause | None = None


class Lifetimes:
    """Every participant process's lifetime, by pid."""

    def __init__(self) -> None:
        self.by_pid: dict[int, Lifetime] = {}

    def track(self, pid: int) -> Lifetime | None:
        """Start following `pid` (at its first registration); the new lifetime, or None if it
        is already followed."""
        if pid in self.by_pid:
            return None
        try:
            fd: int | None = os.pidfd_open(pid)
        except OSError:
            fd = None  # already gone: it ends when we notice (see `ended`)
        life = self.by_pid[pid] = Lifetime(pid, fd)
        return life

    def ended(self, pid: int, virtual_ns: int, wall_ns: int) -> None:
        """`pid` has ended (its pidfd became readable, or it was found gone): note when, and how
        if that can be told now."""
        life = self.by_pid.get(pid)
        if life is None or life.ended_ns is not None:
            return
        life.ended_ns, life.ended_wall_ns = virtual_ns, wall_ns
        life.cause = _exit_cause(pid, life.pidfd)
        if life.pidfd is not None:  # a run may start thousands of short processes
            os.close(life.pidfd)
            life.pidfd = None

    def reaped_by_us(self, pid: int, returncode: int) -> None:
        """revati's own wait on the program it started returned `returncode`."""
        life = self.by_pid.get(pid)
        if life is not None and life.cause is None:
            life.cause = ExitCause.from_returncode(returncode)

    def settle(self) -> None:
        """At the end of the run: close the pidfds of the processes still running."""
        for life in self.by_pid.values():
            if life.pidfd is not None:
                os.close(life.pidfd)
                life.pidfd = None


def _exit_cause(pid: int, pidfd: int | None) -> ExitCause | None:
    status = _zombie_status(pid)
    if status is None and pidfd is not None:
        status = _pidfd_exit_status(pidfd)
    return ExitCause.from_wait_status(status) if status is not None else None


def _zombie_status(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] != "Z" or len(fields) < _STAT_EXIT_CODE - 2:
        return None
    return int(fields[_STAT_EXIT_CODE - 3])


def _pidfd_exit_status(pidfd: int) -> int | None:
    buf = bytearray(_PIDFD_INFO_SIZE)
    struct.pack_into("<Q", buf, 0, _PIDFD_INFO_EXIT)
    with contextlib.suppress(OSError):
        fcntl.ioctl(pidfd, _PIDFD_GET_INFO, buf, True)
        fields = _PIDFD_INFO.unpack_from(buf)
        if fields[0] & _PIDFD_INFO_EXIT:
            return int(fields[-1])
    return None
