"""The motion target: each object's pixels hold the motion of its centre from the previous frame."""

import pytest
import torch

from attnlab.errors import InputError
from attnlab.models.object_centric.motion import object_motion


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
