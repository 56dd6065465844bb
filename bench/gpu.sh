#!/usr/bin/env bash
# The GPU benchmark of docs/performance.md, as one command for a lent GPU machine that has PyTorch but
# not emocli's other dependencies and no internet. Prints the table and JSON lines, and copies them to $OUT.
#
# Before the call, on the development machine, in the repo root (the tree that travels must stay under 64 MiB):
#   mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#       -d .whl ffmpeg-python future chardet silero-vad ftfy wcwidth imageio-ffmpeg==0.6.0
#   pip wheel --no-deps -w .whl pysrt             # sdist only on PyPI
#   python -c "from transformers import AutoTokenizer; from emocli.model.encoders import resolve_encoder; \
#       AutoTokenizer.from_pretrained(resolve_encoder('minilm')).save_pretrained('.whl/tokenizer')"
#       # the random BERT's tokenizer: the 88 MB MiniLM package does not travel
#   mv weights/default/model.safetensors /tmp/    # 90 MB; the bench's models are random (put it back after)
# (imageio-ffmpeg 0.6.0: its wheel is 29 MB, 0.8's is 68 MB.) Then run `bash bench/gpu.sh` with .whl carried.
set -euo pipefail
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
extra=()
[ -d .whl/tokenizer ] && extra=(--tokenizer .whl/tokenizer)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
out="${OUT:-bench/results}"
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 bench/annotate.py --minutes 22 --cues 350 --model base --device cuda --batch-size 64 --repeat 3 \
    --naive --naive-limit 40 "${extra[@]}" "$@" 2>&1 | tee "$out/gpu-annotate.txt"
