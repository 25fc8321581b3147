"""Helpers shared by the knowledge-index tests: tiny real files of every type, packs in the
per-test ASSISTANT_HOME, an embedder wrapper that counts encode calls, and hit@k on a pack's eval
questions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from assistant.packs.locate import DomainPack
from assistant.settings import home_dir

# The shipped diabetes pack: 51 real MedQuAD pages and its eval set, in every checkout.
DIABETES = Path(__file__).resolve().parents[1] / "domains" / "diabetes"
FIXTURES = Path(__file__).parent / "fixtures" / "docs"


class CountingEmbedder:
    """The real embedder; counts `encode` calls and texts encoded."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.calls = 0
        self.texts = 0

    def encode(self, texts: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.texts += len(texts)
        return self.model.encode(texts, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.model, name)


def make_pack(name: str = "kb") -> DomainPack:
    """An empty user pack in this test's ASSISTANT_HOME (find_pack finds it there)."""
    root = home_dir() / "packs" / name
    (root / "docs").mkdir(parents=True, exist_ok=True)
    return DomainPack(name, root)


def write_pdf(path: Path, pages: list[str]) -> Path:
    """A real PDF with one line of text per page (matplotlib, TrueType fonts)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages

    with plt.rc_context({"pdf.fonttype": 42}), PdfPages(path) as pdf:
        for text in pages:
            figure = plt.figure(figsize=(8.5, 11))
            figure.text(0.1, 0.9, text)
            pdf.savefig(figure)
            plt.close(figure)
    return path


def write_docx(path: Path) -> Path:
    """A real DOCX with a title, two headed sections and body paragraphs."""
    import docx

    document = docx.Document()
    document.add_heading("Pump Manual", level=0)
    document.add_paragraph("This manual covers the Model Z insulin pump.")
    document.add_heading("Changing the cartridge", level=1)
    document.add_paragraph("Replace the cartridge every three days and prime the tubing.")
    document.add_heading("Alarms", level=1)
    document.add_paragraph("An occlusion alarm means insulin cannot flow; check the infusion set.")
    document.save(str(path))
    return path


def eval_questions(pack_dir: Path, split: str | None = "dev") -> list[dict]:
    """The pack's eval questions of `split` (None: all) that name their source document."""
    lines = [json.loads(line) for line in (pack_dir / "eval" / "qa.jsonl").open()]
    return [q for q in lines if split in (None, q.get("split")) and q.get("source")]


def hit_at_k(index, questions: list[dict], k: int = 5) -> float:
    """The share of questions whose source document is among the top `k` hybrid hits."""
    found = sum(
        q["source"] in {h.path for h in index.search(q["question"], k=k)} for q in questions
    )
    return found / len(questions)
