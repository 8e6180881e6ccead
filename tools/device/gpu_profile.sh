#!/usr/bin/env bash
# The `gpu` profile end to end on one CUDA machine (issue #12), in the repository root: cohorts, pre-training, every
# fine-tuning run of the full grid with the profile's seeds, the deployable models and the report, in one call of
# at most 10 minutes (the profile is sized for about 8 minutes on one H100; `bench/full_cost.py --profile gpu`
# projects it). Environment: JOBS (runs at once on the GPU, default 4), SEEDS (default: the profile's), LIMIT (seconds
# of training before a clean stop, default 500), OUT. Exit 0: finished, report packed. Exit 75: stopped by LIMIT
# (every finished run is kept in runs/gpu): call the script again at once, on the still-warm machine, to resume.
# Carry: .whl made by `prepare.sh --report` (nibabel, tensorly, papermill, a Jupyter kernel) and .device/cache (the
# real CT; the machine has no network). Comes back: $OUT/report-gpu.tgz (every table and figure of the report, its
# provenance with the GPU, versions, settings and wall times; executed notebooks left out: they record machine
# paths) and $OUT/gpu_profile.log. Unpack it into figures/gpu/ and commit it with the log's wall time.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tools/device/env.sh || exit 1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu_profile.log"
seeds=${SEEDS:+--seeds $SEEDS}
start=$(date +%s)
python3 -m saharank reproduce --profile gpu --device cuda --jobs "${JOBS:-4}" $seeds --out runs/gpu --quiet --time-limit "${LIMIT:-500}" \
  2>&1 | grep -v Warning | tee -a "$OUT/gpu_profile.log"
rc=${PIPESTATUS[0]}
echo "reproduce --profile gpu: exit $rc after $(( $(date +%s) - start )) s (all calls: runs/gpu/provenance.json wall_time_s)" | tee -a "$OUT/gpu_profile.log"
[ "$rc" = 75 ] && { echo "stopped by the time limit: call gpu_profile.sh again now to resume" | tee -a "$OUT/gpu_profile.log"; exit 75; }
[ -d runs/gpu/report ] || { echo "no report in runs/gpu/report" | tee -a "$OUT/gpu_profile.log"; exit 1; }
rm -f runs/gpu/report/*.ipynb
cp runs/gpu/provenance.json runs/gpu/table2.csv runs/gpu/table3.csv runs/gpu/report/ 2>/dev/null
tar czf "$OUT/report-gpu.tgz" -C runs/gpu report && echo "report: $OUT/report-gpu.tgz" | tee -a "$OUT/gpu_profile.log"
exit $rc
