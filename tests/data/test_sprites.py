import dataclasses
import pickle

import numpy as np
import pytest
import torch

from attnlab.data._registry import DATAMODULES
from attnlab.data.sprites import (
    SPRITE_PRESETS,
    SpMOTData,
    SpriteConfig,
    VideoSprites,
    VMDSData,
    amodal_masks,
    fold,
    generate_clip,
    sprite_preset,
)
from attnlab.errors import ConfigError, InputError

VMDS = SPRITE_PRESETS["vmds"]


def clips(name: str, n: int = 20, seed: int = 0):
    return [generate_clip(SPRITE_PRESETS[name], seed, i) for i in range(n)]


def test_samples_are_a_pure_function_of_config_seed_and_index():
    a, b = VideoSprites(VMDS, seed=5, size=None), VideoSprites(VMDS, seed=5, size=None)
    other = VideoSprites(VMDS, seed=6, size=None)
    for i in (0, 7, 10**9):
        sa, sb = a[i], b[i]
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(a[0]["video"], other[0]["video"])
    assert not torch.equal(a[0]["video"], a[1]["video"])
    assert a.procedural and not VideoSprites(VMDS, seed=5, size=3).procedural


def test_sample_keys_shapes_and_dtypes():
    sample = VideoSprites(VMDS, seed=0, size=4)[2]
    t, s, k = VMDS.num_frames, VMDS.image_size, VMDS.max_objects
    assert sample["video"].shape == (t, 3, s, s) and sample["video"].dtype == torch.float32
    assert sample["video"].min() >= 0 and sample["video"].max() <= 1
    assert sample["masks"].shape == (t, k + 1, s, s) and sample["masks"].dtype == torch.bool
    assert sample["segmentation"].shape == (t, s, s)
    n = int(sample["num_objects"])
    assert sample["ids"].tolist() == [i + 1 if i < n else 0 for i in range(k)]
    assert sample["centers"].shape == (t, k, 2) and sample["colours"].shape == (t, k, 3)
    with pytest.raises(IndexError):
        VideoSprites(VMDS, seed=0, size=4)[4]


def test_num_objects_is_a_0d_tensor_generated_and_cached(tmp_path):
    # The docs promise (); a (1,) tensor would batch to (B, 1) and broadcast against (B,).
    generated = VideoSprites(VMDS, seed=0, size=3)
    cached = VideoSprites(VMDS, seed=0, size=3, cache_dir=tmp_path)
    for data in (generated, cached):
        n = data[1]["num_objects"]
        assert n.shape == () and n.dtype == torch.int64
        assert int(n) == data.clip(1).tracks.num_objects
        assert torch.utils.data.default_collate([data[0], data[1]])["num_objects"].shape == (2,)


@pytest.mark.parametrize("name", sorted(SPRITE_PRESETS))
def test_masks_partition_the_image_and_agree_with_the_pixels(name):
    data = VideoSprites(SPRITE_PRESETS[name], seed=1, size=6)
    for i in range(len(data)):
        sample = data[i]
        masks, video, colours = sample["masks"], sample["video"], sample["colours"]
        assert (masks.sum(dim=1) == 1).all()  # disjoint and covering
        for t in range(video.shape[0]):
            assert (video[t][:, masks[t, 0]] == 0).all()
            for k in range(1, masks.shape[1]):
                pixels = video[t][:, masks[t, k]]  # (3, n)
                assert (pixels == colours[t, k - 1, :, None]).all()
                if k > int(sample["num_objects"]):
                    assert pixels.shape[1] == 0


def test_every_sprite_colour_differs_from_the_background():
    for clip in clips("vmds", 30) + clips("vmds-colour-change", 30):
        assert (clip.tracks.colours.max(axis=-1) > 100).all()


def test_a_sprite_keeps_only_the_pixels_no_nearer_sprite_covers():
    lost = 0
    for clip in clips("vmds-occlusion", 15) + clips("vmds", 15):
        full = amodal_masks(clip.tracks, VMDS.image_size)  # (T, K, H, W)
        depth = clip.tracks.depth
        for k in range(clip.tracks.num_objects):
            covered = full[:, depth > depth[k]].any(axis=1)
            expected = full[:, k] & ~covered
            assert np.array_equal(clip.segmentation == k + 1, expected)
            lost += int((full[:, k] & covered).sum())
    assert lost > 0  # the clips did contain occlusions


