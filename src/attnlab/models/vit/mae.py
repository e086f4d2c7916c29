"""MAE: masked autoencoders (He et al., CVPR 2022, "Masked Autoencoders Are Scalable Vision
Learners", arXiv:2111.06377).

Reference: facebookresearch/mae ``models_mae.py`` (``MaskedAutoencoderViT``) and
``util/pos_embed.py``.

A random ``mask_ratio`` of each image's patches is removed: per-sample uniform noise, patches
sorted by it, the first ``int(L * (1 - mask_ratio))`` kept. The encoder (the shared
:class:`~attnlab.models.vit.image_vit.ImageViT` with MAE's fixed sincos positions) sees only the
kept patches and [CLS]; a light decoder embeds its output to a narrower width, appends one shared
mask token per removed patch, puts every token back in patch order, adds its own fixed table and
predicts each patch's pixels. The loss (:mod:`attnlab.objectives.mae`) is the squared error on the
removed patches only, against the raw pixels or, with ``norm_pix_loss``, the pixels normalised per
patch (unbiased variance, eps 1e-6). Pixel vectors are ordered (row in patch, column in patch,
channel), the official ``patchify``.

Deviations: ``forward`` takes the masking ``noise`` (drawn as the official does, ``torch.rand(B, L)``
first, when it is not given) and returns the prediction targets beside the prediction instead of
the loss; ``patchify`` takes any number of channels (the official hard-codes 3); other image
sizes evaluate the fixed tables at the new grid (the official model has only its own size); the
official ``initialize_weights`` (xavier-uniform Linear and patch weights) is followed, its
``torch.nn.init.normal_(std=.02)`` of [CLS] and the mask token too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.layers.vit_blocks import LayerNorm6, gather_tokens, vit_blocks
from attnlab.models._registry import register_model
from attnlab.models.vit.image_vit import FMNIST_P4, ImageViT, ImageViTConfig, mae_sincos_table


@dataclass
class MAEConfig:
    """The official ``MaskedAutoencoderViT`` arguments (defaults: its ViT-L/16 with the 512 x 8 decoder)."""

    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    mask_ratio: float = 0.75
    norm_pix_loss: bool = False

    def encoder(self) -> ImageViTConfig:
        return ImageViTConfig(
            img_size=self.img_size,
            patch_size=self.patch_size,
            in_chans=self.in_chans,
            dim=self.dim,
            depth=self.depth,
            num_heads=self.num_heads,
            mlp_ratio=self.mlp_ratio,
            qkv_bias=True,
            cls_token=True,
            pos_embed="sincos2d",
        )

    def pixels_per_patch(self) -> int:
        return self.patch_size**2 * self.in_chans

    def check(self) -> None:
        self.encoder().check()
        if self.decoder_dim < 1 or self.decoder_dim % self.decoder_num_heads or self.decoder_dim % 4:
            raise ConfigError(
                f"decoder_dim={self.decoder_dim} must be divisible by decoder_num_heads="
                f"{self.decoder_num_heads} and by 4 (its sincos table)"
            )
        if not 0.0 <= self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in [0, 1), got {self.mask_ratio}")


MAE_VIT_BASE = MAEConfig(dim=768, depth=12, num_heads=12)  # the official mae_vit_base_patch16_dec512d8b
MAE_REFERENCE = MAEConfig(
    img_size=32, patch_size=4, dim=64, depth=2, num_heads=4,
    decoder_dim=32, decoder_depth=2, decoder_num_heads=4,
)  # fmt: skip
MAE_TINY_P4 = MAEConfig(
    img_size=28, patch_size=4, in_chans=1, dim=64, depth=4, num_heads=4,
    decoder_dim=32, decoder_depth=2, decoder_num_heads=4, norm_pix_loss=True,
)  # fmt: skip
# the Fashion-MNIST teacher: DINO's dino-vit-p4 backbone (FMNIST_P4) with MAE's positions, a 64 x 2 decoder
MAE_VIT_P4 = MAEConfig(
    img_size=FMNIST_P4.img_size, patch_size=FMNIST_P4.patch_size, in_chans=FMNIST_P4.in_chans,
    dim=FMNIST_P4.dim, depth=FMNIST_P4.depth, num_heads=FMNIST_P4.num_heads, mlp_ratio=FMNIST_P4.mlp_ratio,
    decoder_dim=64, decoder_depth=2, decoder_num_heads=4, norm_pix_loss=True,
)  # fmt: skip


@dataclass
class MAEOutput:
    """A masked autoencoder's output; the loss reads ``pred``, ``target`` and ``mask``."""

    latent: torch.Tensor  # (B, 1 + K, D) the encoder's [CLS] and K kept tokens, after its norm
    pred: torch.Tensor  # (B, L, p*p*C) predicted pixels of every patch, in patch order
    target: torch.Tensor  # (B, L, p*p*C) the patches' pixels, normalised per patch if norm_pix_loss
    mask: torch.Tensor  # (B, L) 1 for a removed patch, 0 for a kept one, in patch order
    ids_restore: torch.Tensor  # (B, L) int64: where each patch sits in the shuffled order


