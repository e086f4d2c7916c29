import numpy as np
import pytest

from attnlab.data.clevrer_lite import (
    Camera,
    CameraConfig,
    ClevrerLiteConfig,
    RenderConfig,
    Renderer,
    generate_video,
)
from attnlab.data.clevrer_lite.intersect import SHAPE_CODES
from attnlab.data.clevrer_lite.render import Looks

R = 0.5


def renderer(height: int = 128, width: int = 128) -> Renderer:
    return Renderer(RenderConfig(), Camera(CameraConfig(), height, width), R)


def looks(*objects: tuple[str, bool]) -> Looks:
    """(shape, metal) per object, all the same grey-blue."""
    return Looks(
        shapes=np.array([SHAPE_CODES[s] for s, _ in objects]),
        albedo=np.full((len(objects), 3), [0.3, 0.4, 0.8]),
        metal=np.array([m for _, m in objects]),
        angles=np.full(len(objects), 0.4),
    )


def draw(r: Renderer, objects: list[tuple[str, bool]], xy: list[tuple[float, float]]):
    frames, ids = r.render(looks(*objects), np.array([xy], float), np.ones((1, len(xy)), bool))
    return frames[0], ids[0]


def outline_area(camera: Camera, centre: np.ndarray, radius: float) -> float:
    """Screen area of a sphere's perspective outline: the projection of the circle where
    the camera's rays graze it (shoelace formula over 720 points)."""
    axis = centre - camera.origin
    d = np.linalg.norm(axis)
    axis /= d
    rim_centre = camera.origin + axis * d * (1 - radius**2 / d**2)
    rim_radius = radius * np.sqrt(d**2 - radius**2) / d
    e1 = np.cross(axis, [0.0, 0.0, 1.0])
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    theta = np.linspace(0, 2 * np.pi, 720, endpoint=False)[:, None]
    rim = rim_centre + rim_radius * (np.cos(theta) * e1 + np.sin(theta) * e2)
    x, y = camera.project(rim)[0].T
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


@pytest.mark.parametrize("xy", [(0.0, 0.6), (1.3, 2.0), (-1.6, -0.8)])
def test_a_spheres_mask_covers_its_projected_outline(xy):
    r = renderer(256, 256)
    _, ids = draw(r, [("sphere", False)], [xy])
    expected = outline_area(r.camera, np.array([*xy, R]), R)
    assert expected > 500  # a sizeable disc, so pixel rounding is a small fraction
    assert (ids == 1).sum() == pytest.approx(expected, rel=0.01)


def test_the_nearer_object_wins_where_silhouettes_overlap():
    r = renderer()
    near, far = (0.1, -1.0), (0.5, 0.2)  # the camera looks along +y: smaller y is nearer
    _, alone_near = draw(r, [("cube", False)], [near])
    _, alone_far = draw(r, [("cylinder", True)], [far])
    _, both = draw(r, [("cube", False), ("cylinder", True)], [near, far])
    a, b = alone_near == 1, alone_far == 1
    assert (a & b).sum() > 20  # they do overlap on screen
    assert (both[a] == 1).all()
    assert (both[b & ~a] == 2).all()
    assert (both[~a & ~b] == 0).all()
    # the same with the objects listed the other way round: depth decides, not order
    _, swapped = draw(r, [("cylinder", True), ("cube", False)], [far, near])
    np.testing.assert_array_equal(swapped, np.choose(both, [0, 2, 1]))


def test_masks_partition_the_frame_and_the_background_is_ground_or_its_shadow():
    config = ClevrerLiteConfig()
    video = generate_video(config, 0, 5)
    k = video.scene.num_objects
    assert video.frames.shape == (32, 64, 64, 3) and video.ids.shape == (32, 64, 64)
    assert video.ids.max() <= k
    masks = video.ids[:, None] == np.arange(k + 1)[None, :, None, None]  # (T, K+1, H, W)
    assert (masks.sum(axis=1) == 1).all()
    r = renderer(64, 64)
    lit = np.clip(r.background * 255 + 0.5, 0, 255).astype(np.uint8)
    dark = np.clip(r.background * r.shadowed * 255 + 0.5, 0, 255).astype(np.uint8)
    ground = video.ids == 0  # (T, H, W)
    pixels = video.frames[ground].astype(int)
    lit_px = np.broadcast_to(lit, video.frames.shape)[ground].astype(int)
    dark_px = np.broadcast_to(dark, video.frames.shape)[ground].astype(int)
    assert ((np.abs(pixels - lit_px) <= 1).all(axis=1) | (np.abs(pixels - dark_px) <= 1).all(axis=1)).all()
    # an object with visible pixels is in view
    visible = masks[:, 1:].any(axis=(2, 3))  # (T, K)
    assert not (visible & ~video.scene.in_view[:32]).any()


def test_metal_shows_a_highlight_and_objects_cast_shadows():
    r = renderer()
    rubber, _ = draw(r, [("sphere", False)], [(0.0, 0.6)])
    metal, ids = draw(r, [("sphere", True)], [(0.0, 0.6)])
    assert metal[ids == 1].sum(axis=1).max() > 600  # near-white specular spot
    assert metal[ids == 1].sum(axis=1).max() > rubber[ids == 1].sum(axis=1).max() + 100
    lit = np.clip(r.background * 255 + 0.5, 0, 255).astype(np.uint8)
    shadow = (ids == 0) & (metal.astype(int).sum(axis=-1) < lit.astype(int).sum(axis=-1) - 30)
    assert shadow.sum() > 50


@pytest.mark.parametrize(("width", "height"), [(96, 64), (64, 96), (16, 16)])
def test_any_even_size_renders(width, height):
    video = generate_video(
        ClevrerLiteConfig(width=width, height=height, num_frames=8, predict_frames=4), 3, 0
    )
    assert video.frames.shape == (8, height, width, 3)
    assert video.ids.shape == (8, height, width)


@pytest.mark.parametrize("shape", ["cube", "cylinder", "sphere"])
def test_an_objects_pixels_stay_inside_its_screen_box(shape):
    # a cube turned by 45 degrees reaches furthest: its mask must not be cut by the box
    r = renderer(256, 256)
    body, _ = r.boxes(np.array([[[0.3, 0.4]]]), np.ones((1, 1), bool))
    r0, r1, c0, c1 = body[0, 0]
    objects = Looks(
        np.array([SHAPE_CODES[shape]]), np.full((1, 3), 0.5), np.array([False]), np.array([np.pi / 4])
    )
    _, ids = r.render(objects, np.array([[[0.3, 0.4]]]), np.ones((1, 1), bool))
    rows, cols = np.nonzero(ids[0])
    assert r0 < rows.min() and rows.max() < r1 - 1 and c0 < cols.min() and cols.max() < c1 - 1
