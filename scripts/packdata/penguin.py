"""Penguin-wood pack: the corpus QA is already in the mentor voice; eval is handwritten."""

from __future__ import annotations

import re
from pathlib import Path

from .common import read_jsonl

# Handwritten evaluation questions, none repeating a training question. (question, answer,
# source file, facts); every fact occurs literally in the source document.
EVAL = [
    (
        "How many islands make up the Calloway Archipelago?",
        "It is a chain of 23 cold, windswept islands in the far southern ocean.",
        "01_origin_and_species.md",
        ["23 cold, windswept islands", "far southern ocean"],
    ),
    (
        "What do the islanders call the living penguin wood tree?",
        'Islanders call it the "tuxedo tree"; old sealing records call it "kelpbark".',
        "01_origin_and_species.md",
        ["tuxedo tree", "kelpbark"],
    ),
    (
        "How wide is the sapwood on a penguin wood log?",
        "The sapwood is a narrow outer zone 15–25 mm wide, pale grey and without banding.",
        "01_origin_and_species.md",
        ["15–25 mm", "pale grey"],
    ),
    (
        "On which islands are the commercial stands of penguin wood?",
        "Commercial stands exist only on Brennick Island and Sula Mor.",
        "01_origin_and_species.md",
        ["Brennick Island", "Sula Mor"],
    ),
    (
        "How many stems per hectare may be removed under the harvest rules?",
        "No more than 4 stems per hectare may be removed in any 15-year cutting cycle.",
        "01_origin_and_species.md",
        ["4 stems per hectare", "15-year cutting cycle"],
    ),
    (
        "How close to a penguin colony or a stream can trees be felled?",
        "No felling within 200 m of a penguin colony or within 30 m of a stream.",
        "01_origin_and_species.md",
        ["200 m", "30 m of a stream"],
    ),
    (
        "What is the compressive strength of penguin wood across the grain?",
        "Compressive strength perpendicular to grain is 7.8 MPa.",
        "02_physical_properties.md",
        ["7.8 MPa", "perpendicular to grain"],
    ),
    (
        "How acidic is penguin wood?",
        "Its pH is 4.3; the acidity comes from sabline and stains or corrodes plain steel in damp conditions.",
        "02_physical_properties.md",
        ["4.3", "sabline"],
    ),
    (
        "Can penguin wood be used in ground contact?",
        "No. The heartwood is Class 3, moderately durable, and is not suitable for ground contact.",
        "02_physical_properties.md",
        ["Class 3", "not suitable for ground contact"],
    ),
    (
        "How soon after sawing must penguin wood boards be end-sealed?",
        "End-seal with a wax emulsion within 24 hours of sawing, or end checks will open along the ivory bands.",
        "03_moisture_and_seasoning.md",
        ["wax emulsion", "within 24 hours"],
    ),
    (
        "How should I sticker penguin wood for air drying?",
        "Use stickers 19 mm thick, spaced every 400 mm, aligned vertically from layer to layer.",
        "03_moisture_and_seasoning.md",
        ["19 mm thick", "every 400 mm"],
    ),
    (
        "How long does 50 mm penguin wood stock take in the kiln?",
        "Multiply every K-7 stage time by 2.2, giving about 35 days in total.",
        "03_moisture_and_seasoning.md",
        ["2.2", "35 days"],
    ),
    (
        "What bandsaw blade should I use to resaw penguin wood for bookmatching?",
        "A 19 mm wide blade, 3 TPI, with a 10° hook, fully tensioned; rest resawn boards 48 hours.",
        "05_cutting_and_saw_blades.md",
        ["3 TPI", "10° hook", "48 hours"],
    ),
    (
        "How deep should the scoring pass be with a track saw on flat-sawn faces?",
        "Make a scoring pass 2 mm deep first, then the full-depth cut, at about 1.5 m/min.",
        "05_cutting_and_saw_blades.md",
        ["2 mm deep", "1.5 m/min"],
    ),
    (
        "What pilot and clearance holes does a No. 10 screw need in penguin wood?",
        "A 3.5 mm pilot hole and a 5.5 mm clearance hole.",
        "06_drilling_and_fastening.md",
        ["3.5 mm", "5.5 mm"],
    ),
    (
        "How far should screw threads reach into the receiving piece?",
        "The threaded part should reach at least 25 mm into the receiving piece.",
        "06_drilling_and_fastening.md",
        ["25 mm into the receiving piece"],
    ),
    (
        "What speed should I run a 35 mm Forstner bit for hinge cups?",
        "Run a 35 mm Forstner bit at 500 rpm.",
        "06_drilling_and_fastening.md",
        ["35 mm Forstner", "500 rpm"],
    ),
    (
        "What hole size do M8 threaded inserts need in penguin wood?",
        "M8 inserts need a 10 mm hole; keep them at least 20 mm from any edge.",
        "06_drilling_and_fastening.md",
        ["M8 inserts", "10 mm hole", "20 mm from any edge"],
    ),
    (
        "What are the open time and clamp time for liquid hide glue?",
        "Liquid hide glue has about 15 minutes of open time and needs 12 hours of clamp time.",
        "07_adhesives.md",
        ["15 minutes", "12 hours"],
    ),
    (
        "How long should PVA joints stay clamped before I take the clamps off?",
        "At least 45 minutes at 20 °C, and do not load the joint for 24 hours.",
        "07_adhesives.md",
        ["45 minutes", "24 hours"],
    ),
    (
        "How much clamp pressure should I use with epoxy on penguin wood?",
        "Only light pressure, 0.1–0.3 MPa, just enough to close the joint.",
        "07_adhesives.md",
        ["0.1–0.3 MPa"],
    ),
    (
        "What size ledger cleats should I use under fixed shelves?",
        "Use 22 × 45 mm ledgers screwed with No. 8 screws at 150 mm centres.",
        "08_vertical_joinery_and_clamping.md",
        ["22 × 45 mm", "150 mm"],
    ),
    (
        "How far apart should clamps be on an edge-glued panel?",
        "Space clamps about 250 mm apart, alternating above and below the panel.",
        "08_vertical_joinery_and_clamping.md",
        ["250 mm apart", "alternating above and below"],
    ),
    (
        "What sanding sequence should I use before an oil finish?",
        "Sand 120, 150, then 180 grit, and do not go finer than 220 grit before oil.",
        "09_finishing.md",
        ["180 grit", "220 grit"],
    ),
    (
        "How many coats of polymerised tung oil, and how long does it take to cure?",
        "3 coats, 24 hours apart; full cure takes about 14 days.",
        "09_finishing.md",
        ["24 hours apart", "14 days"],
    ),
    (
        "When is hearing protection needed in the penguin wood shop?",
        "Whenever noise exceeds 85 dB(A), which includes all sawing and planing.",
        "11_safety.md",
        ["85 dB(A)", "sawing and planing"],
    ),
    (
        "What air speed should the dust extraction ducts have?",
        "Use an M-class extractor with a duct air speed of at least 20 m/s.",
        "11_safety.md",
        ["M-class extractor", "20 m/s"],
    ),
    (
        "When should I use a mobile podium instead of a stepladder?",
        "If the working platform would be higher than 1.5 m, use a mobile podium or mobile tower.",
        "11_safety.md",
        ["1.5 m", "mobile podium"],
    ),
    (
        "How long can penguin wood boards be stored upright?",
        "Upright storage is acceptable for up to 14 days, in a rack such as an Ennis stand.",
        "14_storage_grading_buying.md",
        ["14 days", "Ennis stand"],
    ),
    (
        "How much extra timber should I order on top of the cut list?",
        "Add 30% to the net volume as a general rule, and up to 35% where band matching matters.",
        "14_storage_grading_buying.md",
        ["30%", "35%"],
    ),
]


