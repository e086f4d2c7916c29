"""NonLocalBlock against the paper's equations written out with explicit loops in float64."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.explain.capture import capture
from attnlab.layers.non_local import NonLocalBlock

MODES = ["embedded_gaussian", "dot_product", "concatenation", "gaussian"]


def _randomize(block: NonLocalBlock) -> NonLocalBlock:
    """Replace the zero init and BN statistics with random values (eval-mode BN is affine)."""
    with torch.no_grad():
        for p in block.parameters():
            p.normal_(0.0, 0.5)
        for m in block.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
    return block


def _conv1x1(conv: nn.Module, vec: torch.Tensor) -> torch.Tensor:
    if isinstance(conv, nn.Identity):
        return vec
    weight = conv.weight.reshape(conv.weight.shape[0], -1)
    return weight @ vec + conv.bias


def _pooled_keys(feats: dict[tuple[int, ...], torch.Tensor], sizes: list[int], factors: list[int]):
    """Max over each pooling window, per channel, in row-major window order."""
    out = []
    grid = [n // f for n, f in zip(sizes, factors, strict=True)]
    for key in itertools.product(*(range(n) for n in grid)):
        members = itertools.product(*(range(k * f, k * f + f) for k, f in zip(key, factors, strict=True)))
        out.append(torch.stack([feats[m] for m in members]).amax(dim=0))
    return out


def _reference(block: NonLocalBlock, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """z and the weights f/C of Eq. (1)-(2) for an eval-mode block, one position pair at a time."""
    B, _, *sizes = x.shape
    positions = list(itertools.product(*(range(n) for n in sizes)))
    factors = [1] * len(sizes)
    if block.sub_sample:
        factors = [2] * len(sizes) if len(sizes) < 3 else [1, 2, 2]
    z = torch.empty_like(x)
    weights = []
    for b in range(B):
        theta = {p: _conv1x1(block.theta, x[(b, slice(None), *p)]) for p in positions}
        phi = _pooled_keys(
            {p: _conv1x1(block.phi, x[(b, slice(None), *p)]) for p in positions}, sizes, factors
        )
        g = _pooled_keys({p: _conv1x1(block.g, x[(b, slice(None), *p)]) for p in positions}, sizes, factors)
        w_b = torch.zeros(len(positions), len(phi), dtype=x.dtype)
        for i, p in enumerate(positions):
            f = torch.stack([_pairwise_f(block, theta[p], phi_j) for phi_j in phi])
            w_b[i] = f / f.sum() if block.mode in ("gaussian", "embedded_gaussian") else f / len(phi)
            y = sum(w_b[i, j] * g[j] for j in range(len(phi)))
            z[(b, slice(None), *p)] = (
                _bn_eval(block.proj_norm, _conv1x1(block.proj, y)) + x[(b, slice(None), *p)]
            )
        weights.append(w_b)
    return z, torch.stack(weights)


def _pairwise_f(block: NonLocalBlock, theta_i: torch.Tensor, phi_j: torch.Tensor) -> torch.Tensor:
    if block.mode in ("gaussian", "embedded_gaussian"):
        return torch.exp(theta_i @ phi_j)
    if block.mode == "dot_product":
        return theta_i @ phi_j
    assert block.concat_project is not None
    return torch.relu(block.concat_project.weight[0] @ torch.cat([theta_i, phi_j]))


def _bn_eval(norm: nn.Module, v: torch.Tensor) -> torch.Tensor:
    if isinstance(norm, nn.Identity):
        return v
    return (v - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("sub_sample", [False, True])
@pytest.mark.parametrize("norm", [True, False])
def test_block_is_identity_at_init(mode: str, ndim: int, sub_sample: bool, norm: bool) -> None:
    torch.manual_seed(0)
    block = NonLocalBlock(6, mode=mode, ndim=ndim, sub_sample=sub_sample, norm=norm)  # type: ignore[arg-type]
    x = torch.randn(2, 6, *([4] * ndim))
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("ndim", "sizes"), [(1, [6]), (2, [4, 4]), (3, [2, 2, 4])])
@pytest.mark.parametrize("sub_sample", [False, True])
def test_matches_paper_equations_with_loops(mode: str, ndim: int, sizes: list[int], sub_sample: bool) -> None:
    torch.manual_seed(1)
    block = NonLocalBlock(4, inter_channels=3, mode=mode, ndim=ndim, sub_sample=sub_sample)  # type: ignore[arg-type]
    block = _randomize(block).double().eval()
    x = torch.randn(2, 4, *sizes, dtype=torch.float64)
    expected_z, expected_w = _reference(block, x)
    torch.testing.assert_close(block(x), expected_z)  # fast path (SDPA in the Gaussian modes)
    with capture(block, differentiable=True) as rec:
        z_eager = block(x)  # eager path from the recorded weights
    torch.testing.assert_close(z_eager, expected_z)
    torch.testing.assert_close(rec[""], expected_w)


def test_norm_off_zero_inits_wz_and_matches_reference() -> None:
    torch.manual_seed(2)
    block = NonLocalBlock(4, norm=False)
    assert isinstance(block.proj_norm, nn.Identity)
    assert all(torch.count_nonzero(p) == 0 for p in block.proj.parameters())
    block = _randomize(block).double()
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(block(x), _reference(block, x)[0])


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_float64(mode: str) -> None:
    torch.manual_seed(3)
    block = _randomize(NonLocalBlock(3, inter_channels=2, mode=mode, sub_sample=True)).double().eval()  # type: ignore[arg-type]
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


@pytest.mark.parametrize("mode", MODES)
def test_every_parameter_gets_a_gradient(mode: str) -> None:
    torch.manual_seed(4)
    block = _randomize(NonLocalBlock(4, mode=mode, sub_sample=True))  # type: ignore[arg-type]
    out = block(torch.randn(2, 4, 4, 4))
    # A plain sum would cancel through train-mode BN (normalised values sum to a constant).
    (out * torch.randn_like(out)).sum().backward()
    for name, p in block.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", MODES)
def test_capture_records_weights_with_documented_shape(mode: str) -> None:
    torch.manual_seed(5)
    model = nn.Sequential(_randomize(NonLocalBlock(4, mode=mode, sub_sample=True)).eval())  # type: ignore[arg-type]
    x = torch.randn(2, 4, 6, 4, requires_grad=True)  # the Gaussian mode's weights depend on x only
    plain = model(x)
    with capture(model) as rec:
        captured = model(x)
    w = rec["0"]
    assert w.shape == (2, 24, 6)  # (B, N = 6 * 4, Nk = 3 * 2)
    assert torch.equal(captured, plain)  # capture does not change the output
    if mode in ("gaussian", "embedded_gaussian"):
        torch.testing.assert_close(w.sum(-1), torch.ones(2, 24))
    if mode == "concatenation":
        assert (w >= 0).all()  # ReLU(.) / N
    with capture(model, differentiable=True) as rec:
        out = model(x)
    (grad,) = torch.autograd.grad(out.sum(), rec["0"])
    assert grad.shape == w.shape
    torch.testing.assert_close(out, plain)


def test_no_weights_materialised_without_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    block = NonLocalBlock(4)

    def forbidden(*_args: object) -> torch.Tensor:
        raise AssertionError("weights computed although nobody captures")

    monkeypatch.setattr(block, "_pairwise", forbidden)
    x = torch.randn(1, 4, 3, 3)
    assert block(x).shape == x.shape


@pytest.mark.parametrize(
    ("kwargs", "shape"),
    [
        ({}, (2, 5, 4, 4)),  # wrong channels
        ({}, (2, 4, 4)),  # 1D input to a 2D block
        ({"ndim": 3}, (2, 4, 4, 4)),
        ({"sub_sample": True}, (2, 4, 1, 4)),  # nothing left to pool
    ],
)
def test_bad_inputs_raise(kwargs: dict[str, object], shape: tuple[int, ...]) -> None:
    block = NonLocalBlock(4, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        block(torch.randn(*shape))


def test_bad_arguments_raise() -> None:
    with pytest.raises(InputError):
        NonLocalBlock(4, mode="softmax")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        NonLocalBlock(4, ndim=4)
    with pytest.raises(InputError):
        NonLocalBlock(4, inter_channels=0)
    with pytest.raises(InputError):
        NonLocalBlock(4)(torch.ones(1, 4, 2, 2, dtype=torch.long))


def test_dot_product_normalises_by_number_of_keys() -> None:
    # With theta = phi = identity-like 1x1 maps on a constant input, every f equals the same
    # value, so each weight is f / Nk with Nk the number of (pooled) key positions.
    block = NonLocalBlock(2, inter_channels=2, mode="dot_product", sub_sample=True)
    with torch.no_grad():
        for conv in (block.theta, block.phi):
            assert isinstance(conv, nn.Conv2d)
            conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
            conv.bias.zero_()
    x = torch.ones(1, 2, 4, 6)  # f = 1 . 1 + 1 . 1 = 2, Nk = 2 * 3 = 6
    with capture(block) as rec:
        block(x)
    torch.testing.assert_close(rec[""], torch.full((1, 24, 6), 2.0 / 6))
    assert math.isclose(float(rec[""].sum(-1)[0, 0]), 2.0)