@pytest.mark.parametrize("name", sorted(SPRITE_PRESETS))
def test_sprites_stay_inside_the_frame(name):
    config = SPRITE_PRESETS[name]
    for clip in clips(name, 25):
        c, r = clip.tracks.centers, clip.tracks.radii[..., None]
        assert (c - r >= 0).all() and (c + r <= config.image_size).all()
        full = amodal_masks(clip.tracks, config.image_size)
        assert full.any(axis=(2, 3)).all()  # never vanishes off the border
        # a whole silhouette fits in its circumcircle (plus half a pixel diagonal)
        ys, xs = np.mgrid[: config.image_size, : config.image_size] + 0.5
        for t, k in np.argwhere(full.any(axis=(2, 3))):
            dist = np.hypot(xs - c[t, k, 0], ys - c[t, k, 1])[full[t, k]]
            assert dist.max() <= r[t, k, 0] + 0.71


def test_fold_reflects_off_both_walls():
    lo, hi = np.array(2.0), np.array(10.0)
    x = np.array([2.0, 5.0, 10.0, 11.0, 13.5, 18.0, 19.0, -1.0])
    assert np.allclose(fold(x, lo, hi), [2.0, 5.0, 10.0, 9.0, 6.5, 2.0, 3.0, 5.0])


def second_differences_away_from_walls(name: str) -> list[float]:
    """|x_{t+2} - 2 x_{t+1} + x_t| over steps that cannot contain a bounce: a step
    from x can reach a wall only if x is within one step's length of it."""
    config = SPRITE_PRESETS[name]
    reach = config.max_speed * config.image_size
    out = []
    for clip in clips(name, 40):
        c, r = clip.tracks.centers, clip.tracks.radii[..., None]
        free = (c - r > reach) & (c + r < config.image_size - reach)  # (T, K, 2)
        safe = free[:-2] & free[1:-1]
        out += np.abs(c[2:] - 2 * c[1:-1] + c[:-2])[safe].tolist()
    return out


def test_linear_motion_is_straight_and_curved_motion_is_not():
    linear, curved = second_differences_away_from_walls("spmot"), second_differences_away_from_walls("vmds")
    assert len(linear) > 100 and len(curved) > 100
    assert max(linear) < 1e-3
    assert np.median(curved) > 0.05


def amodal_areas(clip, size: int) -> np.ndarray:
    return amodal_masks(clip.tracks, size).sum(axis=(2, 3)).astype(float)  # (T, K)


def test_size_change_changes_sizes_and_the_standard_set_does_not():
    for name, changes in (("vmds", False), ("vmds-size-change", True)):
        for clip in clips(name, 15):
            area = amodal_areas(clip, 64)
            ratio = area.max(axis=0) / area.min(axis=0)
            assert (ratio > 1.8).all() if changes else (ratio < 1.3).all()


def test_small_and_large_variants_change_sprite_size():
    mean = {
        n: np.mean([amodal_areas(c, 64).mean() for c in clips(n, 30)])
        for n in ("vmds-small", "vmds", "vmds-large")
    }
    assert mean["vmds-small"] * 2 < mean["vmds"] < mean["vmds-large"] / 2


def test_rotation_turns_sprites_and_the_standard_set_does_not():
    def turned(clip) -> np.ndarray:
        return np.abs(clip.tracks.angles - clip.tracks.angles[0]).max(axis=0)  # (K,)

    assert all((turned(c) > 1.0).all() for c in clips("vmds-rotation", 10))
    assert all((turned(c) == 0).all() for c in clips("vmds", 10))
    # the silhouettes show it: a rotating square's bounding box changes width
    config = dataclasses.replace(
        SPRITE_PRESETS["vmds-rotation"], shapes=("square",), min_objects=1, max_objects=1
    )
    full = amodal_masks(generate_clip(config, 0, 0).tracks, 64)[:, 0]  # (T, H, W)
    widths = {int(np.ptp(np.nonzero(f.any(axis=0))[0])) for f in full}
    assert len(widths) > 1


def test_colour_variants():
    def colour_set(clip, t: int) -> set[tuple[int, ...]]:
        return {tuple(c) for c in clip.tracks.colours[t].tolist()}

    for clip in clips("vmds-same-colour", 10):
        assert clip.tracks.num_objects >= 2 and len(colour_set(clip, 0)) == 1
    assert any(len(colour_set(c, 0)) > 1 for c in clips("vmds", 10))
    for clip in clips("vmds-colour-change", 10):
        assert (clip.tracks.colours[0] != clip.tracks.colours[-1]).any(axis=-1).all()
    for clip in clips("vmds", 10):
        assert (clip.tracks.colours == clip.tracks.colours[0]).all()


def occluded_fraction(clip) -> float:
    full = amodal_areas(clip, 64).sum()
    visible = (clip.segmentation > 0).sum()
    return 1.0 - visible / full


