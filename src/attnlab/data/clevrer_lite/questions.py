"""Question candidates of CLEVRER's four types, answered from the simulation.

For every scene this lists all the questions it can answer (``Candidate``s, with
every correct and wrong choice for the multiple-choice ones); ``balance.py`` then
picks a few per scene so that answers come out balanced over the dataset.

* descriptive, one-word answers: ``query_color`` / ``query_shape`` /
  ``query_material`` of an object named by its other attributes, as the object that
  collides with another, or as the one that enters / exits the scene; ``count`` of
  collisions, entries, exits, objects moving at the end or resting at the start;
  ``exist`` (yes/no) of a collision between two objects, of entering objects of a
  kind, of an object moving at the end or resting at the start.
* explanatory: "Which of the following is responsible for the collision between X
  and Y?": choices are events of the video; correct ones are its causal ancestors.
* predictive: "What will happen next?": choices are collisions between two objects;
  correct when they happen in the held-back frames.
* counterfactual: "What will happen without the X?": the scene is simulated again
  from the start without X; a choice is correct when that collision happens there.

Programs are CLEVRER module names in postfix order. For a multiple-choice question,
``question.program + choice.program`` runs to "yes" exactly when the choice is
correct: the question's program leaves a set of events (ancestors, unseen events,
counterfactual events) and the choice's program asks whether its event is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from attnlab.data.clevrer_lite.events import Event, SceneEvents, ancestors, counterfactual_pairs, pair_counts
from attnlab.data.clevrer_lite.refer import (
    ATTRIBUTES,
    filters,
    minimal_attributes,
    noun_phrase,
    object_program,
    plural_phrase,
    value,
)
from attnlab.data.clevrer_lite.vocab import MAX_COUNT
from attnlab.errors import ConfigError

if TYPE_CHECKING:
    from attnlab.data.clevrer_lite.config import ClevrerLiteConfig
    from attnlab.data.clevrer_lite.scene import Scene

T = TypeVar("T")
QUESTION_TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")
DESCRIPTIVE_SUBTYPES = ("query_color", "query_shape", "query_material", "count", "exist")


@dataclass(frozen=True)
class QuestionConfig:
    """How many questions of each type a video gets (at most: a scene may offer fewer)."""

    descriptive_per_video: int = 8
    explanatory_per_video: int = 2
    predictive_per_video: int = 1
    counterfactual_per_video: int = 2
    choices_per_question: int = 4  # at most; at least 2
    balance_tolerance: float = 0.1  # an answer may exceed the mean count of the common answers by 10%
    balance_slack: int = 3  # ... plus this many questions

    def __post_init__(self) -> None:
        counts = (
            self.descriptive_per_video,
            self.explanatory_per_video,
            self.predictive_per_video,
            self.counterfactual_per_video,
        )
        if min(counts) < 0 or max(counts) > 64:
            raise ConfigError(f"questions per video must be in [0, 64], got {counts}")
        if not 2 <= self.choices_per_question <= 8:
            raise ConfigError(
                f"questions choices_per_question must be in [2, 8], got {self.choices_per_question}"
            )
        if self.balance_tolerance < 0 or self.balance_slack < 0:
            raise ConfigError("questions balance_tolerance and balance_slack must be >= 0")


@dataclass(frozen=True)
class Choice:
    text: str
    program: tuple[str, ...]
    correct: bool


@dataclass(frozen=True)
class Candidate:
    question_type: str  # one of QUESTION_TYPES
    subtype: str  # descriptive: one of DESCRIPTIVE_SUBTYPES; otherwise the type
    question: str
    program: tuple[str, ...]
    answer: str | None = None  # descriptive
    choices: tuple[Choice, ...] = ()  # multiple choice: every option, preferred first


class _Names:
    """Each object's shortest unique description, its words and program."""

    def __init__(self, scene: Scene):
        self.objects = scene.objects
        self.attrs = [minimal_attributes(scene.objects, k) for k in range(scene.num_objects)]

    def phrase(self, k: int) -> str:
        return f"the {noun_phrase(self.objects[k], self.attrs[k] or ATTRIBUTES)}"

    def program(self, k: int) -> list[str]:
        return object_program(self.objects[k], self.attrs[k] or ATTRIBUTES)

    def collision(self, i: int, j: int) -> list[str]:
        """Program from a set of events: does it hold a collision between i and j."""
        return [*self.program(i), "filter_collision", *self.program(j), "filter_collision", "exist"]


def question_candidates(
    scene: Scene, events: SceneEvents, config: ClevrerLiteConfig, rng: np.random.Generator
) -> list[Candidate]:
    names = _Names(scene)
    return [
        *_queries(scene, events, names),
        *_counts(scene, events),
        *_exists(scene, events, names),
        *_explanatory(events, names, rng),
        *_predictive(scene, events, names, rng),
        *_counterfactual(scene, events, names, config, rng),
    ]


# ---------------------------------------------------------------- descriptive


