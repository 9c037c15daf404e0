"""`revati profile`: measure this machine's GPU into a file `revati calibrate` reads."""

from __future__ import annotations

import argparse
import platform
import sys

from revati.errors import RevatiUsageError
from revati.predict.calibration.measured import write_measurements
from revati.predict.profiling import LLM_SHAPES, QUICK_TOKENS, ProfilePlan
from revati.recorder.output import atomic_output, check_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile",
        help="time GEMMs, attention, elementwise and copies on this machine's GPU",
        description="Measure the GPU of this machine with PyTorch (needs a CUDA GPU): the GEMMs "
        "of the chosen LLMs' layers at a range of token counts, causal prefill and decode "
        "attention, elementwise and memset bandwidth, and host/device copies. Writes a "
        "measurements file that `revati calibrate` and `revati predict-report` read.",
        epilog="Examples:\n"
        "  revati profile -o h200.measurements.json\n"
        "  revati calibrate h200.measurements.json -o my-h200.json\n"
        "  revati profile --quick --models llama-3-8b -o quick.measurements.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    parser.add_argument(
        "--device",
        help="catalog id of this GPU (default: found from its name; see `revati devices`)",
    )
    parser.add_argument(
        "--models",
        default=",".join(ProfilePlan().models),
        help=f"comma-separated LLMs whose shapes to time (of {', '.join(LLM_SHAPES)})",
    )
    parser.add_argument("--dtype", default="bf16", choices=("bf16", "fp16", "fp32"))
    parser.add_argument(
        "--quick", action="store_true", help=f"token counts {QUICK_TOKENS} and fewer repetitions"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(handler=run_profile)


def run_profile(args: argparse.Namespace) -> int:
    from revati.predict.profiling import profile_device, require_cuda
    from revati.recorder.importers.builder import catalog_id

    plan = _plan(args)
    out = check_output(args.output, force=args.force)
    torch = require_cuda()
    gpu = torch.cuda.get_device_name()
    device = args.device or catalog_id(gpu)
    if not device:
        raise RevatiUsageError(
            f"GPU {gpu!r} is not in the device catalog; pass --device with the closest id "
            "(see `revati devices`)"
        )
    records = profile_device(torch, plan, lambda line: print(line, file=sys.stderr))
    data = records.measurements(device)
    host = {"torch": torch.__version__, "cuda": torch.version.cuda, "host": platform.node()}
    with atomic_output(out) as tmp:
        write_measurements(tmp, data, gpu, host)
    print(f"measured {len(data)} operations on {gpu} ({device}); wrote {out}")
    return 0


def _plan(args: argparse.Namespace) -> ProfilePlan:
    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in LLM_SHAPES]
    if unknown or not models:
        raise RevatiUsageError(
            f"unknown model(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(LLM_SHAPES)}"
        )
    if args.quick:
        return ProfilePlan(models=models, tokens=QUICK_TOKENS, dtype=args.dtype, reps=5, warmup=2)
    return ProfilePlan(models=models, dtype=args.dtype)
