"""Markdown report and ablation chart for `assistant eval --report DIR`.

`write_report({pack: [EvalReport, ...]}, DIR)` writes DIR/report.md (metric tables, one chart
per pack, the worst items with their answers and retrieved passages) and DIR/results.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from assistant.evaluation.results import METRIC_NAMES, EvalItem, EvalReport

CHART_METRICS = [
    "hit_at_k", "context_fact_recall", "answer_fact_recall", "token_f1", "rouge_l",
    "citation_precision", "style_rate", "oos_decline_rate", "in_scope_answer_rate",
]  # fmt: skip


def fmt(value: float | None, name: str = "") -> str:
    if value is None:
        return "–"
    if name.endswith("_ms"):
        return f"{value:,.0f}"
    if name == "tokens_per_s":
        return f"{value:.1f}"
    return f"{value:.2f}"


def metrics_table(reports: Sequence[EvalReport], label: str = "config") -> str:
    """One Markdown table: a row per report, a column per metric that any report has."""
    names = [n for n in METRIC_NAMES if any(r.metrics.get(n) is not None for r in reports)]
    rows = [f"| {label} | split | n | " + " | ".join(names) + " |", "|---" * (len(names) + 3) + "|"]
    for r in reports:
        key = r.config if label == "config" else (r.pack or "auto")
        cells = [fmt(r.metrics.get(n), n) for n in names]
        rows.append(f"| {key} | {r.split} | {r.n} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def ablation_chart(reports: Sequence[EvalReport], path: Path, title: str) -> Path:
    """Grouped bars: a group per quality metric, a bar per configuration (PNG, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in CHART_METRICS if any(r.metrics.get(n) is not None for r in reports)]
    width = 0.8 / max(len(reports), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(names)), 3.8), dpi=110)
    for j, report in enumerate(reports):
        values = [report.metrics.get(n) or 0.0 for n in names]
        xs = [i + (j - (len(reports) - 1) / 2) * width for i in range(len(names))]
        ax.bar(xs, values, width, label=report.config)
    ax.set_xticks(range(len(names)), [n.replace("_", "\n", 1) for n in names], fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncols=min(4, len(reports)), loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def badness(item: EvalItem) -> float:
    """Lower is worse: fact recall (or ROUGE-L) for in-scope items, 1/0 for declining OOS."""
    if item.out_of_scope:
        return 1.0 if item.declined else 0.0
    for key in ("answer_fact_recall", "rouge_l", "token_f1"):
        if item.scores.get(key) is not None:
            return float(item.scores[key])
    return 0.0 if item.declined else 1.0


def worst_items(report: EvalReport, n: int = 10) -> list[EvalItem]:
    return sorted(report.items, key=lambda i: (badness(i), i.line))[:n]


def _quote(text: str, limit: int = 400) -> str:
    text = " ".join((text or "").split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return "> " + text.replace("|", "\\|")


def item_markdown(item: EvalItem) -> str:
    lines = [f"**line {item.line}** — {item.question}", ""]
    expect = "out of scope (should decline)" if item.out_of_scope else f"source `{item.source}`"
    lines.append(f"- expected: {expect}; facts: {', '.join(item.facts) or '–'}")
    lines.append(f"- found: {', '.join(item.facts_found) or '–'}; declined: {item.declined}")
    lines += ["- answer:", "", _quote(item.answer, 600), ""]
    if item.reference:
        lines += ["- reference:", "", _quote(item.reference), ""]
    for s in item.sources:
        mark = " (cited)" if s.get("cited") else ""
        lines.append(f"- passage [{s.get('number')}] `{s.get('path')}`{mark}:")
        lines += ["", _quote(s.get("text", ""), 300), ""]
    return "\n".join(lines)


def write_report(results: dict[str, list[EvalReport]], out_dir: Path) -> Path:
    """Write report.md, the charts and results.json under out_dir; returns report.md."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["# Evaluation report", "", "Regenerate with `scripts/eval_all.sh`; metric"
             " definitions in [METRICS.md](METRICS.md).", ""]  # fmt: skip
    finals = [reports[-1] for reports in results.values() if reports]
    if len(finals) > 1:
        parts += ["## All packs (full system)", "", metrics_table(finals, label="pack"), ""]
    for name, reports in results.items():
        if not reports:
            continue
        final = reports[-1]
        parts += [f"## {name}", "", metrics_table(reports), ""]
        problems = final.problems
        if problems:
            parts.append("Skipped lines: " + "; ".join(f"{p.line}: {p.message}" for p in problems))
            parts.append("")
        if final.confusion:
            parts += ["Routing (expected → routed):", ""]
            parts += [f"- {e}: {routed}" for e, routed in final.confusion.items()] + [""]
        if len(reports) > 1:
            chart = ablation_chart(reports, out_dir / f"{name}-ablation.png", f"{name}: ablation")
            parts += [f"![{name} ablation]({chart.name})", ""]
        parts += [f"### {name}: worst items ({final.config})", ""]
        parts += [item_markdown(i) for i in worst_items(final)]
    report = out_dir / "report.md"
    report.write_text("\n".join(parts).rstrip() + "\n", encoding="utf-8")
    summary = {
        name: {r.config: {"n": r.n, "metrics": r.metrics} for r in reports}
        for name, reports in results.items()
    }
    (out_dir / "results.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return report
