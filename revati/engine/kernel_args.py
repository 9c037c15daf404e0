"""Shapes decoded from kept launch-argument bytes (REC_KERNEL_ARGS records).

The layout (`kernel_layouts.py`) says what the kept bytes hold; the demangled kernel name says
the element types and how many tensors a kernel touches. `decode` turns both into an
`ArgsShape`: elements and bytes moved for elementwise and reduction kernels, problem dims for
attention kernels, which the predictor's bandwidth and attention models read.

Bytes are estimates from the types in the name: an elementwise kernel over N elements with
operands of sizes s_i moves N·Σ s_i; a reduction of O outputs over I inputs each moves
O·I·s_in + O·s_out. Casting copies name their compute type, not their memory types, so their
bytes are the compute type's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from revati.engine.kernel_layouts import BY_ID, ArgLayout
from revati.predict.batch import ATTENTION_COLUMNS

# scalar type spellings in demangled names -> (bytes, predictor dtype)
SCALARS: dict[str, tuple[int, str]] = {
    "c10::complex<double>": (16, "fp64"),
    "c10::complex<float>": (8, "fp32"),
    "c10::complex<c10::Half>": (4, "fp16"),
    "c10::BFloat16": (2, "bf16"),
    "c10::Half": (2, "fp16"),
    "c10::Float8_e4m3fn": (1, "fp8"),
    "c10::Float8_e5m2": (1, "fp8"),
    "cutlass::bfloat16_t": (2, "bf16"),
    "cutlass::half_t": (2, "fp16"),
    "cutlass::float_e4m3_t": (1, "fp8"),
    "cutlass::float_e5m2_t": (1, "fp8"),
    "__nv_bfloat16": (2, "bf16"),
    "__half": (2, "fp16"),
    "double": (8, "fp64"),
    "float": (4, "fp32"),
    "unsigned long": (8, "int64"),
    "unsigned int": (4, "int32"),
    "unsigned short": (2, "int16"),
    "unsigned char": (1, "int8"),
    "signed char": (1, "int8"),
    "long": (8, "int64"),
    "int": (4, "int32"),
    "short": (2, "int16"),
    "bool": (1, "bool"),
}
_SCALAR = re.compile(
    r"(?<![\w:])("
    + "|".join(re.escape(s) for s in sorted(SCALARS, key=len, reverse=True))
    + r")(?![\w<])"
)
_OPAQUE = re.compile(r"OpaqueType<(\d+)u?>")
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


@dataclass(frozen=True)
class ArgsShape:
    """A launch's shape decoded from its argument bytes."""

    dtype: str = ""
    bytes: int = 0
    batch: int = 0
    attention: tuple[int, ...] = (0, 0, 0, 0, 0, 0)  # batch, q len, kv len, heads, kv heads, dim
    causal: int = 0  # attention: 1 causal, -1 not causal, 0 unknown (OpBatch.attn_causal)
    features: str = field(default="{}", compare=True)

    def columns(self) -> dict[str, object]:
        """The `kernel_features` columns of the kernel's row."""
        return dict(
            batch=self.batch or None,
            dtype=self.dtype or None,
            bytes=self.bytes or None,
            features=self.features,
        )

    def predictor_columns(self) -> dict[str, object]:
        """Predictor columns (OpBatch names)."""
        out: dict[str, object] = {"dtype": self.dtype, "bytes": self.bytes, "batch": self.batch}
        if any(self.attention):
            out.update(zip(ATTENTION_COLUMNS, self.attention, strict=True))
            out["attn_causal"] = self.causal
        return out


def scalar_types(text: str) -> list[tuple[int, str]]:
    """(bytes, dtype) of each scalar type named in `text`, in order (OpaqueType<n>: n bytes,
    no dtype)."""
    out = []
    for m in re.finditer(_SCALAR.pattern + r"|" + _OPAQUE.pattern, text):
        if m.group(1):
            out.append(SCALARS[m.group(1)])
        else:
            out.append((int(m.group(2)), ""))  # raw bytes moved: no element type
    return out


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


def _json(layout: ArgLayout, **values: object) -> str:
    return json.dumps({"layout": layout.name, **values}, separators=(",", ":"))


