"""Questions are checked against the simulation by a separate program executor that
knows the scene only through its annotation (as a model's oracle would), the
held-back collisions and its own counterfactual re-simulations."""

from collections import Counter
from collections.abc import Callable

import numpy as np
import pytest

from attnlab.data.clevrer_lite import (
    ANSWERS,
    QUESTION_WORDS,
    Balancer,
    CameraConfig,
    ClevrerLiteConfig,
    PhysicsConfig,
    QuestionConfig,
    RenderConfig,
    generate_dataset,
    make_scene,
    scene_candidates,
    simulate,
    tokenize,
)
from attnlab.data.clevrer_lite.writer import annotation
from attnlab.errors import ConfigError

CONFIG = ClevrerLiteConfig()
SEED = 11
Event = tuple[str, int, int, tuple[int, ...]]  # kind, frame, order within the frame, objects


@pytest.fixture(scope="module")
def scenes():
    """100 scenes with their question candidates (no rendering)."""
    out = []
    for index in range(100):
        scene = make_scene(CONFIG, SEED, index)
        out.append((scene, scene_candidates(CONFIG, scene, SEED)))
    return out


# ---------------------------------------------------------------- an independent executor


def counterfactual_pairs(scene, removed: int) -> set[tuple[int, int]]:
    """Collisions in the video's frames without object ``removed``: a re-simulation of the
    whole held-back horizon, from the scene's initial state."""
    keep = [k for k in range(scene.num_objects) if k != removed]
    traj = simulate(scene.initial.without(removed), scene.trajectory.num_frames, CONFIG.fps, CONFIG.physics)
    return {(keep[c.i], keep[c.j]) for c in traj.contacts if c.frame < scene.num_frames}


class Executor:
    """Runs postfix programs (CLEVRER module names) on what the annotation says."""

    def __init__(self, ann: dict, unseen: list[tuple[int, int]], counterfactual: Callable[[int], set]):
        frames = ann["motion_trajectory"]
        self.props = {o["object_id"]: o for o in ann["object_property"]}
        self.seen = np.array([[o["inside_camera_view"] for o in f["objects"]] for f in frames])  # (T, K)
        speed = np.array([[np.hypot(*o["velocity"][:2]) for o in f["objects"]] for f in frames])
        self.moving = speed > 1e-3
        self.events = self._events(ann)
        self.unseen = [("collision", 0, i, pair) for i, pair in enumerate(unseen)]
        self.counterfactual = counterfactual

    def _events(self, ann: dict) -> list[Event]:
        events: list[Event] = []
        last = len(self.seen) - 1
        for k in self.props:
            frames = np.nonzero(self.seen[:, k])[0]
            if frames[0] > 0:
                events.append(("in", int(frames[0]), -1, (k,)))
            if frames[-1] < last:
                events.append(("out", int(frames[-1]) + 1, 10**6, (k,)))
        for i, c in enumerate(ann["collision"]):  # listed in the order they happened
            events.append(("collision", c["frame_id"], i, tuple(c["object_ids"])))
        return sorted(events, key=lambda e: e[1:3])

    def ancestors(self, event: Event) -> list[Event]:
        found, todo = [], [event]
        while todo:
            e = todo.pop()
            for k in e[3]:
                before = [x for x in self.events if x[0] != "out" and k in x[3] and x[1:3] < e[1:3]]
                if before and before[-1] not in found:
                    found.append(before[-1])
                    todo.append(before[-1])
        return found

    def run(self, program: list[str]) -> str:
        stack: list = []
        for token in program:
            op = getattr(self, "op_" + token, None)
            stack.append(op(stack) if op else token)  # anything else is a value (red, start, ...)
        assert len(stack) == 1, program
        return stack[0]

    def op_objects(self, stack):
        return frozenset(self.props)

    def op_events(self, stack):
        return list(self.events)

    def op_unseen_events(self, stack):
        return list(self.unseen)

    def _filter_attribute(self, stack, attribute):
        word, objs = stack.pop(), stack.pop()
        return frozenset(k for k in objs if self.props[k][attribute] == word)

    def op_filter_color(self, stack):
        return self._filter_attribute(stack, "color")

    def op_filter_material(self, stack):
        return self._filter_attribute(stack, "material")

    def op_filter_shape(self, stack):
        return self._filter_attribute(stack, "shape")

    def op_unique(self, stack):
        items = list(stack.pop())
        assert len(items) == 1, items
        return items[0]

    def _filter_events(self, stack, kind):
        who, events = stack.pop(), stack.pop()
        who = {who} if isinstance(who, int) else set(who)
        return [e for e in events if e[0] == kind and who & set(e[3])]

    def op_filter_collision(self, stack):
        return self._filter_events(stack, "collision")

    def op_filter_in(self, stack):
        return self._filter_events(stack, "in")

    def op_filter_out(self, stack):
        return self._filter_events(stack, "out")

    def _filter_motion(self, stack, moving):
        when, objs = stack.pop(), stack.pop()
        f = 0 if when == "start" else len(self.seen) - 1
        objs = {objs} if isinstance(objs, int) else objs
        return frozenset(k for k in objs if self.seen[f, k] and self.moving[f, k] == moving)

    def op_filter_moving(self, stack):
        return self._filter_motion(stack, True)

    def op_filter_stationary(self, stack):
        return self._filter_motion(stack, False)

    def op_query_collision_partner(self, stack):
        obj, event = stack.pop(), stack.pop()
        (other,) = set(event[3]) - {obj}
        return other

    def op_query_object(self, stack):
        return stack.pop()[3][0]

    def op_query_color(self, stack):
        return self.props[stack.pop()]["color"]

    def op_query_shape(self, stack):
        return self.props[stack.pop()]["shape"]

    def op_query_material(self, stack):
        return self.props[stack.pop()]["material"]

    def op_count(self, stack):
        return str(len(stack.pop()))

    def op_exist(self, stack):
        return "yes" if len(stack.pop()) else "no"

    def op_filter_ancestor(self, stack):
        return self.ancestors(stack.pop())

    def op_counterfact_events(self, stack):
        return [("collision", 0, i, pair) for i, pair in enumerate(sorted(self.counterfactual(stack.pop())))]


