"""A torchrun worker script: every kind of torch.distributed collective on the NCCL backend once
(all-reduce SUM/MAX/AVG, all-gather into a tensor and a list, reduce-scatter, broadcast, reduce,
all-to-all, barrier, batched send/recv, a new group); prints "RANK ok" at the end."""

import os

import torch
import torch.distributed as dist

local = int(os.environ["LOCAL_RANK"])
dev = torch.device("cuda", local)
torch.cuda.set_device(dev)
dist.init_process_group("nccl", device_id=dev)
rank, world = dist.get_rank(), dist.get_world_size()
x = torch.ones(1024, device=dev)
for op in (dist.ReduceOp.SUM, dist.ReduceOp.MAX, dist.ReduceOp.AVG):
    dist.all_reduce(x, op=op)
dist.all_gather_into_tensor(torch.empty(1024 * world, device=dev), x)
dist.all_gather([torch.empty_like(x) for _ in range(world)], x)
dist.reduce_scatter_tensor(torch.empty(1024 // world, device=dev), x)
dist.broadcast(x, 0)
dist.reduce(x, 0)
dist.all_to_all_single(torch.empty_like(x), x)
dist.barrier()
peers = (rank + 1) % world, (rank - 1) % world
ops = [dist.P2POp(dist.isend, x, peers[0]), dist.P2POp(dist.irecv, torch.empty_like(x), peers[1])]
for request in dist.batch_isend_irecv(ops):
    request.wait()
dist.all_reduce(x, group=dist.new_group(list(range(world))))
torch.cuda.synchronize()
os.write(1, f"{rank} ok\n".encode())  # one write: ranks share torchrun's stdout
dist.destroy_process_group()
