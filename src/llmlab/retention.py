"""Retention: when is a concept due for a re-probe?

Default model: FSRS (the `fsrs` package), one card per concept. Observations are
collapsed to one review per UTC day (the day's mean quality), since FSRS models spaced
recall, not repetition within a sitting. A concept is due when its predicted recall
at `now` falls below the desired retention. Fallback: a fixed age rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from fsrs import Card, Rating, Scheduler


@cache
def scheduler(desired_retention: float = 0.9) -> Scheduler:
    return Scheduler(desired_retention=desired_retention, learning_steps=(),
                     relearning_steps=(), enable_fuzzing=False)


def rating(quality: float) -> Rating:
    """Map an exchange quality in [0, 1] to an FSRS rating."""
    if quality < 0.4:
        return Rating.Again
    if quality < 0.6:
        return Rating.Hard
    if quality < 0.85:
        return Rating.Good
    return Rating.Easy


def _noon(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@dataclass
class DailyReviews:
    """An FSRS card plus the still-open day's qualities (folded incrementally)."""

    card: dict | None = None
    day: str | None = None
    total: float = 0.0
    count: int = 0

    def add(self, day: str, quality: float) -> None:
        if self.day is not None and day > self.day:
            self.card = _review(self.card, self.day, self.total / self.count)
            self.total, self.count = 0.0, 0
        if self.day is None or day > self.day:
            self.day = day
        self.total += quality
        self.count += 1

    def final_card(self) -> Card | None:
        if self.day is None:
            return None
        return Card.from_dict(_review(self.card, self.day, self.total / self.count))

    def recall(self, now: datetime, desired_retention: float = 0.9) -> float | None:
        card = self.final_card()
        if card is None:
            return None
        return float(scheduler(desired_retention).get_card_retrievability(card, now))

    def due(self, desired_retention: float = 0.9) -> datetime | None:
        card = self.final_card()
        return card.due if card else None

    def to_dict(self) -> dict:
        return {"card": self.card, "day": self.day, "total": self.total, "count": self.count}

    @classmethod
    def from_dict(cls, d: dict) -> DailyReviews:
        return cls(**d)


def _review(card: dict | None, day: str, quality: float) -> dict:
    c = Card.from_dict(card) if card else Card(card_id=0)
    c, _ = scheduler().review_card(c, rating(quality), _noon(day))
    return c.to_dict()