def executor(scene) -> Executor:
    unseen = [(c.i, c.j) for c in scene.trajectory.contacts if c.frame >= scene.num_frames]
    return Executor(annotation(scene, CONFIG), unseen, lambda k: counterfactual_pairs(scene, k))


# ---------------------------------------------------------------- tests


def test_every_candidate_answer_agrees_with_the_executor(scenes):
    types = Counter()
    for scene, candidates in scenes[:40]:
        run = executor(scene).run
        for q in candidates:
            types[q.subtype] += 1
            if q.question_type == "descriptive":
                assert run(list(q.program)) == q.answer, (scene.index, q.question)
            else:
                assert q.choices
                for choice in q.choices:
                    expected = "yes" if choice.correct else "no"
                    assert run(list(q.program + choice.program)) == expected, (
                        scene.index,
                        q.question,
                        choice.text,
                    )
    # every kind of question came up
    assert set(types) == {"query_color", "query_shape", "query_material", "count", "exist"} | {
        "explanatory",
        "predictive",
        "counterfactual",
    }


def test_counterfactual_choices_match_a_separate_resimulation(scenes):
    changed = 0
    for scene, candidates in scenes[:40]:
        run = executor(scene).run
        factual = {(c.i, c.j) for c in scene.trajectory.contacts if c.frame < scene.num_frames}
        for q in (q for q in candidates if q.question_type == "counterfactual"):
            removed = run(list(q.program[:-1]))  # the object's program, without counterfact_events
            after = counterfactual_pairs(scene, removed)
            changed += after != {p for p in factual if removed not in p}
            for choice in q.choices:
                # [*object A, "filter_collision", *object B, "filter_collision", "exist"]
                cut = choice.program.index("filter_collision")
                a, b = run(list(choice.program[:cut])), run(list(choice.program[cut + 1 : -2]))
                assert ((min(a, b), max(a, b)) in after) == choice.correct, (scene.index, choice.text)
    assert changed > 5  # removing an object does change what happens


def pick_all(scenes, config: QuestionConfig = CONFIG.questions, seed: int = SEED) -> list[list[dict]]:
    balancer = Balancer(config, seed)
    return [balancer.pick(candidates) for _, candidates in scenes]


