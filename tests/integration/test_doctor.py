"""`revati doctor` on real nvcc-built programs: shared vs static CUDA runtime, libraries found
through $ORIGIN, stubs, missing libraries, Python launchers, and the fatbinary listing."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from revati.doctor import check_program
from revati.errors import RevatiRunError
from revati.fatbin import parse_fatbin, read_fatbin_section
from tests.conftest import nvcc_path, run_cli

KERNEL_CU = r"""
#include <cstdio>
__global__ void add_one(float *a, int n) {
    __shared__ float tile[64];
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) { tile[i % 64] = a[i]; a[i] += tile[(i + 1) % 64]; }
}
extern "C" int run_device_work(void) {
    float *d;
    cudaMalloc(&d, 1024 * sizeof(float));
    add_one<<<4, 256>>>(d, 1024);
    int device;
    cudaDeviceGetByPCIBusId(&device, "0000:18:00.0");  /* a stub: reported as unsupported */
    return (int)cudaDeviceSynchronize();
}
"""
MAIN_CU = KERNEL_CU + 'int main() { printf("%d\\n", run_device_work()); return 0; }\n'
MAIN_C = "int run_device_work(void);\nint main(void) { return run_device_work(); }\n"


def _cc() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (cc/gcc) on PATH")
    return cc


@pytest.fixture(scope="session")
def cuda_programs(tmp_path_factory) -> dict[str, Path]:
    """Real programs, compiled once per session (the nvcc runs go in parallel)."""
    nvcc = nvcc_path()
    if nvcc is None:
        pytest.skip("nvcc (CUDA toolkit) is not installed; doctor's CUDA verdicts need it")
    tmp = tmp_path_factory.mktemp("doctor")
    (tmp / "main.cu").write_text(MAIN_CU)
    (tmp / "dev.cu").write_text(KERNEL_CU)
    (tmp / "app").mkdir()
    jobs = {
        "shared": [nvcc, "-cudart", "shared", "-arch=sm_90", "-o", "shared_prog", "main.cu"],
        "static": [nvcc, "-o", "static_prog", "main.cu"],
        "lib_static": [nvcc, "-shared", "-Xcompiler", "-fPIC", "-o", "app/libdev.so", "dev.cu"],
        "lib_shared": [nvcc, "-cudart", "shared", "-shared", "-Xcompiler", "-fPIC", "-o",
                       "libdevshared.so", "dev.cu"],
    }  # fmt: skip
    running = {key: subprocess.Popen(cmd, cwd=tmp, stderr=subprocess.PIPE, text=True)
               for key, cmd in jobs.items()}  # fmt: skip
    for key, proc in running.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"nvcc failed for {key}: {err}"
    (tmp / "main.c").write_text(MAIN_C)
    cc = _cc()
    subprocess.run([cc, "-o", "app/uses_static_lib", "main.c", "-Lapp", "-ldev",
                    "-Wl,-rpath,$ORIGIN"], cwd=tmp, check=True)  # fmt: skip
    subprocess.run([cc, "-o", "uses_shared_lib", "main.c", "-L.", "-ldevshared",
                    "-Wl,--enable-new-dtags,-rpath,$ORIGIN"], cwd=tmp, check=True)  # fmt: skip
    return {
        "shared": tmp / "shared_prog",
        "static": tmp / "static_prog",
        "uses_static_lib": tmp / "app" / "uses_static_lib",
        "static_lib": tmp / "app" / "libdev.so",
        "uses_shared_lib": tmp / "uses_shared_lib",
    }


def test_shared_cudart_program_is_runnable(cuda_programs):
    report = check_program([str(cuda_programs["shared"])])
    assert report.runnable and report.problem is None
    assert not report.static_cudart
    assert "libcudart.so.13" in report.cuda_libraries
    assert {"cudaMalloc", "__cudaRegisterFunction", "__cudaLaunchKernel"} <= set(report.emulated)
    assert report.stubs == ["cudaDeviceGetByPCIBusId"]
    assert set(report.imports) == set(report.emulated) | set(report.stubs)


def test_static_cudart_program_is_refused_with_the_fix(cuda_programs):
    report = check_program([str(cuda_programs["static"])])
    assert not report.runnable and report.static_cudart
    assert report.imports == []  # a static runtime imports nothing from libcudart
    assert "static CUDA runtime" in report.problem
    assert "nvcc -cudart shared" in report.problem


def test_static_runtime_inside_a_library_found_through_origin(cuda_programs):
    report = check_program([str(cuda_programs["uses_static_lib"])])
    assert report.libraries["libdev.so"] == str(cuda_programs["static_lib"])
    assert not report.runnable
    assert "libdev.so (loaded by" in report.problem


def test_imports_of_a_shared_cudart_library_count(cuda_programs):
    report = check_program([str(cuda_programs["uses_shared_lib"])])
    assert report.runnable, report.problem
    assert "cudaMalloc" in report.emulated and "cudaDeviceGetByPCIBusId" in report.stubs


def test_cli_verdicts_and_exit_codes(cuda_programs):
    ok = run_cli("doctor", str(cuda_programs["shared"]))
    assert ok.returncode == 0, ok.stderr
    assert "verdict: runnable" in ok.stdout and "cudaDeviceGetByPCIBusId" in ok.stdout
    bad = run_cli("doctor", "--", str(cuda_programs["static"]), "--some-arg")
    assert bad.returncode == RevatiRunError.exit_code
    assert "not runnable" in bad.stdout and "-cudart shared" in bad.stdout


def test_cli_json(cuda_programs):
    proc = run_cli("doctor", "--json", str(cuda_programs["shared"]))
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert document["runnable"] is True
    assert document["stubs"] == ["cudaDeviceGetByPCIBusId"]


def test_fatbinary_lists_the_kernel_with_registers_and_shared_memory(cuda_programs):
    entries = parse_fatbin(read_fatbin_section(cuda_programs["shared"]))
    assert {entry.arch for entry in entries} == {90}
    assert {entry.kind for entry in entries} == {"cubin", "ptx"}
    kernels = [k for entry in entries for k in entry.kernels]
    kernel = next(k for k in kernels if k.name == "_Z7add_onePfi")
    assert kernel.registers is not None and 4 <= kernel.registers <= 64
    assert kernel.shared_bytes >= 64 * 4  # the 64-float tile (sm_90 adds a 1 KiB reserve)
    ptx = [entry for entry in entries if entry.kind == "ptx"]
    assert ptx and all(entry.compression == "zstd" and not entry.kernels for entry in ptx)


def test_cli_kernels(cuda_programs):
    proc = run_cli("doctor", "--kernels", "--json", str(cuda_programs["shared"]))
    fatbins = json.loads(proc.stdout)["fatbins"]
    names = [k["name"] for f in fatbins for e in f["entries"] for k in e["kernels"]]
    assert "_Z7add_onePfi" in names


def test_missing_library_is_reported_and_ld_library_path_fixes_it(tmp_path):
    cc = _cc()
    (tmp_path / "lib").mkdir()
    (tmp_path / "helper.c").write_text("int helper(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int helper(void);\nint main(void) { return helper(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", "lib/libhelper.so", "helper.c"], cwd=tmp_path,
                   check=True)  # fmt: skip
    subprocess.run([cc, "-o", "prog", "main.c", "-Llib", "-lhelper"], cwd=tmp_path, check=True)
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    report = check_program([str(tmp_path / "prog")], env=env)
    assert not report.runnable
    assert "libhelper.so" in report.problem and "LD_LIBRARY_PATH" in report.problem
    env["LD_LIBRARY_PATH"] = str(tmp_path / "lib")
    report = check_program([str(tmp_path / "prog")], env=env)
    assert report.runnable and report.libraries["libhelper.so"] == str(
        tmp_path / "lib/libhelper.so"
    )
    assert report.imports == []


def test_command_on_path_script_and_missing(tmp_path):
    report = check_program(["ls"])
    assert report.runnable and report.path and report.path.endswith("/ls")
    missing = check_program(["no-such-program-revati"])
    assert not missing.runnable and "command not found" in missing.problem
    script = tmp_path / "serve.py"
    script.write_text(f"#!{sys.executable}\nprint('hi')\n")
    script.chmod(0o755)
    report = check_program([str(script)])
    assert report.kind == "python" and report.runnable
    assert any("run time" in note for note in report.notes)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert not check_program([str(text)]).runnable


def test_python_interpreter_is_checked_not_run(tmp_path):
    report = check_program([sys.executable, "-c", "import sys"])
    assert report.kind == "python" and report.runnable
    assert any("torch" in note for note in report.notes)


def test_cli_without_a_program_is_a_usage_error():
    proc = run_cli("doctor")
    assert proc.returncode == 2 and "doctor needs a program" in proc.stderr


def _fake_vendor_program(tmp_path, library: str, functions: list[str]) -> Path:
    """A program linked against a stand-in `library` defining `functions` (int f(void))."""
    cc = _cc()
    (tmp_path / "lib.c").write_text("".join(f"int {f}(void) {{ return 0; }}\n" for f in functions))
    (tmp_path / "main.c").write_text(
        "".join(f"int {f}(void);\n" for f in functions)
        + "int main(void) { return "
        + " + ".join(f"{f}()" for f in functions)
        + "; }\n"
    )
    subprocess.run([cc, "-shared", "-fPIC", f"-Wl,-soname,{library}", "-o", library, "lib.c"],
                   cwd=tmp_path, check=True)  # fmt: skip
    subprocess.run([cc, "-o", "prog", "main.c", "-L.", f"-l:{library}", "-Wl,-rpath,$ORIGIN"],
                   cwd=tmp_path, check=True)  # fmt: skip
    return tmp_path / "prog"


def test_vendor_library_imports_are_reported_as_not_intercepted(tmp_path):
    prog = _fake_vendor_program(tmp_path, "libcudnn.so.9", ["cudnnCreate", "cuInit"])
    report = check_program([str(prog)])
    assert report.cuda_libraries == ["libcudnn.so.9"]
    assert report.unintercepted == {"cuDNN": ["cudnnCreate"]}
    assert "cuInit" in report.emulated  # the driver layer is the shim's
    assert report.runnable  # reported, not refused: the program may never reach those calls
    assert any("of cuDNN are not intercepted" in note for note in report.notes)


def test_cublas_imports_are_counted_as_emulated_or_stubs_per_library(tmp_path):
    prog = _fake_vendor_program(
        tmp_path, "libcublas.so.13", ["cublasCreate_v2", "cublasGemmEx", "cublasStrsm_v2"]
    )
    report = check_program([str(prog)])
    assert report.unintercepted == {}
    assert report.stubs == ["cublasStrsm_v2"]
    assert report.shares == {"libcublas.so.13": {"emulated": 2, "stub": 1}}
    proc = run_cli("doctor", str(prog))
    assert re.search(r"libcublas\.so\.13\s+2\s+1\s+0", proc.stdout), proc.stdout


def test_pytorch_cuda_libraries_report_their_cublas_and_lt_shares():
    report = check_program([sys.executable, "-c", "import torch"])
    assert any(note.startswith("torch found") for note in report.notes)
    blas, lt = report.shares["libcublas.so.13"], report.shares["libcublasLt.so.13"]
    assert blas["emulated"] >= 20 and blas["emulated"] + blas["stub"] > 150
    assert {"cublasGemmEx", "cublasGemmStridedBatchedEx", "cublasSetStream_v2"} <= set(
        report.emulated
    )
    assert lt == {"emulated": 16}  # every Lt function PyTorch imports
    assert "cuBLAS" not in report.unintercepted and "cuBLASLt" not in report.unintercepted
