"""Action Q-Transformer (AQT) for Atari: a Rainbow Q-network with a transformer encoder-decoder
whose decoder queries are the actions.

Itaya et al., "Visual Explanation with Action Query Transformer in Deep Reinforcement Learning
and Visual Feedback via Augmented Reality", arXiv:2306.13879. Reference implementation:
github.com/machine-perception-robotics-group/Action-Q-Transformer (commit 3660222, class ``AQT``
in ``model_act_q_transformer.py``; no licence, so only facts were read, see
``shared/reference/aqt/README.md``). Built on Rainbow (Kaixhin/Rainbow) and DETR's layers.

The forward, as the release computes it:

1. Nature-DQN torso: 4 x 84 x 84 -> d x 7 x 7, ``d = num_actions * head_dim``; 49 tokens row-major.
2. Encoder input ``pos + 0.1 * src``; ``pos(h, w) = [col_embed[w], row_embed[h]]`` (learned).
3. One DETR post-norm encoder layer (4 heads, FFN 64, ReLU, dropout 0.1), no final norm.
4. Value: memory flattened channel-major (B, d * 49) -> NoisyLinear -> ReLU -> NoisyLinear -> atoms.
5. Action queries: ``action_encoder(one_hot(a))`` (Linear A -> d) are the decoder's input itself.
6. One DETR post-norm decoder layer (self-attention among actions, cross-attention to memory,
   FFN) and a final LayerNorm; per action NoisyLinear -> ReLU -> NoisyLinear -> atoms.
7. Dueling distributional head: ``softmax(v + adv - mean_a adv)`` over 51 atoms on [-10, 10].

Init as the release: ``xavier_uniform_`` on every parameter with more than one dimension
(NoisyLinear's ``weight_sigma`` and the row/column embeddings included).

Deviations: attention runs on :class:`attnlab.layers.attention.MultiHeadAttention` (split
``q_proj`` / ``kv_proj`` instead of ``nn.MultiheadAttention``'s packed ``in_proj``; the
official keys are converted by :func:`attnlab.runs.official.load_official_aqt`), so that
:func:`attnlab.explain.capture` records per-head weights (the release keeps the head mean); the
release's duplicate ``fc_h_a`` (built twice, the first one unused) is built once, so a model
built here after the same seed does not have the release's random initial weights. The
forward returns :class:`AQTOutput`, not a ``(q, v, adv)`` tuple.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers.noisy_linear import NoisyLinear
from attnlab.models._registry import register_model
from attnlab.models.rl.aqt_layers import Decoder, Encoder, nature_torso

# official key -> attnlab key, applied after the packed ``in_proj_*`` are split into
# ``q_proj`` / ``kv_proj`` (``attnlab.runs.official.split_in_proj``)
OFFICIAL_KEYS: list[tuple[str, str | None]] = [
    (r"^transformer_encoder\.", "encoder."),
    (r"^transformer_decoder\.", "decoder."),
    (r"\.multihead_attn\.", ".cross_attn."),
    (r"\.out_proj\.", ".proj."),
    (r"\.linear1\.", ".mlp.fc1."),
    (r"\.linear2\.", ".mlp.fc2."),
]


@dataclass
class AQTConfig:
    num_actions: int = 6  # A; the model width is A * head_dim (the release's choice)
    head_dim: int = 32
    num_heads: int = 4
    ffn_dim: int = 64
    dropout: float = 0.1
    in_channels: int = 4  # stacked grey frames
    image_size: int = 84
    hidden_size: int = 512  # of the noisy value/advantage heads
    atoms: int = 51
    v_min: float = -10.0
    v_max: float = 10.0
    noisy_std: float = 0.1

    @property
    def dim(self) -> int:
        return self.num_actions * self.head_dim


@dataclass
class AQTOutput:
    q_values: torch.Tensor  # (B, A) expected return per action: sum_z p(z) z
    probs: torch.Tensor  # (B, A, atoms) return distribution per action
    log_probs: torch.Tensor  # (B, A, atoms)
    value: torch.Tensor  # (B, 1, atoms) value-branch logits
    advantage: torch.Tensor  # (B, A, atoms) advantage-branch logits


def dueling_distribution(
    value: torch.Tensor, advantage: torch.Tensor, support: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rainbow's dueling head: q logits = v + adv - mean_a adv; softmax over atoms.

    value (B, 1, Z), advantage (B, A, Z) -> probs, log_probs (B, A, Z) and Q-values (B, A)."""
    logits = value + advantage - advantage.mean(dim=1, keepdim=True)  # (B, A, Z)
    probs = logits.softmax(dim=-1)
    return probs, logits.log_softmax(dim=-1), (probs * support).sum(dim=-1)


