#!/usr/bin/env bash
# Ground-truth check for a machine with an NVIDIA GPU (not run by pytest): records the bundled
# example and the Llama-shaped decoder on the real GPU (`record --real`) and emulated, writes
# `revati compare` reports, and times the traced program against a bare run (collector
# overhead). Usage: tests/gpu/ground_truth.sh OUT_DIR [DEVICE]   (DEVICE: catalog id of this GPU)
set -euo pipefail
out=${1:?usage: ground_truth.sh OUT_DIR [DEVICE]}
device=${2:-h100-sxm}
py=${PYTHON:-.venv/bin/python}
mkdir -p "$out"
revati() { "$py" -m revati.cli "$@"; }
seconds() { local t0; t0=$(date +%s.%N); "$@" >/dev/null; echo "$(date +%s.%N) - $t0" | bc; }

nvidia-smi --query-gpu=name,driver_version --format=csv | tee "$out/gpu.txt"
"$py" -m revati.native.collector_build | tee "$out/collector.txt"
example=$("$py" -c "from revati.commands.record import EXAMPLE; print(EXAMPLE)")

for w in example llama; do
  if [ "$w" = example ]; then args=(--example); bare=("$example"); else
    args=(--example llama -- --batch 8); bare=("$py" -m revati.examples.llama --batch 8); fi
  revati record --real --force -o "$out/$w-real.duckdb" "${args[@]}"
  revati record --force --device "$device" -o "$out/$w-emulated.duckdb" "${args[@]}"
  revati compare "$out/$w-emulated.duckdb" "$out/$w-real.duckdb" | tee "$out/$w-compare.txt"
  revati compare "$out/$w-emulated.duckdb" "$out/$w-real.duckdb" --json > "$out/$w-compare.json"
  for i in 1 2 3; do
    echo "bare $(seconds "${bare[@]}")  traced $(seconds revati record --real --force \
      -o "$out/$w-overhead.duckdb" "${args[@]}")" | tee -a "$out/$w-overhead.txt"
  done
done
