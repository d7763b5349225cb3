"""What the builtin engine returns, and the error it raises instead of guessing."""

from __future__ import annotations

from dataclasses import dataclass, field


class BuiltinCannotAnswer(Exception):
    """The question (or instruction) has a part the engine could not map; the message names it."""


@dataclass
class BuiltinAnswer:
    sql: str
    confidence: float
    explanation: str
    assumptions: list[str] = field(default_factory=list)  # choices made between equally good readings