@register_model("aqt-atari", config=AQTConfig())
@register_model("aqt-atari-small-reference", config=AQTConfig(hidden_size=32))  # the golden's size
class ActionQTransformer(nn.Module):
    """Stacked frames (B, C, 84, 84) in [0, 1] -> :class:`AQTOutput`."""

    support: torch.Tensor

    def __init__(self, config: AQTConfig) -> None:
        super().__init__()
        self.config = c = config
        if min(c.num_actions, c.head_dim, c.num_heads, c.ffn_dim, c.hidden_size, c.in_channels) < 1:
            raise InputError(f"aqt sizes must be >= 1, got {c}")
        if c.image_size != 84 or c.atoms < 2 or c.v_max <= c.v_min or c.dim % 2:
            raise InputError(f"aqt needs 84x84 frames, atoms >= 2, v_max > v_min and an even width, got {c}")
        d, grid = c.dim, 7
        self.convs = nature_torso(c.in_channels, d)
        self.row_embed = nn.Parameter(torch.empty(grid, d // 2))
        self.col_embed = nn.Parameter(torch.empty(grid, d // 2))
        self.encoder = Encoder(d, c.num_heads, c.ffn_dim, c.dropout)
        self.decoder = Decoder(d, c.num_heads, c.ffn_dim, c.dropout)
        self.action_encoder = nn.Linear(c.num_actions, d)
        self.fc_h_v = NoisyLinear(grid * grid * d, c.hidden_size, std_init=c.noisy_std)
        self.fc_z_v = NoisyLinear(c.hidden_size, c.atoms, std_init=c.noisy_std)
        self.fc_h_a = NoisyLinear(d, c.hidden_size, std_init=c.noisy_std)
        self.fc_z_a = NoisyLinear(c.hidden_size, c.atoms, std_init=c.noisy_std)
        self.register_buffer("support", torch.linspace(c.v_min, c.v_max, c.atoms), persistent=False)
        for p in self.parameters():  # the release's init: xavier on every matrix
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        c = self.config
        return {"obs": torch.rand(batch_size, c.in_channels, c.image_size, c.image_size)}

    def reset_noise(self, generator: torch.Generator | None = None) -> None:
        for layer in (self.fc_h_v, self.fc_z_v, self.fc_h_a, self.fc_z_a):
            layer.reset_noise(generator)

    def positions(self) -> torch.Tensor:
        """(49, d): token (h, w) -> [col_embed[w], row_embed[h]], row-major."""
        grid = self.row_embed.shape[0]
        cols = self.col_embed.unsqueeze(0).expand(grid, -1, -1)  # (H, W, d/2)
        rows = self.row_embed.unsqueeze(1).expand(-1, grid, -1)  # (H, W, d/2)
        return torch.cat([cols, rows], dim=-1).flatten(0, 1)  # (H*W, d)

    def action_queries(self, batch: int) -> torch.Tensor:
        """(B, A, d): the action encoder applied to every one-hot."""
        eye = torch.eye(self.config.num_actions, dtype=self.action_encoder.weight.dtype)
        return self.action_encoder(eye.to(self.action_encoder.weight.device)).expand(batch, -1, -1)

    def forward(self, obs: torch.Tensor) -> AQTOutput:
        c = self.config
        shape = (c.in_channels, c.image_size, c.image_size)
        if obs.dim() != 4 or tuple(obs.shape[1:]) != shape or not obs.is_floating_point():
            raise InputError(
                f"aqt-atari takes float (B, {', '.join(map(str, shape))}), got {obs.dtype} {tuple(obs.shape)}"
            )
        src = self.convs(obs).flatten(2).transpose(1, 2)  # (B, 49, d)
        memory = self.encoder(self.positions() + 0.1 * src)  # (B, 49, d)
        flat = memory.transpose(1, 2).flatten(1)  # (B, d * 49), channel-major like the release
        value = self.fc_z_v(torch.relu(self.fc_h_v(flat))).unsqueeze(1)  # (B, 1, Z)
        actions = self.decoder(self.action_queries(obs.shape[0]), memory)  # (B, A, d)
        advantage = self.fc_z_a(torch.relu(self.fc_h_a(actions)))  # (B, A, Z)
        probs, log_probs, q_values = dueling_distribution(value, advantage, self.support)
        return AQTOutput(q_values, probs, log_probs, value, advantage)
