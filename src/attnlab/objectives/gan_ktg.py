"""The knowledge transfer graph of the collaborative GAN (seed 001; Minami et al. 2020's
knowledge transfer graph for deep collaborative learning, arXiv:1909.04286, applied to GANs).

Nodes are the discriminator ``D`` and k generators ``0 .. k-1``. Every generator t has an
incoming edge from D and from every other generator s; its loss is the sum of those edges:

- ``D -> t``: ``L_D,t = Gate(CE(D(G_t(z)), "real"))``, MAD-GAN's generator loss
  (:func:`attnlab.objectives.gan_madgan.towards_real`);
- ``s -> t``: feature transfer on the tapped layers, with attention maps
  ``Q_i^(m,n) = mean_c F_(i,m,c,n)^2`` (Zagoruyko and Komodakis 2017, arXiv:1612.03928) and
  ``L_t,s = Gate(alpha / (M N) * sum_(m,n) (Q_t / ||Q_t|| - Q_s / ||Q_s||)^2)``, alpha = 1000,
  averaged over images and summed over the tapped layers. The source's maps are detached:
  an edge trains its target only (as in the knowledge transfer graph).

Gates scale an edge's loss by a weight that depends on ``progress`` in [0, 1] (the fraction
of training done): Through 1, Cutoff 0, Positive-linear ``progress``, Negative-linear
``1 - progress``. Edges are named ``"D->t"`` and ``"s->t"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError, did_you_mean
from attnlab.objectives.gan_madgan import towards_real

ALPHA = 1000.0


class Gate(nn.Module):
    """``forward(loss, progress)`` = ``weight(progress) * loss``; ``progress`` in [0, 1]."""

    name = ""

    def weight(self, progress: float) -> float:
        raise NotImplementedError

    def forward(self, loss: torch.Tensor, progress: float) -> torch.Tensor:
        if not 0.0 <= progress <= 1.0:
            raise InputError(f"gate progress must be in [0, 1], got {progress}")
        return loss * self.weight(progress)


class Through(Gate):
    name = "through"

    def weight(self, progress: float) -> float:
        return 1.0


class Cutoff(Gate):
    name = "cutoff"

    def weight(self, progress: float) -> float:
        return 0.0


class PositiveLinear(Gate):
    name = "positive-linear"

    def weight(self, progress: float) -> float:
        return progress


class NegativeLinear(Gate):
    name = "negative-linear"

    def weight(self, progress: float) -> float:
        return 1.0 - progress


GATES: dict[str, type[Gate]] = {g.name: g for g in (Through, Cutoff, PositiveLinear, NegativeLinear)}


def make_gate(name: str, edge: str = "") -> Gate:
    """The gate called ``name``; an unknown name is one line naming the edge and the gates."""
    if name not in GATES:
        where = f" on edge '{edge}'" if edge else ""
        raise InputError(
            f"unknown gate '{name}'{where}{did_you_mean(name, list(GATES))}; gates: {', '.join(GATES)}"
        )
    return GATES[name]()


def edge_names(k: int) -> list[str]:
    """Every edge of the graph with k generators: ``D->t`` then ``s->t`` for s != t."""
    return [f"{s}->{t}" for t in range(k) for s in ["D", *map(str, range(k))] if s != str(t)]


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """``Q = mean_c F^2`` flattened and L2-normalised: (..., C, M, N) -> (..., M * N)."""
    q = features.square().mean(dim=-3).flatten(-2)  # (..., M * N)
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def transfer_loss(target: torch.Tensor, source: torch.Tensor, alpha: float = ALPHA) -> torch.Tensor:
    """``alpha / (M N) * sum (Q_t - Q_s)^2`` of normalised maps, a mean over images; (B, C, M, N) each."""
    if target.dim() != 4 or target.shape[0] != source.shape[0] or target.shape[2:] != source.shape[2:]:
        raise InputError(
            "feature maps must be (B, C, M, N) of one size, "
            f"got {tuple(target.shape)} and {tuple(source.shape)}"
        )
    qt, qs = attention_map(target), attention_map(source.detach())  # (B, M * N)
    return alpha * (qt - qs).square().mean(dim=-1).mean()


@dataclass
class KTGraph:
    """One gate per edge (``{"D->0": "through", "1->0": "cutoff", ...}``), checked and built."""

    k: int
    gates: dict[str, str]

    def __post_init__(self) -> None:
        expected = edge_names(self.k)
        extra = [e for e in self.gates if e not in expected]
        if extra:
            raise InputError(
                f"no edge '{extra[0]}' in a graph of {self.k} generators{did_you_mean(extra[0], expected)}"
            )
        missing = [e for e in expected if e not in self.gates]
        if missing:
            raise InputError(f"the graph has no gate for edge '{missing[0]}'; edges: {', '.join(expected)}")
        self.modules = {e: make_gate(g, e) for e, g in self.gates.items()}

    def all_cutoff(self) -> bool:
        return all(g == "cutoff" for g in self.gates.values())


def generator_terms(
    graph: KTGraph,
    fake_logits: torch.Tensor,
    features: dict[str, torch.Tensor],
    progress: float,
    alpha: float = ALPHA,
) -> dict[str, torch.Tensor]:
    """``t/<edge>`` terms, gated: ``fake_logits`` (B, k, k+1), ``features`` tap -> (B, k, C, M, N).

    A generator's loss is the sum of its terms; the generators' optimiser steps on the sum of all.
    Edges whose gate weight is 0 at this ``progress`` are still returned (as zeros) so logs line up.
    """
    adv = towards_real(fake_logits)  # (k,)
    if adv.shape[0] != graph.k:
        raise InputError(f"the graph has {graph.k} generators, the logits {adv.shape[0]}")
    terms = {}
    for edge, gate in graph.modules.items():
        source, target = edge.split("->")
        t = int(target)
        if source == "D":
            loss = adv[t]
        else:
            pairs = [transfer_loss(f[:, t], f[:, int(source)], alpha) for f in features.values()]
            if not pairs:
                raise InputError("a generator-to-generator edge needs feature taps (model.taps)")
            loss = torch.stack(pairs).sum()
        terms[edge] = gate(loss, progress)
    return terms
