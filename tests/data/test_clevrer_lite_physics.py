import dataclasses

import numpy as np
import pytest

from attnlab.data.clevrer_lite import ClevrerLiteConfig, InitialState, PhysicsConfig, make_scene, simulate
from attnlab.data.clevrer_lite.physics import collide_pair

FPS = 10
NO_FRICTION = PhysicsConfig(radius=0.5, friction=0.0)


def state(positions, velocities, masses=None, enter_steps=None) -> InitialState:
    k = len(positions)
    return InitialState(
        np.array(positions, float),
        np.array(velocities, float),
        np.zeros(k, np.int64) if enter_steps is None else np.array(enter_steps),
        np.ones(k) if masses is None else np.array(masses, float),
    )


def momentum(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    return (m[:, None] * v).sum(axis=0)


def energy(v: np.ndarray, m: np.ndarray) -> float:
    return float(0.5 * (m * (v**2).sum(axis=1)).sum())


def test_head_on_elastic_collision_matches_the_textbook_result():
    # m1 = 1 at 3 units/s hits m2 = 2 at rest:
    # v1' = (m1 - m2) / (m1 + m2) v1 = -1 and v2' = 2 m1 / (m1 + m2) v1 = 2
    x = np.array([[0.0, 0.0], [0.99, 0.0]])
    v = np.array([[3.0, 0.0], [0.0, 0.0]])
    m = np.array([1.0, 2.0])
    assert collide_pair(x, v, m, 0, 1, radius=0.5, restitution=1.0)
    np.testing.assert_allclose(v, [[-1.0, 0.0], [2.0, 0.0]], atol=1e-12)
    assert np.hypot(*(x[1] - x[0])) == pytest.approx(1.0)  # pushed apart to touching, not overlapping
    assert not collide_pair(x, v, m, 0, 1, radius=0.5, restitution=1.0)  # now separating: no second impulse


def test_oblique_elastic_collision_swaps_only_the_normal_components():
    # equal masses, contact normal along (1, 1)/sqrt(2): the normal parts swap, tangential parts stay
    n = np.array([1.0, 1.0]) / np.sqrt(2)
    x = np.array([[0.0, 0.0], 0.999 * n])
    v0 = np.array([[1.0, 0.2], [-0.3, 0.1]])
    m = np.ones(2)
    v = v0.copy()
    collide_pair(x, v, m, 0, 1, radius=0.5, restitution=1.0)
    normal = v0 @ n
    expected = v0 + np.outer(normal[::-1] - normal, n)
    np.testing.assert_allclose(v, expected, atol=1e-12)
    np.testing.assert_allclose(momentum(v, m), momentum(v0, m), atol=1e-12)
    assert energy(v, m) == pytest.approx(energy(v0, m), abs=1e-12)


def test_simulated_collision_conserves_momentum_and_energy_and_is_recorded_once():
    start = state(
        [[-2.0, 0.1], [0.5, -0.2], [3.0, 3.0]], [[2.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [1.0, 3.0, 1.0]
    )
    traj = simulate(start, 30, FPS, NO_FRICTION)
    m = start.masses
    assert [(c.i, c.j) for c in traj.contacts] == [(0, 1)]
    # object 0 slides along y = 0.1 and touches object 1 (0.3 lower) when their centres are one
    # diameter apart, i.e. after travelling 2.5 - sqrt(1 - 0.3^2) at 2 units/s
    travel = 2.5 - np.sqrt(1 - 0.3**2)
    assert traj.contacts[0].frame == round(travel / 2.0 * FPS)
    for f in (0, 29):
        np.testing.assert_allclose(momentum(traj.velocities[f], m), [2.0, 0.0], atol=1e-9)
        assert energy(traj.velocities[f], m) == pytest.approx(2.0, rel=1e-9)
    assert np.linalg.norm(traj.velocities[-1, 1]) > 0  # the hit one moves off


def test_friction_decelerates_linearly_and_stops():
    friction, v0 = 0.5, 2.0
    config = dataclasses.replace(NO_FRICTION, friction=friction)
    traj = simulate(state([[0.0, 0.0]], [[0.0, v0]]), 60, FPS, config)
    t = np.arange(60) / FPS
    speed = np.linalg.norm(traj.velocities[:, 0], axis=-1)
    np.testing.assert_allclose(speed, np.maximum(v0 - friction * t, 0), atol=1e-9)
    stop = v0 / friction
    travelled = np.where(t < stop, v0 * t - friction * t**2 / 2, v0**2 / (2 * friction))
    np.testing.assert_allclose(traj.positions[:, 0, 1], travelled, atol=1e-9)
    np.testing.assert_allclose(traj.positions[:, 0, 0], 0.0)


def test_an_entering_object_is_absent_until_its_step():
    config = PhysicsConfig(radius=0.5, friction=0.0, substeps=4)
    start = state([[0.0, 0.0], [-5.0, 0.0]], [[0.0, 0.0], [2.0, 0.0]], enter_steps=[0, 4 * 5])
    traj = simulate(start, 40, FPS, config)
    assert not traj.active[:5, 1].any() and traj.active[5:, 1].all()
    np.testing.assert_allclose(traj.positions[:6, 1], [[-5.0, 0.0]] * 6)  # parked until frame 5
    assert [(c.i, c.j) for c in traj.contacts] == [(0, 1)]  # then slides in and hits object 0
    assert traj.contacts[0].frame == pytest.approx(5 + 4.0 / 2.0 * FPS, abs=1)


def test_walls_reflect_and_no_walls_let_objects_leave():
    start = state([[0.0, 0.0]], [[3.0, 0.0]])
    walled = simulate(start, 40, FPS, dataclasses.replace(NO_FRICTION, walls=True, arena_half_size=2.0))
    open_ = simulate(start, 40, FPS, NO_FRICTION)
    assert np.abs(walled.positions[:, 0, 0]).max() <= 1.5 + 1e-9
    vx = walled.velocities[:, 0, 0]
    assert (np.abs(vx) == 3.0).all() and (np.diff(np.sign(vx)) != 0).sum() >= 3  # bounces, elastically
    assert open_.positions[-1, 0, 0] == pytest.approx(3.0 * 3.9)


def test_scenes_are_deterministic_from_the_seed():
    config = ClevrerLiteConfig()
    a, b, other = make_scene(config, 7, 3), make_scene(config, 7, 3), make_scene(config, 8, 3)
    np.testing.assert_array_equal(a.trajectory.positions, b.trajectory.positions)
    assert a.objects == b.objects and a.trajectory.contacts == b.trajectory.contacts
    assert a.objects != other.objects or not np.array_equal(a.initial.positions, other.initial.positions)


def test_sampled_scenes_meet_the_acceptance_rules():
    config = ClevrerLiteConfig()
    for index in range(12):
        scene = make_scene(config, 1, index)
        shown = scene.in_view[: scene.num_frames]
        assert shown.any(axis=0).all()  # every object is seen
        assert 2 <= scene.num_objects <= 6
        assert len({(o.color, o.material, o.shape) for o in scene.objects}) == scene.num_objects
        contacts = scene.trajectory.contacts
        assert sum(c.frame < scene.num_frames for c in contacts) >= config.min_collisions
        assert all(scene.in_view[c.frame, c.i] and scene.in_view[c.frame, c.j] for c in contacts)
        assert scene.trajectory.num_frames == config.num_frames + config.predict_frames
