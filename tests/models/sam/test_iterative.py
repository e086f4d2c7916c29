"""Iterative box refinement (seed 004): batched over boxes with one encoder pass, it gives what a
plain per-box loop that re-runs the whole model every iteration gives."""

import pytest
import torch

from attnlab.errors import ConfigError, InputError
from attnlab.models.sam.iterative import IterativeConfig, iterative_inference
from attnlab.models.sam.sam import SMALL_REFERENCE, Sam
from tests import _goldens


@pytest.fixture(scope="module")
def model() -> Sam:
    sam = Sam(SMALL_REFERENCE)
    sam.load_state_dict(_goldens.load("sam", "sam_small_state_dict.pt"))
    return sam.eval()


def naive(model: Sam, image: torch.Tensor, box: list[float], threshold: float, max_iterations: int):
    """One box at a time, the whole model (encoder included) per iteration, python floats for boxes."""
    H, W = image.shape[1:]
    scale = model.config.img_size / max(H, W)
    h, w = int(H * scale + 0.5), int(W * scale + 0.5)

    def mask_for(b: list[float]) -> torch.Tensor:
        x, _ = model.preprocess(image[None])
        prompt = torch.tensor([[b[0] * w / W, b[1] * h / H, b[2] * w / W, b[3] * h / H]])
        low = model(x, boxes=prompt).masks
        return model.postprocess(low, (H, W))[0, 0] > 0

    boxes, mask, passes = [box], mask_for(box), 1
    while passes < max_iterations and mask.any():
        ys, xs = mask.nonzero(as_tuple=True)
        b = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        new = mask_for(b)
        rate = (new != mask).sum().item() / ((b[2] - b[0]) * (b[3] - b[1]))
        boxes.append(b)
        mask, passes = new, passes + 1
        if rate < threshold or not new.any():
            break
    return mask, boxes, passes


@torch.no_grad()
def test_batched_iterations_equal_a_per_box_loop_of_the_whole_model(model: Sam):
    g = torch.Generator().manual_seed(3)
    image = torch.rand(3, 96, 128, generator=g) * 255  # not square: resize, pad and crop back
    boxes = torch.tensor([[10.0, 8, 60, 50], [40, 30, 120, 90], [0, 0, 128, 96], [70, 5, 90, 40]])
    config = IterativeConfig(threshold=0.05, max_iterations=4)
    result = iterative_inference(model, image, boxes, config)
    assert result.boxes.shape[1:] == (4, 4) and result.masks.shape == (4, 96, 128)
    for i, box in enumerate(boxes.tolist()):
        mask, history, passes = naive(model, image, box, config.threshold, config.max_iterations)
        assert int(result.iterations[i]) == passes
        assert torch.equal(result.masks[i], mask)
        torch.testing.assert_close(result.boxes[: len(history), i], torch.tensor(history))
    assert (result.iterations > 1).any(), "the test should exercise at least one refinement"


@torch.no_grad()
def test_stopping_rule_and_history(model: Sam):
    image = torch.rand(3, 128, 128) * 255
    boxes = torch.tensor([[10.0, 10, 70, 70], [50, 40, 120, 110]])
    one = iterative_inference(model, image, boxes, IterativeConfig(max_iterations=1))
    assert one.iterations.tolist() == [1, 1] and torch.equal(one.masks, one.first_masks)
    # a threshold nothing stays above: every box with a non-empty first mask stops after the second pass
    lax = iterative_inference(model, image, boxes, IterativeConfig(threshold=1e9, max_iterations=5))
    expected = [2 if m.any() else 1 for m in lax.first_masks]
    assert lax.iterations.tolist() == expected
    run = iterative_inference(model, image, boxes, IterativeConfig(threshold=0.0, max_iterations=3))
    for i in range(2):  # threshold 0 never stops early (a rate is never < 0)
        n = int(run.iterations[i])
        assert n == 3 or not run.masks[i].any()
        assert torch.isnan(run.change[0, i]) and torch.isfinite(run.change[1:n, i]).all()
        assert torch.isnan(run.change[n:, i]).all()


def test_bad_input_is_one_line(model: Sam):
    image = torch.rand(3, 64, 80) * 255
    with pytest.raises(InputError, match=r"boxes\[1\] .* lies outside the 64x80 image"):
        iterative_inference(model, image, torch.tensor([[0.0, 0, 10, 10], [50, 10, 90, 20]]))
    with pytest.raises(InputError, match=r"boxes\[0\] .* has zero area"):
        iterative_inference(model, image, torch.tensor([[5.0, 5, 5, 20]]))
    with pytest.raises(InputError, match=r"image must be \(3, H, W\)"):
        iterative_inference(model, image[None], torch.tensor([[0.0, 0, 10, 10]]))
    with pytest.raises(ConfigError, match="max_iterations"):
        iterative_inference(model, image, torch.tensor([[0.0, 0, 10, 10]]), IterativeConfig(max_iterations=0))
