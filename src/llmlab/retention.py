"""Retention: when is a concept due for a re-probe?

Default model: FSRS (the `fsrs` package), one card per concept. Observations are
collapsed to one review per UTC day (the day's mean quality, reviewed at noon UTC), since
FSRS models spaced recall, not repetition within a sitting. A concept is due when its
predicted recall at `now` falls below the desired retention. Fallback: a fixed age rule.

Speed. At a realistic density (at most one observation per concept per day) every
observation folds one review, and `Scheduler.review_card` costs ~45 us (it copies the
Card, builds datetimes and a ReviewLog): more than the whole budget of a 100,000 events/s
rebuild. So the fold keeps the card as two floats and a day number and steps them with
`FastReviews`, the library's own formulas for this one scheduler configuration (no
learning or relearning steps, no fuzzing, reviews whole days apart), written as the same
float operations in the same order, so the results are bit-identical. The library stays
the source of truth: its parameters are read from the `Scheduler`, and the first use in a
process checks `FastReviews` against `review_card` on a set of review sequences; if they
differ in any bit (a new `fsrs` release changed the math), every review goes through the
library instead. `tests/test_fold_equivalence.py` checks the same on generated sequences.
The card is turned into the library's `Card` dict only where it leaves the fold (the
snapshot, `final_card`). Nothing in the fold reads the card, so the fold hands the
concept-days that end to `close_days` in batches (one loop, not three calls per review)
and closes the last batch before it returns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache

from fsrs import Card, Rating, Scheduler, State

_NOON = "T12:00:00+00:00"  # a review's time: noon UTC of its day (Card.to_dict's isoformat)


# A card as the fold keeps it: (stability, difficulty, ordinal of the last review's day,
# ordinal of the due day or None when the fast stepper computes it from the stability).
Review = tuple[float, float, int, "int | None"]


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


class FastReviews:
    """`Scheduler.review_card` for `scheduler()`'s configuration, on floats.

    A card is (stability, difficulty); a review is its rating (1-4) and the whole days since
    the last review (None for the first). Each line mirrors the library's expression
    (fsrs 6.x `scheduler.py`, the method named in the comment) operation for operation:
    floating-point results depend on the order of operations, and equality is exact.
    """

    def __init__(self, s: Scheduler):
        w = s.parameters
        self.w = w
        self.decay, self.factor = s._DECAY, s._FACTOR
        self.max_interval = s.maximum_interval
        # _next_interval: (stability / factor) * (desired_retention ** (1 / decay) - 1)
        self.interval_scale = (s.desired_retention ** (1 / s._DECAY)) - 1
        # Constant parts of the expressions, computed as the library computes them. Where the
        # library multiplies by a rating's factor of 1 (hard_penalty, easy_bonus), x * 1 is x.
        self.e8 = math.e ** w[8]  # _next_recall_stability
        self.bonus = (None, None, w[15], 1.0, w[16])  # hard_penalty * easy_bonus, by rating
        self.forget_short = math.e ** (w[17] * w[18])  # _next_forget_stability
        # _next_difficulty: delta by rating; mean reversion towards _initial_difficulty(Easy)
        self.delta = tuple(-(w[6] * (r - 3)) for r in range(5))
        self.revert = w[7] * (w[4] - (math.e ** (w[5] * (Rating.Easy - 1))) + 1)
        self.keep = 1 - w[7]

    def first(self, r: int) -> tuple[float, float]:
        """A new card's first review (`review_card`, state Learning, no learning steps)."""
        w = self.w
        stability = max(w[r - 1], 0.001)  # _initial_stability, _clamp_stability
        d = w[4] - (math.e ** (w[5] * (r - 1))) + 1  # _initial_difficulty
        return stability, min(max(d, 1.0), 10.0)  # _clamp_difficulty

    def review(self, stability: float, difficulty: float, elapsed: int,
               r: int) -> tuple[float, float]:
        """A Review-state card reviewed `elapsed` >= 1 whole days after its last review.
        (`x if x >= lo else lo` is `max(x, lo)`, NaN included, without the call.)"""
        w = self.w
        # get_card_retrievability
        retr = (1 + self.factor * elapsed / stability) ** self.decay
        if r == 1:  # _next_forget_stability
            long_term = (w[11] * (difficulty ** -w[12]) * (((stability + 1) ** (w[13])) - 1)
                         * (math.e ** ((1 - retr) * w[14])))
            short_term = stability / self.forget_short
            new_s = short_term if short_term < long_term else long_term  # min()
        else:  # _next_recall_stability
            new_s = stability * (1 + self.e8 * (11 - difficulty) * (stability ** -w[9])
                                 * ((math.e ** ((1 - retr) * w[10])) - 1) * self.bonus[r])
        new_s = 0.001 if 0.001 > new_s else new_s  # _clamp_stability: max(new_s, 0.001)
        # _next_difficulty: linear damping, then mean reversion, then the clamp
        arg_2 = difficulty + (10.0 - difficulty) * self.delta[r] / 9.0
        d = self.revert + self.keep * arg_2
        d = 1.0 if 1.0 > d else d
        return new_s, 10.0 if 10.0 < d else d

    def interval(self, stability: float) -> int:
        """_next_interval: whole days until due."""
        days = round((stability / self.factor) * self.interval_scale)
        return min(max(days, 1), self.max_interval)


def _library_review(card: Review | None, day: str, r: int) -> Card:
    """One review through `Scheduler.review_card` (the reference, and the fallback)."""
    noon = _noon(day)
    if card is None:
        c = Card(card_id=0, due=noon)
    else:
        c = Card.from_dict(_card_dict(card))
    return scheduler().review_card(c, Rating(r), noon)[0]


