#!/usr/bin/env bash
# Regenerate the pictures in docs/ from the example logs (seeded, synthetic ScaleRL-like curves).
# Run from the repository root: bash docs/img/make_images.sh
set -euo pipefail
store=$(mktemp -d)/store
trap 'rm -rf "$(dirname "$store")"' EXIT
for recipe in scalerl baseline; do
  for seed in 0 1; do
    python -m rlscale ingest "examples/${recipe}_seed${seed}.csv" --store "$store" \
      --recipe "$recipe" --set "seed=$seed"
  done
done
plot() { python -m rlscale plot --store "$store" --metric reward "$@"; }
plot --burn-in 1500 --max-x 10000 --out docs/img/curves.png
plot --kind raw --scale 1.5 --out docs/img/raw.png
plot --kind params --burn-in 1500 --scale 1.5 --out docs/img/params.png
plot --kind residuals --burn-in 1500 --scale 1.5 --out docs/img/residuals.png
plot --kind backtest --burn-in 1500 --cut 0.4 --scale 1.5 --out docs/img/backtest.png
