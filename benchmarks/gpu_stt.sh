#!/usr/bin/env bash
# Whisper throughput of the offline STT stage: cpu int8, cuda float16 and cuda int8_float16, in
# call-audio seconds per wall second, on the bundled demo calls repeated to ~5 minutes of audio
# (details in benchmarks/gpu_stt.py). Meant for a GPU machine with no network: it needs the
# repo's .venv (created or copied there beforehand; nothing is installed here). Without CUDA it
# prints the CPU numbers, a "no CUDA" line per GPU configuration, and exits 0.
#
#   benchmarks/gpu_stt.sh [--repeat 2] [--configs cpu:int8,cuda:float16,cuda:int8_float16]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="$ROOT/.venv/bin/python"
if [[ ! -x "$PY" ]] || ! "$PY" -c "import faster_whisper, ctranslate2" >/dev/null 2>&1; then
    echo "gpu_stt: no usable virtual environment at $ROOT/.venv (it needs faster-whisper and" \
        "ctranslate2): run 'make install' on a machine with package access, then copy the repo" \
        "with its .venv here" >&2
    exit 2
fi
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
fi
cd "$ROOT"
exec "$PY" benchmarks/gpu_stt.py "$@"
