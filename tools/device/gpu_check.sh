#!/usr/bin/env bash
# First call of a GPU session (device tool), in the repository root; about 8 minutes, each step time-boxed:
#   1. the CUDA path end to end: the smoke profile with --jobs 4 and with --jobs 1 on the GPU, and whether the
#      two give identical per-patient results (they should: each run is seeded on its own; issue #4);
#   2. the adapter benchmark at the paper's size with bf16 autocast and channels_last (issue #3);
#   3. the measured projection of the full profile's training time with 1 and with 8 runs at once (issue #4).
# Everything printed is also written under $OUT. Carry: .whl .device/cache (tools/device/prepare.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/device/env.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
for j in 4 1; do
  rm -rf runs/gpu-smoke-j$j
  timeout 110 bash -c ". tools/device/env.sh; saharank reproduce --profile smoke --device cuda --jobs $j --out runs/gpu-smoke-j$j --no-report --quiet" \
    > "$OUT/gpu_smoke_j$j.log" 2>&1; echo "smoke --jobs $j: rc $? $(grep -o '\[[0-9.]* s\]$' "$OUT/gpu_smoke_j$j.log" | tail -1)"
done
cmp -s runs/gpu-smoke-j4/per_patient.csv runs/gpu-smoke-j1/per_patient.csv && echo "smoke on GPU: --jobs 4 and --jobs 1 identical" \
  || echo "smoke on GPU: --jobs 4 and --jobs 1 DIFFER (or one did not finish)"
timeout 190 python3 bench/bench_adapters.py --device cuda --size 256 --batch 8 --bf16 --channels-last --rounds 7 --reps 5 \
  --json "$OUT/bench_adapters_gpu.json" 2>&1 | tee "$OUT/bench_adapters_gpu.txt" | tail -60
for j in 1 8; do
  timeout 75 python3 bench/full_cost.py --profile full --device cuda --jobs $j --ranks 64 --slices 64 2>&1 | tee "$OUT/full_cost_gpu_j$j.txt"
done