def _references(
    scene: Scene, events: SceneEvents, names: _Names, k: int, attr: str
) -> list[tuple[str, list[str]]]:
    """Ways to name object ``k`` without saying its ``attr``: the words after "the" and
    the program that finds the object."""
    objs, obj = scene.objects, scene.objects[k]
    refs = []
    attrs = minimal_attributes(objs, k, exclude=attr)
    if attrs:
        refs.append((noun_phrase(obj, attrs), object_program(obj, attrs)))
    collided = [e.objects for e in events.of_kind("collision")]
    for p in range(len(objs)):  # "the object that collides with p": p's only collision is with k
        if [c for c in collided if p in c] == [tuple(sorted((k, p)))]:
            program = ["events", *names.program(p), "filter_collision", "unique", *names.program(p)]
            refs.append(
                (f"object that collides with {names.phrase(p)}", [*program, "query_collision_partner"])
            )
    for kind, verb in (("in", "enters"), ("out", "exits")):
        movers = [e.objects[0] for e in events.of_kind(kind)]
        named = minimal_attributes(objs, k, among=movers, exclude=attr, allow_empty=True)
        if k in movers and named is not None:
            program = ["events", "objects", *filters(obj, named), f"filter_{kind}", "unique", "query_object"]
            refs.append((f"{noun_phrase(obj, named)} that {verb} the scene", program))
    return refs


def _queries(scene: Scene, events: SceneEvents, names: _Names) -> list[Candidate]:
    return [
        Candidate(
            "descriptive",
            f"query_{attr}",
            f"What {attr} is the {phrase}?",
            (*program, f"query_{attr}"),
            value(obj, attr),
        )
        for attr in ATTRIBUTES
        for k, obj in enumerate(scene.objects)
        for phrase, program in _references(scene, events, names, k, attr)
    ]


def _groups(scene: Scene) -> list[tuple[str | None, str | None, list[int]]]:
    """All objects, and the objects of each attribute value present in the scene."""
    out: list[tuple[str | None, str | None, list[int]]] = [(None, None, list(range(scene.num_objects)))]
    for attr in ATTRIBUTES:
        for word in sorted({value(o, attr) for o in scene.objects}):
            out.append((attr, word, [k for k, o in enumerate(scene.objects) if value(o, attr) == word]))
    return out


def _group_filter(attr: str | None, word: str | None) -> list[str]:
    return [] if attr is None or word is None else [word, f"filter_{attr}"]


def _counts(scene: Scene, events: SceneEvents) -> list[Candidate]:
    end = scene.num_frames - 1
    found = [
        ("How many collisions happen?", ["events", "objects", "filter_collision", "count"], "collision"),
        ("How many objects enter the scene?", ["events", "objects", "filter_in", "count"], "in"),
        ("How many objects exit the scene?", ["events", "objects", "filter_out", "count"], "out"),
    ]
    out = [
        Candidate("descriptive", "count", q, tuple(p), str(len(events.of_kind(kind)))) for q, p, kind in found
    ]
    for attr, word, group in _groups(scene):
        plural, pick = plural_phrase(attr, word), _group_filter(attr, word)
        moving = sum(bool(events.seen[end, k] and events.moving[end, k]) for k in group)
        resting = sum(bool(events.seen[0, k] and not events.moving[0, k]) for k in group)
        out += [
            Candidate(
                "descriptive",
                "count",
                f"How many {plural} are moving when the video ends?",
                ("objects", *pick, "end", "filter_moving", "count"),
                str(moving),
            ),
            Candidate(
                "descriptive",
                "count",
                f"How many {plural} are stationary when the video begins?",
                ("objects", *pick, "start", "filter_stationary", "count"),
                str(resting),
            ),
        ]
    return [c for c in out if int(c.answer or 0) <= MAX_COUNT]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def _exists(scene: Scene, events: SceneEvents, names: _Names) -> list[Candidate]:
    collided = pair_counts(events.observed)
    out = [
        Candidate(
            "descriptive",
            "exist",
            f"Are there any collisions between {names.phrase(i)} and {names.phrase(j)}?",
            ("events", *names.collision(i, j)),
            _yes((i, j) in collided),
        )
        for i, j in combinations(range(scene.num_objects), 2)
    ]
    entered = {e.objects[0] for e in events.of_kind("in")}
    for attr, word, group in _groups(scene)[1:]:
        out.append(
            Candidate(
                "descriptive",
                "exist",
                f"Are there any {plural_phrase(attr, word)} that enter the scene?",
                ("events", "objects", *_group_filter(attr, word), "filter_in", "exist"),
                _yes(bool(entered & set(group))),
            )
        )
    end = scene.num_frames - 1
    for k in range(scene.num_objects):
        if events.seen[end, k]:
            out.append(
                Candidate(
                    "descriptive",
                    "exist",
                    f"Is {names.phrase(k)} moving when the video ends?",
                    (*names.program(k), "end", "filter_moving", "exist"),
                    _yes(bool(events.moving[end, k])),
                )
            )
        if events.seen[0, k]:
            out.append(
                Candidate(
                    "descriptive",
                    "exist",
                    f"Is {names.phrase(k)} stationary when the video begins?",
                    (*names.program(k), "start", "filter_stationary", "exist"),
                    _yes(not events.moving[0, k]),
                )
            )
    return out


