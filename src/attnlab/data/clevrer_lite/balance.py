"""Pick each video's questions from its candidates so that answers are balanced.

Scenes are visited in index order with one random stream, so the questions of a
dataset depend on its config and seed only, not on how many workers made it.

Descriptive questions: the sub-types take turns (the least asked first); within a
sub-type the candidate whose answer has been given least often so far is taken,
unless that answer already leads: more than ``balance_tolerance`` above the mean
count of the common answers, plus ``balance_slack`` (an answer is common when it
could be asked in at least a fifth as many scenes as the most available one; rare
answers such as a count of 6 are asked whenever they can be, but do not hold the
others back). This is CLEVR's rejection sampling by answer counts, made greedy.

Multiple-choice questions get 2 to ``choices_per_question`` options with about half
of them correct over the dataset: each question takes as many options as it can
without letting the running difference between correct and wrong options grow
past max(its size, 1); a question that would push it past ``choices_per_question``
is not asked (e.g. "what will happen next?" when nothing will, once such questions
lead). Explanatory questions keep at least one correct option, as in CLEVRER.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from attnlab.data.clevrer_lite.questions import DESCRIPTIVE_SUBTYPES, Candidate, Choice, QuestionConfig

_STREAM = 0xBA1A  # the balancer's own random stream, apart from the scenes'
COMMON = 0.2  # an answer is common when available in >= this fraction of the top answer's scenes


class Balancer:
    def __init__(self, config: QuestionConfig, seed: int):
        self.config = config
        self.rng = np.random.default_rng([seed % 2**63, _STREAM])
        self.answers: dict[str, Counter[str]] = {s: Counter() for s in DESCRIPTIVE_SUBTYPES}
        self.available: dict[str, Counter[str]] = {s: Counter() for s in DESCRIPTIVE_SUBTYPES}
        self.asked: Counter[str] = Counter()
        self.options: dict[str, Counter[bool]] = {}

    def pick(self, candidates: list[Candidate]) -> list[dict[str, Any]]:
        """The questions of the next scene, in CLEVRER's JSON layout."""
        questions = self._descriptive(candidates)
        c = self.config
        for kind, count in (
            ("explanatory", c.explanatory_per_video),
            ("predictive", c.predictive_per_video),
            ("counterfactual", c.counterfactual_per_video),
        ):
            questions += self._multiple_choice([q for q in candidates if q.question_type == kind], count)
        return [{"question_id": i, **q} for i, q in enumerate(questions)]

    # ------------------------------------------------------------ descriptive

    def _descriptive(self, candidates: list[Candidate]) -> list[dict[str, Any]]:
        pool: dict[str, list[Candidate]] = {}
        texts: set[str] = set()
        for q in candidates:
            if q.question_type == "descriptive" and q.question not in texts:
                texts.add(q.question)
                pool.setdefault(q.subtype, []).append(q)
        for subtype, qs in pool.items():
            self.available[subtype].update({str(q.answer) for q in qs})
        chosen: list[dict[str, Any]] = []
        for _ in range(self.config.descriptive_per_video):
            picked = self._next(pool)
            if picked is None:
                break
            chosen.append(
                {
                    "question_type": "descriptive",
                    "question_subtype": picked.subtype,
                    "question": picked.question,
                    "answer": picked.answer,
                    "program": list(picked.program),
                }
            )
        return chosen

    def _next(self, pool: dict[str, list[Candidate]]) -> Candidate | None:
        order = sorted((s for s in pool if pool[s]), key=lambda s: (self.asked[s], self.rng.random()))
        for subtype in order:
            counts = self.answers[subtype]
            q = min(pool[subtype], key=lambda q: (counts[str(q.answer)], self.rng.random()))
            if self._leads(subtype, str(q.answer)):
                pool[subtype] = []  # every other candidate's answer has been given at least as often
                continue
            pool[subtype].remove(q)
            self.asked[subtype] += 1
            counts[str(q.answer)] += 1
            return q
        return None

    def _leads(self, subtype: str, answer: str) -> bool:
        available, counts = self.available[subtype], self.answers[subtype]
        top = max(available.values())
        common = [a for a, n in available.items() if n >= COMMON * top]
        mean = sum(counts[a] for a in common) / len(common)
        return counts[answer] >= mean * (1 + self.config.balance_tolerance) + self.config.balance_slack

    # ------------------------------------------------------------ multiple choice

    def _multiple_choice(self, candidates: list[Candidate], count: int) -> list[dict[str, Any]]:
        chosen: list[dict[str, Any]] = []
        for i in self.rng.permutation(len(candidates)):
            if len(chosen) == count:
                break
            q = candidates[i]
            options = self._options(q)
            if options is not None:
                chosen.append(
                    {
                        "question_type": q.question_type,
                        "question": q.question,
                        "program": list(q.program),
                        "choices": [
                            {
                                "choice_id": j,
                                "choice": o.text,
                                "program": list(o.program),
                                "answer": "correct" if o.correct else "wrong",
                            }
                            for j, o in enumerate(options)
                        ],
                    }
                )
        return chosen

    def _options(self, q: Candidate) -> list[Choice] | None:
        right = [o for o in q.choices if o.correct]
        wrong = [o for o in q.choices if not o.correct]
        tally = self.options.setdefault(q.question_type, Counter())
        lead = tally[True] - tally[False]  # > 0: more correct options than wrong ones so far
        picked = self._split(lead, len(right), len(wrong), 1 if q.question_type == "explanatory" else 0)
        if picked is None:
            return None
        n, k = picked
        options = right[:k] + wrong[: n - k]
        tally.update(o.correct for o in options)
        return [options[i] for i in self.rng.permutation(n)]

    def _split(self, lead: int, right: int, wrong: int, need: int) -> tuple[int, int] | None:
        """How many options ``n`` and correct ones ``k``: the most options that keep the
        running lead within max(|lead|, 1); failing that, the split that keeps it
        smallest, unless it would pass ``choices_per_question`` (then no question)."""
        splits = []  # (lead after, -n, n, k)
        for n in range(min(self.config.choices_per_question, right + wrong), 1, -1):
            lo, hi = max(n - wrong, need), min(right, n)
            if lo <= hi:
                k = min(range(lo, hi + 1), key=lambda k: (abs(lead + 2 * k - n), self.rng.random()))
                splits.append((abs(lead + 2 * k - n), -n, n, k))
        for after, _, n, k in splits:  # most options first
            if after <= max(abs(lead), 1):
                return n, k
        if not splits:
            return None
        after, _, n, k = min(splits)
        return (n, k) if after <= self.config.choices_per_question else None
