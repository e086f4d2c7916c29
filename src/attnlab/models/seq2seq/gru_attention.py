"""A GRU encoder-decoder with no attention, Bahdanau attention or Luong attention.

* Bahdanau, Cho & Bengio, "Neural Machine Translation by Jointly Learning to Align and
  Translate", ICLR 2015, arXiv:1409.0473 (RNNsearch; reference implementation: the authors'
  GroundHog). The decoder attends with its previous state:
  ``c_t = attn(s_{t-1}, H)``, ``s_t = GRU([E y_{t-1}; c_t], s_{t-1})``,
  output ``tanh(W_o [s_t; c_t; E y_{t-1}])`` -> logits.
* Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine Translation",
  EMNLP 2015, arXiv:1508.04025 (reference: the authors' code; OpenNMT's input feeding). The
  decoder attends with its current state and feeds its attentional state to the next step:
  ``s_t = GRU([E y_{t-1}; h̃_{t-1}], s_{t-1})``, ``c_t = attn(s_t, H)``,
  ``h̃_t = tanh(W_c [c_t; s_t])`` -> logits. Scores dot / general / concat and the windows
  global / local-m / local-p are those of :class:`attnlab.layers.luong.LuongAttention`.
* ``attention="none"``: the plain encoder-decoder (Cho et al. 2014 / Sutskever et al. 2014):
  ``s_t = GRU(E y_{t-1}, s_{t-1})`` -> logits; the whole source passes through ``s_0``.

Encoder (all three): a bidirectional GRU, ``hidden_dim / 2`` per direction, so the annotations
H are (B, S, hidden_dim) as in RNNsearch. ``s_0 = tanh(W_init [forward last; backward first])``.

Deviations: GRU cells everywhere (Luong et al. used stacked LSTMs, Bahdanau et al. a maxout
output layer; ours is one tanh layer); one layer each; no dropout. Training is teacher
forcing (``forward``); :meth:`GRUSeq2Seq.generate` decodes greedily. The attention layer is
called once per decoding step with a (B, hidden_dim) query, so ``capture(model)`` records
one (B, 1, S) weight tensor per step under ``"attention"`` (``rec.calls("attention")``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from attnlab.errors import ConfigError, InputError
from attnlab.layers.additive import AdditiveAttention
from attnlab.layers.luong import LuongAttention, Score, Window
from attnlab.models._registry import register_model
from attnlab.models.outputs import Seq2SeqOutput

Attention = Literal["none", "bahdanau", "luong"]
BOS = 1  # the decoder's first input (attnlab.data.reversal's id; models may not import data)


@dataclass
class GRUSeq2SeqConfig:
    vocab_size: int = 23  # reverse-tokens' default: 3 special tokens + 20 words
    embed_dim: int = 32
    hidden_dim: int = 64  # even: the bidirectional encoder has hidden_dim / 2 per direction
    attention: Attention = "luong"
    score: Score = "general"  # Luong only
    window: Window = "global"  # Luong only
    half_width: int = 3  # D of Luong's local windows


class Encoder(nn.Module):
    """(B, S) tokens and (B, S) padding -> annotations (B, S, hidden) (0 at padding), s_0 (B, hidden)."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.rnn = nn.GRU(embed_dim, hidden_dim // 2, batch_first=True, bidirectional=True)
        self.init = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, source: torch.Tensor, padding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lengths = (~padding).sum(1).cpu()
        # packed, so the backward direction starts at each sequence's last word, not at padding
        packed = pack_padded_sequence(self.embed(source), lengths, batch_first=True, enforce_sorted=False)
        out, last = self.rnn(packed)  # last: (2, B, hidden / 2), forward's last and backward's first
        annotations, _ = pad_packed_sequence(out, batch_first=True, total_length=source.shape[1])  # (B, S, H)
        state = torch.tanh(self.init(torch.cat([last[0], last[1]], dim=-1)))  # (B, hidden)
        return annotations, state


