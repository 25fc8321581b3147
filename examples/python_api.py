"""Use assistant from Python: list the packs, ask one question, stream another.

Run: `.venv/bin/python examples/python_api.py [--max-tokens 96]`
(the packs' indexes must be built: `assistant index rebuild NAME`).
"""

from __future__ import annotations

import argparse

from assistant import Assistant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-tokens", type=int, default=96, help="most tokens per answer")
    args = parser.parse_args()

    a = Assistant()
    print("packs:", ", ".join(p.name for p in a.packs()))

    # One answer from a named pack: the Answer record holds the text, sources and timings.
    answer = a.ask("diabetes", "What is hypoglycemia?", max_tokens=args.max_tokens)
    print(f"\n[{answer.pack}] {answer.answer}")
    for source in answer.sources:
        mark = "*" if source.cited else " "
        print(f" {mark}[{source.number}] {source.path} § {source.section}")

    # Streaming, with the router picking the pack (or declining); the record is there at the end.
    print()
    stream = a.stream(None, "How do I share a folder with Syncthing?", max_tokens=args.max_tokens)
    for piece in stream:
        print(piece, end="", flush=True)
    final = stream.answer
    print(f"\n(pack: {final.pack}, first token after {final.timings.first_token_ms:.0f} ms)")

    # A question no pack covers is declined, with the list of packs.
    declined = a.ask(None, "Who won the 2018 World Cup?")
    print(f"\ndeclined: {declined.declined} - {declined.answer}")


if __name__ == "__main__":
    main()
