"""What `assistant train` reports: the data's size and time estimate, then the run's steps,
wall time and loss curve."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

# progress(step, total steps, last loss or None), called after each optimizer step
Progress = Callable[[int, int, float | None], None]


@dataclass
class TrainReport:
    pack: str
    examples: int
    with_right_passage: int
    tokens: int
    steps: int
    estimated_seconds: float
    dry_run: bool = False
    wall_seconds: float = 0.0
    final_loss: float | None = None
    adapter_dir: str = ""
    losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
