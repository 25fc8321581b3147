"""Write the auto-routing eval file: every question of the shipped packs' eval sets once, with
`domain` = the pack whose in-scope questions include it, or null when it belongs to no pack
(the everyday off-topic ones). Used by scripts/eval_all.sh for `assistant eval --auto`.

    .venv/bin/python scripts/routing_qa.py > docs/eval/routing/qa.jsonl
"""

from __future__ import annotations

import json
import sys

from assistant.packs.locate import list_packs


def main() -> None:
    rows: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for pack in list_packs():
        for line in pack.eval_file.read_text("utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            rows.setdefault(row["question"], row)
            if not row.get("out_of_scope"):
                owner[row["question"]] = pack.name
                rows[row["question"]] = row
    for question, row in rows.items():
        domain = owner.get(question)
        out = {k: row[k] for k in ("question", "answer", "source", "facts") if k in row}
        out.update(domain=domain, out_of_scope=domain is None)
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