def test_occlusion_variant_makes_all_sprites_meet():
    for clip in clips("vmds-occlusion", 15):
        full = amodal_masks(clip.tracks, 64)
        k = clip.tracks.num_objects
        pairs = [(a, b) for a in range(k) for b in range(a + 1, k)]
        assert any(all((full[t, a] & full[t, b]).any() for a, b in pairs) for t in range(len(full)))
    heavy = np.mean([occluded_fraction(c) for c in clips("vmds-occlusion", 30)])
    normal = np.mean([occluded_fraction(c) for c in clips("vmds", 30)])
    assert heavy > 2 * normal


def test_object_counts_follow_the_preset():
    spmot = {generate_clip(SPRITE_PRESETS["spmot"], 0, i).tracks.num_objects for i in range(200)}
    vmds = {generate_clip(VMDS, 0, i).tracks.num_objects for i in range(200)}
    assert spmot == {0, 1, 2, 3} and vmds == {1, 2, 3, 4}


def test_vmds_data_takes_the_number_of_sprites_and_keeps_the_variant_otherwise():
    dm = VMDSData(seed=0, variant="large", max_objects=2, val_size=40, test_size=2)
    assert dm.config == dataclasses.replace(SPRITE_PRESETS["vmds-large"], max_objects=2)
    val = dm.dataset("val")
    assert {int(val[i]["num_objects"]) for i in range(40)} == {1, 2}
    assert val[0]["masks"].shape[1] == 3  # background + K_max = 2 channels
    assert VMDSData(seed=0, variant="occlusion").config.min_objects == 2  # None keeps the variant's
    with pytest.raises(ConfigError, match="min_objects"):
        VMDSData(seed=0, min_objects=3, max_objects=2)


def test_cache_round_trip_and_reuse(tmp_path):
    fresh = VideoSprites(VMDS, seed=3, size=5)
    cached = VideoSprites(VMDS, seed=3, size=5, cache_dir=tmp_path)
    assert cached.cache_path is not None and (cached.cache_path / "meta.json").is_file()
    stamp = (cached.cache_path / "segmentation.npy").stat().st_mtime_ns
    again = pickle.loads(pickle.dumps(VideoSprites(VMDS, seed=3, size=5, cache_dir=tmp_path)))
    assert (cached.cache_path / "segmentation.npy").stat().st_mtime_ns == stamp  # read, not rewritten
    for i in range(5):
        a, b, c = fresh[i], cached[i], again[i]
        assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], c[k]) for k in a)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    other = VideoSprites(VMDS, seed=4, size=5, cache_dir=tmp_path)
    assert other.cache_path != cached.cache_path


def damage_truncate(path):
    data = (path / "segmentation.npy").read_bytes()
    (path / "segmentation.npy").write_bytes(data[: len(data) // 2])


def damage_flip(path):
    data = bytearray((path / "colours.npy").read_bytes())
    data[-10] ^= 0xFF
    (path / "colours.npy").write_bytes(bytes(data))


def damage_meta(path):
    (path / "meta.json").write_text("{not json")


def damage_missing(path):
    (path / "colours.npy").unlink()


@pytest.mark.parametrize("damage", [damage_truncate, damage_flip, damage_meta, damage_missing])
def test_a_damaged_cache_is_a_one_line_error(tmp_path, damage):
    path = VideoSprites(VMDS, seed=3, size=4, cache_dir=tmp_path).cache_path
    damage(path)
    with pytest.raises(InputError) as err:
        VideoSprites(VMDS, seed=3, size=4, cache_dir=tmp_path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_datamodules_are_registered_with_procedural_train_and_finite_eval(tmp_path):
    assert {"vmds", "spmot"} <= set(DATAMODULES.names())
    dm = VMDSData(seed=0, variant="occlusion", val_size=3, test_size=4, cache_dir=str(tmp_path))
    train, val, test = dm.dataset("train"), dm.dataset("val"), dm.dataset("test")
    assert train.procedural and (len(val), len(test)) == (3, 4)
    assert dm.config == SPRITE_PRESETS["vmds-occlusion"]
    assert not torch.equal(val[0]["video"], test[0]["video"])
    assert len(list(tmp_path.iterdir())) == 2  # only the finite splits are cached
    spmot = SpMOTData(seed=0, image_size=32, num_frames=4, val_size=2, test_size=2)
    batch = torch.utils.data.default_collate([spmot.dataset("val")[i] for i in range(2)])
    assert batch["video"].shape == (2, 4, 3, 32, 32) and batch["masks"].shape == (2, 4, 4, 32, 32)


def test_bad_configs_are_config_errors():
    with pytest.raises(ConfigError):
        SpriteConfig(shapes=("square", "star"))
    with pytest.raises(ConfigError):
        SpriteConfig(min_objects=3, max_objects=2)
    with pytest.raises(ConfigError):
        SpriteConfig(max_radius=0.6)
    with pytest.raises(ConfigError):
        sprite_preset("vmds-occlusoin")
