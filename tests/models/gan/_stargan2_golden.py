"""The StarGAN v2 golden's set-up, shared by ``scripts/stargan2_golden.py`` (which runs the official
code) and the tests (which run ours): the official networks' size and one rule that fills any
state dict with the same numbers by parameter name, so no 100 MB of weights need storing."""

from __future__ import annotations

import torch

IMG_SIZE, NUM_DOMAINS, LATENT_DIM, STYLE_DIM, MAX_CONV_DIM = 64, 3, 16, 64, 256
LAMBDAS = {"lambda_reg": 1.0, "lambda_sty": 1.0, "lambda_ds": 1.0, "lambda_cyc": 1.0}


def fill(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Name-sorted, seeded values: He-like weights (std sqrt(2 / fan_in)) for >= 2-D tensors,
    0.1 * N(0, 1) for biases and norm parameters (non-zero, so that every path is exercised)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(state):
        shape = state[name].shape
        values = torch.randn(shape, generator=gen, dtype=torch.float64)
        fan_in = shape[1:].numel() if len(shape) >= 2 else 0
        out[name] = (values * (2 / fan_in) ** 0.5 if fan_in else values * 0.1).float()
    return out


def inputs(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)

    def image() -> torch.Tensor:
        return torch.rand(4, 3, IMG_SIZE, IMG_SIZE, generator=gen) * 2 - 1

    return {
        "x": image(),
        "y_org": torch.tensor([0, 1, 2, 0]),
        "y_trg": torch.tensor([1, 2, 0, 0]),
        "z": torch.randn(4, LATENT_DIM, generator=gen),
        "z2": torch.randn(4, LATENT_DIM, generator=gen),
        "x_ref": image(),
        "x_ref2": image(),
    }
