#!/usr/bin/env bash
# The `gpu` profile end to end on one CUDA machine (issue #12), in the repository root: cohorts, pre-training, every
# fine-tuning run of the full grid, the deployable models and the report, within one device call of 10 minutes.
# Measured on one H100 (2026-12-06, bench/README.md, bench/gpu/): cohorts 55 s, pre-training about 54 s, 2.1 s per
# fine-tuning run at JOBS=4 (162 runs: about 340 s), so one replicate takes more than one call: the first call stops at its
# time limit (exit 75) and a second call at once on the warm machine finishes the replicate and packs its report.
# Hence, replicate by replicate:
#   1. one replicate (`reproduce --replicates 1`), report packed (may take two calls);
#   2. with the time left, the profile's replicates (`--replicates N`, reusing every finished run: run keys do not depend on
#      `replicates`), stopped cleanly so that the report of the replicates complete by then still fits; that report is packed.
# Exit 0: every replicate done and packed. Exit 75: call the script again at once, on the still-warm machine (it keeps
# runs/gpu), to go on; the last report-gpu.tgz holds the replicates done so far (its provenance.json: `replicates`).
# Environment: SEEDS (default: the profile's), JOBS (runs at once on the GPU, default 4), BUDGET (seconds this call
# may take, default 560), REPORT_S (seconds kept for models and report, default 150), OUT; for a dry run on the
# CPU: DEVICE (default cuda) and SETTINGS (a settings file with a [gpu] section; image_size >= 64: at 32 the real CTs
# cannot be calibrated to the brain).
# Carry: .whl made by `prepare.sh --report` (nibabel, tensorly, papermill, a Jupyter kernel) and .device/cache (the
# real CT; the machine has no network). Comes back: $OUT/report-gpu.tgz (every table and figure of the report, its
# provenance with the GPU, versions, settings, replicates and wall times, calls.json; executed notebooks left out: they
# record machine paths) and $OUT/gpu_profile.log. Unpack it into figures/gpu/ and commit it.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
. tools/device/env.sh || exit 1
log="$OUT/gpu_profile.log"
say() { echo "$*" | tee -a "$log"; }
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$log"
budget=${BUDGET:-560}; report_s=${REPORT_S:-150}
settings=${SETTINGS:+--settings "$SETTINGS"}
target=${REPLICATES:-$(python3 -c "import sys; from saharank.settings import load_settings; print(load_settings('gpu', sys.argv[1] or None).replicates)" "${SETTINGS:-}")}
left() { echo $(( budget - ($(date +%s) - start) )); }
# the log keeps everything; the console leaves out warnings
# the grid only (--no-bench): the gpu profile's bench of the seeds' systems comes after, in tools/device/gpu_baselines.sh
run() { python3 -m saharank reproduce --profile gpu --device "${DEVICE:-cuda}" $settings --jobs "${JOBS:-4}" --out runs/gpu --quiet --no-bench "$@" \
          2>&1 | tee -a "$log" | grep -v Warning; return "${PIPESTATUS[0]}"; }
reported() { python3 -c "import json; print(json.load(open('runs/gpu/provenance.json'))['replicates'])" 2>/dev/null || echo 0; }
pack() {
  [ -d runs/gpu/report ] || { say "no report in runs/gpu/report"; return 1; }
  rm -f runs/gpu/report/*.ipynb
  cp runs/gpu/provenance.json runs/gpu/calls.json runs/gpu/table2.csv runs/gpu/table3.csv runs/gpu/report/
  tar czf "$OUT/report-gpu.tgz" -C runs/gpu report && say "report: $OUT/report-gpu.tgz ($(reported) of $target replicates) after $(( $(date +%s) - start )) s"
}
finish() {
  # a run whose CUDA-graph capture failed trained eagerly (same results, about 3x slower per step): say how many
  say "CUDA graph capture failures (eager fallback) in this log: $(grep -c 'CUDA graph capture failed' "$log")"
  say "gpu_profile.sh: exit $1 after $(( $(date +%s) - start )) s; every call's wall time: runs/gpu/calls.json"
  exit "$1"
}
if [ "$(reported)" -lt 1 ]; then                       # 1. one replicate, report packed
  run --replicates 1 --time-limit $(( $(left) - report_s )); rc=$?
  [ "$rc" = 0 ] || { [ "$rc" = 75 ] && say "one replicate not finished in this call: call again to resume"; finish "$rc"; }
  pack || finish 1
fi
[ "$(reported)" -ge "$target" ] && finish 0
lim=$(( $(left) - report_s ))                          # 2. the other replicates, as far as this call goes
[ "$lim" -gt 60 ] || { say "$(reported) of $target replicates done: call again to go on"; finish 75; }
run --replicates "$target" --time-limit "$lim"; rc=$?
if [ "$rc" = 0 ]; then pack || finish 1; finish 0; fi
[ "$rc" = 75 ] || finish "$rc"
k=$(python3 -c "import json; print(json.load(open('runs/gpu/calls.json'))[-1].get('complete_replicates', 0))" 2>/dev/null || echo 0)
if [ "$k" -gt "$(reported)" ]; then
  say "stopped by the time limit with $k replicates complete: writing their report"
  run --replicates "$k" && pack
fi
say "$(reported) of $target replicates done: call again to go on"
finish 75
