"""Questions from outside every pack (everyday life) and helpers for decline examples.

The SFT lists and the EVAL lists are disjoint on purpose: evaluation must ask declines the
adapter never saw.
"""

from __future__ import annotations

import random

EVERYDAY_TRAIN = [
    "What's the weather going to be like tomorrow?",
    "Can you give me a recipe for banana bread?",
    "Who won the last football World Cup?",
    "Can you help me with my algebra homework?",
    "What's a good place to visit in Portugal in spring?",
    "How do I change a flat tire on my bike?",
    "Write me a short poem about the sea.",
    "What is the capital of Australia?",
    "How many calories are in a slice of pizza?",
    "Can you recommend a good science fiction novel?",
    "How do I get red wine out of a carpet?",
    "What time is it in Tokyo right now?",
    "How do I make sourdough starter?",
    "Who painted the Mona Lisa?",
    "What's the best way to learn Spanish quickly?",
    "How do I train my puppy to sit?",
    "Which phone should I buy this year?",
    "Can you explain how a stock market index works?",
    "What should I pack for a week of camping?",
    "How do I tie a bow tie?",
    "Tell me a joke about cats.",
    "How long should I boil an egg for a runny yolk?",
    "What are the rules of cricket?",
    "How do I grow tomatoes on a balcony?",
    "Can you translate 'good morning' into French?",
    "Is it cheaper to fly or take the train from Paris to Berlin?",
    "How do I write a cover letter for a job application?",
    "What's the plot of Hamlet?",
    "How do volcanoes form?",
    "What is the best exercise for strong shoulders?",
]

EVERYDAY_EVAL = [
    "Will it rain in London this weekend?",
    "How do I bake chocolate chip cookies?",
    "Who holds the record for the men's 100 metres?",
    "Can you solve this equation for me: 3x + 5 = 20?",
    "What are the best beaches in Greece?",
    "How do I unclog a kitchen sink?",
    "What's the population of Canada?",
    "Can you suggest a name for my goldfish?",
    "How do I knit a scarf?",
    "What year did the Berlin Wall fall?",
]


def decline_variants(message: str, topic: str) -> list[str]:
    """The pack's decline message and a few short variants that keep its gist."""
    return [
        message,
        f"That question is outside what I can help with here. I only answer questions about {topic}, using the documents in this pack.",
        f"Sorry, I can't help with that one. I only know about {topic}, from the documents in this pack.",
    ]


def decline_rows(
    persona: str, message: str, topic: str, questions: list[str], seed: int
) -> list[dict]:
    rng = random.Random(seed)
    variants = decline_variants(message, topic)
    rows = []
    for i, q in enumerate(questions):
        reply = variants[0] if i % 2 == 0 else rng.choice(variants[1:])
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": persona},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": reply},
                ],
                "facts": [],
                "kind": "decline_offtopic",
            }
        )
    return rows


def no_passage_rows(persona: str, items: list[tuple[str, str, str]], seed: int) -> list[dict]:
    """items: (question, what it asks about, who to ask instead)."""
    rng = random.Random(seed)
    openers = [
        "The documents here do not cover {what}.",
        "I could not find anything about {what} in the documents here.",
        "The documents in this pack do not say anything about {what}.",
    ]
    rows = []
    for q, what, who in items:
        opener = rng.choice(openers).format(what=what)
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": persona},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": f"{opener} {who}"},
                ],
                "facts": [],
                "kind": "no_passage",
            }
        )
    return rows


def pick_cross_pack(
    questions_by_pack: dict[str, list[str]], own: str, per_pack: int, seed: int
) -> list[str]:
    rng = random.Random(seed)
    out = []
    for name in sorted(questions_by_pack):
        if name == own:
            continue
        qs = sorted(set(questions_by_pack[name]))
        rng.shuffle(qs)
        out.extend(qs[:per_pack])
    return out
