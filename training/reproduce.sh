#!/usr/bin/env bash
# Reproduce the shipped default model (weights/default) from a fresh clone, then score it on MELD dev and test.
# Usage: bash training/reproduce.sh [MELD_DIR] [OUT_DIR]      (defaults: ../shared/data/meld, weights/default)
# Takes about 25-30 minutes on a 2-core CPU. The recipe is the one chosen on dev in training/results/selection.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MELD=${1:-../shared/data/meld}
OUT=${2:-weights/default}
if [ ! -x .venv/bin/emocli ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q -e .
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/emocli train --meld "$MELD" --out "$OUT" --modalities text --text-encoder minilm \
  --context 2 --context-after 1 --pooling utterance --ascii-quotes \
  --finetune-layers 6 --finetune-embeddings --sentiment-weight 0.5 --epochs 3 --patience 3 --batch-size 32 \
  --lr 1e-3 --encoder-lr 8e-5 --dropout 0.1 --class-weighting sqrt --seed 2 --device cpu
.venv/bin/emocli evaluate "$OUT" --meld "$MELD" --split dev -o training/results/dev --record
# test is evaluated once, after the recipe was chosen on dev
.venv/bin/emocli evaluate "$OUT" --meld "$MELD" --split test -o training/results/test --record
