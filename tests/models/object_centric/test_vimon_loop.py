"""The reference-order slot loop (benchmarks/vimon_loop.py) computes what ViMON's batched forward does.

Posterior-mean mode, float32. Measured differences (11 clips, 3 slots, 16x16): outputs
<= 1.5e-6 absolute (the largest in the attention log masks, whose values reach ~-20),
loss terms <= 1.2e-7 relative, gradients <= 1e-6 relative L2 per parameter (the largest
absolute, 3e-3, on decoder biases whose gradients are ~1e4: the loss is a sum over
pixels). In float64 everything agrees to <= 3e-15 relative, so the float32 gaps are
rounding (the loop calls the encoder, GRU and decoder on B samples, the batched forward
on B * K, so the kernels block and sum differently), not a difference of computation.
"""

import dataclasses
import json
from collections.abc import Iterator

import pytest
import torch
from benchmarks.vimon_loop import main, vimon_loop

from attnlab.models.object_centric.vimon import ViMON, ViMONConfig
from attnlab.objectives.object_centric import vimon_losses

# 11 clips x 3 slots = 33 > CPU_CHUNK, so the batched encoder also runs in chunks.
CLIPS, SLOTS, SIZE = 11, 3, 16
TINY = dict(
    num_slots=SLOTS,
    latent_dim=4,
    gru_dim=12,
    image_size=SIZE,
    attn_channels=8,
    attn_blocks=3,
    attn_mlp_hidden=16,
    encoder_channels=(8, 8, 16, 16),
    encoder_hidden=32,
    decoder_channels=8,
    decoder_layers=2,
)


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # Tensors this small gain nothing from a second thread, and on a busy 2-core machine
    # the threads' synchronisation made this file take 35 s instead of 3 s.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def model() -> ViMON:
    torch.manual_seed(0)
    return ViMON(ViMONConfig(**TINY, use_mean=True)).train()


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(CLIPS, 4, 3, SIZE, SIZE)


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual - expected).norm() / expected.norm()).item()


@pytest.mark.parametrize("tiled_decoder", [False, True], ids=["decoder", "tiled-decoder"])
def test_forward_matches_batched_in_eval(model, video, tiled_decoder):
    model.eval()
    try:
        with torch.no_grad():
            batched = model(video)
            loop = vimon_loop(model, video, tiled_decoder=tiled_decoder)
    finally:
        model.train()
    assert type(loop) is type(batched)
    for field in dataclasses.fields(batched):
        actual, expected = getattr(loop, field.name), getattr(batched, field.name)
        if expected is None:  # a field ViMON does not fill (SFA's slots)
            assert actual is None, field.name
            continue
        assert actual.shape == expected.shape, field.name
        torch.testing.assert_close(actual, expected, rtol=1e-5, atol=1e-5, msg=field.name)


@pytest.mark.parametrize("tiled_decoder", [False, True], ids=["decoder", "tiled-decoder"])
def test_losses_and_gradients_match_batched(model, video, tiled_decoder):
    params = [p for p in model.parameters() if p.requires_grad]
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    expected = vimon_losses(model(video[:, :-1]), video)
    expected_grads = torch.autograd.grad(expected.total(), params)
    actual = vimon_losses(vimon_loop(model, video[:, :-1], tiled_decoder=tiled_decoder), video)
    actual_grads = torch.autograd.grad(actual.total(), params)
    for field in dataclasses.fields(expected):
        a, e = getattr(actual, field.name), getattr(expected, field.name)
        torch.testing.assert_close(a, e, rtol=1e-5, atol=0.0, msg=field.name)
    for name, a, e in zip(names, actual_grads, expected_grads, strict=True):
        assert e.abs().max() > 0, f"{name} gets no gradient"
        assert relative_error(a, e) < 1e-5, name
        # Elementwise, relative to the largest gradient entry of the tensor (loss ~1e4).
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-5 * e.abs().max().item(), msg=name)


def test_loop_trains_the_models_own_parameters(model, video):
    """No copies: the loop's gradients land in ``model.parameters()``, all of them."""
    model.zero_grad(set_to_none=True)
    vimon_losses(vimon_loop(model, video[:, :-1]), video).total().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_benchmark_runs_on_a_tiny_configuration(tmp_path):
    out = tmp_path / "vimon_loop.json"
    args = "--batch 1 --frames 3 --slots 2 --image-size 32 --repeats 1 --warmup 0 --channels-last"
    main([*args.split(), "--variants", "batched", "loop", "loop-tiled", "--out", str(out)])
    written = json.loads(out.read_text())
    assert [r["variant"] for r in written["results"]] == ["batched", "loop", "loop-tiled"]
    assert set(written["device"]["paired_ratio_to_batched"]) == {"batched", "loop", "loop-tiled"}