@register_model("seq2seq-none", config=GRUSeq2SeqConfig(attention="none"))
@register_model("seq2seq-bahdanau", config=GRUSeq2SeqConfig(attention="bahdanau"))
@register_model("seq2seq-luong", config=GRUSeq2SeqConfig(attention="luong"))
@register_model("seq2seq-luong-local", config=GRUSeq2SeqConfig(attention="luong", window="local-p"))
class GRUSeq2Seq(nn.Module):
    """Teacher-forced ``forward(source, source_mask, target_input)`` -> :class:`Seq2SeqOutput`."""

    def __init__(self, config: GRUSeq2SeqConfig) -> None:
        super().__init__()
        self.config = c = config
        if c.attention not in get_args(Attention):
            raise ConfigError(f"attention must be one of {get_args(Attention)}, got '{c.attention}'")
        if c.hidden_dim < 2 or c.hidden_dim % 2 or c.embed_dim < 1 or c.vocab_size < 4:
            raise ConfigError(f"need an even hidden_dim >= 2, embed_dim >= 1, vocab_size >= 4; got {c}")
        H, E = c.hidden_dim, c.embed_dim
        self.encoder = Encoder(c.vocab_size, E, H)
        self.embed = nn.Embedding(c.vocab_size, E)
        self.attention: AdditiveAttention | LuongAttention | None = (
            AdditiveAttention(H)
            if c.attention == "bahdanau"
            else LuongAttention(H, score=c.score, window=c.window, half_width=c.half_width)
            if c.attention == "luong"
            else None
        )
        self.cell = nn.GRUCell(E + (0 if self.attention is None else H), H)
        # Bahdanau's output layer reads [s_t; c_t; E y_{t-1}], Luong's W_c reads [c_t; s_t]
        self.combine = (
            nn.Linear(2 * H + E, H)
            if c.attention == "bahdanau"
            else nn.Linear(2 * H, H)
            if self.attention
            else None
        )
        self.out = nn.Linear(H, c.vocab_size)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        S = 5
        source = torch.randint(3, self.config.vocab_size, (batch_size, S))
        mask = torch.zeros(batch_size, S, dtype=torch.bool)
        mask[1:, 3:] = True  # the later sequences are padded: 3 words
        source = source.masked_fill(mask, 0)
        target_input = torch.randint(3, self.config.vocab_size, (batch_size, S + 1))
        return {"source": source, "source_mask": mask, "target_input": target_input}

    def _check(self, source: torch.Tensor, source_mask: torch.Tensor) -> None:
        if source.dim() != 2 or source.dtype != torch.long:
            raise InputError(
                f"source must be long (B, S) token ids, got {source.dtype} {tuple(source.shape)}"
            )
        if source_mask.dtype != torch.bool or source_mask.shape != source.shape:
            raise InputError(
                f"source_mask must be bool {tuple(source.shape)} (True at padding), "
                f"got {source_mask.dtype} {tuple(source_mask.shape)}"
            )
        if source_mask.all(1).any():
            raise InputError("every source sequence needs at least one word; one is all padding")
        if source.min() < 0 or source.max() >= self.config.vocab_size:
            raise InputError(f"token ids must be in [0, {self.config.vocab_size}), got {int(source.max())}")

    def encode(self, source: torch.Tensor, source_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self._check(source, source_mask)
        return self.encoder(source, source_mask)

    def step(
        self,
        token: torch.Tensor,
        state: torch.Tensor,
        feed: torch.Tensor,
        annotations: torch.Tensor,
        source_mask: torch.Tensor,
        t: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step: previous token (B,), state s_{t-1} (B, H), Luong's input feed h̃_{t-1}
        (B, H) -> logits (B, vocab), s_t, h̃_t."""
        e = self.embed(token)  # (B, E)
        if self.attention is None:
            state = self.cell(e, state)
            return self.out(state), state, feed
        assert self.combine is not None
        if isinstance(self.attention, AdditiveAttention):
            context = self.attention(state, annotations, key_padding_mask=source_mask)  # (B, H) from s_{t-1}
            state = self.cell(torch.cat([e, context], -1), state)
            feed = torch.tanh(self.combine(torch.cat([state, context, e], -1)))
            return self.out(feed), state, feed
        state = self.cell(torch.cat([e, feed], -1), state)
        context = self.attention(state, annotations, key_padding_mask=source_mask, step=t)  # from s_t
        feed = torch.tanh(self.combine(torch.cat([context, state], -1)))  # h̃_t
        return self.out(feed), state, feed

    def forward(
        self, source: torch.Tensor, source_mask: torch.Tensor, target_input: torch.Tensor
    ) -> Seq2SeqOutput:
        """Teacher forcing: ``target_input`` (B, T) is BOS then the target's first T - 1 tokens."""
        if (
            target_input.dim() != 2
            or target_input.shape[0] != source.shape[0]
            or target_input.dtype != torch.long
        ):
            raise InputError(
                f"target_input must be long (B={source.shape[0]}, T), got {target_input.dtype} "
                f"{tuple(target_input.shape)}"
            )
        annotations, state = self.encode(source, source_mask)
        feed = annotations.new_zeros(state.shape)  # h̃_0 = 0
        logits = []
        for t in range(target_input.shape[1]):
            step_logits, state, feed = self.step(target_input[:, t], state, feed, annotations, source_mask, t)
            logits.append(step_logits)
        return Seq2SeqOutput(logits=torch.stack(logits, 1))  # (B, T, vocab)

    @torch.no_grad()
    def generate(self, source: torch.Tensor, source_mask: torch.Tensor, steps: int) -> torch.Tensor:
        """Greedy decoding of ``steps`` tokens (B, steps): each step reads the previous argmax."""
        annotations, state = self.encode(source, source_mask)
        feed = annotations.new_zeros(state.shape)
        token = torch.full((source.shape[0],), BOS, dtype=torch.long, device=source.device)
        tokens = []
        for t in range(steps):
            step_logits, state, feed = self.step(token, state, feed, annotations, source_mask, t)
            token = step_logits.argmax(-1)
            tokens.append(token)
        return torch.stack(tokens, 1)  # (B, steps)
