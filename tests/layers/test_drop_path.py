"""Stochastic depth: rate 0 changes nothing, evaluation is the identity, and in training whole
samples are dropped with the given probability and the kept ones scaled by 1 / keep (timm's)."""

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.layers.drop_path import DropPath, drop_path
from attnlab.layers.transformer import TransformerBlock
from attnlab.layers.vit_blocks import drop_path_rates, vit_blocks


def test_rate_zero_block_is_bit_identical_and_draws_no_random_numbers():
    torch.manual_seed(0)
    plain = TransformerBlock(16, num_heads=2)
    torch.manual_seed(0)
    zero = TransformerBlock(16, num_heads=2, drop_path=0.0)
    assert plain.state_dict().keys() == zero.state_dict().keys()
    x = torch.randn(3, 5, 16)
    torch.manual_seed(1)
    out = zero.train()(x)
    after = torch.rand(1)
    torch.manual_seed(1)
    assert torch.equal(out, plain.train()(x))
    assert torch.equal(after, torch.rand(1))  # the RNG stream is where it would be without the option


def test_eval_mode_is_the_identity_at_any_rate():
    x = torch.randn(4, 7, 8)
    assert torch.equal(DropPath(0.7).eval()(x), x)
    torch.manual_seed(0)
    block = TransformerBlock(8, num_heads=2, drop_path=0.5)
    reference = TransformerBlock(8, num_heads=2)
    reference.load_state_dict(block.state_dict())
    block.eval(), reference.eval()
    assert torch.equal(block(x), reference(x))


def test_training_drops_whole_samples_at_the_rate_and_keeps_the_mean():
    torch.manual_seed(0)
    x = torch.ones(20000, 3, 4)
    out = drop_path(x, 0.3, training=True)
    per_sample = out.flatten(1)
    # every sample is either dropped entirely or kept entirely, scaled by 1 / 0.7
    kept = (per_sample == 1 / 0.7).all(1)
    dropped = (per_sample == 0).all(1)
    assert bool((kept | dropped).all())
    rate = dropped.float().mean().item()
    assert abs(rate - 0.3) < 4 * (0.3 * 0.7 / 20000) ** 0.5  # within 4 standard errors
    assert abs(out.mean().item() - 1.0) < 0.02  # unbiased branch


def test_block_branches_are_dropped_per_sample():
    torch.manual_seed(0)
    block = TransformerBlock(8, num_heads=2, drop_path=1.0 - 1e-9).train()
    x = torch.randn(64, 5, 8)
    # with both branches (almost surely) dropped the block is the identity
    assert torch.equal(block(x), x)


def test_rates_rise_linearly_over_the_blocks():
    assert drop_path_rates(0.1, 3) == pytest.approx([0.0, 0.05, 0.1])
    blocks = vit_blocks(8, 4, 2, 4.0, True, drop_path_rate=0.3)
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in blocks]
    assert rates == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_bad_rate_is_one_line():
    with pytest.raises(ConfigError, match=r"drop_path must be in \[0, 1\]"):
        DropPath(1.5)
