"""The Llama-shaped decoder over several ranks, one process per GPU, started by torchrun:
tensor parallelism (`--tp`: every attention and MLP block ends in one all-reduce over the
tensor-parallel group) and a pipeline (`--pp`: stages of contiguous layers; each step the hidden
states go forward stage to stage by send/recv, and the last stage sends the sampled tokens back
to the first). Ranks come from the environment torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK);
rank r is stage r // tp, tensor-parallel rank r % tp, and uses cuda:LOCAL_RANK.

    torchrun --nproc-per-node 4 -m revati.examples.llama --model tiny --tp 4
    revati record --example llama --nproc 4 -- --tp 4     # the same under emulation
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from revati.examples.llama import LlamaConfig, LlamaDecoder, Shard, StepTimes, time_steps


def _env_int(name: str) -> int:
    value = os.environ.get(name)
    if value is None:
        raise SystemExit(
            f"--tp/--pp need {name} in the environment: start the decoder with torchrun"
        )
    return int(value)


@dataclass
class Ranks:
    """Where this process sits: its shard, its device and the groups it talks to."""

    shard: Shard
    rank: int
    device: torch.device
    tp_group: dist.ProcessGroup | None

    def peer(self, stage: int) -> int:
        """The global rank of this tensor-parallel rank's counterpart in `stage`."""
        return stage * self.shard.tp + self.shard.tp_rank


def join(tp: int, pp: int) -> Ranks:
    """Join the process group (NCCL, rendezvous through torchrun's store) and find our place."""
    rank, world, local = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if tp * pp != world:
        raise SystemExit(f"--tp {tp} × --pp {pp} must equal the world size {world} (--nproc)")
    device = torch.device("cuda", local)
    torch.cuda.set_device(device)
    # send/recv on the default group are serialized with its collectives, which a pipeline of
    # one send per stage and step does not mind: no warning about it
    os.environ.setdefault("TORCH_NCCL_SHOW_EAGER_INIT_P2P_SERIALIZATION_WARNING", "false")
    dist.init_process_group("nccl", device_id=device)
    stage, tp_rank = divmod(rank, tp)
    tp_group = None  # the default group when tensor parallelism spans the world
    if pp > 1 and tp > 1:
        for s in range(pp):  # every rank takes part in creating every group
            group = dist.new_group(list(range(s * tp, (s + 1) * tp)))
            if s == stage and isinstance(group, dist.ProcessGroup):
                tp_group = group
    return Ranks(Shard(tp, tp_rank, pp, stage), rank, device, tp_group)


class PipelineStep:
    """One forward pass of this rank's stage: receive, compute, send."""

    def __init__(self, model: LlamaDecoder, ranks: Ranks) -> None:
        self.model, self.ranks = model, ranks

    def __call__(
        self, tokens: torch.Tensor, positions: torch.Tensor, prefill: bool
    ) -> torch.Tensor:
        shard, model = self.ranks.shard, self.model
        x = tokens
        if not shard.first:
            seq = positions.numel()
            x = torch.empty(model.batch, seq, model.cfg.hidden, device=model.device,
                            dtype=model.layers[0].o.dtype)  # fmt: skip
            dist.recv(x, self.ranks.peer(shard.stage - 1))
        out = model.forward(x, positions, prefill)
        if not shard.last:
            dist.send(out, self.ranks.peer(shard.stage + 1))
        if shard.pp == 1:
            return out
        if shard.last:  # the sampled tokens go back to the first stage
            dist.send(out, self.ranks.peer(0))
            return out
        if shard.first:
            out = torch.empty(model.batch, dtype=torch.long, device=model.device)
            dist.recv(out, self.ranks.peer(shard.pp - 1))
        return out


def run_parallel(
    cfg: LlamaConfig, batch: int, prompt_len: int, decode_steps: int, tp: int, pp: int
) -> tuple[StepTimes, Ranks]:
    """Prefill and decode on every rank; times as the first stage's clock measured them."""
    ranks = join(tp, pp)
    dev = ranks.device

    def reduce(x: torch.Tensor) -> torch.Tensor:
        dist.all_reduce(x, group=ranks.tp_group)
        return x

    model = LlamaDecoder(cfg, batch, prompt_len + decode_steps + 1, dev, shard=ranks.shard,
                         reduce=reduce if tp > 1 else lambda x: x)  # fmt: skip
    step = PipelineStep(model, ranks)
    prompt = torch.randint(0, cfg.vocab, (batch, prompt_len), device=dev)

    def decode(tokens: torch.Tensor, position: int) -> torch.Tensor:
        positions = torch.full((1,), position, dtype=torch.long, device=dev)
        return step(tokens.to(dev).view(-1, 1), positions, prefill=False)

    times = time_steps(
        lambda: step(prompt, torch.arange(prompt_len, device=dev), prefill=True),
        decode,
        prompt_len,
        decode_steps,
    )
    dist.destroy_process_group()
    return times, ranks
