#!/usr/bin/env bash
# On the GPU machine, right after the call of full.sh that finished (exit 0), while the machine is still warm and
# holds runs/full (cohorts included): the papermill report, packed into $OUT/report-full.tgz (executed notebooks
# left out: they record machine paths). Carry: .whl made by `prepare.sh --report` (papermill and a Jupyter kernel).
set -uo pipefail
cd "$(dirname "$0")/../.."
profile=${PROFILE:-full}; out=runs/$profile
. tools/device/env.sh || exit 1
[ -f "$out/per_patient.csv" ] || { echo "$out/per_patient.csv is missing: the machine went cold or the run is unfinished" >&2; exit 2; }
saharank report "$out" --out "$out/report" || exit 1
rm -f "$out"/report/*.ipynb
tar czf "$OUT/report-$profile.tgz" -C "$out" report && echo "report: $OUT/report-$profile.tgz"
