"""The generator's configuration: one typed dataclass, checked on construction.

Every field is validated in ``__post_init__`` and a bad value is a one-line
:class:`~attnlab.errors.ConfigError`, so that the CLI (which builds this from its
arguments) fails before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attnlab.data.clevrer import COLORS, MATERIALS, SHAPES
from attnlab.data.clevrer_lite.camera import CameraConfig
from attnlab.data.clevrer_lite.physics import PhysicsConfig
from attnlab.data.clevrer_lite.questions import QuestionConfig
from attnlab.data.clevrer_lite.render import RenderConfig
from attnlab.errors import ConfigError, unknown

MAX_OBJECTS = 8  # the count answers go up to 8 and the id maps are uint8


@dataclass(frozen=True)
class ClevrerLiteConfig:
    """A CLEVRER-lite dataset. Speeds are scene units per second (an object's radius
    is ``physics.radius``); the video shows ``num_frames`` frames at ``fps`` and the
    simulation runs ``predict_frames`` more for the predictive questions.

    Defaults: 64x64, 32 frames at 8 fps (4 s; CLEVRER shows 5 s in 128 frames) and
    16 held-back frames (2 s, as CLEVRER holds back 2 s), 2-6 objects.
    """

    width: int = 64
    height: int = 64
    num_frames: int = 32
    predict_frames: int = 16
    fps: int = 8
    min_objects: int = 2
    max_objects: int = 6
    colors: tuple[str, ...] = COLORS
    materials: tuple[str, ...] = MATERIALS
    shapes: tuple[str, ...] = SHAPES
    enter_prob: float = 0.3  # chance that an object (not the first) slides in from outside the view later
    moving_prob: float = 0.6  # chance that an object present from the start is moving at first
    aim_prob: float = 0.7  # chance that a moving object heads for another object
    min_speed: float = 1.0
    max_speed: float = 2.2
    min_collisions: int = 1  # in the shown frames; scenes are re-sampled until they have them
    future_prob: float = 0.5  # fraction of scenes re-sampled until a collision happens after the video
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    camera: CameraConfig = field(default_factory=CameraConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    questions: QuestionConfig = field(default_factory=QuestionConfig)

    def __post_init__(self) -> None:
        _check_sizes(self)
        _check_vocabulary(self)
        _check_motion(self)


def _check_sizes(c: ClevrerLiteConfig) -> None:
    if not (16 <= c.width <= 1024 and 16 <= c.height <= 1024) or c.width % 2 or c.height % 2:
        # H.264 in yuv420p needs even sizes; below 16 pixels an object is a dot
        raise ConfigError(
            f"CLEVRER-lite width and height must be even and in [16, 1024], got {c.width}x{c.height}"
        )
    if not 4 <= c.num_frames <= 1024 or not 0 <= c.predict_frames <= 1024 or not 1 <= c.fps <= 120:
        raise ConfigError(
            "CLEVRER-lite needs 4 <= num_frames <= 1024, 0 <= predict_frames <= 1024 and 1 <= fps <= 120, "
            f"got {c.num_frames}, {c.predict_frames}, {c.fps}"
        )
    if not 1 <= c.min_objects <= c.max_objects <= MAX_OBJECTS:
        raise ConfigError(
            f"CLEVRER-lite needs 1 <= min_objects <= max_objects <= {MAX_OBJECTS}, "
            f"got {c.min_objects}, {c.max_objects}"
        )


def _check_vocabulary(c: ClevrerLiteConfig) -> None:
    for kind, values, known in (
        ("colour", c.colors, COLORS),
        ("material", c.materials, MATERIALS),
        ("shape", c.shapes, SHAPES),
    ):
        if not values:
            raise ConfigError(f"CLEVRER-lite needs at least one {kind}")
        for value in values:
            if value not in known:
                raise unknown(kind, value, known)
        if len(set(values)) != len(values):
            raise ConfigError(f"CLEVRER-lite {kind}s repeat a value: {values}")
    combos = len(c.colors) * len(c.materials) * len(c.shapes)
    if combos < c.max_objects:
        # as in CLEVRER, no two objects of a video look the same
        raise ConfigError(
            f"CLEVRER-lite max_objects={c.max_objects} needs as many distinct colour x material x shape "
            f"combinations, the config allows {combos}"
        )


def _check_motion(c: ClevrerLiteConfig) -> None:
    for name in ("enter_prob", "moving_prob", "aim_prob", "future_prob"):
        if not 0 <= getattr(c, name) <= 1:
            raise ConfigError(f"CLEVRER-lite {name} must be in [0, 1], got {getattr(c, name)}")
    if not 0 < c.min_speed <= c.max_speed <= 20:
        raise ConfigError(
            f"CLEVRER-lite needs 0 < min_speed <= max_speed <= 20, got {c.min_speed}, {c.max_speed}"
        )
    if c.min_collisions < 0 or (c.min_collisions > 0 and c.max_objects < 2):
        raise ConfigError(
            f"CLEVRER-lite min_collisions={c.min_collisions} needs min_collisions >= 0 and, if > 0, "
            "max_objects >= 2"
        )
