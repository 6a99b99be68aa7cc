#!/usr/bin/env bash
# make gpu-check, as the GPU machine runs it: that machine's own python3 (torch, transformers, lightning,
# torchmetrics, peft), no network, no pip index. Installs the wheels `make gpu-bundle` put in .gpu-bundle/whl when
# a module they provide is missing, puts this checkout on PYTHONPATH (no install), then runs gpu_check.py with the
# bundle's backbone. Arguments go to gpu_check.py (e.g. --sections env,memory). Exit status: gpu_check.py's
# (0 passed, 1 a section or check failed, 4 no CUDA device); 2 when the bundle is needed and missing.
set -u
cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-python3}
BUNDLE=${GPU_BUNDLE:-.gpu-bundle}
SITE=${GPU_CHECK_SITE:-/tmp/gpu_check_site}
if ! "$PYTHON" -c "import omegaconf" 2>/dev/null; then
    if ! ls "$BUNDLE"/whl/*.whl >/dev/null 2>&1; then
        echo "gpu-check: omegaconf is missing and $BUNDLE/whl holds no wheels: run 'make gpu-bundle' where pip works" \
             "and carry $BUNDLE (docs/benchmarks.md)"
        exit 2
    fi
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
        "$BUNDLE"/whl/*.whl || exit 2
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1
exec "$PYTHON" acceptance/gpu_check.py --model "$BUNDLE/all-MiniLM-L6-v2-bf16" "$@"
