"""Referring expressions: the fewest attributes that single out an object, their
words ("the red cube", "the metal object") and their program fragments.

Programs use CLEVRER's modules in postfix order, a value token before the filter
that consumes it: ``["objects", "red", "filter_color", "cube", "filter_shape",
"unique"]`` is the red cube.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attnlab.data.clevrer_lite.scene import SceneObject

ATTRIBUTES = ("color", "material", "shape")
# shorter first; among equals, the ones CLEVRER's questions use most
_SUBSETS: tuple[tuple[str, ...], ...] = (
    (),
    ("shape",),
    ("color",),
    ("material",),
    ("color", "shape"),
    ("material", "shape"),
    ("color", "material"),
    ("color", "material", "shape"),
)
PLURAL = {"cube": "cubes", "sphere": "spheres", "cylinder": "cylinders"}


def value(obj: SceneObject, attribute: str) -> str:
    return str(getattr(obj, attribute))


def matches(obj: SceneObject, attrs: Sequence[str], like: SceneObject) -> bool:
    return all(value(obj, a) == value(like, a) for a in attrs)


def minimal_attributes(
    objects: Sequence[SceneObject],
    k: int,
    among: Sequence[int] | None = None,
    exclude: str | None = None,
    allow_empty: bool = False,
) -> tuple[str, ...] | None:
    """The smallest attribute set that tells object ``k`` apart from the objects
    ``among`` (default: all), without ``exclude``; None if there is none."""
    pool = range(len(objects)) if among is None else among
    for attrs in _SUBSETS:
        if (not attrs and not allow_empty) or (exclude is not None and exclude in attrs):
            continue
        if [j for j in pool if matches(objects[j], attrs, objects[k])] == [k]:
            return attrs
    return None


def noun_phrase(obj: SceneObject, attrs: Sequence[str]) -> str:
    """ "red metal cube", "metal object", "object"."""
    words = [value(obj, a) for a in ("color", "material") if a in attrs]
    return " ".join([*words, obj.shape if "shape" in attrs else "object"])


def plural_phrase(attribute: str | None, word: str | None) -> str:
    """ "red objects", "metal objects", "spheres", "objects"."""
    if attribute is None or word is None:
        return "objects"
    return PLURAL[word] if attribute == "shape" else f"{word} objects"


def filters(obj: SceneObject, attrs: Sequence[str]) -> list[str]:
    out: list[str] = []
    for a in ATTRIBUTES:
        if a in attrs:
            out += [value(obj, a), f"filter_{a}"]
    return out


def object_program(obj: SceneObject, attrs: Sequence[str]) -> list[str]:
    return ["objects", *filters(obj, attrs), "unique"]
