"""Which loss trains which object-centric model, with its published default weights.

Every :class:`attnlab.models.outputs.ObjectCentricModel` names its loss in its class
attribute ``objective``; :func:`objective` looks it up here. The losses return named,
weighted terms (``losses(...).terms()``): the weights are applied in the loss and
nowhere else.

Defaults: ViMON's reference beta = 1, gamma = 2 (ViMON and AttnViMON); MONet's paper
beta = gamma = 0.5; SFA: ViMON's beta and no mask term (it has no mask network).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch

from attnlab.errors import ConfigError
from attnlab.models.outputs import ObjectCentricOutput
from attnlab.objectives.object_centric import Likelihood, monet_losses, vimon_losses
from attnlab.objectives.sfa import sfa_losses


class Losses(Protocol):
    def terms(self) -> dict[str, torch.Tensor]: ...


@dataclass(frozen=True)
class Objective:
    """One object-centric loss: how to call it and its defaults."""

    name: str
    losses: Callable[..., Losses]  # (output, video, *, sigmas, beta[, gamma], min_likelihood, likelihood)
    drop_last: bool  # train on model(video[:, :-1]): frame T is only a prediction target
    beta: float
    gamma: float | None  # None: the loss has no mask term (and takes no gamma)

    def terms(
        self,
        output: ObjectCentricOutput,
        video: torch.Tensor,
        *,
        beta: float,
        gamma: float | None,
        sigmas: tuple[float, float],
        min_likelihood: float = 1e-5,
        likelihood: Likelihood = "mixture",
    ) -> dict[str, torch.Tensor]:
        """Named, weighted terms of ``output`` (from ``video[:, :-1]`` if ``drop_last``) on ``video``."""
        if self.gamma is None:
            return self.losses(
                output, video, sigmas=sigmas, beta=beta, min_likelihood=min_likelihood, likelihood=likelihood
            ).terms()
        return self.losses(
            output,
            video,
            sigmas=sigmas,
            beta=beta,
            gamma=gamma,
            min_likelihood=min_likelihood,
            likelihood=likelihood,
        ).terms()


OBJECTIVES = {
    "vimon": Objective("vimon", vimon_losses, drop_last=True, beta=1.0, gamma=2.0),
    "monet": Objective("monet", monet_losses, drop_last=False, beta=0.5, gamma=0.5),
    "sfa": Objective("sfa", sfa_losses, drop_last=True, beta=1.0, gamma=None),
}


def objective(name: str) -> Objective:
    """The objective a model names, or a one-line ConfigError."""
    if name not in OBJECTIVES:
        raise ConfigError(f"no object-centric objective '{name}' (known: {', '.join(sorted(OBJECTIVES))})")
    return OBJECTIVES[name]
