"""Attention masks: validation, merging, and the block masks video models need.

Convention (the one of ``F.scaled_dot_product_attention``):
* a boolean ``attn_mask`` is True where a query MAY attend to a key;
* a floating ``attn_mask`` is added to the attention logits (use ``-inf`` to block);
* ``key_padding_mask`` (B, Lk) is True where a key is PADDING and must be ignored
  (the convention of ``torch.nn.MultiheadAttention``, because padding is what
  users have at hand).
Everything merges into one mask broadcastable to (B, H, Lq, Lk).
"""

from __future__ import annotations

from typing import Literal

import torch

from attnlab.errors import InputError


def causal_mask(q_len: int, k_len: int, *, device: torch.device | None = None) -> torch.Tensor:
    """Boolean (Lq, Lk) mask, True where key index <= query index (top-left aligned, as SDPA)."""
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


def video_block_mask(
    num_frames: int,
    num_slots: int,
    *,
    causal: bool = True,
    same_slot: bool = False,
    layout: Literal["frame_major", "slot_major"] = "frame_major",
    device: torch.device | None = None,
) -> torch.Tensor:
    """Boolean (T*K, T*K) mask over tokens that are (frame t, slot k) pairs.

    ``causal``: token (t, k) sees only frames t' <= t (no information from the future).
    ``same_slot``: token (t, k) sees only its own slot k (per-slot temporal attention);
    otherwise it sees every slot of the frames it may see (slots x frames attention).
    ``layout``: token order, "frame_major" = index t*K + k, "slot_major" = k*T + t.
    """
    if num_frames < 1 or num_slots < 1:
        raise InputError(f"video_block_mask needs num_frames, num_slots >= 1, got {num_frames}, {num_slots}")
    t = torch.arange(num_frames, device=device)
    k = torch.arange(num_slots, device=device)
    if layout == "frame_major":
        frame, slot = t.repeat_interleave(num_slots), k.repeat(num_frames)  # (T*K,) each
    elif layout == "slot_major":
        frame, slot = t.repeat(num_slots), k.repeat_interleave(num_frames)  # (K*T,) each
    else:
        raise InputError(f"layout must be 'frame_major' or 'slot_major', got {layout!r}")
    allowed = torch.ones(frame.numel(), frame.numel(), dtype=torch.bool, device=device)
    if causal:
        allowed &= frame[None, :] <= frame[:, None]
    if same_slot:
        allowed &= slot[None, :] == slot[:, None]
    return allowed


def _check_attn_mask(mask: torch.Tensor, batch: int, heads: int, q_len: int, k_len: int) -> None:
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise InputError(f"attn_mask must be bool or floating, got {mask.dtype}")
    shape = tuple(mask.shape)
    ok = shape[-2:] == (q_len, k_len) and (
        mask.dim() == 2
        or (mask.dim() == 3 and shape[0] in (1, batch))
        or (mask.dim() == 4 and shape[0] in (1, batch) and shape[1] in (1, heads))
    )
    if not ok:
        raise InputError(
            f"attn_mask has shape {shape}; expected (Lq, Lk), (B, Lq, Lk) or (B, H, Lq, Lk) "
            f"with Lq={q_len}, Lk={k_len}, B={batch}, H={heads}"
        )


def merge_masks(
    attn_mask: torch.Tensor | None,
    key_padding_mask: torch.Tensor | None,
    *,
    is_causal: bool,
    batch: int,
    heads: int,
    q_len: int,
    k_len: int,
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor | None:
    """Validate and merge all masks into one SDPA mask broadcastable to (B, H, Lq, Lk).

    Returns None when there is nothing to mask. Boolean masks stay boolean (SDPA's
    fast kernels prefer them); if any mask is floating, the result is additive.
    """
    masks: list[torch.Tensor] = []
    if attn_mask is not None:
        _check_attn_mask(attn_mask, batch, heads, q_len, k_len)
        # (Lq, Lk) | (B, Lq, Lk) | (B, H, Lq, Lk) -> 4-D, broadcastable
        masks.append(attn_mask.reshape((-1, 1, q_len, k_len) if attn_mask.dim() == 3 else attn_mask.shape))
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool or tuple(key_padding_mask.shape) != (batch, k_len):
            raise InputError(
                f"key_padding_mask must be bool of shape (B, Lk)=({batch}, {k_len}), "
                f"got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
            )
        masks.append(~key_padding_mask[:, None, None, :])  # (B, 1, 1, Lk), True = may attend
    if is_causal:
        masks.append(causal_mask(q_len, k_len, device=device))
    if not masks:
        return None
    if all(m.dtype == torch.bool for m in masks):
        merged = masks[0]
        for m in masks[1:]:
            merged = merged & m
        return merged.to(device)
    additive = torch.zeros((), dtype=dtype, device=device)
    for m in masks:
        m = m.to(device)
        additive = additive + (m.to(dtype) if m.is_floating_point() else _bool_to_additive(m, dtype))
    return additive


def _bool_to_additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))


def attention_weights(
    q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) over keys: (B, H, Lq, D) x (B, H, Lk, D) -> (B, H, Lq, Lk).

    This is what ``F.scaled_dot_product_attention`` computes internally. The
    (Lq, Lk) tensors dominate the cost at long sequences, so the scale goes into q
    (Lq x D), masks are applied in place and, when no gradient is needed, so is
    the softmax: one (Lq, Lk) tensor in all.
    The softmax runs in at least float32 so half-precision inputs give well-formed weights.
    """
    work = torch.float32 if q.dtype in (torch.float16, torch.bfloat16) else q.dtype  # never downcast float64
    logits = (q.to(work) * scale) @ k.to(work).transpose(-2, -1)  # (B, H, Lq, Lk)
    if mask is not None:
        if mask.dtype == torch.bool:
            logits.masked_fill_(~mask, float("-inf"))
        else:
            logits.add_(mask.to(work))
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad):
        return logits.softmax(dim=-1).to(q.dtype)
    # Nobody differentiates: softmax in place over the logits buffer. At long
    # sequences a fresh (B, H, Lq, Lk) allocation's page faults cost more than the
    # softmax itself (benchmarks/attention.py, docs/performance.md).
    return torch.ops.aten._softmax.out(logits, -1, False, out=logits).to(q.dtype)


def masked_softmax(logits: torch.Tensor, padding: torch.Tensor | None) -> torch.Tensor:
    """Softmax over the last dim with padded entries at exactly 0.

    Refilling with 0 after the softmax turns a row that is all padding (NaN) into
    zeros, and its backward then sends no NaN into the logits.
    """
    if padding is None:
        return logits.softmax(dim=-1)
    return logits.masked_fill(padding, float("-inf")).softmax(dim=-1).masked_fill(padding, 0.0)
