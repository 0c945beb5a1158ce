#!/usr/bin/env bash
# Claim 4's study on one GPU (issue 20): the sweep runs/claim4_formats_gpu.toml, then its reader.
#
#   OUT=/tmp/claim4-out bash benchmarks/claim4_gpu.sh
#
# Planned for about ten minutes on one H100/H200 (12 RL runs, 6 bases; 4 jobs share the GPU at
# num_gpus = 0.25). Writes into $OUT: env.txt, sweep.log, claim4.md (the reader's tables and
# verdict) and store.tgz (the runs, to read again anywhere with benchmarks/claim4_formats.py).
set -u
OUT=${OUT:-/tmp/claim4-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export RLSCALE_CACHE=${RLSCALE_CACHE:-/tmp/rlscale-cache}
PY=${PY:-python3}
{ nvidia-smi -L; $PY -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"; } \
  2>&1 | tee "$OUT/env.txt"
STORE=/tmp/claim4-store
timeout 540 $PY -m rlscale sweep runs/claim4_formats_gpu.toml --store "$STORE" --resume \
  --executor local --workers 4 --refresh 30 2>&1 | tee "$OUT/sweep.log"
$PY benchmarks/claim4_formats.py "$STORE" 2>&1 | tee "$OUT/claim4.md"
tar czf "$OUT/store.tgz" -C "$(dirname "$STORE")" "$(basename "$STORE")"