# ---------------------------------------------------------------- multiple choice


def _event_choice(event: Event, names: _Names, correct: bool) -> Choice:
    if event.kind == "in":
        k = event.objects[0]
        text = f"{names.phrase(k).capitalize()} enters the scene"
        return Choice(text, (*names.program(k), "filter_in", "exist"), correct)
    i, j = event.objects
    text = f"The collision between {names.phrase(i)} and {names.phrase(j)}"
    return Choice(text, tuple(names.collision(i, j)), correct)


def _collide_choice(pair: tuple[int, int], names: _Names, correct: bool) -> Choice:
    i, j = pair
    text = f"{names.phrase(i).capitalize()} collides with {names.phrase(j)}"
    return Choice(text, tuple(names.collision(i, j)), correct)


def _pair_choices(
    right: list[tuple[int, int]], wrong: list[tuple[int, int]], names: _Names
) -> tuple[Choice, ...]:
    return tuple(
        [_collide_choice(p, names, True) for p in right] + [_collide_choice(p, names, False) for p in wrong]
    )


def _shuffled(items: list[T], rng: np.random.Generator) -> list[T]:
    return [items[i] for i in rng.permutation(len(items))]


def _explanatory(events: SceneEvents, names: _Names, rng: np.random.Generator) -> list[Candidate]:
    counts = pair_counts(events.observed)
    # a collision is named by its two objects, so only pairs that collide once can be named
    nameable = [
        e
        for e in events.observed
        if e.kind == "in" or (e.kind == "collision" and counts[(e.objects[0], e.objects[1])] == 1)
    ]
    out = []
    for target in nameable:
        if target.kind != "collision":
            continue
        causes = ancestors(events.observed, target)
        right = [e for e in nameable if e in causes]
        others = [e for e in nameable if e != target and e not in causes]
        if not right or len(right) + len(others) < 2:
            continue
        # distractors that happened before the collision first: they are the plausible ones
        wrong = _shuffled([e for e in others if e.key() < target.key()], rng)
        wrong += _shuffled([e for e in others if e.key() >= target.key()], rng)
        i, j = target.objects
        out.append(
            Candidate(
                "explanatory",
                "explanatory",
                f"Which of the following is responsible for the collision between {names.phrase(i)} and "
                f"{names.phrase(j)}?",
                ("events", *names.collision(i, j)[:-1], "unique", "filter_ancestor"),
                choices=tuple(
                    [_event_choice(e, names, True) for e in _shuffled(right, rng)]
                    + [_event_choice(e, names, False) for e in wrong]
                ),
            )
        )
    return out


def _predictive(
    scene: Scene, events: SceneEvents, names: _Names, rng: np.random.Generator
) -> list[Candidate]:
    if scene.trajectory.num_frames == scene.num_frames:
        return []
    end = scene.num_frames - 1
    upcoming = pair_counts(events.unseen)
    pairs = list(combinations(range(scene.num_objects), 2))
    right = _shuffled([p for p in pairs if p in upcoming], rng)
    # distractors: pairs both in view at the end, those with something moving first
    idle = [p for p in pairs if p not in upcoming and events.seen[end, list(p)].all()]
    wrong = _shuffled([p for p in idle if events.moving[end, list(p)].any()], rng)
    wrong += _shuffled([p for p in idle if not events.moving[end, list(p)].any()], rng)
    if len(right) + len(wrong) < 2:
        return []
    choices = _pair_choices(right, wrong, names)
    return [
        Candidate("predictive", "predictive", "What will happen next?", ("unseen_events",), choices=choices)
    ]


def _counterfactual(
    scene: Scene, events: SceneEvents, names: _Names, config: ClevrerLiteConfig, rng: np.random.Generator
) -> list[Candidate]:
    if scene.num_objects < 4:  # without one of three objects, one pair is left: no choice
        return []
    happened = pair_counts(events.observed)
    involved = sorted({k for pair in happened for k in pair})
    out = []
    # re-simulating is the costly part: only for as many objects as questions are asked
    for removed in _shuffled(involved, rng)[: config.questions.counterfactual_per_video]:
        after = counterfactual_pairs(scene, config, removed)
        pairs = [p for p in combinations(range(scene.num_objects), 2) if removed not in p]
        right = _shuffled([p for p in pairs if p in after], rng)
        # distractors: collisions that the removal prevents first
        wrong = _shuffled([p for p in pairs if p not in after and p in happened], rng)
        wrong += _shuffled([p for p in pairs if p not in after and p not in happened], rng)
        out.append(
            Candidate(
                "counterfactual",
                "counterfactual",
                f"What will happen without {names.phrase(removed)}?",
                (*names.program(removed), "counterfact_events"),
                choices=_pair_choices(right, wrong, names),
            )
        )
    return out
