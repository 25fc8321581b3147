#!/usr/bin/env bash
# Regenerate docs/eval/: every pack on its eval/qa.jsonl in four configurations (base /
# base+rag / adapter / adapter+rag) -> report.md, results.json, one ablation chart per pack; and
# auto-routing over all packs' questions -> routing/report.md (answers cut to 1 token there:
# only the routing and decline figures of that report are meaningful).
# Slow on a CPU: EVAL_LIMIT questions per pack (default 12) x 4 configurations x 4 packs.
#   scripts/eval_all.sh                 EVAL_LIMIT=6 scripts/eval_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
"$PY" -m assistant.cli eval --all --ablate --report docs/eval \
    --limit "${EVAL_LIMIT:-12}" --max-tokens "${EVAL_MAX_TOKENS:-96}" "$@"
mkdir -p docs/eval/routing
"$PY" scripts/routing_qa.py > docs/eval/routing/qa.jsonl
"$PY" -m assistant.cli eval --auto --qa docs/eval/routing/qa.jsonl --max-tokens 1 \
    --report docs/eval/routing
