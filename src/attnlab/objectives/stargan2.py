"""StarGAN v2's objectives (Choi et al. 2020, arXiv:1912.01865, Sec. 3.2) and the class-aware
terms of the test-time-augmentation thesis (seed 001, Eq. 1-2), as named, weighted terms.

Reference: clovaai/stargan-v2 ``core/solver.py`` (``compute_d_loss``, ``compute_g_loss``,
``adv_loss``, ``r1_reg``, the lambda_ds decay in ``train``). Images x of domain y_org are
translated to a domain y_trg with a style s_trg taken either from a latent (``F(z, y_trg)``,
latent-guided) or from a reference image (``E(x_ref, y_trg)``, reference-guided).

Discriminator: ``real = BCE(D(x, y_org), 1)``, ``fake = BCE(D(G(x, s_trg), y_trg), 0)`` (the fake
made without gradient), ``reg = lambda_reg * 1/2 E||grad_x D(x, y_org)||^2`` (R1 on real images).

Generator: ``adv = BCE(D(G(x, s_trg), y_trg), 1)``; style reconstruction
``sty = lambda_sty * |E(G(x, s_trg), y_trg) - s_trg|``; diversity sensitive
``ds = -lambda_ds * |G(x, s_trg) - G(x, s_trg2)|`` (the second image detached, as the reference; the
weight falls linearly from lambda_ds to 0 over ``ds_iter`` steps); cycle
``cyc = lambda_cyc * |G(G(x, s_trg), E(x, y_org)) - x|``. Every |.| is a mean over all elements.

Class-aware (the thesis), with C(G_enc(.)) the model's :meth:`classify`:
``task = lambda_task * CE(C(G_enc(x)), t)`` over the labelled (source) images only, and
``sem = lambda_sem * CE(C(G_enc(G(x, s_trg))), softmax C(G_enc(x)))``: the translation keeps the
class the untranslated image is given (the pre-translation probabilities are pseudo-labels, so no
gradient flows through them). The thesis's two directions, source -> target and target -> source,
are the batch's translations: as in the reference, y_trg is drawn independently of y_org, so an
image translated into its own domain counts too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from attnlab.errors import ConfigError
from attnlab.models.gan.stargan2 import StarGAN2
from attnlab.objectives.gan import discriminator_terms, generator_terms, r1_penalty
from attnlab.objectives.terms import Terms


@dataclass
class StarGAN2LossConfig:
    """The reference's ``main.py`` defaults; ``lambda_task``, ``lambda_sem`` the thesis's terms
    (weights not given there: 1)."""

    lambda_reg: float = 1.0
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0
    ds_iter: int = 100000
    lambda_cyc: float = 1.0
    lambda_task: float = 1.0
    lambda_sem: float = 1.0

    def check(self) -> None:
        weights = (
            self.lambda_reg,
            self.lambda_sty,
            self.lambda_ds,
            self.lambda_cyc,
            self.lambda_task,
            self.lambda_sem,
        )
        if min(weights) < 0 or self.ds_iter < 1:
            raise ConfigError(f"stargan2 loss weights must be >= 0 and ds_iter >= 1, got {self}")

    def ds_weight(self, step: int) -> float:
        """lambda_ds at 0-based ``step``: the reference subtracts lambda_ds / ds_iter after every
        step while it is positive."""
        return max(self.lambda_ds * (1 - step / self.ds_iter), 0.0)


@dataclass
class Translation:
    """What the translations of one batch need: images x (B, 3, S, S) of domains y_org (B,), target
    domains y_trg (B,) and two style sources for them: latents (B, latent_dim) when
    ``by_reference`` is False, else reference images (B, 3, S, S) of domain y_trg."""

    x: torch.Tensor
    y_org: torch.Tensor
    y_trg: torch.Tensor
    source: torch.Tensor
    source2: torch.Tensor
    by_reference: bool


def target_style(model: StarGAN2, t: Translation, source: torch.Tensor) -> torch.Tensor:
    """s_trg = E(x_ref, y_trg) or F(z, y_trg): (B, style_dim)."""
    return model.style_encoder(source, t.y_trg) if t.by_reference else model.mapping_network(source, t.y_trg)


def discriminator_loss_terms(model: StarGAN2, t: Translation, c: StarGAN2LossConfig) -> Terms:
    """``real``, ``fake``, ``reg`` (weighted) for one discriminator update."""
    x_real = t.x.detach().requires_grad_(True)
    real_logits = model.discriminator(x_real, t.y_org)
    reg = r1_penalty(real_logits, x_real)
    with torch.no_grad():
        x_fake = model.generator(t.x, target_style(model, t, t.source))
    terms = discriminator_terms(real_logits, model.discriminator(x_fake, t.y_trg))
    return terms | {"reg": c.lambda_reg * reg}


def generator_loss_terms(
    model: StarGAN2, t: Translation, c: StarGAN2LossConfig, step: int
) -> tuple[Terms, torch.Tensor]:
    """``adv``, ``sty``, ``ds`` (negative: diversity is rewarded), ``cyc``, weighted; and the
    translation G(x, s_trg) (B, 3, S, S), for the class-aware terms."""
    s_trg = target_style(model, t, t.source)
    x_fake = model.generator(t.x, s_trg)
    terms = generator_terms(model.discriminator(x_fake, t.y_trg))
    terms["sty"] = c.lambda_sty * (model.style_encoder(x_fake, t.y_trg) - s_trg).abs().mean()
    x_fake2 = model.generator(t.x, target_style(model, t, t.source2)).detach()
    terms["ds"] = -c.ds_weight(step) * (x_fake - x_fake2).abs().mean()
    x_rec = model.generator(x_fake, model.style_encoder(t.x, t.y_org))
    terms["cyc"] = c.lambda_cyc * (x_rec - t.x).abs().mean()
    return terms, x_fake


def class_aware_terms(
    model: StarGAN2,
    x: torch.Tensor,
    x_fake: torch.Tensor,
    labels: torch.Tensor,
    labelled: torch.Tensor,
    c: StarGAN2LossConfig,
) -> Terms:
    """``task`` (CE on the labelled images of x; 0 when none is labelled) and ``sem``, weighted."""
    logits = model.classify(x)  # (B, classes)
    task = F.cross_entropy(logits[labelled], labels[labelled]) if labelled.any() else logits.sum() * 0
    pseudo = logits.detach().softmax(-1)  # the pre-translation class probabilities, as labels
    sem = F.cross_entropy(model.classify(x_fake), pseudo)
    return {"task": c.lambda_task * task, "sem": c.lambda_sem * sem}
