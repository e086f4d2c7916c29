"""The domain classifier behind the GAN image scores: trained once per setting and cached.

The recipe's first stage: before a GAN trains, :func:`domain_scorer` loads
``<cache>/gan-domain-classifier-[<domain>-]<size>px-<steps>steps-seed<seed>.safetensors`` (no
domain part for Fashion-MNIST, the first domain) or trains
:class:`~attnlab.models.gan.domain_classifier.DomainClassifier` on the training split (Adam,
batch 128, ``steps`` steps) and writes it atomically there, with the reference its FID-like
compares against: its features of the first ``reference_size`` training images (and their
mean and covariance; a cache written before the features were kept gains them on first use).
Every run with the same domain, size, steps and seed then scores the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader, Dataset

from attnlab.files import atomic_write
from attnlab.metrics.gan_scores import FIDLike, gaussian_stats
from attnlab.models.gan.domain_classifier import DomainClassifier, DomainClassifierConfig
from attnlab.status import say
from attnlab.train.gan_data import gan_domain, to_gan_images


@dataclass
class DomainScorer:
    """The trained classifier (eval mode) and its features of the reference training images."""

    classifier: DomainClassifier
    reference_features: torch.Tensor  # (N, D)
    accuracy: float  # on held-out images

    @property
    def reference(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (D,) and covariance (D, D) of the reference features, float64."""
        return gaussian_stats(self.reference_features)

    def fid_like(self) -> FIDLike:
        return FIDLike(self.reference_features)


def cache_file(cache: Path, size: int, steps: int, seed: int, domain: str = "fashion-mnist") -> Path:
    part = "" if domain == "fashion-mnist" else f"{domain}-"
    return cache / f"gan-domain-classifier-{part}{size}px-{steps}steps-seed{seed}.safetensors"


def domain_scorer(
    train: Dataset, held_out: Dataset, *, cache: Path, size: int, steps: int, seed: int, reference_size: int
) -> DomainScorer:
    first = train[0]["input"][None]  # (1, C, H, W)
    path = cache_file(cache, size, steps, seed, gan_domain(first))
    classifier = DomainClassifier(DomainClassifierConfig(channels=first.shape[1]))
    if path.exists():
        tensors = load_file(path)
        classifier.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        classifier.eval()
        if "ref.features" not in tensors:  # written before the features were kept
            _write(path, classifier, _features(classifier, train, size, reference_size), tensors["accuracy"])
            tensors = load_file(path)
        return DomainScorer(classifier, tensors["ref.features"], float(tensors["accuracy"]))
    say(f"training the domain classifier for IS-like/FID-like ({steps} steps, cached at {path})")
    torch.manual_seed(seed)
    _fit(classifier, train, size, steps, seed)
    classifier.eval()
    features = _features(classifier, train, size, reference_size)
    accuracy = _accuracy(classifier, held_out, size)
    _write(path, classifier, features, torch.tensor(accuracy))
    return DomainScorer(classifier, features, accuracy)


def _write(path: Path, classifier: DomainClassifier, features: torch.Tensor, accuracy: torch.Tensor) -> None:
    mean, cov = gaussian_stats(features)
    tensors = {f"model.{k}": v.contiguous() for k, v in classifier.state_dict().items()}
    tensors |= {"ref.features": features.contiguous(), "ref.mean": mean, "ref.cov": cov, "accuracy": accuracy}
    atomic_write(path, lambda f: f.write(save(tensors)))


def _fit(classifier: DomainClassifier, train: Dataset, size: int, steps: int, seed: int) -> None:
    loader = DataLoader(train, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(seed))
    optimizer = torch.optim.Adam(classifier.parameters(), lr=2e-3)
    classifier.train()
    step = 0
    while step < steps:
        for batch in loader:
            images = to_gan_images(batch["input"], size)
            loss = torch.nn.functional.cross_entropy(classifier(images).logits, batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step >= steps:
                return


@torch.no_grad()
def _features(classifier: DomainClassifier, data: Dataset, size: int, limit: int) -> torch.Tensor:
    loader = DataLoader(data, batch_size=500, shuffle=False)
    features, seen = [], 0
    for batch in loader:
        features.append(classifier(to_gan_images(batch["input"], size)).features)
        seen += len(batch["input"])
        if seen >= limit:
            break
    return torch.cat(features)[:limit]


@torch.no_grad()
def _accuracy(classifier: DomainClassifier, data: Dataset, size: int, limit: int = 2000) -> float:
    loader = DataLoader(data, batch_size=500, shuffle=False)
    right, seen = 0, 0
    for batch in loader:
        logits = classifier(to_gan_images(batch["input"], size)).logits
        right += int((logits.argmax(1) == batch["label"]).sum())
        seen += len(logits)
        if seen >= limit:
            break
    return right / seen
