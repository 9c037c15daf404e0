"""A torchrun worker script: all-reduces in a loop; rank 1 is killed (SIGKILL) by its own helper
thread while the others are inside the fourth all-reduce, waiting for it. Survivors print the
error the all-reduce raised and exit 3 (or torch's NCCL watchdog thread, which sees the same
error, takes the process down with SIGABRT first)."""

import os
import signal
import sys
import threading
import time

import torch
import torch.distributed as dist

rank, local = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
device = torch.device("cuda", local)
torch.cuda.set_device(device)
dist.init_process_group("nccl", device_id=device)
x = torch.ones(1024, device=device)
for step in range(8):
    if rank == 1 and step == 3:
        # die inside the step: the others have called all-reduce 3 and wait for this rank
        threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
        time.sleep(60)
    try:
        dist.all_reduce(x)
        torch.cuda.synchronize()
    except Exception as e:  # what NCCL's failure looks like to the program
        line = f"rank {rank} step {step}: {type(e).__name__}: {e}".splitlines()[0]
        os.write(1, (line + "\n").encode())  # one write: ranks share torchrun's stdout
        sys.exit(3)
os.write(1, f"rank {rank} finished\n".encode())
dist.destroy_process_group()
