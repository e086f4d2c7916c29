"""The fixed, small vocabularies of the questions, choices and answers.

Every question and choice the generator writes is made of these words (checked in
the tests), so a model can use one embedding table for any generated dataset. They
are all words of CLEVRER's own questions, so a CLEVRER vocabulary covers them too;
the answers add counts 6 to 8 to CLEVRER's 0 to 5 (scenes may hold 8 objects).
Descriptive answers are single words from :data:`ANSWERS`; multiple-choice answers
are "correct" / "wrong" per choice, as in CLEVRER.
"""

from __future__ import annotations

import re

from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES
from attnlab.data.clevrer_lite.refer import PLURAL

MAX_COUNT = 8  # count questions whose answer is larger are not asked

TEMPLATE_WORDS = (
    "and", "any", "are", "begins", "between", "collides", "collision", "collisions", "color",
    "ends", "enter", "enters", "exit", "exits", "following", "for", "happen", "how", "is", "many",
    "material", "moving", "next", "object", "objects", "of", "responsible", "scene", "shape",
    "stationary", "that", "the", "there", "video", "what", "when", "which", "will", "with", "without",
)  # fmt: skip
QUESTION_WORDS: tuple[str, ...] = (
    *TEMPLATE_WORDS, *COLORS, *MATERIALS, *SHAPES, *PLURAL.values(), "?"
)  # fmt: skip
ANSWERS: tuple[str, ...] = (
    *COLORS, *MATERIALS, *SHAPES, "yes", "no", *(str(n) for n in range(MAX_COUNT + 1))
)  # fmt: skip
CHOICE_ANSWERS = ("correct", "wrong")

_TOKEN = re.compile(r"[a-z0-9]+|\?")


def tokenize(text: str) -> list[str]:
    """Lower-case words and '?' as separate tokens."""
    return _TOKEN.findall(text.lower())
