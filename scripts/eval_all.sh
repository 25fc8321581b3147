#!/usr/bin/env bash
# Regenerate docs/eval/ (report.md, results.json, one ablation chart per pack): every pack on
# its eval/qa.jsonl in four configurations (base / base+rag / adapter / adapter+rag).
# Slow on a CPU: EVAL_LIMIT questions per pack (default 12) x 4 configurations x 4 packs.
#   scripts/eval_all.sh                 EVAL_LIMIT=6 scripts/eval_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
exec "$PY" -m assistant.cli eval --all --ablate --report docs/eval \
    --limit "${EVAL_LIMIT:-12}" --max-tokens "${EVAL_MAX_TOKENS:-96}" "$@"
