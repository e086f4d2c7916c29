"""CLEVRER-lite: CLEVRER-style collision videos with questions, generated on a CPU.

CLEVRER (Yi et al. 2020, arXiv:1910.01442) renders Bullet simulations with Blender;
this package draws scenes of the same kind with its own numpy ray caster, fast
enough for thousands of videos in minutes, and writes them in CLEVRER's released
format so that :mod:`attnlab.data.clevrer` reads them like the real thing.

* ``physics.py``: discs sliding on the ground, friction, elastic collisions, entries
* ``scene.py``: sampling objects and initial conditions, re-sampling until usable
* ``camera.py``, ``intersect.py``, ``render.py``: perspective, shading, shadows,
  occlusion-aware instance masks
* ``events.py``, ``refer.py``, ``questions.py``, ``balance.py``, ``vocab.py``: the
  four question types, their programs, answer balancing and the fixed vocabulary
* ``writer.py``, ``generate.py``: CLEVRER's files and the dataset generator

Simplified compared with CLEVRER: every object collides as a disc of one radius; no
spin, no tangential friction; objects do not shadow one another; no anti-aliasing;
64x64 at 8 fps by default instead of 480x320 at 25.6 fps.
"""

from attnlab.data.clevrer_lite.balance import Balancer
from attnlab.data.clevrer_lite.camera import Camera, CameraConfig
from attnlab.data.clevrer_lite.config import ClevrerLiteConfig
from attnlab.data.clevrer_lite.events import SceneEvents, scene_events
from attnlab.data.clevrer_lite.generate import (
    DatasetSummary,
    Video,
    generate_dataset,
    generate_video,
    render_scene,
    scene_candidates,
)
from attnlab.data.clevrer_lite.physics import InitialState, PhysicsConfig, Trajectory, simulate
from attnlab.data.clevrer_lite.questions import Candidate, Choice, QuestionConfig
from attnlab.data.clevrer_lite.render import RenderConfig, Renderer
from attnlab.data.clevrer_lite.scene import Scene, SceneObject, make_scene
from attnlab.data.clevrer_lite.vocab import ANSWERS, QUESTION_WORDS, tokenize
from attnlab.data.clevrer_lite.writer import annotation_path, mask_path, read_masks, video_path

__all__ = [
    "ANSWERS",
    "QUESTION_WORDS",
    "Balancer",
    "Camera",
    "CameraConfig",
    "Candidate",
    "Choice",
    "ClevrerLiteConfig",
    "DatasetSummary",
    "InitialState",
    "PhysicsConfig",
    "QuestionConfig",
    "RenderConfig",
    "Renderer",
    "Scene",
    "SceneEvents",
    "SceneObject",
    "Trajectory",
    "Video",
    "annotation_path",
    "generate_dataset",
    "generate_video",
    "make_scene",
    "mask_path",
    "read_masks",
    "render_scene",
    "scene_candidates",
    "scene_events",
    "simulate",
    "tokenize",
    "video_path",
]
