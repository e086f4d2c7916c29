"""Sequence to sequence with a known alignment: teacher-forced cross-entropy for training; greedy
exact match and token accuracy, and the attention scored as an alignment, for evaluation.

Batches are dicts as :mod:`attnlab.data.reversal` makes them: ``source``, ``source_mask``,
``target`` (ending with EOS), ``target_mask`` (True after EOS) and ``alignment`` (the source
position of each target token, -1 for none). The model is a :class:`GRUSeq2Seq`-like module:
``forward(source, source_mask, target_input)`` -> logits, ``generate(source, source_mask, steps)``.

The alignment is read from the attention of forced decoding of the reference target (teacher
forcing, so a wrong greedy token cannot shift the rows), recorded by :func:`attnlab.explain.capture`: one
(B, 1, S) call per decoding step. Models without attention log no alignment metrics. Floors,
measured on the same batches: ``floor_copy/*`` decodes the source unreversed (then EOS);
``floor_diagonal/*`` aligns target token i to source word i.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from attnlab.data.reversal import BOS, EOS, PAD
from attnlab.errors import ConfigError
from attnlab.explain.capture import attention_layers, capture
from attnlab.metrics.alignment import (
    alignment_accuracy,
    alignment_error_rate,
    alignment_mass,
    argmax_links,
    exact_match,
    known_links,
    token_accuracy,
)
from attnlab.runs.config import OptimConfig
from attnlab.train.registry import register_task
from attnlab.train.seq2seq_figures import plot_alignments
from attnlab.train.task import Batch, Task


def teacher_input(target: torch.Tensor) -> torch.Tensor:
    """(B, T) target -> (B, T) decoder input: BOS, then the target shifted right by one."""
    bos = torch.full_like(target[:, :1], BOS)
    return torch.cat([bos, target[:, :-1]], dim=1)


def copy_source(source: torch.Tensor, source_mask: torch.Tensor, steps: int) -> torch.Tensor:
    """The floor decoder: the source as it is, then EOS, padded to (B, steps)."""
    out = torch.full((source.shape[0], steps), PAD, dtype=source.dtype, device=source.device)
    out[:, : source.shape[1]] = source
    lengths = (~source_mask).sum(1)  # (B,)
    out[torch.arange(source.shape[0], device=source.device), lengths] = EOS
    return out


def alignment_scores(weights: torch.Tensor, alignment: torch.Tensor) -> dict[str, torch.Tensor]:
    """(B, T, S) attention against (B, T) known positions: accuracy, AER and mass."""
    sure = known_links(alignment, weights.shape[2])
    return {
        "align_acc": alignment_accuracy(weights, alignment),
        "aer": alignment_error_rate(argmax_links(weights, alignment), sure),
        "align_mass": alignment_mass(weights, alignment),
    }


@register_task("seq2seq")
class Seq2SeqTask(Task):
    """Teacher-forced cross-entropy over target tokens up to EOS."""

    monitor = "val/exact_match"
    monitor_mode = "max"

    def __init__(self, *, model: nn.Module, optim: OptimConfig, num_figures: int = 4) -> None:
        super().__init__(model=model, optim=optim)
        if num_figures < 0:
            raise ConfigError(f"task.num_figures must be >= 0, got {num_figures}")
        self.num_figures = num_figures

    def setup(self, stage: str) -> None:
        data_vocab = getattr(self.trainer.datamodule, "vocab_size", None)
        model_vocab = getattr(getattr(self.model, "config", None), "vocab_size", None)
        if None not in (data_vocab, model_vocab) and data_vocab != model_vocab:
            raise ConfigError(
                f"the dataset has {data_vocab} token ids but the model {model_vocab}; "
                f"set --model.vocab_size {data_vocab}"
            )

    def _cross_entropy(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        per_token = F.cross_entropy(logits.transpose(1, 2), batch["target"], reduction="none")  # (B, T)
        scored = ~batch["target_mask"]
        return (per_token * scored).sum() / scored.sum()

    def _forced(self, batch: Batch) -> torch.Tensor:
        return self.model(batch["source"], batch["source_mask"], teacher_input(batch["target"])).logits

    def loss_terms(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"ce": self._cross_entropy(self._forced(batch), batch)}

    def forced_attention(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and attention (B, T, S) of forced decoding (None without attention)."""
        layers = list(attention_layers(self.model))
        if not layers:
            return self._forced(batch), None
        with capture(self.model) as rec:
            logits = self._forced(batch)
        return logits, torch.cat(rec.calls(layers[0]), dim=1)  # T calls of (B, 1, S) -> (B, T, S)

    def metrics(self, batch: Batch) -> dict[str, torch.Tensor]:
        source, source_mask, target, padding = (
            batch[k] for k in ("source", "source_mask", "target", "target_mask")
        )
        logits, weights = self.forced_attention(batch)
        decoded = self.model.generate(source, source_mask, target.shape[1])
        copied = copy_source(source, source_mask, target.shape[1])
        values = {
            "loss": self._cross_entropy(logits, batch),
            "exact_match": exact_match(decoded, target, padding).mean(),
            "token_acc": token_accuracy(decoded, target, padding),
            "floor_copy/exact_match": exact_match(copied, target, padding).mean(),
            "floor_copy/token_acc": token_accuracy(copied, target, padding),
        }
        diagonal = torch.eye(target.shape[1], source.shape[1], device=source.device)  # target i <- source i
        floor = alignment_scores(diagonal.expand(source.shape[0], -1, -1), batch["alignment"])
        values |= {f"floor_diagonal/{k}": v for k, v in floor.items()}
        if weights is not None:
            values |= alignment_scores(weights, batch["alignment"])
        return values

    @torch.no_grad()
    def report_figures(self, datamodule: L.LightningDataModule, out_dir: Path) -> dict[str, Path]:
        if self.num_figures == 0 or not attention_layers(self.model):
            return {}
        self.model.eval()
        batch = next(iter(datamodule.test_dataloader()))
        batch = {k: v[: self.num_figures].to(self.device) for k, v in batch.items()}
        _, weights = self.forced_attention(batch)
        assert weights is not None
        decoded = self.model.generate(batch["source"], batch["source_mask"], batch["target"].shape[1])
        right = exact_match(decoded, batch["target"], batch["target_mask"])
        source = [_words(s, m) for s, m in zip(batch["source"], batch["source_mask"], strict=True)]
        target = [_words(t, m) for t, m in zip(batch["target"], batch["target_mask"], strict=True)]
        titles = [f"test {i}: greedy {'right' if r else 'wrong'}" for i, r in enumerate(right.tolist())]
        path = plot_alignments(
            weights.cpu(), source, target, batch["alignment"].cpu(), titles, out_dir / "alignments.png"
        )
        caption = (
            "Attention of forced decoding of the reference (rows: target tokens, columns: source words; "
            "white = weight 1), red dots: the known alignment"
        )
        return {caption: path}


def _words(tokens: torch.Tensor, padding: torch.Tensor) -> list[str]:
    names = {BOS: "<s>", EOS: "</s>"}
    return [names.get(int(t), f"w{int(t)}") for t in tokens[~padding].tolist()]
