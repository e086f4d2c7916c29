"""Slot attention and the query-based object extractor of SFA.

:class:`SlotAttention`: Locatello et al., "Object-Centric Learning with Slot
Attention", NeurIPS 2020, arXiv:2006.15055; reference implementation
google-research/google-research ``slot_attention/model.py`` (TensorFlow). Per
iteration, with slots ``s`` (B, K, D) and inputs ``x`` (B, N, D_in)::

    a = softmax_K(q(LN(s)) k(LN(x))^T / sqrt(D))      # competition: over SLOTS
    u = (a + eps) / sum_N(a + eps) @ v(LN(x))         # weighted mean over inputs
    s = GRUCell(u, s);  s = s + MLP(LN(s))

Implementation details (as the reference): q/k/v without bias, one LayerNorm each for
inputs, slots and the MLP, ReLU MLP with hidden size 2 * D (``mlp_ratio=2``), slots
initialised as ``mu + exp(log_sigma) * N(0, I)`` with ``mu``, ``log_sigma`` of shape
(1, 1, D) drawn like Keras' ``glorot_uniform`` (bound sqrt(6 / (1 + D))), gradients
through every iteration (or, with ``bilevel=True``, BO-QSA's straight-through gradient: Jia et
al., "Improving Object-centric Learning with Query Optimization", ICLR 2023, arXiv:2210.08990,
official code YuLiu-LY/BO-QSA ``truncate='bi-level'``: the first ``num_iterations - 1``
iterations run without gradient and the last one starts from ``s + s0 - stopgrad(s0)``, so the
initial slots ``s0`` receive the last iteration's gradient as if they had been its input; the
values are unchanged). PyTorch's ``GRUCell`` applies the reset gate after the
hidden matrix product, as Keras' default ``reset_after=True`` does. Additions: explicit
initial slots (B, K, D) and ``deterministic=True`` (slots start at ``mu``) for
reproducible evaluation.

``position_weight`` > 0 adds a spatial term to the logits (an option of ours, off by default):
each slot carries a centre ``c_k``, the attention-weighted mean of the inputs' positions ``p_n``
(as Invariant Slot Attention's slot positions: Biza et al., ICML 2023, arXiv:2302.04973), and
``-position_weight * ||p_n - c_k||^2`` joins ``q k^T / sqrt(D)``, so an input leans to the slots
centred near it, as in a k-means of features and position. The centres are updated after every
iteration from that iteration's mean weights; the first iteration uses the given ones.

:class:`QueryObjectExtractor`: the Object Extractor of SFA (Slots and Frames
Attention; seed 000 of this project): K learned query vectors, shared by all frames,
attend to the encoded image through multi-head cross-attention. The paper does not
give the block layout; we use V-JEPA's pre-norm cross-attention block
(:class:`attnlab.layers.pooling.CrossAttentionBlock`: ``q = q + MHA(q, LN(x));
q = q + MLP(LN(q))``), ``num_layers`` of them, and no self-attention between the slots
(SFA exchanges information across slots and frames in a later attention stage).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from attnlab.errors import InputError
from attnlab.layers._recording import RecordsAttention
from attnlab.layers.pooling import CrossAttentionBlock
from attnlab.layers.pos_embed import cell_centres


class SlotAttention(RecordsAttention):
    """Iterative slot attention: inputs (B, N, kv_dim) -> slots (B, K, dim).

    Records, on every iteration, the attention normalised over slots (B, K, N)
    (before the renormalisation over inputs), so inside ``capture`` ``rec.calls(name)``
    has ``num_iterations`` entries and ``rec[name]`` is the last iteration's.
    """

    def __init__(
        self,
        dim: int,
        *,
        num_slots: int,
        kv_dim: int | None = None,
        num_iterations: int = 3,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = False,
        epsilon: float = 1e-8,
        bilevel: bool = False,
        position_weight: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        if not math.isfinite(position_weight) or position_weight < 0:
            raise InputError(f"position_weight must be finite and >= 0, got {position_weight}")
        if dim < 1 or num_slots < 1 or num_iterations < 1:
            raise InputError(
                f"dim, num_slots and num_iterations must be >= 1, got {dim}, {num_slots}, {num_iterations}"
            )
        if mlp_ratio <= 0 or epsilon < 0:
            raise InputError(f"need mlp_ratio > 0 and epsilon >= 0, got {mlp_ratio}, {epsilon}")
        self.dim = dim
        self.kv_dim = kv_dim or dim
        self.num_slots = num_slots
        self.num_iterations = num_iterations
        self.epsilon = epsilon
        self.bilevel = bilevel
        self.position_weight = position_weight
        self.scale = dim**-0.5
        self.norm_inputs = norm_layer(self.kv_dim)
        self.norm_slots = norm_layer(dim)
        self.norm_mlp = norm_layer(dim)
        self.slots_mu = nn.Parameter(torch.empty(1, 1, dim))
        self.slots_log_sigma = nn.Parameter(torch.empty(1, 1, dim))
        bound = math.sqrt(6.0 / (1 + dim))  # Keras glorot_uniform of a (1, 1, D) weight
        nn.init.uniform_(self.slots_mu, -bound, bound)
        nn.init.uniform_(self.slots_log_sigma, -bound, bound)
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.k_proj = nn.Linear(self.kv_dim, dim, bias=qkv_bias)
        self.v_proj = nn.Linear(self.kv_dim, dim, bias=qkv_bias)
        self.gru = nn.GRUCell(dim, dim)
        hidden = max(1, int(dim * mlp_ratio))
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), act_layer(), nn.Linear(hidden, dim))

    def initial_slots(
        self,
        batch: int,
        *,
        num_slots: int | None = None,
        deterministic: bool = False,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Slots (B, K, D) drawn from the learned Gaussian (with ``generator`` if given), or its
        mean if ``deterministic``."""
        k = self.num_slots if num_slots is None else num_slots
        if batch < 1 or k < 1:
            raise InputError(f"initial_slots needs batch >= 1 and num_slots >= 1, got {batch}, {k}")
        mu = self.slots_mu.to(device=device, dtype=dtype)
        mu = mu.expand(batch, k, self.dim)  # (B, K, D)
        if deterministic:
            return mu
        noise = torch.randn(batch, k, self.dim, device=mu.device, dtype=mu.dtype, generator=generator)
        return mu + self.slots_log_sigma.to(mu).exp() * noise

    def _check(self, x: torch.Tensor, slots: torch.Tensor | None) -> None:
        if x.dim() != 3 or x.shape[-1] != self.kv_dim or x.shape[1] == 0 or not x.is_floating_point():
            raise InputError(
                f"inputs must be floating (B, N>0, {self.kv_dim}), got {x.dtype} {tuple(x.shape)}"
            )
        if slots is not None and (
            slots.dim() != 3
            or slots.shape[0] != x.shape[0]
            or slots.shape[-1] != self.dim
            or slots.shape[1] == 0
            or slots.dtype != x.dtype
        ):
            raise InputError(
                f"slots must be {x.dtype} (B={x.shape[0]}, K>0, {self.dim}), "
                f"got {slots.dtype} {tuple(slots.shape)}"
            )

    def _check_positions(
        self, x: torch.Tensor, positions: torch.Tensor | None, centres: torch.Tensor | None, num_slots: int
    ) -> None:
        if self.position_weight == 0:
            if positions is not None or centres is not None:
                raise InputError("positions and centres need position_weight > 0")
            return
        B, N = x.shape[:2]
        if positions is None or positions.dim() != 2 or positions.shape[0] != N:
            raise InputError(
                f"position_weight > 0 needs positions (N={N}, P), got "
                f"{None if positions is None else tuple(positions.shape)}"
            )
        want = (B, num_slots, positions.shape[1])
        if centres is None or tuple(centres.shape) != want:
            got = None if centres is None else tuple(centres.shape)
            raise InputError(f"position_weight > 0 needs centres {want}, got {got}")

    def mean_weights(self, attention: torch.Tensor) -> torch.Tensor:
        """Attention over slots (B, K, N) -> each slot's weights for a mean over inputs (B, K, N)."""
        weights = attention + self.epsilon  # the epsilon keeps slots that win no input from dividing by zero
        return weights / weights.sum(dim=-1, keepdim=True)

    def _step(
        self,
        slots: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        positions: torch.Tensor | None,
        centres: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One iteration: the new slots (B, K, D), the attention over slots (B, K, N) and, with
        positions (N, P), the new centres (B, K, P)."""
        q = self.q_proj(self.norm_slots(slots))  # (B, K, D)
        logits = (q @ k.transpose(1, 2)) * self.scale  # (B, K, N)
        if positions is not None and centres is not None:
            logits = logits - self.position_weight * torch.cdist(centres, positions[None]) ** 2
        w = logits.softmax(dim=1)  # over slots: slots compete for each input
        self._record(w)
        weights = self.mean_weights(w)  # (B, K, N)
        centres = None if positions is None else weights @ positions  # (B, K, P)
        return self._update(slots, weights, v), w, centres

    def _update(self, slots: torch.Tensor, weights: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Slots (B, K, D) after reading the values v (B, N, D) with weights (B, K, N) summing to 1
        over inputs: the GRU and the residual MLP."""
        B, K, D = slots.shape
        updates = weights @ v  # (B, K, D)
        slots = self.gru(updates.reshape(B * K, D), slots.reshape(B * K, D))  # (B*K, D)
        slots = slots.view(B, K, D)  # (B, K, D)
        return slots + self.mlp(self.norm_mlp(slots))

    def read_clusters(self, x: torch.Tensor, clusters: torch.Tensor, slots: torch.Tensor) -> torch.Tensor:
        """Slots (B, K, D) after one update that reads a given hard assignment of the inputs, clusters
        (B, K, N) one-hot over K, in place of the attention: slot k starts from the mean value of
        cluster k's inputs (a cluster with no input reads the mean of all, as ``epsilon`` does)."""
        self._check(x, slots)
        if clusters.shape != (*slots.shape[:2], x.shape[1]):
            want = (*slots.shape[:2], x.shape[1])
            raise InputError(f"clusters must be {want}, got {tuple(clusters.shape)}")
        v = self.v_proj(self.norm_inputs(x))  # (B, N, D)
        return self._update(slots, self.mean_weights(clusters.to(x.dtype)), v)

    def forward(
        self, x: torch.Tensor, *, slots: torch.Tensor | None = None, deterministic: bool = False
    ) -> torch.Tensor:
        """Slots (B, K, D) for inputs (B, N, kv_dim); ``slots`` gives the initial slots."""
        return self.with_attention(x, slots=slots, deterministic=deterministic)[0]

    def with_attention(
        self,
        x: torch.Tensor,
        *,
        slots: torch.Tensor | None = None,
        deterministic: bool = False,
        positions: torch.Tensor | None = None,
        centres: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots (B, K, D) and the last iteration's attention over slots (B, K, N), with its
        gradient: each input's share per slot, a soft segmentation of the inputs. With
        ``position_weight`` > 0, ``positions`` (N, P) are the inputs' coordinates and ``centres``
        (B, K, P) the slots' starting centres."""
        self._check(x, slots)
        if slots is None:
            batch = x.shape[0]
            slots = self.initial_slots(batch, deterministic=deterministic, device=x.device, dtype=x.dtype)
        self._check_positions(x, positions, centres, slots.shape[1])
        x = self.norm_inputs(x)
        k, v = self.k_proj(x), self.v_proj(x)  # (B, N, D) each
        if not self.bilevel:
            for _ in range(self.num_iterations - 1):
                slots, _, centres = self._step(slots, k, v, positions, centres)
            return self._step(slots, k, v, positions, centres)[:2]
        start = slots
        with torch.no_grad():  # BO-QSA: the gradient would be cut before the last iteration anyway
            for _ in range(self.num_iterations - 1):
                slots, _, centres = self._step(slots, k, v, positions, centres)
        slots = slots.detach() + start - start.detach()  # straight-through to the initial slots
        return self._step(slots, k, v, positions, centres)[:2]


class QueryObjectExtractor(nn.Module):
    """SFA's object extractor: K learned queries cross-attend to image features.

    Input (B, N, kv_dim) features (positions already added) -> (B, K, dim); video
    (B, T, N, kv_dim) -> (B, T, K, dim), the same queries for every frame. Attention
    is recorded by ``blocks.i.attn`` as (B, H, K, N), or (B*T, H, K, N) for video with
    frames folded into the batch (index b * T + t).
    """

    def __init__(
        self,
        dim: int,
        *,
        num_slots: int,
        kv_dim: int | None = None,
        num_heads: int = 8,
        num_layers: int = 1,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
        norm_layer: type[nn.Module] = nn.LayerNorm,
        act_layer: type[nn.Module] = nn.GELU,
    ) -> None:
        super().__init__()
        if num_slots < 1 or num_layers < 1:
            raise InputError(f"num_slots and num_layers must be >= 1, got {num_slots}, {num_layers}")
        self.dim = dim
        self.kv_dim = kv_dim or dim
        # unit-variance queries (as DETR's nn.Embedding) so the slots differ from the start
        self.queries = nn.Parameter(torch.randn(1, num_slots, dim))
        self.blocks = nn.ModuleList(
            CrossAttentionBlock(
                dim,
                num_heads=num_heads,
                kv_dim=self.kv_dim,
                mlp_ratio=mlp_ratio,
                qkv_bias=qkv_bias,
                attn_drop=attn_drop,
                proj_drop=proj_drop,
                norm_layer=norm_layer,
                act_layer=act_layer,
            )
            for _ in range(num_layers)
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() not in (3, 4) or features.shape[-1] != self.kv_dim or features.shape[-2] == 0:
            raise InputError(
                f"features must be (B, N>0, {self.kv_dim}) or (B, T, N>0, {self.kv_dim}), "
                f"got {tuple(features.shape)}"
            )
        if not features.is_floating_point():
            raise InputError(f"features must be floating, got {features.dtype}")
        lead = features.shape[:-2]  # (B,) or (B, T)
        tokens = features.reshape(-1, *features.shape[-2:])  # (B[*T], N, kv_dim)
        slots = self.queries.expand(tokens.shape[0], -1, -1)  # (B[*T], K, D)
        for block in self.blocks:
            slots = block(slots, tokens)  # (B[*T], K, D)
        return slots.reshape(*lead, *slots.shape[1:])  # (B, K, D) or (B, T, K, D)


class VideoSlotAttention(nn.Module):
    """Slot attention on every frame of a video: features (B, T, N, kv_dim) -> slots (B, T, K, dim).

    What makes slots separate is the competition: the attention is a softmax over *slots* for
    each input token (:class:`SlotAttention`), where a cross-attention with learned queries
    (:class:`QueryObjectExtractor`) normalises over tokens and lets every query read the same
    pixels. The initial slots are, with ``init="learned"``, K learned vectors (as SAVi's
    learned initialisation and BO-QSA), so slot k starts in the same place on every clip; with
    ``init="gaussian"``, Slot Attention's draw from a learned Gaussian, one draw per clip
    shared by its frames (in eval mode from a generator seeded with 0, so that evaluation is
    deterministic). ``bilevel`` is :class:`SlotAttention`'s (BO-QSA's gradient). With
    ``carry=True`` frame t starts from frame t-1's slots (SAVi's predictor with the identity,
    arXiv:2111.12594), which keeps an object in its slot across frames at the price of a loop
    over frames; without it every frame runs at once.
    With ``init="kmeans"`` each frame brings its own hard clustering of its tokens (``clusters``,
    e.g. a k-means of the frame's colours and positions: :mod:`attnlab.layers.kmeans`), and its
    slots start from one update that reads it (:meth:`SlotAttention.read_clusters`, from the K
    learned vectors): slot k from cluster k's tokens; the iterations then refine them as usual.
    With ``position_weight`` > 0 (:class:`SlotAttention`'s spatial term) the tokens are the
    row-major cells of ``grid`` (h, w), at (y, x) in [0, 1] (cell centres); every clip's first
    frame starts from K learned centres, drawn uniformly in the frame (with ``init="kmeans"``
    every frame from its clusters' centres), and with ``carry`` frame t from frame t-1's. With
    ``bilevel`` (and more than one iteration) only the last iteration has a gradient, and it does
    not reach the starting centres: they stay where they were drawn.
    Attention is recorded by the ``slot_attention`` submodule on every iteration (and every
    frame with ``carry``), as (B * T, K, N), or (B, K, N) with ``carry``.
    """

    positions: torch.Tensor | None  # (N, 2) token coordinates, with position_weight > 0

    def __init__(
        self,
        dim: int,
        *,
        num_slots: int,
        kv_dim: int | None = None,
        num_iterations: int = 3,
        carry: bool = False,
        init: Literal["learned", "gaussian", "kmeans"] = "learned",
        bilevel: bool = False,
        mlp_ratio: float = 2.0,
        position_weight: float = 0.0,
        grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if num_slots < 1:
            raise InputError(f"num_slots must be >= 1, got {num_slots}")
        if position_weight > 0 and (grid is None or min(grid) < 1):
            raise InputError(f"position_weight > 0 needs the token grid (h, w), got {grid}")
        if init not in ("learned", "gaussian", "kmeans"):
            raise InputError(f"init must be 'learned', 'gaussian' or 'kmeans', got {init!r}")
        if init == "kmeans" and carry:
            raise InputError("init 'kmeans' starts every frame from its own clusters; carry would drop them")
        self.dim = dim
        self.kv_dim = kv_dim or dim
        self.carry = carry
        self.init = init
        self.slot_attention = SlotAttention(
            dim,
            num_slots=num_slots,
            kv_dim=self.kv_dim,
            num_iterations=num_iterations,
            mlp_ratio=mlp_ratio,
            bilevel=bilevel,
            position_weight=position_weight,
        )
        positions = None
        if position_weight > 0 and grid is not None:
            h, w = grid
            positions = cell_centres(h, w)  # (N, 2), row-major like the tokens
            self.centres = nn.Parameter(torch.rand(1, num_slots, 2))
        self.register_buffer("positions", positions, persistent=False)
        if init in ("learned", "kmeans"):
            # unit-variance starting points, as the Extractor's queries: with small ones (std
            # dim**-0.5 was tried) every slot receives the same first update, the decoder's
            # masks stay at exactly 1/K and nothing breaks the symmetry (docs/object_centric.md, p6)
            self.queries = nn.Parameter(torch.randn(1, num_slots, dim))

    def initial_slots(self, batch: int, like: torch.Tensor) -> torch.Tensor:
        """The slots (batch, K, D) that each clip's first frame starts from."""
        if self.init != "gaussian":
            return self.queries.expand(batch, -1, -1).to(like.dtype).contiguous()
        generator = None
        if not self.training:
            generator = torch.Generator(like.device).manual_seed(0)
        sa = self.slot_attention
        return sa.initial_slots(batch, device=like.device, dtype=like.dtype, generator=generator)

    def forward(self, features: torch.Tensor, clusters: torch.Tensor | None = None) -> torch.Tensor:
        return self.with_attention(features, clusters)[0]

    def with_attention(
        self, features: torch.Tensor, clusters: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Slots (B, T, K, D) and each frame's last attention over slots (B, T, K, N); with
        ``init="kmeans"``, ``clusters`` (B, T, K, N) are each frame's tokens' clusters, one-hot over K."""
        if features.dim() != 4 or features.shape[-1] != self.kv_dim or features.shape[2] == 0:
            raise InputError(f"features must be (B, T, N>0, {self.kv_dim}), got {tuple(features.shape)}")
        B, T, N = features.shape[:3]
        if self.positions is not None and self.positions.shape[0] != N:
            cells = self.positions.shape[0]
            raise InputError(f"features must have one token per grid cell ({cells}), got {N}")
        if (clusters is None) != (self.init != "kmeans"):
            raise InputError(f"clusters are given with init 'kmeans' and only then (init {self.init!r})")
        slots = self.initial_slots(B, features)  # (B, K, D)
        centres = None if self.positions is None else self.centres.expand(B, -1, -1).to(features.dtype)
        if not self.carry:
            tokens = features.flatten(0, 1)  # (B*T, N, kv_dim)
            # every frame of a clip starts from the clip's slots ...
            init = slots[:, None].expand(-1, T, -1, -1).flatten(0, 1).contiguous()  # (B*T, K, D)
            if centres is not None:
                centres = centres[:, None].expand(-1, T, -1, -1).flatten(0, 1)  # (B*T, K, 2)
            if clusters is not None:  # ... read through the frame's own clusters
                clusters = clusters.flatten(0, 1).to(tokens.dtype)  # (B*T, K, N)
                init = self.slot_attention.read_clusters(tokens, clusters, init)
                if self.positions is not None:
                    centres = self.slot_attention.mean_weights(clusters) @ self.positions  # (B*T, K, 2)
            slots, attention = self.slot_attention.with_attention(
                tokens, slots=init, positions=self.positions, centres=centres
            )
            return slots.view(B, T, *slots.shape[1:]), attention.view(B, T, *attention.shape[1:])
        per_frame, attended = [], []
        for t in range(T):
            slots, attention = self.slot_attention.with_attention(
                features[:, t], slots=slots, positions=self.positions, centres=centres
            )  # (B, K, *)
            if self.positions is not None:  # the next frame starts from this one's centres
                centres = self.slot_attention.mean_weights(attention) @ self.positions  # (B, K, 2)
            per_frame.append(slots)
            attended.append(attention)
        return torch.stack(per_frame, dim=1), torch.stack(attended, dim=1)  # (B, T, K, D), (B, T, K, N)