def _agrees(fast: FastReviews) -> bool:
    """Does `fast` give the library's cards, to the bit, on a spread of review sequences?"""
    for seq in ((1, 1, 2, 3, 4, 4, 1, 3), (4, 4, 4, 1, 1, 2, 2, 3), (2, 3, 1, 4, 2, 1, 3, 3),
                (3, 3, 3, 3, 2, 4, 1, 4)):
        ours: Review | None = None
        lib: Review | None = None
        day = date(2020, 1, 1).toordinal()
        for r, gap in zip(seq, (1, 2, 7, 30, 1, 400, 3, 90)):
            day += gap
            ours = _step(fast, ours, day, r)
            c = _library_review(lib, date.fromordinal(day).isoformat(), r)
            lib = (c.stability, c.difficulty, day, _ordinal(c.due.date().isoformat()))
            if _card_dict(ours, fast) != c.to_dict():
                return False
    return True


@cache
def fast_reviews() -> FastReviews | None:
    """The float stepper when it agrees with the installed `fsrs`, else None (the library)."""
    global _fast
    try:
        fast = FastReviews(scheduler())
        _fast = fast if _agrees(fast) else None
    except Exception:  # a release that renamed what FastReviews reads: the library alone
        _fast = None
    return _fast


_fast: FastReviews | None = None  # fast_reviews(), once it has run


def _ordinal(day: str) -> int:
    return date.fromisoformat(day).toordinal()


@dataclass(slots=True)
class DailyReviews:
    """An FSRS card plus the still-open day's qualities, folded incrementally."""

    card: Review | None = None
    day: str | None = None
    total: float = 0.0
    count: int = 0

    def add(self, day: str, quality: float) -> None:
        if self.day is None or day > self.day:  # a new day: the open one becomes a review
            if self.day is not None:
                self.card = _review(self.card, self.day, self.total / self.count)
            self.day, self.total, self.count = day, 0.0 + quality, 1
        else:
            self.total += quality
            self.count += 1

    def final_card(self) -> Card | None:
        if self.day is None:
            return None
        return Card.from_dict(_card_dict(_review(self.card, self.day, self.total / self.count)))

    def recall(self, now: datetime, desired_retention: float = 0.9) -> float | None:
        card = self.final_card()
        if card is None:
            return None
        return float(scheduler(desired_retention).get_card_retrievability(card, now))

    def due(self, desired_retention: float = 0.9) -> datetime | None:
        card = self.final_card()
        return card.due if card else None

    def to_dict(self) -> dict:
        """The snapshot's form: the card as `fsrs.Card.to_dict` writes it."""
        return {"card": None if self.card is None else _card_dict(self.card), "day": self.day,
                "total": self.total, "count": self.count}

    @classmethod
    def from_dict(cls, d: dict) -> DailyReviews:
        c = d["card"]
        card = None if not c else (float(c["stability"]), float(c["difficulty"]),
                                   _ordinal(c["last_review"][:10]), _ordinal(c["due"][:10]))
        return cls(card=card, day=d["day"], total=d["total"], count=d["count"])


def _step(fast: FastReviews, card: Review | None, today: int, r: int) -> Review:
    if card is None:
        s, d = fast.first(r)
    else:
        s, d = fast.review(card[0], card[1], today - card[2], r)
    return s, d, today, None


@lru_cache(maxsize=4096)
def _day_ordinal(day: str) -> int:
    """`date.fromisoformat(day).toordinal()`, cached: a day's events share it."""
    return date.fromisoformat(day).toordinal()


def _review(card: Review | None, day: str, quality: float) -> Review:
    """Fold the review of `day` (mean quality `quality`) into `card` (None: a new card)."""
    fast = _fast or fast_reviews()
    if fast is not None:  # `_step` and `rating`, inlined: once per concept-day in a rebuild
        r = 1 if quality < 0.4 else 2 if quality < 0.6 else 3 if quality < 0.85 else 4
        today = _day_ordinal(day)
        if card is None:
            s, d = fast.first(r)
        else:
            s, d = fast.review(card[0], card[1], today - card[2], r)
        return s, d, today, None
    c = _library_review(card, day, rating(quality))
    return c.stability, c.difficulty, _ordinal(day), _ordinal(c.due.date().isoformat())


def close_days(closed: list[tuple[DailyReviews, str, float]]) -> None:
    """Fold each ended concept-day, (reviews, day, mean quality) in the order they ended,
    into its reviews' card, then empty `closed`: `_review` in one loop (the fold's batch of
    what `DailyReviews.add` does when a new day opens)."""
    fast = _fast or fast_reviews()
    if fast is None:
        for rv, day, quality in closed:
            rv.card = _review(rv.card, day, quality)
    else:
        first, review, ordinal = fast.first, fast.review, _day_ordinal
        for rv, day, quality in closed:
            r = 1 if quality < 0.4 else 2 if quality < 0.6 else 3 if quality < 0.85 else 4
            today = ordinal(day)
            card = rv.card
            if card is None:
                s, d = first(r)
            else:
                s, d = review(card[0], card[1], today - card[2], r)
            rv.card = s, d, today, None
    closed.clear()


def _card_dict(card: Review, fast: FastReviews | None = None) -> dict:
    """`Card.to_dict()` of the card the library would hold: state Review (no learning
    steps), reviewed at noon, due the interval its stability gives later."""
    s, d, reviewed, due = card
    if due is None:
        due = reviewed + (fast or fast_reviews()).interval(s)
    return {"card_id": 0, "state": State.Review.value, "step": None, "stability": s,
            "difficulty": d, "due": date.fromordinal(due).isoformat() + _NOON,
            "last_review": date.fromordinal(reviewed).isoformat() + _NOON}
