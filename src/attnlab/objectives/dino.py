"""DINO's self-distillation loss (Caron et al. 2021, arXiv:2104.14294, Eq. 2-3 and Sec. 3.1).

Reference: facebookresearch/dino ``main_dino.py`` (``DINOLoss``, ``train_one_epoch``).

The student sees every crop (2 global + N local), the teacher only the 2 global ones; both outputs
come crop-major (all images' crop 0, then crop 1, ...), as a multi-crop wrapper concatenates them:
student (ncrops * B, K), teacher (2 * B, K). With the centre c and the epoch's teacher temperature
tau_t (:func:`attnlab.objectives.dino_schedules.teacher_temperatures`):

* teacher targets ``P_t = softmax((g_t - c) / tau_t)``, no gradient: centring stops one dimension
  from dominating, a low tau_t sharpens against the uniform collapse centring alone would invite;
* student ``log P_s = log_softmax(g_s / tau_s)``;
* the loss is the mean, over the 2 * ncrops - 2 pairs (teacher global crop i, student crop v) with
  v != i (a crop is never its own target), of the batch mean of ``sum_k -P_t log P_s``;
* only then the centre moves, from the raw teacher logits of this batch:
  ``c = m * c + (1 - m) * mean_batch(g_t)``, averaged over every process under DDP, as the
  official ``all_reduce``.

Deviations: none in the numbers. The pairs are one contraction (2, ncrops) instead of a Python
loop over them: the same sums, in another order (float32 differences of order 1e-7).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from attnlab.errors import ConfigError, InputError
from attnlab.objectives.dino_schedules import teacher_temperatures
from attnlab.objectives.terms import Terms

GLOBAL_CROPS = 2  # the teacher's views: the official code fixes it at 2


@dataclass
class DINOLossConfig:
    """``main_dino.py``'s arguments (its defaults; its ViT-S/16 recipe raises teacher_temp to 0.07
    over 30 warm-up epochs)."""

    out_dim: int = 65536
    ncrops: int = 10  # 2 global + local_crops_number (8)
    warmup_teacher_temp: float = 0.04
    teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 0
    epochs: int = 100
    student_temp: float = 0.1
    center_momentum: float = 0.9

    def check(self) -> None:
        if self.out_dim < 1:
            raise ConfigError(f"out_dim must be >= 1, got {self.out_dim}")
        if self.ncrops < GLOBAL_CROPS:
            raise ConfigError(f"ncrops must count the {GLOBAL_CROPS} global crops too, got {self.ncrops}")
        if self.student_temp <= 0:
            raise ConfigError(f"student_temp must be > 0, got {self.student_temp}")
        if not 0 <= self.center_momentum <= 1:
            raise ConfigError(f"center_momentum must be in [0, 1], got {self.center_momentum}")


def teacher_targets(teacher_output: torch.Tensor, center: torch.Tensor, temp: float) -> torch.Tensor:
    """(2B, K) teacher logits -> (2, B, K) centred, sharpened probabilities, detached."""
    probs = F.softmax((teacher_output - center) / temp, dim=-1).detach()
    return probs.view(GLOBAL_CROPS, -1, probs.shape[-1])  # (2, B, K), crop-major


def cross_view_loss(student_output: torch.Tensor, targets: torch.Tensor, student_temp: float) -> torch.Tensor:
    """Mean over (teacher crop i, student crop v != i) of the batch-mean cross-entropy."""
    n_global, batch, k = targets.shape
    log_p = F.log_softmax(student_output / student_temp, dim=-1).view(-1, batch, k)  # (ncrops, B, K)
    # ce[i, v] = mean_b sum_k -q[i, b, k] log p[v, b, k]; one contraction, never a (2, ncrops, B, K) tensor
    ce = -torch.einsum("ibk,vbk->iv", targets, log_p) / batch  # (2, ncrops)
    # the student's first crops are the teacher's global crops: crop i is never its own target
    other_view = ~torch.eye(n_global, log_p.shape[0], dtype=torch.bool, device=ce.device)
    return ce[other_view].sum() / other_view.sum()


def target_entropy(targets: torch.Tensor) -> torch.Tensor:
    """Mean over crops and images of the targets' entropy ``h(P_t) = -sum_k P_t log P_t``.

    The loss is ``h(P_t) + KL(P_t || P_s)`` averaged over the same pairs (every teacher crop is
    paired with ncrops - 1 student crops), so ``loss - h`` is the mean KL: the paper's Fig. 7
    tells collapse apart this way (uniform collapse: h = ln K and KL = 0; one dimension
    dominating: h = 0)."""
    return -torch.special.xlogy(targets, targets).sum(-1).mean()


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher_output: torch.Tensor, momentum: float) -> torch.Tensor:
    """``m * c + (1 - m) * mean(g_t)``, the mean over the batch of every process."""
    batch_center = torch.sum(teacher_output, dim=0, keepdim=True)  # (1, K)
    count = len(teacher_output)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(batch_center)
        count *= dist.get_world_size()
    return center * momentum + (batch_center / count) * (1 - momentum)


class DINOLoss(nn.Module):
    """The loss with its state: the centre (a buffer, so checkpoints and resume keep it)."""

    center: torch.Tensor

    def __init__(self, config: DINOLossConfig) -> None:
        super().__init__()
        config.check()
        self.config = c = config
        # one per epoch; kept off the state dict: the config rebuilds it
        self.temperatures = teacher_temperatures(
            c.warmup_teacher_temp, c.teacher_temp, c.warmup_teacher_temp_epochs, c.epochs
        )
        self.register_buffer("center", torch.zeros(1, config.out_dim))

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        """The loss for this batch; updates the centre afterwards (call once per training step)."""
        self._check(student_output, teacher_output, epoch)
        c = self.config
        targets = teacher_targets(teacher_output, self.center, self.temperatures[epoch])
        loss = cross_view_loss(student_output, targets, c.student_temp)
        self.center = updated_center(self.center, teacher_output.detach(), c.center_momentum)
        return loss

    def terms(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> Terms:
        """``dino``: the loss as a named term (weight 1), for a task that sums terms."""
        return {"dino": self(student_output, teacher_output, epoch)}

    def _check(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> None:
        c = self.config
        if (
            teacher_output.dim() != 2
            or teacher_output.shape[1] != c.out_dim
            or len(teacher_output) % GLOBAL_CROPS
        ):
            raise InputError(
                f"teacher output must be ({GLOBAL_CROPS} * B, {c.out_dim}), crop-major, "
                f"got {tuple(teacher_output.shape)}"
            )
        batch = len(teacher_output) // GLOBAL_CROPS
        if student_output.shape != (c.ncrops * batch, c.out_dim):
            raise InputError(
                f"student output must be (ncrops * B, K) = ({c.ncrops * batch}, {c.out_dim}) for a teacher "
                f"batch of {batch}, got {tuple(student_output.shape)}"
            )
        if not 0 <= epoch < len(self.temperatures):
            raise InputError(
                f"epoch must be in [0, {len(self.temperatures)}) (the teacher temperature schedule), "
                f"got {epoch}"
            )


def cancel_last_layer_gradients(head_last_layer: nn.Module, epoch: int, freeze_last_layer: int) -> None:
    """Drop the last layer's gradients during the first ``freeze_last_layer`` epochs (official default 1),
    which the paper's code does to keep the prototypes from moving before the rest settles."""
    if epoch >= freeze_last_layer:
        return
    for p in head_last_layer.parameters():
        p.grad = None


@torch.no_grad()
def clip_gradients(model: nn.Module, clip: float) -> list[float]:
    """DINO's clipping (official ``utils.clip_gradients``, ``clip_grad`` 3.0): each parameter's
    gradient on its own is scaled down to norm ``clip`` (``clip / (norm + 1e-6)``), unlike
    ``torch.nn.utils.clip_grad_norm_``, which scales all of them by their joint norm.
    Returns the norms before clipping, for logging."""
    if clip <= 0:
        raise ConfigError(f"clip must be > 0, got {clip}")
    norms = []
    for p in model.parameters():
        if p.grad is None:
            continue
        norm = float(p.grad.norm(2))
        norms.append(norm)
        scale = clip / (norm + 1e-6)
        if scale < 1:
            p.grad.mul_(scale)
    return norms
