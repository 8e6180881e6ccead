# Sourced by the scripts of tools/device on the GPU machine (repository root as working directory):
# installs the carried wheels (.whl, see prepare.sh) into /tmp/site, points SAHARANK_CACHE at the carried CT
# and defines `saharank` (the console script is not installed there: the working tree is used in place).
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" SAHARANK_CACHE="$PWD/.device/cache" PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/device-out}; mkdir -p "$OUT"
saharank() { python3 -m saharank "$@"; }
