"""Signals sent to revati while it records: passed on to the program once, and remembered.

Where the program runs:
- revati in the foreground of its terminal: the program shares revati's process group, so it
  owns the terminal as it would without revati, and Ctrl-C reaches it directly;
- otherwise (a script, a service, a test): the program gets a process group of its own, so a
  signal sent to revati's group reaches the program once, through revati.

What revati does with SIGINT, SIGTERM and SIGHUP (sender told apart with `si_code`/`si_pid`):
- from the terminal, or from a process of revati's own group while the program shares it: the
  program got it too; nothing to pass on;
- from anyone else: passed on to the program's process group;
- from the program's own group (the program signalling its parent): not passed back to it.
Every such signal marks the recording as interrupted (the first one names it). The third one
ends the program's process group with SIGKILL, so a program that ignores them cannot keep
revati waiting. revati keeps coordinating until the program has exited, then closes the trace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from types import FrameType
from typing import Any

from revati import shim
from revati.recorder.records import signal_name

RELAYED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
SI_KERNEL = 0x80  # si_code of a signal the kernel raised (a terminal's Ctrl-C, a hang-up)
KILL_AFTER = 3  # interrupts before the program's process group is killed


def in_terminal_foreground() -> bool:
    """Whether revati's process group is the foreground of its controlling terminal."""
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


class SignalRelay:
    """Installed for the whole recording (a context manager); `poll()` after each loop step."""

    def __init__(self, shares_group: bool) -> None:
        self.shares_group = shares_group
        self.child_pgid: int | None = None
        self.interrupted_by: str | None = None
        self.interrupts = 0
        self._saved: dict[int, Any] = {}
        self._early: list[int] = []
        self._read_fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)

    def __enter__(self) -> SignalRelay:
        for sig in RELAYED:
            self._saved[sig] = signal.getsignal(sig)
            signal.signal(sig, self._before_spawn)
        return self

    def _before_spawn(self, signum: int, frame: FrameType | None) -> None:
        self._early.append(signum)  # sender unknown: treated as sent to revati alone

    def program_started(self, pid: int) -> None:
        """The program runs as `pid`; from now on every signal comes with its sender."""
        self.child_pgid = os.getpgrp() if self.shares_group else pid
        for sig in RELAYED:
            shim.relay_signal(self._write_fd, sig)
        for signum in self._early:
            self._handle(signum, 0, 0)

    def poll(self) -> None:
        """Handle the signals received since the last call."""
        while True:
            try:
                data = os.read(self._read_fd, shim.SIGNAL_RELAY.size * 32)
            except BlockingIOError:
                return
            for offset in range(0, len(data) - shim.SIGNAL_RELAY.size + 1, shim.SIGNAL_RELAY.size):
                self._handle(*shim.SIGNAL_RELAY.unpack_from(data, offset))

    def _handle(self, signum: int, code: int, sender: int) -> None:
        if sender == os.getpid():
            return  # our own pass-on to a group we are part of
        self.interrupts += 1
        self.interrupted_by = self.interrupted_by or signal_name(signum)
        if self.child_pgid is None:
            return
        if self.interrupts >= KILL_AFTER:
            print(
                f"revati: {signal_name(signum)} received {self.interrupts} times; "
                "killing the program (SIGKILL) and closing the trace",
                file=sys.stderr,
            )
            self._send(signal.SIGKILL)
        elif self._pass_on(code, sender):
            self._send(signum)

    def _pass_on(self, code: int, sender: int) -> bool:
        if code == SI_KERNEL and self.shares_group:
            return False  # the terminal signalled the whole foreground group
        # From the program's own group (revati's too, when shared): the program got it, or
        # sent it.
        return _group_of(sender) != self.child_pgid

    def _send(self, signum: int) -> None:
        assert self.child_pgid is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.child_pgid, signum)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self.poll()
        os.close(self._read_fd)
        os.close(self._write_fd)


def _group_of(pid: int) -> int | None:
    if pid <= 0:
        return None
    try:
        return os.getpgid(pid)
    except OSError:
        return None
