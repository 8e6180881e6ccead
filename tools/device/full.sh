#!/usr/bin/env bash
# On the GPU machine (device tool), in the repository root: one resumable slice of the full-profile reproduction.
#   bash tools/device/full.sh [SECONDS]        (default 540: inside the tool's 10-minute limit per command)
# Environment: JOBS (runs at once, default 8), PROFILE (default full; smoke for a dry run on any machine),
# OUT (where the state and report go; the device tool sets it).
# Restores the state carried in .device/state (unless this machine still holds runs/full from an earlier call
# of the same session), installs the carried wheels, runs
#   saharank reproduce --profile full --out runs/full --jobs $JOBS --time-limit ... --no-report
# and packs the state into $OUT/state.tgz.part-NN (checkpoints, finished runs, predictions, training
# states; the cohorts are rebuilt from the carried CT, deterministically). When the reproduction has
# finished and papermill is importable, the report goes to $OUT/report-PROFILE.tgz. Exit code: reproduce's
# (0 finished, 75 stopped by the time limit: call again).
set -uo pipefail
cd "$(dirname "$0")/../.."
limit=${1:-540}; jobs=${JOBS:-8}; profile=${PROFILE:-full}; out=runs/$profile; start=$(date +%s)
. tools/device/env.sh || exit 1
if [ ! -d "$out/runs" ] && ls .device/state/state.tgz.part-* >/dev/null 2>&1; then
  mkdir -p "$out" && cat .device/state/state.tgz.part-* | tar xzf - -C "$out" && echo "restored $(ls $out/runs | wc -l) finished runs"
  if ls .device/state/predictions.tgz.part-* >/dev/null 2>&1; then cat .device/state/predictions.tgz.part-* | tar xzf - -C "$out"; fi
fi
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null
pack_s=90      # one epoch may overrun the limit (a pre-training epoch at 256^2: tens of seconds), then the packing
left=$(( limit - ($(date +%s) - start) - pack_s ))
saharank reproduce --profile "$profile" --out "$out" \
  --jobs "$jobs" --time-limit "$left" --no-report --quiet 2>&1 | tee "$OUT/reproduce.log"
rc=${PIPESTATUS[0]}
# two archives: the state a later session needs to resume (checkpoints, finished runs, training states, calls)
# and the predicted masks (about 16 kB per test patient and run at 256^2: 26 MB for the whole grid), which only
# the report's Fig. 2 and the viewer read: prepare.sh carries them only while they fit the 64 MiB.
parts=(checkpoints runs state calls.json); [ -f "$out/provenance.json" ] && parts+=(per_patient.csv provenance.json pretraining.json)
rm -f "$OUT"/state.tgz.part-* "$OUT"/predictions.tgz.part-*
tar czf - -C "$out" $(cd "$out" && ls -d "${parts[@]}" 2>/dev/null) | split -b 15M -d - "$OUT/state.tgz.part-"
[ -d "$out/predictions" ] && tar czf - -C "$out" predictions | split -b 15M -d - "$OUT/predictions.tgz.part-"
echo "state: $(ls "$OUT"/state.tgz.part-* | wc -l) part(s), $(du -ch "$OUT"/state.tgz.part-* | tail -1 | cut -f1); predictions: $(du -ch "$OUT"/predictions.tgz.part-* 2>/dev/null | tail -1 | cut -f1); finished runs: $(ls $out/runs 2>/dev/null | wc -l)"
if [ "$rc" = 0 ] && python3 -c "import papermill" 2>/dev/null; then PROFILE=$profile bash tools/device/report.sh; fi
echo "rc $rc after $(( $(date +%s) - start )) s"
exit "$rc"
