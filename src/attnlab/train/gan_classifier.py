"""The domain classifier behind the GAN image scores: trained once per setting and cached.

The recipe's first stage: before a GAN trains, :func:`domain_scorer` loads
``<cache>/gan-domain-classifier-<size>px-<steps>steps-seed<seed>.safetensors`` or trains
:class:`~attnlab.models.gan.domain_classifier.DomainClassifier` on the training split (Adam,
batch 128, ``steps`` steps) and writes it atomically there, with the reference statistics
(mean, covariance of its features on ``reference_size`` training images) that FID-like
compares against. Every run with the same size, steps and seed then scores the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save
from torch.utils.data import DataLoader, Dataset

from attnlab.files import atomic_write
from attnlab.metrics.gan_scores import gaussian_stats
from attnlab.models.gan.domain_classifier import DomainClassifier, DomainClassifierConfig
from attnlab.status import say
from attnlab.train.gan_data import to_gan_images


@dataclass
class DomainScorer:
    """The trained classifier (eval mode) and the training images' feature statistics."""

    classifier: DomainClassifier
    reference: tuple[torch.Tensor, torch.Tensor]  # mean (D,), covariance (D, D), float64
    accuracy: float  # on held-out images


def cache_file(cache: Path, size: int, steps: int, seed: int) -> Path:
    return cache / f"gan-domain-classifier-{size}px-{steps}steps-seed{seed}.safetensors"


def domain_scorer(
    train: Dataset, held_out: Dataset, *, cache: Path, size: int, steps: int, seed: int, reference_size: int
) -> DomainScorer:
    path = cache_file(cache, size, steps, seed)
    classifier = DomainClassifier(DomainClassifierConfig())
    if path.exists():
        tensors = load_file(path)
        classifier.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        return DomainScorer(
            classifier.eval(), (tensors["ref.mean"], tensors["ref.cov"]), float(tensors["accuracy"])
        )
    say(f"training the domain classifier for IS-like/FID-like ({steps} steps, cached at {path})")
    torch.manual_seed(seed)
    _fit(classifier, train, size, steps, seed)
    classifier.eval()
    reference = gaussian_stats(_features(classifier, train, size, reference_size))
    accuracy = _accuracy(classifier, held_out, size)
    tensors = {f"model.{k}": v.contiguous() for k, v in classifier.state_dict().items()}
    tensors |= {"ref.mean": reference[0], "ref.cov": reference[1], "accuracy": torch.tensor(accuracy)}
    atomic_write(path, lambda f: f.write(save(tensors)))
    return DomainScorer(classifier, reference, accuracy)


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
