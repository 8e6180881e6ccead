#!/usr/bin/env bash
# The GPU measurements of the training engine (issue #11), on any CUDA machine, in the repository root; about 8 minutes,
# each step time-boxed so that one call of at most 10 minutes holds them all:
#   1. tools/device/engine_equivalence.py: the captured step equals the eager one on CUDA (loss and parameters),
#      device augmentation reproducible, train_model graph vs eager;
#   2. bench/bench_adapters.py at 256^2, batch 8 and the paper's batch 2, bf16, channels_last, step captured:
#      every adapter / full fine-tuning, and PEFT; merged inference / base;
#   3. bench/full_cost.py --profile full with 1 and with 4 runs at once (captured step): the projected full protocol;
#      once eager (--no-graph) at 1 run for the before/after ratio;
#   4. bench/full_cost.py --profile gpu --jobs 4: the projection of the gpu profile (its training replicates included).
# Needs: torch with CUDA, numpy, scipy, scikit-image, safetensors, tqdm, pandas; nibabel and tensorly can come as wheels
# in .whl/ (tools/device/prepare.sh downloads them where there is network; carry .whl). No data is needed (synthetic
# slices). Output: everything printed, also under $OUT (default /tmp/device-out): engine_equivalence.txt,
# bench_adapters_gpu.txt/.json, full_cost_*.txt. Copy these into bench/README.md with the card's name.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/device/env.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"
timeout 60 python3 tools/device/engine_equivalence.py 2>&1 | tee "$OUT/engine_equivalence.txt"
timeout 210 python3 bench/bench_adapters.py --device cuda --size 256 --batch 8,2 --bf16 --channels-last --ranks 64 \
  --rounds 5 --reps 5 --json "$OUT/bench_adapters_gpu.json" 2>&1 | tee "$OUT/bench_adapters_gpu.txt" | grep -v Warning
for j in 1 4; do
  timeout 75 python3 bench/full_cost.py --profile full --device cuda --jobs $j --ranks 64 2>&1 | tee "$OUT/full_cost_full_j$j.txt" | grep -v Warning
done
timeout 45 python3 bench/full_cost.py --profile full --device cuda --jobs 1 --ranks 64 --no-graph --slices 64 2>&1 | tee "$OUT/full_cost_full_j1_eager.txt" | grep -v Warning
timeout 60 python3 bench/full_cost.py --profile gpu --device cuda --jobs 4 --ranks 64 2>&1 | tee "$OUT/full_cost_gpu_j4.txt" | grep -v Warning
