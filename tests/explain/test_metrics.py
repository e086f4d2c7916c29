import math
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.explain.metrics import (
    InversionDrop,
    box_masks,
    deletion,
    energy_in_region,
    insertion,
    inversion_drop,
    linear_imputation,
    make_baseline,
    pointing_game,
    road,
)

H = W = 8
PIXELS = H * W


class RegionModel(nn.Module):
    """Class 0's probability is the mean of the first channel over a region, clamped to [0, 1].

    On an all-ones image with a zero baseline it is the fraction of the region's
    pixels still present, so deletion/insertion curves have closed forms."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("region", region.double())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = ((x[:, 0] * self.region).flatten(1).sum(1) / self.region.sum()).clamp(0, 1)
        return torch.stack([p, 1 - p], 1).log()  # softmax gives back (p, 1 - p)


@dataclass
class Output:
    logits: torch.Tensor


class WrappedModel(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> Output:
        return Output(self.inner(x))


def block_region() -> torch.Tensor:
    region = torch.zeros(H, W, dtype=torch.bool)
    region[2:4, 3:7] = True  # 8 pixels
    return region


def perfect_saliency(region: torch.Tensor, batch: int) -> torch.Tensor:
    """Every region pixel above every other one, with distinct values inside both sets."""
    noise = torch.rand(batch, H, W, dtype=torch.float64)
    return region.double() * (1 + noise) + (~region).double() * 0.5 * noise


def small_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16, 5),
    ).double()


# ---------------------------------------------------------------- deletion / insertion


@pytest.mark.parametrize("steps", [16, 64])
def test_deletion_and_insertion_auc_in_closed_form(steps):
    region = block_region()
    r = int(region.sum())
    model = RegionModel(region)
    x = torch.ones(2, 1, H, W, dtype=torch.float64)
    good = perfect_saliency(region, 2)
    bad = -good
    zeros = {"baseline": "zeros", "steps": steps}
    # deletion of the region first: a triangle of width r/n; last: a plateau then a triangle
    torch.testing.assert_close(
        deletion(model, x, good, **zeros).auc, torch.full((2,), r / (2 * PIXELS)).double()
    )
    expected_bad = (PIXELS - r) / PIXELS + r / (2 * PIXELS)
    torch.testing.assert_close(deletion(model, x, bad, **zeros).auc, torch.full((2,), expected_bad).double())
    torch.testing.assert_close(
        insertion(model, x, good, **zeros).auc, torch.full((2,), 1 - r / (2 * PIXELS)).double()
    )
    torch.testing.assert_close(
        insertion(model, x, bad, **zeros).auc, torch.full((2,), r / (2 * PIXELS)).double()
    )


def test_deletion_curve_points_and_fractions_when_steps_do_not_divide_pixels():
    region = block_region()
    model = RegionModel(region)
    x = torch.ones(1, 1, H, W, dtype=torch.float64)
    curve = deletion(model, x, perfect_saliency(region, 1), steps=3, baseline="zeros")
    # 64 // 3 steps: 0, 21, 42, 64 pixels removed; the region (8 px) is gone after the first
    torch.testing.assert_close(curve.fractions, torch.tensor([0, 21 / 64, 42 / 64, 1.0], dtype=torch.float64))
    torch.testing.assert_close(curve.probs, torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64))
    assert curve.targets.tolist() == [0]
    torch.testing.assert_close(curve.auc, torch.tensor([0.5 * 21 / 64], dtype=torch.float64))


def test_constant_map_removes_pixels_in_raster_order():
    first_row = torch.zeros(H, W, dtype=torch.bool)
    first_row[0] = True
    last_row = torch.zeros(H, W, dtype=torch.bool)
    last_row[-1] = True
    x = torch.ones(1, 1, H, W, dtype=torch.float64)
    flat = torch.zeros(1, H, W, dtype=torch.float64)
    early = deletion(RegionModel(first_row), x, flat, steps=PIXELS).auc
    late = deletion(RegionModel(last_row), x, flat, steps=PIXELS).auc
    torch.testing.assert_close(early, torch.tensor([W / (2 * PIXELS)], dtype=torch.float64))
    torch.testing.assert_close(
        late, torch.tensor([(PIXELS - W) / PIXELS + W / (2 * PIXELS)], dtype=torch.float64)
    )


def test_batched_equals_per_example_and_any_chunk_size():
    model = small_cnn()
    x = torch.randn(3, 3, H, W, dtype=torch.float64)
    saliency = torch.rand(3, H, W, dtype=torch.float64)
    for fn, baseline in ((deletion, "zeros"), (insertion, "blur"), (deletion, "mean")):
        together = fn(model, x, saliency, steps=10, baseline=baseline, batch_size=7)
        for i in range(3):
            alone = fn(model, x[i : i + 1], saliency[i : i + 1], steps=10, baseline=baseline, batch_size=64)
            torch.testing.assert_close(together.probs[i : i + 1], alone.probs)
            torch.testing.assert_close(together.auc[i : i + 1], alone.auc)
            assert together.targets[i] == alone.targets[0]


def test_dataclass_outputs_targets_and_training_flag_restored():
    model = small_cnn().train()
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    saliency = torch.rand(2, H, W, dtype=torch.float64)
    plain = deletion(model, x, saliency, steps=5, targets=[1, 3])
    wrapped = deletion(WrappedModel(model), x, saliency, steps=5, targets=torch.tensor([1, 3]))
    assert model.training
    torch.testing.assert_close(plain.probs, wrapped.probs)
    assert plain.targets.tolist() == [1, 3]
    probs = model.eval()(x).softmax(1)[torch.arange(2), torch.tensor([1, 3])]
    torch.testing.assert_close(plain.probs[:, 0], probs.detach())


def test_baselines_by_hand():
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    assert make_baseline(x, "zeros").abs().sum() == 0
    means = x.mean((2, 3), keepdim=True).expand_as(x)
    torch.testing.assert_close(make_baseline(x, "mean"), means)
    constant = torch.full((1, 2, H, W), 3.0, dtype=torch.float64)
    torch.testing.assert_close(make_baseline(constant, "blur", blur_sigma=2.0), constant)
    # a symmetric kernel keeps a ramp wherever the kernel fits inside the image
    ramp = torch.arange(32, dtype=torch.float64).expand(1, 1, 32, 32)
    blurred = make_baseline(ramp, "blur", blur_sigma=1.0)
    torch.testing.assert_close(blurred[..., 3:-3], ramp[..., 3:-3])
    assert not torch.allclose(blurred, ramp)


def test_deletion_rejects_bad_inputs():
    model = small_cnn()
    x = torch.randn(2, 3, H, W, dtype=torch.float64)
    good = torch.rand(2, H, W, dtype=torch.float64)
    with pytest.raises(InputError, match="upsample"):
        deletion(model, x, torch.rand(2, 4, 4, dtype=torch.float64))
    with pytest.raises(InputError, match="saliency"):
        deletion(model, x, torch.rand(2, 1, H, W, dtype=torch.float64))
    with pytest.raises(InputError, match="NaN"):
        deletion(model, x, good.clone().fill_(math.nan))
    with pytest.raises(ConfigError, match="baseline"):
        deletion(model, x, good, baseline="black")
    with pytest.raises(ConfigError, match="steps"):
        deletion(model, x, good, steps=0)
    with pytest.raises(InputError, match="baseline"):
        insertion(model, x, good, baseline=torch.zeros(1, 3, H, W))


# ---------------------------------------------------------------- pointing game and energy


def peak_map(row: int, col: int) -> torch.Tensor:
    saliency = torch.rand(1, H, W) * 0.5
    saliency[0, row, col] = 1.0
    return saliency


def single_pixel(row: int, col: int) -> torch.Tensor:
    mask = torch.zeros(1, H, W, dtype=torch.bool)
    mask[0, row, col] = True
    return mask


def test_pointing_game_hit_miss_and_euclidean_tolerance():
    saliency = peak_map(2, 3)
    assert pointing_game(saliency, torch.tensor([[3, 2, 4, 3]])).tolist() == [1.0]  # box around (2, 3)
    assert pointing_game(saliency, torch.tensor([[5, 5, 8, 8]]), tolerance=0).tolist() == [0.0]
    # 3 px to the right of the peak
    assert pointing_game(saliency, single_pixel(2, 6), tolerance=3).tolist() == [1.0]
    assert pointing_game(saliency, single_pixel(2, 6), tolerance=2.9).tolist() == [0.0]
    # a 3-4-5 triangle: 5 px away, though only 4 rows and 3 columns
    diagonal = peak_map(5, 5)
    assert pointing_game(diagonal, single_pixel(1, 2), tolerance=5).tolist() == [1.0]
    assert pointing_game(diagonal, single_pixel(1, 2), tolerance=4.9).tolist() == [0.0]


def test_pointing_game_constant_maps_and_ties():
    region = torch.ones(1, H, W, dtype=torch.bool)
    assert math.isnan(pointing_game(torch.zeros(1, H, W), region).item())
    ties = torch.zeros(1, H, W)
    ties[0, 1, 1] = ties[0, 6, 6] = 1.0
    assert pointing_game(ties, torch.tensor([[0, 0, 3, 3]]), tolerance=0).tolist() == [0.0]
    assert pointing_game(ties, torch.tensor([[[0, 0, 3, 3], [5, 5, 8, 8]]]), tolerance=0).tolist() == [1.0]


def test_pointing_game_is_per_example():
    saliency = torch.cat([peak_map(0, 0), peak_map(7, 7), torch.ones(1, H, W)])
    boxes = torch.tensor([[0, 0, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]])
    hits = pointing_game(saliency, boxes, tolerance=0)
    assert hits[:2].tolist() == [1.0, 0.0] and math.isnan(hits[2])


def test_box_masks_use_pixel_centres():
    mask = box_masks(torch.tensor([[1, 2, 3, 5]]), (H, W))
    expected = torch.zeros(1, H, W, dtype=torch.bool)
    expected[0, 2:5, 1:3] = True
    assert torch.equal(mask, expected)
    fractional = box_masks(torch.tensor([[0.4, 0.6, 1.6, 1.6]]), (H, W))
    assert fractional.nonzero().tolist() == [[0, 1, 0], [0, 1, 1]]


def test_energy_in_region_by_hand():
    saliency = torch.zeros(1, 4, 4)
    saliency[0, 0, 0], saliency[0, 0, 1], saliency[0, 3, 3] = 2.0, 1.0, 5.0
    torch.testing.assert_close(
        energy_in_region(saliency, torch.tensor([[0, 0, 2, 2]])), torch.tensor([3 / 8])
    )
    points = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, False, True, False], [True, True, False, False]])
    energy = energy_in_region(points, mask)
    assert energy[0].item() == pytest.approx(4 / 10) and math.isnan(energy[1])


def test_localisation_metrics_reject_bad_inputs():
    saliency = torch.rand(2, H, W)
    with pytest.raises(InputError, match="empty region"):
        pointing_game(saliency, torch.tensor([[0, 0, 2, 2], [3, 3, 3, 5]]))
    with pytest.raises(InputError, match="empty region"):
        energy_in_region(saliency, torch.tensor([[0, 0, 2, 2], [20, 20, 30, 30]]))
    with pytest.raises(InputError, match="NaN"):
        pointing_game(torch.full((1, H, W), math.nan), torch.tensor([[0, 0, 2, 2]]))
    with pytest.raises(InputError, match="must match"):
        energy_in_region(torch.rand(2, 5), torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(InputError, match="non-negative"):
        energy_in_region(-saliency, torch.tensor([[0, 0, 2, 2], [0, 0, 2, 2]]))
    with pytest.raises(InputError, match=r"\(B, H, W\)"):
        pointing_game(torch.rand(2, 5), torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(InputError, match="boxes"):
        pointing_game(saliency, torch.ones(2, 3))


# ---------------------------------------------------------------- ROAD


def test_linear_imputation_reproduces_a_plane_inside_the_image():
    grid = torch.arange(H, dtype=torch.float64)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    plane = torch.stack([0.3 * rows - 1.7 * cols + 2.0, -rows + 0.5 * cols, 0.25 * rows + 4.0])
    removed = torch.zeros(H, W, dtype=torch.bool)
    removed[2:5, 2:6] = True
    removed[6, 1] = removed[1, 6] = True
    filled = linear_imputation(plane, removed)
    torch.testing.assert_close(filled, plane, rtol=0, atol=1e-12)
    scrambled = plane.clone()
    scrambled[:, removed] = 99.0  # the removed pixels' own values play no part
    torch.testing.assert_close(linear_imputation(scrambled, removed), plane, rtol=0, atol=1e-12)


def test_linear_imputation_renormalises_at_the_border():
    image = torch.tensor([[[0.0, 3.0], [6.0, 12.0]]], dtype=torch.float64)
    removed = torch.tensor([[True, False], [False, False]])
    corner = (3.0 / 6 + 6.0 / 6 + 12.0 / 12) / (1 / 6 + 1 / 6 + 1 / 12)
    expected = image.clone()
    expected[0, 0, 0] = corner
    torch.testing.assert_close(linear_imputation(image, removed), expected)


def test_noisy_imputation_only_touches_removed_pixels_and_is_reproducible():
    image = torch.rand(3, H, W, dtype=torch.float64)
    removed = torch.rand(H, W) < 0.4
    clean = linear_imputation(image, removed)
    noisy = linear_imputation(image, removed, noise=0.1, generator=torch.Generator().manual_seed(1))
    again = linear_imputation(image, removed, noise=0.1, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(noisy[:, ~removed], image[:, ~removed], rtol=0, atol=0)
    assert (noisy[:, removed] != clean[:, removed]).all()
    torch.testing.assert_close(noisy, again, rtol=0, atol=0)
    with pytest.raises(InputError, match="every pixel"):
        linear_imputation(image, torch.ones(H, W, dtype=torch.bool))


def test_road_morf_and_lerf_on_a_region_model():
    region = block_region()
    model = RegionModel(region)
    x = region.double().expand(2, 1, H, W).clone()  # bright region on a zero background
    saliency = perfect_saliency(region, 2)
    fractions = (0.125, 0.5)  # 8 px: exactly the region; 32 px: half the image
    morf = road(model, x, saliency, order="morf", fractions=fractions, noise=0.0)
    lerf = road(model, x, saliency, order="lerf", fractions=fractions, noise=0.0)
    # MoRF imputes the whole region from its zero surroundings; LeRF never reaches it
    torch.testing.assert_close(morf.probs, torch.zeros(2, 2, dtype=torch.float64))
    torch.testing.assert_close(lerf.probs, torch.ones(2, 2, dtype=torch.float64))
    assert morf.accuracy.tolist() == [0.0, 0.0] and lerf.accuracy.tolist() == [1.0, 1.0]
    torch.testing.assert_close(morf.fractions, torch.tensor(fractions, dtype=torch.float64))


def test_road_does_not_depend_on_batch_size():
    model = small_cnn()
    x = torch.randn(3, 3, H, W, dtype=torch.float64)
    saliency = torch.rand(3, H, W, dtype=torch.float64)
    runs = [
        road(
            model,
            x,
            saliency,
            fractions=(0.2, 0.6),
            batch_size=size,
            generator=torch.Generator().manual_seed(0),
        )
        for size in (1, 4, 64)
    ]
    for other in runs[1:]:
        torch.testing.assert_close(other.probs, runs[0].probs)
        assert torch.equal(other.correct, runs[0].correct)


def test_road_rejects_bad_arguments():
    model = small_cnn()
    x = torch.randn(1, 3, H, W, dtype=torch.float64)
    saliency = torch.rand(1, H, W, dtype=torch.float64)
    with pytest.raises(ConfigError, match="order"):
        road(model, x, saliency, order="middle")
    with pytest.raises(ConfigError, match="fractions"):
        road(model, x, saliency, fractions=(0.5, 1.0))
    with pytest.raises(InputError, match=r"takes batched 4-D inputs \(B, C, H, W\)"):
        road(model, x[:, :, 0], saliency[:, 0])  # refused by the model's rank before ROAD's own check
    with pytest.raises(InputError, match="spatial"):
        road(nn.Sequential(nn.Flatten(), nn.Linear(3 * W, 2)), x[:, :, 0], saliency[:, 0])


# ---------------------------------------------------------------- attention inversion


def test_inversion_drop_arithmetic_and_validation():
    drop = inversion_drop(0.459, spatial=0.362, temporal=0.283, both=0.227)
    assert isinstance(drop, InversionDrop)
    assert drop.spatial == pytest.approx(0.097)
    assert drop.temporal == pytest.approx(0.176)
    assert drop.both == pytest.approx(0.232)
    with pytest.raises(InputError, match="fraction"):
        inversion_drop(45.9, 36.2, 28.3, 22.7)
    with pytest.raises(InputError, match="both"):
        inversion_drop(0.5, 0.4, 0.3, math.nan)