@dataclass
class Masking:
    ids_keep: torch.Tensor  # (B, K) int64 patch indices the encoder sees, in noise order
    ids_restore: torch.Tensor  # (B, L) int64 inverse of the shuffle
    mask: torch.Tensor  # (B, L) float, 1 = removed


def random_masking(
    batch: int, length: int, mask_ratio: float, *, noise: torch.Tensor | None = None, device: torch.device
) -> Masking:
    """MAE's per-sample shuffle: keep the ``int(L * (1 - mask_ratio))`` patches of lowest noise."""
    if noise is None:  # the official draw, so a seeded run matches it
        noise = torch.rand(batch, length, device=device)
    elif noise.shape != (batch, length) or not noise.is_floating_point():
        raise InputError(
            f"noise must be floating (B={batch}, L={length}), got {noise.dtype} {tuple(noise.shape)}"
        )
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)  # (B, L) ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # (B, L)
    mask = torch.ones(batch, length, device=noise.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # (B, L) back in patch order
    return Masking(ids_keep=ids_shuffle[:, :len_keep], ids_restore=ids_restore, mask=mask)


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, h*w, p*p*C): each patch's pixels ordered (row, column, channel)."""
    B, C, H, W = images.shape
    p = patch_size
    x = images.reshape(B, C, H // p, p, W // p, p)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, h, w, p, q, C)
    return x.reshape(B, (H // p) * (W // p), p * p * C)


def unpatchify(patches: torch.Tensor, patch_size: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, h*w, p*p*C) -> (B, C, h*p, w*p)."""
    B, _, n = patches.shape
    (h, w), p = grid, patch_size
    C = n // (p * p)
    x = patches.reshape(B, h, w, p, p, C).permute(0, 5, 1, 3, 2, 4)  # (B, C, h, p, w, q)
    return x.reshape(B, C, h * p, w * p)


def normalize_patches(patches: torch.Tensor) -> torch.Tensor:
    """Each patch's pixels minus their mean over their std: MAE's ``norm_pix_loss`` target
    (unbiased variance, torch's default, + 1e-6 inside the square root)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + 1.0e-6) ** 0.5


@register_model("mae-small-reference", config=MAE_REFERENCE)
@register_model("mae-vit-tiny-p4", config=MAE_TINY_P4)
@register_model("mae-vit-p4", config=MAE_VIT_P4)
class MAE(nn.Module):
    """``forward(images, noise=None, mask_ratio=None)`` -> :class:`MAEOutput`."""

    decoder_pos_embed: torch.Tensor

    def __init__(self, config: MAEConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        self.encoder = ImageViT(c.encoder())
        self.decoder_embed = nn.Linear(c.dim, c.decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.decoder_dim))
        grid = c.encoder().grid()
        self.register_buffer("decoder_pos_embed", mae_sincos_table(grid, c.decoder_dim, cls_token=True))
        self.decoder_blocks = vit_blocks(
            c.decoder_dim, c.decoder_depth, c.decoder_num_heads, c.mlp_ratio, True
        )
        self.decoder_norm = LayerNorm6(c.decoder_dim)
        self.decoder_pred = nn.Linear(c.decoder_dim, c.pixels_per_patch())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The official ``initialize_weights``: the patch convolution as a Linear (xavier-uniform on
        its flattened weight), N(0, 0.02) [CLS] and mask token, xavier-uniform Linear weights, zero
        biases, unit LayerNorms."""
        proj = self.encoder.patch_embed.proj
        nn.init.xavier_uniform_(proj.weight.view(proj.weight.shape[0], -1))
        if self.encoder.cls_token is not None:
            nn.init.normal_(self.encoder.cls_token, std=0.02)
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def backbone(self) -> ImageViT:
        """The encoder: what MAE evaluates (linear probe, k-NN, fine-tuning) and releases."""
        return self.encoder

    def example_inputs(self, batch_size: int = 2) -> dict[str, torch.Tensor]:
        """Images of the configured size and fixed noise (eval stays deterministic; registry tests)."""
        c = self.config
        n = c.encoder().grid()[0] * c.encoder().grid()[1]
        return {
            "images": torch.randn(batch_size, c.in_chans, c.img_size, c.img_size),
            "noise": torch.rand(batch_size, n),
        }

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        """What the decoder must predict per patch: (B, L, p*p*C) pixels, normalised if ``norm_pix_loss``."""
        patches = patchify(images, self.config.patch_size)
        return normalize_patches(patches) if self.config.norm_pix_loss else patches

    def decode(self, latent: torch.Tensor, ids_restore: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Encoder tokens (B, 1 + K, D) -> predicted pixels (B, L, p*p*C) of every patch."""
        x = self.decoder_embed(latent)  # (B, 1 + K, Dd)
        B, L = ids_restore.shape
        masks = self.mask_token.expand(B, L + 1 - x.shape[1], -1)  # (B, L - K, Dd)
        patches = torch.cat([x[:, 1:], masks], dim=1)  # (B, L, Dd), shuffled order
        patches = gather_tokens(patches, ids_restore)  # (B, L, Dd), patch order
        x = torch.cat([x[:, :1], patches], dim=1)  # (B, 1 + L, Dd)
        x = x + self.decoder_positions(grid).to(x.dtype)
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))[:, 1:]  # (B, L, p*p*C), [CLS] dropped

    def decoder_positions(self, grid: tuple[int, int]) -> torch.Tensor:
        if grid == self.config.encoder().grid():
            return self.decoder_pos_embed
        table = mae_sincos_table(grid, self.config.decoder_dim, cls_token=True)
        return table.to(self.decoder_pos_embed.device)

    def forward(
        self, images: torch.Tensor, noise: torch.Tensor | None = None, mask_ratio: float | None = None
    ) -> MAEOutput:
        ratio = self.config.mask_ratio if mask_ratio is None else mask_ratio
        if not 0.0 <= ratio < 1.0:
            raise InputError(f"mask_ratio must be in [0, 1), got {ratio}")
        grid = self.encoder.check_images(images)
        masking = random_masking(images.shape[0], grid[0] * grid[1], ratio, noise=noise, device=images.device)
        latent = self.encoder(images, masking.ids_keep)  # (B, 1 + K, D)
        return MAEOutput(
            latent=latent,
            pred=self.decode(latent, masking.ids_restore, grid),
            target=self.targets(images),
            mask=masking.mask,
            ids_restore=masking.ids_restore,
        )


# facebookresearch/mae ``MaskedAutoencoderViT`` keys -> ours, after each fused ``qkv`` is split into
# ``q_proj`` / ``kv_proj`` by :func:`attnlab.runs.official.load_official_mae`: the encoder's parts
# move under ``encoder.``, the decoder's keep their names.
OFFICIAL_KEYS: list[tuple[str, str | None]] = [
    (r"^(cls_token|pos_embed|patch_embed\.|blocks\.|norm\.)", r"encoder.\1"),
]
