"""Shapes decoded from kept launch-argument bytes (REC_KERNEL_ARGS records).

The layout (`kernel_layouts.py`) says what the kept bytes hold; the demangled kernel name says
the element types and how many tensors a kernel touches. `decode` turns both into an
`ArgsShape`: elements and bytes moved for elementwise and reduction kernels, problem dims for
attention kernels, which the predictor's bandwidth and attention models read.

Bytes are estimates from the types in the name: an elementwise kernel over N elements with
operands of sizes s_i moves N·Σ s_i; a reduction of O outputs over I inputs each moves
O·I·s_in + O·s_out. Casting copies name their compute type, not their memory types, so their
bytes are the compute type's. vLLM's kernels have their decoders in `vllm_args.py`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from revati.engine.arg_shapes import (
    ATTENTION_COLUMNS,
    ArgsShape,
    attention_shape,
    layout_json,
    scalar_types,
    template_bools,
)
from revati.engine.kernel_layouts import BY_ID, ArgLayout
from revati.engine.vllm_args import VLLM_DECODERS

__all__ = ["ATTENTION_COLUMNS", "DECODERS", "ArgsShape", "decode", "operand_sizes", "scalar_types"]

_ARRAY = re.compile(r"std::array<char\*, (\d+)ul>")
_LAMBDA_ARGS = re.compile(r"\{lambda\(([^()]+)\)#\d+\}")
_BINARY = re.compile(r"BinaryFunctor<([^<>]+(?:<[^<>]*>)?), ([^<>,]+), ([^<>,]+),")
# casting copies that name their output type (their lambda names the input's)
_COPY_OUTPUT = re.compile(r"(bfloat16|float16|half|float8\w*)_copy_kernel")
# functors by how many tensors they touch (inputs and output), when the name has no lambda
_ARITY = (
    (re.compile(r"FillFunctor"), 1),
    (re.compile(r"AUnaryFunctor|BUnaryFunctor|OnSelf|UnaryFunctor|copy_kernel"), 2),
)


def _functor(name: str) -> str:
    """The part of an elementwise kernel's name that names its functor (before the argument
    list of the kernel itself, and inside gpu_kernel_impl<...> when present)."""
    head = name.split(">(", 1)[0]
    for wrapper in ("gpu_kernel_impl_nocast<", "gpu_kernel_impl<"):
        if wrapper in head:
            return head.split(wrapper, 1)[1]
    return head


def operand_sizes(name: str) -> tuple[list[int], str]:
    """Sizes in bytes of the tensors an elementwise kernel reads and writes, and its dtype."""
    functor = _functor(name)
    types = scalar_types(functor)
    dtype = types[0][1] if types else ""
    size = types[0][0] if types else 4
    binary = _BINARY.search(functor)
    if binary:
        sizes = [s for part in binary.groups() for s, _ in scalar_types(part)[:1]]
        if len(sizes) == 3:
            return sizes, dtype
    lambdas = [m for m in _LAMBDA_ARGS.findall(functor) if m not in ("int", "long")]
    array = _ARRAY.search(name)
    if lambdas:
        params = [s for s, _ in scalar_types(lambdas[-1])]
        copy = _COPY_OUTPUT.search(functor)
        output = (1 if "float8" in copy.group(1) else 2) if copy else params[-1] if params else size
        sizes = params + [output]
        if array and int(array.group(1)) != len(sizes):
            sizes = [sizes[0]] * int(array.group(1))
        return sizes, dtype
    if array:
        return [size] * int(array.group(1)), dtype
    arity = next((n for pattern, n in _ARITY if pattern.search(functor)), 3)
    return [size] * arity, dtype


def decode_elementwise(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    n = int(v["elements"])
    if n <= 0:
        return None
    sizes, dtype = operand_sizes(name)
    if layout.name == "index_elementwise":
        sizes.append(8)  # each element also reads its int64 index
    nbytes = n * sum(sizes)
    return ArgsShape(dtype, nbytes, features=layout_json(layout, elements=n, operands=len(sizes)))


def reduce_config(words: list[int]) -> tuple[int, int, int] | None:
    """(element size, inputs per output, outputs) of the ReduceConfig found in the first words
    of a ReduceOp: the first place where element_size_bytes is a scalar size and num_inputs,
    num_outputs, step_input, step_output and ctas_per_output are all positive."""
    for i in range(0, len(words) - 5):
        size, inputs, outputs, step_in, step_out, ctas = words[i : i + 6]
        if size in (1, 2, 4, 8, 16) and min(inputs, outputs, step_in, step_out, ctas) > 0:
            return size, inputs, outputs
    return None


def decode_reduce(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    found = reduce_config([int(v[f"w{i}"]) for i in range(13)])
    if found is None:
        return None
    size, inputs, outputs = found
    # ReduceOp<scalar_t, ops_t, index_t, out_scalar_t, ...>: element_size_bytes is the
    # accumulator's size; the input's is scalar_t's, the output's out_scalar_t's
    types = scalar_types(name.split(">(", 1)[0].split("ReduceOp<", 1)[-1])
    in_size, dtype = types[0] if types else (size, "")
    out_size = types[-1][0] if types else size
    nbytes = outputs * inputs * in_size + outputs * out_size
    features = layout_json(
        layout, elements=inputs * outputs, reduce_inputs=inputs, reduce_outputs=outputs
    )
    return ArgsShape(dtype, nbytes, features=features)


def decode_flash(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    # flash_fwd_kernel<traits, Is_dropout, Is_causal, ...>;
    # flash_fwd_splitkv_kernel<traits, Is_causal, ...>
    bools = template_bools(name)
    at = 1 if "flash_fwd_kernel<" in name else 0
    causal = len(bools) > at and bools[at]
    seqlen_k = int(v["seqlen_k"]) + int(v["seqlen_knew"])
    dims = (v["b"], v["seqlen_q"], seqlen_k, v["h"], v["h_k"], v["d"])
    return attention_shape(layout, name, tuple(int(x) for x in dims), causal)


def decode_mem_efficient(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    heads, stride_h, stride_b = int(v["num_heads"]), int(v["k_stride_h"]), int(v["k_stride_b"])
    # keys laid out (batch, kv heads, keys, dim) or (batch, keys, kv heads, dim): the batch
    # stride over the head stride is the number of KV heads when it is a whole divisor
    kv_heads = heads
    if stride_h > 0 and stride_b % stride_h == 0 and 0 < stride_b // stride_h <= heads:
        per_batch = stride_b // stride_h
        kv_heads = per_batch if heads % per_batch == 0 and per_batch < heads else heads
    dims = (v["num_batches"], v["num_queries"], v["num_keys"], heads, kv_heads, v["head_dim"])
    causal = int(v["custom_mask_type"]) in (1, 2)
    return attention_shape(layout, name, tuple(int(x) for x in dims), causal)


def decode_distribution(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """A random fill: writes its output only, of the type distribution_nullary_kernel or the
    transform names first."""
    n = int(v["elements"])
    text = re.split(r"distribution_nullary_kernel<|_and_transform<", name, maxsplit=1)
    types = scalar_types(text[1]) if len(text) > 1 else []
    size, dtype = types[0] if types else (4, "")
    return (
        ArgsShape(dtype, n * size, features=layout_json(layout, elements=n, operands=1))
        if n > 0
        else None
    )


def _copy_shape(layout: ArgLayout, name: str, elements: int, index_bytes: int) -> ArgsShape | None:
    """A copy of `elements` elements (read once, written once) plus the indices it reads."""
    types = scalar_types(name.split(">(", 1)[0])
    size, dtype = types[0] if types else (4, "")
    if elements <= 0:
        return None
    nbytes = 2 * elements * size + index_bytes
    return ArgsShape(dtype, nbytes, features=layout_json(layout, elements=elements))


def decode_cat(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    dims = re.search(r"CatArrayBatchedCopy\w*<.*?, unsigned int, (\d+),", name)
    count = int(dims.group(1)) if dims else 4
    elements = 1
    for i in range(min(count, 4)):
        elements *= int(v[f"size{i}"])
    # the vectorized kernel counts its innermost size in vectors of elems_per_vec elements,
    # its last template argument
    per_vector = re.search(r"CatArrayBatchedCopy_vectorized<.*, (\d+)>\(", name)
    if per_vector:
        elements *= int(per_vector.group(1))
    return _copy_shape(layout, name, elements, 0)


def decode_gather(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    indices, slice_bytes = int(v["indices"]), int(v["slice_bytes"])
    if indices <= 0 or slice_bytes <= 0:
        return None
    nbytes = 2 * indices * slice_bytes + indices * 8
    return ArgsShape("", nbytes, features=layout_json(layout, elements=indices * slice_bytes))


def decode_index_select(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    indices = int(v["indices"])
    return _copy_shape(layout, name, indices * int(v["inner_size"]), indices * 8)


def decode_softmax(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """A softmax over rows of `classes`: one row per block (cunn_SoftMaxForward*), or
    `batch_size` rows (softmax_warp_forward); reads its input, writes its output."""
    rows = int(v["rows"]) if "rows" in v else int(v["blocks"])
    classes = int(v["classes"])
    types = scalar_types(name.split(">(", 1)[0])
    if rows <= 0 or classes <= 0 or not types:
        return None
    # cunn_SoftMaxForward*<[ILP,] scalar_t, accscalar_t, outscalar_t, ...>;
    # softmax_warp_forward<input_t, output_t, acc_t, ...>
    out = types[1] if "softmax_warp" in name else types[2] if len(types) > 2 else types[0]
    nbytes = rows * classes * (types[0][0] + out[0])
    features = layout_json(layout, elements=rows * classes, rows=rows, classes=classes)
    return ArgsShape(types[0][1], nbytes, features=features)


DECODERS: dict[str, Callable[[ArgLayout, dict, str], ArgsShape | None]] = {
    "elementwise": decode_elementwise,
    "reduce": decode_reduce,
    "flash": decode_flash,
    "mem_efficient": decode_mem_efficient,
    **VLLM_DECODERS,
    "distribution": decode_distribution,
    "cat": decode_cat,
    "gather": decode_gather,
    "index_select": decode_index_select,
    "softmax": decode_softmax,
}


def decode(layout_id: int, kept: bytes, name: str, blocks: int = 1) -> ArgsShape | None:
    """The shape in the kept bytes of a launch of kernel `name` (demangled) on `blocks` thread
    blocks, or None if the layout is unknown (another revati version) or the values make no
    sense."""
    layout = BY_ID.get(layout_id)
    if layout is None:
        return None
    values = layout.unpack(kept)
    values["blocks"] = blocks
    return DECODERS[layout.decode](layout, values, name)
