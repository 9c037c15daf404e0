"""What a decoder makes of kept argument bytes (`ArgsShape`), and what decoders share: the scalar
types a demangled kernel name spells, a layout's features as JSON, an attention shape."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from revati.engine.arg_layout import ArgLayout
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


def layout_json(layout: ArgLayout, **values: object) -> str:
    return json.dumps({"layout": layout.name, **values}, separators=(",", ":"))


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
                     features=layout_json(layout, **values, attn_causal=causal, **extra))  # fmt: skip


def template_bools(name: str) -> list[bool]:
    """The bool template arguments that follow a flash kernel's traits, in order."""
    args = name.split(">(", 1)[0].rsplit("> >, ", 1)[-1]
    return [word.strip() == "true" for word in args.split(",") if word.strip() in ("true", "false")]
