"""What the vLLM tests share: the model directory, the offline program and its environment."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from revati.recorder.schema import KERNELS_WITH_FEATURES

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "traces" / "models" / "llama-3-8b-2l"
PROMPTS = 4
OUTPUT_TOKENS = 4
MAX_MODEL_LEN = 512
IDLE_S = 5  # the offline program sleeps this long after generating, while the engine core idles
CAPTURE_SIZES = (1, 2, 4)  # decode batch sizes captured as CUDA graphs: few, for speed


def require_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed: pip install -e '.[dev,vllm]'")


def vllm_env() -> dict[str, str]:
    """The environment of a vLLM run here: no hub access, no usage reports, and FlashInfer's
    sampler off (it compiles its kernels with nvcc at start, minutes on two cores, and needs
    curand.h, which this machine's toolkit lacks; README, "vLLM under revati")."""
    return {
        "HF_HUB_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_USE_FLASHINFER_SAMPLER": "0",
    }


def serve_command(model: Path, max_model_len: int, *options: str) -> list[str]:
    """`vllm serve MODEL` as the tests run it: dummy weights, eager, seed 0, then OPTIONS."""
    vllm = str(Path(sys.executable).with_name("vllm"))
    return [vllm, "serve", str(model), "--load-format", "dummy", "--enforce-eager", "--seed", "0",
            "--max-model-len", str(max_model_len), *options]  # fmt: skip


def parallel_env() -> dict[str, str]:
    """vllm_env() for tensor parallelism: FlashInfer's all-reduce off (its workspace needs
    cuda-python's statically linked CUDA runtime, which fails here with two unsupported
    `cuGetExportTable` calls per rank before vLLM falls back; README, "vLLM under revati"), so
    vLLM's custom all-reduce and NCCL carry the all-reduces."""
    return {**vllm_env(), "VLLM_ALLREDUCE_USE_FLASHINFER": "0"}


def offline_program(model: Path, *, eager: bool, idle_s: float = 0, llm_args: str = "") -> str:
    """`LLM.generate` on PROMPTS prompts of distinct lengths, OUTPUT_TOKENS tokens each (ignore
    EOS): prints `request ID PROMPT_TOKENS OUTPUT_TOKENS` per request and the KV cache size.
    With `idle_s`, the program then sleeps that long (the engine core idles meanwhile).
    `llm_args`: more keyword arguments of `LLM`, as source text ending in a comma."""
    # graphs: vLLM's defaults (torch.compile, piecewise and full CUDA graphs) with few capture
    # sizes and no ahead-of-time Triton warm-up (minutes of compiling on two cores)
    graphs = (
        ""
        if eager
        else f"compilation_config={{'cudagraph_capture_sizes': {list(CAPTURE_SIZES)}}}, "
        "kernel_config={'enable_jit_warmup': False}"
    )
    return f"""
        from vllm import LLM, SamplingParams
        from vllm.inputs import TokensPrompt

        llm = LLM(model={str(model)!r}, load_format="dummy", enforce_eager={eager}, seed=0,
                  max_model_len={MAX_MODEL_LEN}, max_num_seqs=8, {llm_args} {graphs})
        params = SamplingParams(max_tokens={OUTPUT_TOKENS}, ignore_eos=True, temperature=0)
        prompts = [TokensPrompt(prompt_token_ids=list(range(10, 26 + i))) for i in range({PROMPTS})]
        for out in llm.generate(prompts, params, use_tqdm=False):
            print("request", out.request_id, len(out.prompt_token_ids), len(out.outputs[0].token_ids))
        cache = llm.llm_engine.vllm_config.cache_config
        print("kv_blocks", cache.num_gpu_blocks, cache.block_size)
        if {idle_s}:
            import time
            time.sleep({idle_s})
    """


VOCAB = 128256  # Llama-3's vocabulary: the n (or m) of the lm_head GEMM
HIDDEN = 4096
LAYERS = 2  # the model directory's num_hidden_layers
QKV_OUT = 4096 + 2 * 8 * 128  # the qkv projection's outputs: 32 query heads, 8 kv heads
TOKEN_BYTES = HIDDEN * 2  # a hidden state in bf16
# all-reduces per forward pass with tensor parallelism: the vocabulary-parallel embedding, then
# attention's output projection and the MLP's down projection of every layer
ALL_REDUCES_PER_FORWARD = 1 + 2 * LAYERS


def hidden_state_all_reduces(
    trace: Path, window: tuple[int, int] | None = None
) -> list[tuple[int, list[int], int]]:
    """The all-reduces of hidden states (a whole number of tokens) released within `window`
    (virtual ns, first and last; default the whole run), in order: (tokens, ranks that arrived,
    distinct processes that arrived)."""
    within = f"AND b.release_ns BETWEEN {window[0]} AND {window[1]}" if window else ""
    with duckdb.connect(str(trace), read_only=True) as con:
        return con.execute(
            f"""SELECT any_value(b.bytes) // {TOKEN_BYTES}, list(a.rank ORDER BY a.rank),
                       count(DISTINCT a.pid)
                FROM barriers b JOIN barrier_arrivals a USING (barrier_id)
                WHERE b.collective = 'allreduce' AND b.bytes % {TOKEN_BYTES} = 0 {within}
                GROUP BY b.barrier_id ORDER BY b.barrier_id"""
        ).fetchall()


def forward_passes(reduces: list[tuple[int, list[int], int]]) -> list[list[int]]:
    """[tokens, all-reduces] of each run of consecutive all-reduces of the same token count: a
    forward pass of n tokens is ALL_REDUCES_PER_FORWARD all-reduces of n tokens in a row."""
    runs: list[list[int]] = []
    for tokens, _, _ in reduces:
        if runs and runs[-1][0] == tokens:
            runs[-1][1] += 1
        else:
            runs.append([tokens, 1])
    return runs


@dataclass(frozen=True)
class Step:
    """One scheduler step of the engine core as the device ran it: its forward's kernels (those
    started since the step before it copied its tokens), the DtoH copy of its sampled
    tokens and the first event sync after that copy (the host waiting for the tokens)."""

    kernel_ids: tuple[int, ...]
    tokens: int  # rows through the model: the n of the qkv projection
    sampled: int  # rows through the lm_head GEMM: one sampled token per running request
    qkv_gemms: int  # one per layer per forward
    head_gemms: int  # one per forward
    copy_id: int
    sync_id: int | None


def sampling_steps(trace: Path) -> list[Step]:
    """The steps of LLM.generate: each one ends in the DtoH copy of its sampled token ids on
    vLLM's output stream (not the default stream; the warm-up runs before generate copy none),
    and holds the kernels started since the step before it ended."""
    with duckdb.connect(str(trace), read_only=True) as con:
        copies = con.execute(
            """SELECT c.copy_id, c.start_ns FROM copies c JOIN streams s USING (stream_id)
               WHERE c.kind = 'DtoH' AND NOT s.is_default ORDER BY c.start_ns"""
        ).fetchall()
        kernels = con.execute(
            f"""SELECT kernel_id, start_ns, gemm_m, gemm_n, gemm_k FROM {KERNELS_WITH_FEATURES}
                ORDER BY start_ns"""
        ).fetchall()
        syncs = con.execute(
            """SELECT sync_id, kind, blocked_ns, resumed_ns FROM syncs WHERE kind <> 'poll'
               ORDER BY blocked_ns"""
        ).fetchall()
    steps = []
    previous = None
    for copy_id, start in copies:
        # a step's forward starts after the previous step's token copy; the first one's, after
        # the host last came back from a blocking sync (the warm-up's kernels come before it).
        # Not after any later sync: the host may wait for an earlier event amid a step.
        since = (
            previous
            if previous is not None
            else max((r for _, _, _, r in syncs if r < start), default=0)
        )
        previous = start
        mine = [k for k in kernels if since <= k[1] < start]
        steps.append(
            Step(
                kernel_ids=tuple(k[0] for k in mine),
                tokens=_rows(mine, QKV_OUT),
                sampled=_rows(mine, VOCAB),
                qkv_gemms=len(_gemms(mine, QKV_OUT)),
                head_gemms=len(_gemms(mine, VOCAB)),
                copy_id=copy_id,
                sync_id=next(
                    (i for i, kind, b, _ in syncs if kind == "event" and b >= start), None
                ),
            )
        )
    return steps


def _gemms(kernels: list[tuple], outputs: int) -> list[tuple[int, int]]:
    """(m, n) of the GEMMs of HIDDEN inputs and `outputs` outputs."""
    return [(m, n) for _, _, m, n, k in kernels if k == HIDDEN and outputs in (m, n)]


def _rows(kernels: list[tuple], outputs: int) -> int:
    """The rows of the last GEMM of HIDDEN inputs and `outputs` outputs (0 if none)."""
    shapes = _gemms(kernels, outputs)
    if not shapes:
        return 0
    m, n = shapes[-1]
    return n if m == outputs else m


def parallel_program(model: Path, *, tp: int, pp: int = 1, llm_args: str = "") -> str:
    """The eager offline program with tensor and pipeline parallelism, as a script whose work
    runs under `if __name__ == "__main__"`: with several ranks vLLM starts its engine core and
    workers with multiprocessing's spawn (importing FlashInfer initialises CUDA in the parent),
    which imports the main module again, as on a GPU node."""
    args = f"tensor_parallel_size={tp}, pipeline_parallel_size={pp}, {llm_args}"
    body = textwrap.dedent(offline_program(model, eager=True, llm_args=args))
    return (
        f"def main():\n{textwrap.indent(body, '    ')}\n\nif __name__ == '__main__':\n    main()\n"
    )