def decode_elementwise(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    n = int(v["elements"])
    if n <= 0:
        return None
    sizes, dtype = operand_sizes(name)
    if layout.name == "index_elementwise":
        sizes.append(8)  # each element also reads its int64 index
    nbytes = n * sum(sizes)
    return ArgsShape(dtype, nbytes, features=_json(layout, elements=n, operands=len(sizes)))


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
    features = _json(
        layout, elements=inputs * outputs, reduce_inputs=inputs, reduce_outputs=outputs
    )
    return ArgsShape(dtype, nbytes, features=features)


def attention_shape(
    layout: ArgLayout, name: str, dims: tuple[int, ...], causal: bool, **extra: object
) -> ArgsShape | None:
    """An attention kernel's shape: dims = (batch, q len, kv len, heads, kv heads, head dim);
    `extra` goes into its features."""
    if min(dims) <= 0:
        return None
    types = scalar_types(name)
    dtype = types[0][1] if types else ""
    values = dict(zip(ATTENTION_COLUMNS, dims, strict=True))
    return ArgsShape(dtype, batch=dims[0], attention=dims[:6], causal=1 if causal else -1,
                     features=_json(layout, **values, attn_causal=causal, **extra))  # fmt: skip


def _template_bools(name: str) -> list[bool]:
    """The bool template arguments that follow a flash kernel's traits, in order."""
    args = name.split(">(", 1)[0].rsplit("> >, ", 1)[-1]
    return [word.strip() == "true" for word in args.split(",") if word.strip() in ("true", "false")]


def decode_flash(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    # flash_fwd_kernel<traits, Is_dropout, Is_causal, ...>;
    # flash_fwd_splitkv_kernel<traits, Is_causal, ...>
    bools = _template_bools(name)
    at = 1 if "flash_fwd_kernel<" in name else 0
    causal = len(bools) > at and bools[at]
    seqlen_k = int(v["seqlen_k"]) + int(v["seqlen_knew"])
    dims = (v["b"], v["seqlen_q"], seqlen_k, v["h"], v["h_k"], v["d"])
    return attention_shape(layout, name, tuple(int(x) for x in dims), causal)


def _mainloop_bools(name: str) -> list[bool]:
    """The bool template arguments of FlashAttention 3's CollectiveMainloopFwdSm90, in order
    (Is_causal, Is_local, Has_softcap, Varlen, PagedKVNonTMA, AppendKV, HasQv, ...): the
    words after its architecture tag, up to the first that is not a bool."""
    args = name.split("CollectiveMainloopFwdSm90<", 1)[-1].split("cutlass::arch::", 1)[-1]
    out = []
    for word in args.split(", ")[1:]:
        if word.strip() not in ("true", "false"):
            break
        out.append(word.strip() == "true")
    return out


def _varlen_dims(
    v: dict, b: int, q_len: int, kv_len: int, total_q: int
) -> tuple[tuple[int, int], dict]:
    """The (query, KV) lengths the model reads for a varlen launch of `b` sequences whose
    parameters say `q_len` (the mean or maximum query length), `kv_len` (the maximum KV length)
    and `total_q` (0 if they do not), and its features.

    The shim's summary of the length arrays is believed only where it agrees with the
    parameters: the query lengths where it counts `b` sequences whose total is `total_q` (or
    at most b * q_len), the KV lengths where, besides, their total lies between the query total
    and b * kv_len. Arrays that a kernel wrote (vLLM computes its KV lengths on the device;
    under emulation kernels write nothing) hold stale bytes that fail these checks, and the
    KV length stays the maximum."""
    q_sum, k_sum = int(v["sum_q"]), int(v["sum_k"])
    q_read = v["sequences"] == b and q_sum > 0
    q_read = q_read and (q_sum == total_q if total_q else q_sum <= b * q_len)
    k_read = q_read and q_sum <= k_sum <= b * kv_len
    features: dict[str, object] = {"attn_max_kv_len": kv_len}
    if q_read:
        q_len = max(1, round(q_sum / b))
        features.update(attn_total_q=q_sum, attn_sum_qq=int(v["sum_qq"]))
    if k_read:
        kv_len = round(k_sum / b)
        features.update(attn_total_kv=k_sum, attn_sum_qk=int(v["sum_qk"]))
    return (q_len, kv_len), features


def decode_fa3(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """FlashAttention 3's forward kernel. A varlen launch (vLLM's always) packs its sequences:
    its query length is their total; the lengths the model reads are the batch's means where
    the shim read the sequences' lengths, else the mean query length and the maximum KV
    length."""
    bools = _mainloop_bools(name)
    if len(bools) < 4:
        return None
    causal, varlen = bools[0], bools[3]
    b, q, kv = int(v["b"]), int(v["seqlen_q"]), int(v["max_seqlen_k"])
    heads = (int(v["h"]), int(v["h_k"]), int(v["d"]))
    if not varlen or b <= 0:
        return attention_shape(layout, name, (b, q, kv, *heads), causal)
    (q_len, kv_len), extra = _varlen_dims(v, b, -(-q // b), kv, q)
    extra.setdefault("attn_total_q", q)
    return attention_shape(layout, name, (b, q_len, kv_len, *heads), causal, **extra)


def decode_flash_varlen(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """FlashAttention 2 (vLLM's): max lengths in the parameters, the sequences' own in device
    arrays when the launch is varlen (the summary)."""
    bools = _template_bools(name)
    causal = len(bools) > 1 and bools[1 if "flash_fwd_kernel<" in name else 0]
    b, q, kv = int(v["b"]), int(v["seqlen_q"]), int(v["seqlen_k"])
    (q_len, kv_len), extra = _varlen_dims(v, b, q, kv, 0) if b > 0 else ((q, kv), {})
    dims = (b, q_len, kv_len, int(v["h"]), int(v["h_k"]), int(v["d"]))
    return attention_shape(layout, name, dims, causal, **extra)


def decode_kv_cache_write(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """vLLM's reshape_and_cache_flash: one block per token copies its keys and values
    (num_heads x head_size each) into the paged cache and reads its slot (int64)."""
    tokens, heads, size = int(v["blocks"]), int(v["num_heads"]), int(v["head_size"])
    types = scalar_types(name.split(">(", 1)[0])
    if min(tokens, heads, size) <= 0 or len(types) < 2:
        return None
    elements = 2 * tokens * heads * size
    nbytes = elements * (types[0][0] + types[1][0]) + 8 * tokens
    features = _json(layout, elements=elements, tokens=tokens, heads=heads, head_size=size,
                     block_size=int(v["block_size"]))  # fmt: skip
    return ArgsShape(types[0][1], nbytes, features=features)


def decode_vllm_rowwise(layout: ArgLayout, v: dict, name: str) -> ArgsShape | None:
    """vLLM's one-block-per-token kernels: elements moved per token (reads and writes) and per
    launch (a weight read once), from the sizes in their arguments."""
    tokens = int(v["blocks"])
    if layout.name == "vllm_act_and_mul":
        per_token, once = 3 * int(v["d"]), 0  # reads x and y, writes act(x) * y
    elif layout.name == "vllm_rotary_embedding":  # rotates queries and keys in place
        heads = int(v["num_heads"]) + int(v["num_kv_heads"])
        per_token, once = 2 * heads * int(v["head_size"]) + int(v["rot_dim"]), 0
    else:  # rms norm: reads and writes a row (with the residual: two), reads the weight once
        hidden = int(v["hidden_size"])
        per_token, once = (4 if "fused_add" in layout.name else 2) * hidden, hidden
    types = scalar_types(name.split("_kernel<", 1)[-1])  # its first template argument
    if min(tokens, per_token) <= 0 or not types:
        return None
    size, dtype = types[0]
    elements = tokens * per_token + once
    return ArgsShape(
        dtype, elements * size, features=_json(layout, elements=elements, tokens=tokens)
    )


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
        ArgsShape(dtype, n * size, features=_json(layout, elements=n, operands=1))
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
    return ArgsShape(dtype, nbytes, features=_json(layout, elements=elements))


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
    return ArgsShape("", nbytes, features=_json(layout, elements=indices * slice_bytes))


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
    features = _json(layout, elements=rows * classes, rows=rows, classes=classes)
    return ArgsShape(types[0][1], nbytes, features=features)


DECODERS: dict[str, Callable[[ArgLayout, dict, str], ArgsShape | None]] = {
    "elementwise": decode_elementwise,
    "reduce": decode_reduce,
    "flash": decode_flash,
    "mem_efficient": decode_mem_efficient,
    "fa3": decode_fa3,
    "flash_varlen": decode_flash_varlen,
    "kv_cache_write": decode_kv_cache_write,
    "vllm_rowwise": decode_vllm_rowwise,
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
