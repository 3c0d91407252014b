"""Perturbations of one user's request, as pure functions of a case and a seeded generator.

Invariance perturbations return a changed copy of the case whose top-K list should stay the
same. Directional perturbations return a :class:`DirectionalCase`: two variants of the case
and the items to score, where the ``higher`` variant is expected to score above the ``lower``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace

from streamrec_spark.models.base import SECONDS_PER_DAY, Interaction, UserContext

PLATFORMS: tuple[str, ...] = ("ios", "android", "web")


@dataclass(frozen=True)
class Catalog:
    """Genres of the known items and the engagement-type items (high completion rate)."""

    genre_of: Mapping[int, str]
    items_by_genre: Mapping[str, tuple[int, ...]]
    engagement_items: frozenset[int]

    @classmethod
    def build(cls, genre_of: Mapping[int, str], engagement_items: frozenset[int]) -> Catalog:
        grouped: dict[str, list[int]] = {}
        for item, genre in sorted(genre_of.items()):
            grouped.setdefault(genre, []).append(item)
        return cls(dict(genre_of), {genre: tuple(items) for genre, items in grouped.items()}, engagement_items)


@dataclass(frozen=True)
class Case:
    """One sampled user: the history (ordered by time) and the request it is scored for."""

    history: tuple[Interaction, ...]
    context: UserContext


@dataclass(frozen=True)
class DirectionalCase:
    """Two variants of a case, compared on the mean score of ``candidates``.

    When ``baseline`` is not empty, the compared number is the mean score of ``candidates``
    minus the mean score of ``baseline``, so a shift of every score does not count.
    """

    higher: Case
    lower: Case
    candidates: tuple[int, ...]
    baseline: tuple[int, ...] = ()


def _new_session(rng: random.Random) -> str:
    return f"perturbed-{rng.getrandbits(64):016x}"


# -- invariance ------------------------------------------------------------------------------


def change_display_name(case: Case, rng: random.Random) -> Case:
    name = f"viewer-{rng.getrandbits(32):08x}"
    return replace(case, context=replace(case.context, display_name=name))


def jitter_timestamps(case: Case, rng: random.Random, max_shift_minutes: float) -> Case:
    """Move every event by a uniform shift in [-max, +max] minutes, never past the request."""
    shift = max_shift_minutes * 60.0
    history = tuple(
        replace(event, timestamp=min(event.timestamp + rng.uniform(-shift, shift), case.context.now - 1.0))
        for event in case.history
    )
    return replace(case, history=tuple(sorted(history, key=lambda event: event.timestamp)))


def switch_platform(case: Case, rng: random.Random) -> Case:
    """Send the request from the next platform in ios, android, web (ios when none was set)."""
    current = case.context.platform
    following = PLATFORMS[(PLATFORMS.index(current) + 1) % len(PLATFORMS)] if current in PLATFORMS else PLATFORMS[0]
    return replace(case, context=replace(case.context, platform=following))


def relabel_sessions(case: Case, rng: random.Random) -> Case:
    """Replace each session id by a new random one; events keep their grouping, nulls stay null."""
    mapping: dict[str, str] = {}
    history = []
    for event in case.history:
        if event.session_id is not None and event.session_id not in mapping:
            mapping[event.session_id] = _new_session(rng)
        history.append(replace(event, session_id=mapping.get(event.session_id) if event.session_id else None))
    return replace(case, history=tuple(history))


# -- directional -----------------------------------------------------------------------------


def _with_events(case: Case, events: list[Interaction]) -> Case:
    history = sorted([*case.history, *events], key=lambda event: event.timestamp)
    return replace(case, history=tuple(history))


def _pivot(catalog: Catalog, rng: random.Random) -> tuple[int, tuple[int, ...]] | None:
    """Pick a random item whose genre has other items; return it and those other items."""
    genres = sorted(genre for genre, items in catalog.items_by_genre.items() if len(items) >= 2)
    if not genres:
        return None
    genre = rng.choice(genres)
    item = rng.choice(catalog.items_by_genre[genre])
    return item, tuple(other for other in catalog.items_by_genre[genre] if other != item)


def add_genre_completions(case: Case, rng: random.Random, catalog: Catalog, completions: int) -> DirectionalCase | None:
    """Add completions of the user's least-watched genre; that genre's other items should rise."""
    counts = Counter(catalog.genre_of.get(event.item_id) for event in case.history)
    genres = sorted(genre for genre, items in catalog.items_by_genre.items() if len(items) > completions)
    if not genres:
        return None
    fewest = min(counts.get(genre, 0) for genre in genres)
    genre = rng.choice([genre for genre in genres if counts.get(genre, 0) == fewest])
    chosen = rng.sample(catalog.items_by_genre[genre], completions)
    session = _new_session(rng)
    now = case.context.now
    added = [
        Interaction(item, "complete", now - 600.0 * (index + 1), session, case.context.platform)
        for index, item in enumerate(chosen)
    ]
    candidates = tuple(item for item in catalog.items_by_genre[genre] if item not in chosen)
    return DirectionalCase(higher=_with_events(case, added), lower=case, candidates=candidates)


def add_recent_versus_old(
    case: Case, rng: random.Random, catalog: Catalog, recent_age_hours: float, old_age_days: float
) -> DirectionalCase | None:
    """Add one completion either recently or long ago; the recent one should raise its genre more."""
    picked = _pivot(catalog, rng)
    if picked is None:
        return None
    item, similar = picked
    session = _new_session(rng)
    now = case.context.now
    recent = Interaction(item, "complete", now - recent_age_hours * 3600.0, session, case.context.platform)
    old = Interaction(item, "complete", now - old_age_days * SECONDS_PER_DAY, session, case.context.platform)
    return DirectionalCase(higher=_with_events(case, [recent]), lower=_with_events(case, [old]), candidates=similar)


def add_completion_versus_skip(
    case: Case, rng: random.Random, catalog: Catalog, age_hours: float
) -> DirectionalCase | None:
    """Add one event on an item as a completion or as a skip; the completion should rank its genre higher."""
    picked = _pivot(catalog, rng)
    if picked is None:
        return None
    item, similar = picked
    session = _new_session(rng)
    timestamp = case.context.now - age_hours * 3600.0
    completed = Interaction(item, "complete", timestamp, session, case.context.platform)
    skipped = Interaction(item, "skip", timestamp, session, case.context.platform)
    return DirectionalCase(
        higher=_with_events(case, [completed]), lower=_with_events(case, [skipped]), candidates=similar
    )


def add_sessions(
    case: Case, rng: random.Random, catalog: Catalog, sessions: int, events_per_session: int
) -> DirectionalCase | None:
    """Add sessions that replay the user's own items; engagement-type items should gain on the rest.

    Replaying the user's items keeps their tastes as they were, so what changes is mostly how
    often they come back. Session ``s`` (1-based) lies ``s`` days before the request.
    """
    engagement = tuple(sorted(item for item in catalog.engagement_items if item in catalog.genre_of))
    others = tuple(sorted(item for item in catalog.genre_of if item not in catalog.engagement_items))
    pool = sorted({event.item_id for event in case.history}) or sorted(catalog.genre_of)
    if not engagement or not others or not pool:
        return None
    now = case.context.now
    added = []
    for number in range(1, sessions + 1):
        session = _new_session(rng)
        start = now - number * SECONDS_PER_DAY
        for index in range(events_per_session):
            item = rng.choice(pool)
            added.append(Interaction(item, "view", start + 60.0 * index, session, case.context.platform))
    return DirectionalCase(higher=_with_events(case, added), lower=case, candidates=engagement, baseline=others)
