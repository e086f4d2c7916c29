"""One Gaussian blob per slot fitted to the attention (SFA's masks="gaussian"): a float64 loop, the
blob that a slot over two objects apart gets, and the edge cases."""

import math

import torch

from attnlab.layers.pos_embed import cell_centres
from attnlab.models.object_centric.gaussian_masks import gaussian_log_masks


def masks64(attention: torch.Tensor, H: int, W: int, power: float = 1.0) -> torch.Tensor:
    """The masks from the formula, a slot and a pixel at a time, in float64."""
    N, K, h, w = attention.shape
    a = attention.double()
    out = torch.zeros(N, K, H, W, dtype=torch.float64)
    for n in range(N):
        for i in range(H):
            for j in range(W):
                p = ((i + 0.5) / H, (j + 0.5) / W)
                scores = []
                for k in range(K):
                    total = float(a[n, k].sum())
                    ys = [(r + 0.5) / h for r in range(h) for _ in range(w)]
                    xs = [(c + 0.5) / w for _ in range(h) for c in range(w)]
                    sharp = [float(v) ** power for v in a[n, k].flatten()]
                    wts = [v / sum(sharp) for v in sharp]
                    score = math.log(total / (h * w))
                    for axis, coords, cell in ((0, ys, 1 / h), (1, xs, 1 / w)):
                        mean = sum(wt * c for wt, c in zip(wts, coords, strict=True))
                        var = (
                            sum(wt * (c - mean) ** 2 for wt, c in zip(wts, coords, strict=True))
                            + cell**2 / 12
                        )
                        score += -0.5 * ((p[axis] - mean) ** 2 / var + math.log(2 * math.pi * var))
                    scores.append(score)
                out[n, :, i, j] = torch.tensor(scores).softmax(0)
    return out


def test_equals_a_float64_loop_at_the_grid_and_at_a_finer_frame():
    attention = torch.rand(2, 3, 3, 4).softmax(dim=1)  # (N, K, h, w), sums to 1 over slots
    for size, power in (((3, 4), 1.0), ((6, 8), 1.0), ((6, 8), 3.0)):
        got = gaussian_log_masks(attention, size, power).exp()
        torch.testing.assert_close(got.double(), masks64(attention, *size, power), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got.sum(1), torch.ones(2, *size))


def test_a_power_keeps_the_attentions_tails_from_spreading_the_blob():
    # an object on one cell at 0.9 and 1 % of every other cell: the tails pull the plain blob away
    attention = torch.full((8, 8), 0.01)
    attention[1, 1] = 0.9
    attention = torch.stack([attention, 1 - attention])[None]  # (1, 2, 8, 8)
    plain = gaussian_log_masks(attention, (8, 8)).exp()
    sharp = gaussian_log_masks(attention, (8, 8), power=4.0).exp()
    assert plain[0, 0, 1, 1] < 0.1 < 0.4 < sharp[0, 0, 1, 1]


def objects(cells: list[tuple[int, int]], size: int = 8) -> torch.Tensor:
    one = torch.zeros(size, size)
    for y, x in cells:
        one[y, x] = 1
    return one


def test_a_slot_over_two_objects_apart_cannot_hold_them_and_one_slot_each_can():
    first, second = objects([(1, 1)]), objects([(6, 6)])
    both = torch.stack([first + second, 1 - first - second])[None]  # one slot for both, the floor
    each = torch.stack([first, second, 1 - first - second])[None]  # a slot each, the floor
    shared = gaussian_log_masks(both, (8, 8)).exp()
    own = gaussian_log_masks(each, (8, 8)).exp()
    # the shared slot's blob spreads over the floor between them: at the objects the floor wins
    assert shared[0, 0, 1, 1] < 0.1 and shared[0, 0, 6, 6] < 0.1
    # a slot on one cell keeps a blob the size of the cell and holds its object
    assert own[0, 0, 1, 1] > 0.4 and own[0, 1, 6, 6] > 0.4
    assert own[0, 2, 3, 3] > 0.99  # and the floor's broad blob holds the floor


def test_a_slot_with_no_attention_gets_nothing_and_the_gradient_is_finite():
    attention = torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])[None].requires_grad_(True)
    log_masks = gaussian_log_masks(attention, (4, 4))
    assert torch.isfinite(log_masks).all()
    torch.testing.assert_close(log_masks.exp()[0, 0], torch.ones(4, 4))
    log_masks[:, 0].sum().backward()
    assert torch.isfinite(attention.grad).all()


def test_cell_centres_are_row_major():
    torch.testing.assert_close(
        cell_centres(2, 3),
        torch.tensor([[0.25, 1 / 6], [0.25, 0.5], [0.25, 5 / 6], [0.75, 1 / 6], [0.75, 0.5], [0.75, 5 / 6]]),
    )
