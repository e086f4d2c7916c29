"""Scores of decoded sequences and of attention as an alignment, against a known alignment.

* :func:`exact_match`, :func:`token_accuracy`: the decoded tokens against the target, padding
  left out.
* :func:`argmax_links`: the hard alignment a model's attention gives, one link per aligned target
  token to its highest-weighted source position (one-to-one alignments, as Luong et al. 2015
  extract them for AER).
* :func:`alignment_error_rate`: Och & Ney (2003), ``AER = 1 - (|A & S| + |A & P|) / (|A| + |S|)``
  over a whole set of sequences, for predicted links A, sure links S and possible links P
  (S is a subset of P; P defaults to S).
* :func:`alignment_accuracy`: the fraction of aligned target tokens whose argmax is the known
  source position; :func:`alignment_mass`: the mean weight put on it (soft: sharp attention
  scores higher than diffuse attention with the same argmax).

With exactly one known link per aligned target token and one argmax link each, |A| = |S|, so
AER = 1 - alignment accuracy; the AER function is general (several or no links per token).
Target positions whose alignment is negative (EOS, padding) have no source word and are left out.
"""

from __future__ import annotations

import torch

from attnlab.errors import InputError


def _check_tokens(pred: torch.Tensor, target: torch.Tensor, padding: torch.Tensor) -> None:
    if pred.shape != target.shape or padding.shape != target.shape or padding.dtype != torch.bool:
        raise InputError(
            f"pred, target and padding (bool) must have one shape, got {tuple(pred.shape)}, "
            f"{tuple(target.shape)}, {padding.dtype} {tuple(padding.shape)}"
        )


def exact_match(pred: torch.Tensor, target: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """(B, T) tokens, (B, T) padding (True: not scored) -> (B,) float, 1 where every scored token is right."""
    _check_tokens(pred, target, padding)
    return ((pred == target) | padding).all(dim=1).float()


def token_accuracy(pred: torch.Tensor, target: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
    """The fraction of non-padding target tokens decoded right (scalar)."""
    _check_tokens(pred, target, padding)
    scored = ~padding
    return ((pred == target) & scored).sum() / scored.sum().clamp(min=1)


def _check_alignment(weights: torch.Tensor, alignment: torch.Tensor) -> None:
    if weights.dim() != 3 or alignment.shape != weights.shape[:2] or alignment.dtype != torch.long:
        raise InputError(
            f"weights must be (B, T, S) and alignment long (B, T), got {tuple(weights.shape)} and "
            f"{alignment.dtype} {tuple(alignment.shape)}"
        )
    if alignment.max() >= weights.shape[2]:
        raise InputError(f"alignment points past the {weights.shape[2]} source positions")


def known_links(alignment: torch.Tensor, source_len: int) -> torch.Tensor:
    """(B, T) source position per target token (negative: none) -> (B, T, S) bool links."""
    positions = torch.arange(source_len, device=alignment.device)
    return alignment[:, :, None] == positions  # a negative alignment matches no position


def argmax_links(weights: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """(B, T, S) attention -> (B, T, S) bool: each aligned target token's highest-weighted source."""
    _check_alignment(weights, alignment)
    best = weights.argmax(dim=2)  # (B, T)
    links = known_links(best, weights.shape[2])
    return links & (alignment >= 0)[:, :, None]


def alignment_error_rate(
    predicted: torch.Tensor, sure: torch.Tensor, possible: torch.Tensor | None = None
) -> torch.Tensor:
    """Och & Ney's AER over all the links in (B, T, S) bool tensors; 0 is perfect."""
    possible = sure if possible is None else possible
    if not (predicted.shape == sure.shape == possible.shape) or predicted.dtype != torch.bool:
        raise InputError("predicted, sure and possible links must be bool tensors of one shape")
    if (sure & ~possible).any():
        raise InputError("every sure link must also be a possible link")
    a_s = (predicted & sure).sum()
    a_p = (predicted & possible).sum()
    total = predicted.sum() + sure.sum()
    return 1.0 - (a_s + a_p) / total.clamp(min=1)


def alignment_accuracy(weights: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """The fraction of aligned target tokens whose attention argmax is their known source position."""
    _check_alignment(weights, alignment)
    aligned = alignment >= 0
    hits = (weights.argmax(dim=2) == alignment) & aligned
    return hits.sum() / aligned.sum().clamp(min=1)


def alignment_mass(weights: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """The mean attention weight on the known source position, over aligned target tokens."""
    _check_alignment(weights, alignment)
    aligned = alignment >= 0
    on_known = weights.gather(2, alignment.clamp(min=0)[:, :, None]).squeeze(2)  # (B, T)
    return (on_known * aligned).sum() / aligned.sum().clamp(min=1)
