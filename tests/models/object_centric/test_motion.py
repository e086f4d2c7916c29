"""The motion target: each object's pixels hold the motion of its centre from the previous frame."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.object_centric.motion import object_motion, slot_motion_spread


def test_a_hand_built_clip():
    """Object 1 is one pixel moving right by two columns a frame; object 2 vanishes in frame 2."""
    masks = torch.zeros(1, 3, 3, 5, 5)  # (B, T, 1 + K, H, W), coordinates 0, 0.25, ..., 1
    for t, col in enumerate([0, 2, 4]):
        masks[0, t, 1, 1, col] = 1
    masks[0, 0, 2, 3:5, 2] = 1  # a vertical bar in frames 1 and 3, missing in frame 2
    masks[0, 2, 2, 3:5, 3] = 1
    masks[:, :, 0] = 1 - masks[:, :, 1:].sum(2)
    motion = object_motion(masks)  # (1, 3, 2, 5, 5)
    assert motion.shape == (1, 3, 2, 5, 5)
    want = torch.zeros(3, 2, 5, 5)
    want[1, 1, 1, 2] = want[2, 1, 1, 4] = 0.5  # x moves 0.5 a frame, y not; frame 1 has no past
    # the bar has no partner frame for either step, so it stays 0
    torch.testing.assert_close(motion[0], want)


def test_matches_a_float64_loop_over_objects_and_frames():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (2, 4, 6, 7))  # (B, T, H, W): 0 background, objects 1..3
    labels[0, 2][labels[0, 2] == 3] = 0  # object 3 missing from one frame of clip 1
    masks = torch.nn.functional.one_hot(labels, 4).permute(0, 1, 4, 2, 3)  # (B, T, 4, H, W)
    want = torch.zeros(2, 4, 2, 6, 7, dtype=torch.float64)
    ys, xs = torch.linspace(0, 1, 6, dtype=torch.float64), torch.linspace(0, 1, 7, dtype=torch.float64)
    for b in range(2):
        for t in range(4):
            if t == 0:
                continue  # no previous frame: 0
            s, e = t - 1, t
            for k in range(1, 4):
                here, there = labels[b, s] == k, labels[b, e] == k
                if not (here.any() and there.any()):
                    continue
                iy, ix = here.nonzero(as_tuple=True)
                jy, jx = there.nonzero(as_tuple=True)
                step = torch.stack([ys[jy].mean() - ys[iy].mean(), xs[jx].mean() - xs[ix].mean()])
                want[b, t][:, labels[b, t] == k] = step[:, None]
    torch.testing.assert_close(object_motion(masks), want.float(), rtol=0, atol=1e-6)


def test_needs_two_frames_and_an_object_channel():
    with pytest.raises(InputError, match="masks must be"):
        object_motion(torch.zeros(1, 1, 3, 4, 4))
    with pytest.raises(InputError, match="masks must be"):
        object_motion(torch.zeros(3, 4, 4))


def test_the_spread_of_two_objects_in_one_slot_by_hand():
    """Two pixels moving (0, 1) and (0, -1): in one slot each is 1 from the slot's mean motion 0; in a
    slot each, 0. A pixel shared half and half between them pays half of each slot's error."""
    motion = torch.zeros(1, 1, 2, 1, 3)  # (B, T, 2, H, W): pixels 0 and 1 move, pixel 2 is still
    motion[0, 0, 1, 0, 0], motion[0, 0, 1, 0, 1] = 1.0, -1.0
    together = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # (K, W): slot 0 holds both
    apart = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])  # slot 1 holds pixel 1 and the still pixel
    shared = torch.tensor([[1.0, 0.5, 0.0], [0.0, 0.5, 1.0]])

    def spread(masks):
        return slot_motion_spread(masks.view(1, 1, 2, 1, 1, 3), motion).item()

    assert spread(together) == pytest.approx(2.0)  # |1 - 0|^2 + |-1 - 0|^2
    assert spread(apart) == pytest.approx(0.5)  # slot 1's mean is -0.5: 0.25 + 0.25
    # slot 0: mean (1 - 0.5) / 1.5 = 1/3; slot 1: mean -0.5 / 1.5 = -1/3
    want = (2 / 3) ** 2 + 0.5 * (4 / 3) ** 2 + 0.5 * (2 / 3) ** 2 + (1 / 3) ** 2
    assert spread(shared) == pytest.approx(want)


def test_the_spread_matches_a_float64_loop_and_its_fit_is_the_minimiser():
    torch.manual_seed(1)
    masks = torch.rand(2, 3, 4, 1, 5, 6).softmax(dim=2)  # (B, T, K, 1, H, W)
    motion = torch.randn(2, 3, 2, 5, 6)
    want = torch.zeros(2, 3, dtype=torch.float64)
    m, f = masks.double()[:, :, :, 0], motion.double()
    for b in range(2):
        for t in range(3):
            for k in range(4):
                w = m[b, t, k]
                mu = [(w * f[b, t, c]).sum() / w.sum() for c in range(2)]
                want[b, t] += sum((w * (f[b, t, c] - mu[c]) ** 2).sum() for c in range(2))
    got = slot_motion_spread(masks, motion)
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-6)
    # the gradient through each slot's fit is 0: the masks' gradient is that of the fixed-mu spread
    masks.requires_grad_(True)
    (g,) = torch.autograd.grad(slot_motion_spread(masks, motion).sum(), masks)
    mu = torch.einsum("btkhw,btchw->btkc", masks[:, :, :, 0], motion) / masks.sum(dim=(-3, -2, -1))[..., None]
    fixed = (motion[:, :, None] - mu.detach()[..., None, None]).square().sum(dim=3, keepdim=True)
    torch.testing.assert_close(g, fixed, rtol=1e-4, atol=1e-5)


def test_the_spread_checks_its_inputs():
    with pytest.raises(InputError, match=r"masks must be \(B, T, K, 1, H, W\)"):
        slot_motion_spread(torch.rand(1, 2, 3, 4, 4), torch.rand(1, 2, 2, 4, 4))
    with pytest.raises(InputError, match=r"motion must be \(B, T, 2, H, W\)"):
        slot_motion_spread(torch.rand(1, 2, 3, 1, 4, 4), torch.rand(1, 2, 3, 4, 4))
    with pytest.raises(InputError, match="features must be"):
        slot_motion_spread(torch.rand(1, 2, 3, 1, 4, 4), torch.rand(1, 2, 2, 4, 5))
