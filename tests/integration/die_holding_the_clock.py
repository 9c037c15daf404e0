"""Run under `revati record` with `announce` or `stall`: a forked child does, through the helper
library and on the run's own clock page and ring header, exactly what the shim does at that point,
then is SIGKILLed there, as torchrun's SIGTERM or a SIGKILL can do to any thread:
- announce: a wait is announced (out of `running`), and the WAIT is never sent;
- stall: the thread holds off jumps (a full ring, or emulated bytes being moved) and never ends it.
The parent then sleeps 2 s of virtual time: only a jump ends that sleep, so the run ends only if
the coordinator stops counting on the dead child."""

import ctypes
import mmap
import os
import signal
import sys
import time
from pathlib import Path

from revati import shim

KEPT: list[ctypes.Array[ctypes.c_char]] = []  # the mappings stay while their addresses are used


def mapped(path: Path, size: int) -> int:
    with open(path, "r+b") as f:
        KEPT.append((ctypes.c_char * size).from_buffer(mmap.mmap(f.fileno(), size)))
    return ctypes.addressof(KEPT[-1])


child = os.fork()
if child == 0:
    run_dir = Path(os.environ["REVATI_RUN_DIR"])
    (ring_path,) = run_dir.glob(f"ring-{os.getpid()}-*.bin")
    page = mapped(run_dir / "clock.page", shim.PAGE_SIZE)
    ring = mapped(ring_path, shim.RING_HEADER_SIZE)
    lib = shim._helper()
    if sys.argv[1] == "announce":
        lib.revati_page_block_enter.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
        lib.revati_page_block_enter(page, ring, 0)
    else:
        lib.revati_page_stall.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int32]
        lib.revati_page_stall(page, ring, 1)
    os.kill(os.getpid(), signal.SIGKILL)
_, status = os.waitpid(child, 0)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, status
start = time.monotonic()
time.sleep(2)
print(f"slept {time.monotonic() - start:.3f}", flush=True)