# The persona ends every answer that touches safety with "Safety reminder: ...", but the
# corpus answers do so for 18 of 90 questions only, so the adapter never learned it (measured:
# 0 of 9 safety eval answers). Answers to questions on the persona's safety topics that lack
# one get a reminder for their topic. (topic words, reminder); first match wins.
REMINDERS = [
    (
        ("dust", "sand", "respirator", "mask"),
        "Safety reminder: run dust extraction and wear a respirator whenever you saw or sand.",
    ),
    (
        ("finish", "oil", "lacquer", "rag", "fire"),
        "Safety reminder: ventilate the room and lay oily rags flat to dry outdoors, away from heat.",
    ),
    (
        ("glue", "adhesive", "epoxy", "pva"),
        "Safety reminder: wear gloves with adhesives and keep the shop ventilated while they cure.",
    ),
    (
        ("blade", "saw", "router", "bit", "drill", "tool", "kerf"),
        "Safety reminder: unplug the tool before changing a blade or bit, and keep the guards on.",
    ),
    (
        ("lift", "heavy", "weigh", "ladder", "podium", "height", "scaffold", "tilt", "ceiling"),
        "Safety reminder: get a second person for heavy panels and work from a stable podium.",
    ),
    (
        ("protect", "glove", "goggle"),
        "Safety reminder: wear the protective equipment the task calls for, every time.",
    ),
]


def with_safety_reminder(question: str, answer: str) -> str:
    if "Safety reminder:" in answer:
        return answer
    words = re.findall(r"[a-z]+", question.lower())
    for topic, reminder in REMINDERS:
        if any(word.startswith(t) for word in words for t in topic):
            return f"{answer} {reminder}"
    return answer


def build(corpus: Path, persona: str, seed: int) -> tuple[list[dict], list[dict]]:
    rows = [
        {
            "messages": [
                {"role": "system", "content": persona},
                {"role": "user", "content": item["question"]},
                {
                    "role": "assistant",
                    "content": with_safety_reminder(item["question"], item["answer"]),
                },
            ],
            "source": item["source"],
            "facts": item["facts"],
            "kind": "answer",
        }
        for item in read_jsonl(corpus / "qa_train.jsonl")
    ]
    evals = [
        {"question": q, "answer": a, "source": f"docs/{src}", "facts": facts, "out_of_scope": False}
        for q, a, src, facts in EVAL
    ]
    return rows, evals