def test_answers_are_balanced_over_100_scenes(scenes):
    picked = [q for questions in pick_all(scenes) for q in questions]
    answers: dict[str, Counter] = {}
    for q in picked:
        if q["question_type"] == "descriptive":
            answers.setdefault(q["question_subtype"], Counter())[q["answer"]] += 1
    sizes = Counter({s: sum(c.values()) for s, c in answers.items()})
    assert max(sizes.values()) <= 1.3 * min(sizes.values())  # the sub-types take turns
    for subtype in ("query_color", "query_shape", "query_material", "exist"):
        counts = answers[subtype]
        assert max(counts.values()) <= 1.3 * min(counts.values()), (subtype, counts)
    assert set(answers["query_color"]) == set(CONFIG.colors)
    common = [answers["count"][a] for a in "0123"]
    assert max(common) <= 1.3 * min(common), answers["count"]
    for kind in ("explanatory", "predictive", "counterfactual"):
        options = Counter(c["answer"] for q in picked if q["question_type"] == kind for c in q["choices"])
        assert 0.42 <= options["correct"] / options.total() <= 0.58, (kind, options)
        sizes = [len(q["choices"]) for q in picked if q["question_type"] == kind]
        assert len(sizes) >= 40 and min(sizes) >= 2 and max(sizes) <= CONFIG.questions.choices_per_question


def test_questions_have_clevrers_layout_and_a_fixed_vocabulary(scenes):
    for questions in pick_all(scenes[:30]):
        assert [q["question_id"] for q in questions] == list(range(len(questions)))
        for q in questions:
            assert set(tokenize(q["question"])) <= set(QUESTION_WORDS), q["question"]
            assert all(isinstance(t, str) for t in q["program"])
            if q["question_type"] == "descriptive":
                assert set(q) == {
                    "question_id",
                    "question_type",
                    "question_subtype",
                    "question",
                    "answer",
                    "program",
                }
                assert q["answer"] in ANSWERS
            else:
                assert set(q) == {"question_id", "question_type", "question", "program", "choices"}
                for j, c in enumerate(q["choices"]):
                    assert set(c) == {"choice_id", "choice", "program", "answer"} and c["choice_id"] == j
                    assert set(tokenize(c["choice"])) <= set(QUESTION_WORDS) and c["answer"] in (
                        "correct",
                        "wrong",
                    )
    assert len(QUESTION_WORDS) == len(set(QUESTION_WORDS)) <= 64
    assert len(ANSWERS) == len(set(ANSWERS)) == 24


def test_questions_are_deterministic(scenes):
    assert pick_all(scenes[:20]) == pick_all(scenes[:20])
    assert pick_all(scenes[:20]) != pick_all(scenes[:20], seed=SEED + 1)
    again = [scene_candidates(CONFIG, make_scene(CONFIG, SEED, i), SEED) for i in range(3)]
    assert again == [candidates for _, candidates in scenes[:3]]


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda: ClevrerLiteConfig(min_objects=0), ["min_objects"]),
        (lambda: ClevrerLiteConfig(max_objects=9), ["max_objects", "8"]),
        (lambda: ClevrerLiteConfig(width=8), ["width", "16"]),
        (lambda: ClevrerLiteConfig(height=63), ["even"]),
        (lambda: ClevrerLiteConfig(colors=("red", "magneta")), ["colour", "magneta"]),
        (lambda: ClevrerLiteConfig(shapes=("cone",)), ["shape", "cone"]),
        (lambda: ClevrerLiteConfig(materials=()), ["material"]),
        (lambda: ClevrerLiteConfig(colors=("red",), shapes=("cube",)), ["combinations"]),
        (lambda: ClevrerLiteConfig(num_frames=2), ["num_frames"]),
        (lambda: ClevrerLiteConfig(min_speed=3.0, max_speed=1.0), ["min_speed"]),
        (lambda: ClevrerLiteConfig(enter_prob=1.5), ["enter_prob"]),
        (lambda: PhysicsConfig(radius=0.0), ["radius"]),
        (lambda: PhysicsConfig(restitution=2.0), ["restitution"]),
        (lambda: CameraConfig(elevation=0.0), ["elevation"]),
        (lambda: RenderConfig(shadow=2.0), ["shadow"]),
        (lambda: QuestionConfig(choices_per_question=1), ["choices_per_question"]),
        (lambda: generate_dataset(CONFIG, "/nonexistent/x", 0, seed=0), ["num_videos"]),
        (lambda: generate_dataset({"width": 64}, "/nonexistent/x", 1, seed=0), ["ClevrerLiteConfig"]),
    ],
)
def test_bad_configs_are_one_line_config_errors(make, words):
    with pytest.raises(ConfigError) as err:
        make()
    message = str(err.value)
    assert "\n" not in message and all(w in message for w in words), message
