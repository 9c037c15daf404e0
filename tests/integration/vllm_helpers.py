"""What the vLLM tests share: the model directory, the offline program and its environment."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "traces" / "models" / "llama-3-8b-2l"
PROMPTS = 4
OUTPUT_TOKENS = 4
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


def offline_program(model: Path, *, eager: bool, llm_args: str = "") -> str:
    """`LLM.generate` on PROMPTS prompts of distinct lengths, OUTPUT_TOKENS tokens each (ignore
    EOS): prints `request ID PROMPT_TOKENS OUTPUT_TOKENS` per request and the KV cache size.
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
                  max_model_len=512, max_num_seqs=8, {llm_args} {graphs})
        params = SamplingParams(max_tokens={OUTPUT_TOKENS}, ignore_eos=True, temperature=0)
        prompts = [TokensPrompt(prompt_token_ids=list(range(10, 26 + i))) for i in range({PROMPTS})]
        for out in llm.generate(prompts, params, use_tqdm=False):
            print("request", out.request_id, len(out.prompt_token_ids), len(out.outputs[0].token_ids))
        cache = llm.llm_engine.vllm_config.cache_config
        print("kv_blocks", cache.num_gpu_blocks, cache.block_size)
    """


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
