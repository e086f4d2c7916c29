"""Viewers of generative models: image GANs with k generators (DCGAN, MAD-GAN, the collaborative
GAN's knowledge transfer graph), StarGAN v2 translating target digits into the source domain, and
the GAN on 2-D points (the ring of Gaussians): its points over the real ones, on D's P(real)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, cast

import torch
from matplotlib.figure import Figure

from attnlab.data.datamodule import DataModule
from attnlab.data.points import PointSets, RingPointsData
from attnlab.explorer.pictures import figure_url, png_url, unit
from attnlab.explorer.viewers.base import MAX_EXAMPLES, LoadedRun, NotViewable, input_picture
from attnlab.metrics.mixture import mixture_quality
from attnlab.models.gan.madgan import MultiGAN
from attnlab.train.gan import GANTask
from attnlab.train.gan_data import to_gan_images
from attnlab.train.gan_images import GANImagesTask
from attnlab.train.stargan2 import StarGAN2Task

# Example i's latent code is row i of MAX_EXAMPLES codes drawn with this seed by the model's own
# sample_noise: the report's sample grid draws its codes the same way, so its column i is example i.
CODE_SEED = 0
# StarGAN v2: style codes per image and their seed; `attnlab tta` draws its latents with its --seed
# (0 by default) the same way, so these are its first TRANSLATIONS translations of each image.
TRANSLATIONS, STYLE_SEED = 4, 0
SOURCE, TARGET = 0, 1  # the digit domains
GAN_RANGE = (-1.0, 1.0)  # generated and real images, drawn on this scale rather than stretched


# -- image GANs ------------------------------------------------------------------------------------
def gan_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """MAX_EXAMPLES latent codes (``code``: the row of the seeded draw) and, beside each, the test
    image of the same index for the discriminator (``input`` and ``label``, where there is one)."""
    test = data.dataset("test")
    count = len(test)  # type: ignore[arg-type]
    examples = []
    for i in range(MAX_EXAMPLES):
        real: dict[str, torch.Tensor] = test[i] if i < count else {}  # type: ignore[assignment]
        examples.append({"code": torch.tensor(i)} | {k: real[k] for k in ("input", "label") if k in real})
    return examples


def latent_codes(model: MultiGAN) -> torch.Tensor:
    """The examples' codes, (MAX_EXAMPLES, latent_dim): the same on every call."""
    return model.sample_noise(MAX_EXAMPLES, torch.Generator().manual_seed(CODE_SEED))


def _classes(k: int) -> list[str]:
    """The discriminator's k + 1 outputs: which generator made the image, or real (the last)."""
    return [f"G{i}" for i in range(k)] + ["real"]


def _scores(name: str, probs: torch.Tensor) -> tuple[dict[str, Any], str]:
    """One picture's (k + 1,) softmax as a prediction (DCGAN: P(real); else the likeliest output)
    and a note listing every output."""
    classes = _classes(len(probs) - 1)
    if len(probs) == 2:
        best = {"label": f"{name}: real", "p": round(float(probs[1]), 4)}
    else:
        i = int(probs.argmax())
        best = {"label": f"{name}: {classes[i]}", "p": round(float(probs[i]), 4)}
    listed = " · ".join(f"{c} {float(p):.3f}" for c, p in zip(classes, probs, strict=True))
    return best, f"D's softmax on {name}: {listed}"


def view_gan_images(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    """Every generator's sample for example i's latent code, the discriminator's softmax on each
    (and on a real test image), and the attention maps the knowledge transfer graph compares:
    Q = mean over channels of F^2 at each tapped generator layer, one head per generator."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; a GAN is shown by its samples and D's softmax")
    task = loaded.task
    assert isinstance(task, GANImagesTask)
    model = task.model
    assert isinstance(model, MultiGAN)
    if "code" not in example:
        return _view_picture(task, model, example["input"])
    z = latent_codes(model)[int(example["code"])][None]  # (1, latent_dim)
    with torch.no_grad():
        out = model(z)
    k = task.k
    samples = out.images[0]  # (k, C, H, W) in [-1, 1]
    scored = [_scores(f"G{i}'s sample", p) for i, p in enumerate(out.logits[0].softmax(-1))]
    pictures = [{"png": png_url(samples[i], GAN_RANGE), "caption": f"G{i}'s sample"} for i in range(k)]
    if "input" in example:
        real = to_gan_images(example["input"][None], task.size)  # (1, C, S, S)
        with torch.no_grad():
            scored.append(_scores("the test image", model.discriminator(real)[0].softmax(-1)))
        pictures.append(
            {"png": png_url(real[0], GAN_RANGE), "caption": f"a real test image ({loaded.target(example)})"}
        )
    maps = [
        {
            "name": f"{tap}: Q = mean over channels of F^2 (head = generator)",
            "shape": list(f.shape[-2:]),
            "heads": [unit(q) for q in f[0].square().mean(1)],  # (k, C', h, w) -> (k, h, w)
        }
        for tap, f in out.features.items()
    ]
    notes = [line for _, line in scored]
    notes.append(
        f"z: code {int(example['code'])} of {MAX_EXAMPLES} drawn with seed {CODE_SEED} "
        "(the report's sample grid shows the first codes)"
    )
    if maps:
        notes.append("maps: each generator's Q at the tapped layer (pick the head), drawn over G0's sample")
    elif k > 1:
        notes.append("no generator layers tapped (model.taps): no attention maps to transfer")
    return {
        "input": input_picture(samples[0], GAN_RANGE),
        "pictures": pictures,
        "prediction": [best for best, _ in scored],
        "target": None,
        "maps": maps,
        "notes": notes,
        "methods": [],
    }


def _view_picture(task: GANImagesTask, model: MultiGAN, x: torch.Tensor) -> dict[str, Any]:
    """An uploaded picture, made a test image: what the discriminator says of it."""
    real = to_gan_images(x[None], task.size)  # (1, C, S, S)
    with torch.no_grad():
        best, line = _scores("your picture", model.discriminator(real)[0].softmax(-1))
    return {
        "input": input_picture(real[0], GAN_RANGE),
        "prediction": [best],
        "target": None,
        "maps": [],
        "notes": [line],
        "methods": [],
    }


# -- StarGAN v2 ------------------------------------------------------------------------------------
def target_domain_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """The first target-domain (domain 1) test images with their digits: what `attnlab tta`
    translates into the source domain."""
    test = data.dataset("test")
    examples: list[dict[str, torch.Tensor]] = []
    for i in range(len(test)):  # type: ignore[arg-type]
        item = test[i]
        if int(item["domains"]) == TARGET:  # type: ignore[index]
            examples.append({"input": item["images"], "label": item["labels"]})  # type: ignore[index]
            if len(examples) == MAX_EXAMPLES:
                break
    return examples


def style_latents(latent_dim: int) -> torch.Tensor:
    """The TRANSLATIONS latents z_n, (TRANSLATIONS, latent_dim): the same for every image."""
    return torch.randn(TRANSLATIONS, latent_dim, generator=torch.Generator().manual_seed(STYLE_SEED))


def view_stargan2(loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None) -> dict[str, Any]:
    """A target-domain image and its translations into the source domain by the EMA networks,
    G(x, F(z_n, source)) for TRANSLATIONS seeded latents; with the class-aware head C, C's class of
    each translation and its softmax averaged over them (the thesis's Eq. 3 with C as the classifier)."""
    if method is not None:
        raise NotViewable("CAM methods explain class scores; StarGAN v2 is shown by its translations")
    task = loaded.task
    assert isinstance(task, StarGAN2Task)
    model = task.stargan
    x = example["input"][None]  # (1, 3, S, S) in [-1, 1]
    z = style_latents(model.config.latent_dim)
    source = torch.full((TRANSLATIONS,), SOURCE, dtype=torch.int64)
    with torch.no_grad():
        fakes = model.translate(x.expand(TRANSLATIONS, -1, -1, -1), source, z)  # (N, 3, S, S)
    pictures = [
        {"png": png_url(fake, GAN_RANGE), "caption": f"into the source domain, latent {n}"}
        for n, fake in enumerate(fakes)
    ]
    prediction: list[dict[str, Any]] = []
    notes = [f"latents: {TRANSLATIONS} drawn with seed {STYLE_SEED}, as `attnlab tta` draws its first"]
    if model.classifier is None:
        notes.append(
            "no class head (a plain StarGAN v2): `attnlab tta` classifies these with a source classifier run"
        )
    else:
        with torch.no_grad():  # C reads the trained generator's encoder: the one it learnt with
            probs = model.classify(torch.cat([fakes, x])).softmax(-1)  # (N + 1, classes)
        mean = probs[:-1].mean(0)
        prediction.append(_class_of("C, mean of the translations", loaded, mean))
        prediction += [_class_of(f"latent {n}", loaded, p) for n, p in enumerate(probs[:-1])]
        top = mean.topk(min(3, len(mean)))
        notes.append(
            "C's softmax averaged over the translations: "
            + " · ".join(
                f"{loaded.name(i)} {float(p):.3f}" for p, i in zip(top.values, top.indices, strict=True)
            )
        )
        untranslated = _class_of("C on the untranslated image", loaded, probs[-1])
        notes.append(f"{untranslated['label']} ({untranslated['p']:.3f})")
    return {
        "input": input_picture(x[0], GAN_RANGE),
        "pictures": pictures,
        "prediction": prediction,
        "target": loaded.target(example),
        "maps": [],
        "notes": notes,
        "methods": [],
    }


def _class_of(name: str, loaded: LoadedRun, probs: torch.Tensor) -> dict[str, Any]:
    i = int(probs.argmax())
    return {"label": f"{name}: {loaded.name(i)}", "p": round(float(probs[i]), 4)}


# -- the GAN on 2-D points -------------------------------------------------------------------------
POINT_CODES = 512  # latent codes per example: example i draws them with seed i
GRID = 160  # D's heat background: its P(real) at GRID x GRID points of the plane
MARGIN = 0.08  # of the points' span, left around them
GENERATOR_COLOURS = ["tab:orange", "lime", "magenta", "cyan", "gold", "tab:purple"]


class PointsGAN(Protocol):
    """What the points GAN task asks of its model (:class:`attnlab.train.gan.GANTask`)."""

    generator: Callable[[torch.Tensor], Any]  # (B, latent) -> .points (B, 2), or (B, k, 2) with k generators
    discriminator: Callable[[torch.Tensor], Any]  # (N, 2) -> .logits (N,), or (N, k + 1): last is real

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor: ...


def point_examples(data: DataModule) -> list[dict[str, torch.Tensor]]:
    """MAX_EXAMPLES examples: ``code`` i, the seed of its latent codes, and ``real``, every point of
    the test split (N, 2), the same tensor in each (the picture's background and D's real side)."""
    sets: list[torch.Tensor] = []
    for batch in data.test_dataloader():
        if not isinstance(batch, PointSets):
            raise NotViewable(f"the points GAN viewer reads point sets; {type(data).__name__} gives others")
        sets.append(batch.points())
    real = torch.cat(sets)  # (N, 2)
    return [{"code": torch.tensor(i), "real": real} for i in range(MAX_EXAMPLES)]


def view_gan_points(
    loaded: LoadedRun, example: dict[str, torch.Tensor], method: str | None
) -> dict[str, Any]:
    """The generator's points for example i's POINT_CODES codes (seed i), one colour per generator,
    over the test split's real points, on the discriminator's P(real) over the plane; D's mean
    P(real) on each generator's points and on the real ones; the report's mixture quality of both."""
    if method is not None:
        raise NotViewable(
            "CAM methods explain class scores; a points GAN is shown by its points and D's P(real)"
        )
    task = loaded.task
    assert isinstance(task, GANTask)
    model = cast(PointsGAN, task.model)  # the task checked its generator and discriminator
    seed, real = int(example["code"]), example["real"]
    z = model.sample_noise(POINT_CODES, torch.Generator().manual_seed(seed))  # (POINT_CODES, latent)
    with torch.no_grad():
        fake = _per_generator(model.generator(z).points)  # (k, POINT_CODES, 2)
        names = ["generated"] if len(fake) == 1 else [f"G{g}" for g in range(len(fake))]
        clouds = dict(zip(names, fake, strict=True))
        p_real = {name: _p_real(model.discriminator(points).logits) for name, points in clouds.items()}
        p_real["real"] = _p_real(model.discriminator(real).logits)  # (N,)
        x, y, heat = _d_on_plane(model, torch.cat([real, *fake]))
    caption = (
        f"{', '.join(names)}: {POINT_CODES} points from the codes of seed {seed} (coloured) over the "
        f"{len(real)} real test points (black), on D's P(real)"
    )
    span = [[round(float(axis[0]), 4), round(float(axis[-1]), 4)] for axis in (x, y)]
    notes = [
        f"z: {POINT_CODES} codes drawn by the model's sample_noise with seed {seed} (example i: seed i)",
        _picture_note(len(fake), len(real), span),
        *_quality_notes(loaded.data, task.coverage, clouds | {"real": real}),
    ]
    return {
        "input": {"kind": "points2d", "png": _scatter(real, clouds, heat, x, y), "caption": caption},
        "prediction": [
            {"label": f"D's mean P(real) on the {name} points", "p": round(float(p.mean()), 4)}
            for name, p in p_real.items()
        ],
        "target": None,
        "maps": [],
        "notes": notes,
        "methods": [],
        # for API readers: the heat background's extent and the points drawn, per generator
        "plane": {"x": span[0], "y": span[1], "grid": GRID},
        "generated": {
            name: [[round(a, 4), round(b, 4)] for a, b in p.tolist()] for name, p in clouds.items()
        },
    }


def _d_on_plane(model: PointsGAN, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The grid's x and y (GRID,) over the points (:func:`_plane`) and D's P(real) on it, (GRID, GRID)
    with rows along y (the picture's background)."""
    x, y = _plane(points)
    grid = torch.stack(torch.meshgrid(x, y, indexing="xy"), -1)  # (GRID, GRID, 2): row = y, column = x
    return x, y, _p_real(model.discriminator(grid.flatten(0, 1)).logits).view(GRID, GRID)


def _picture_note(k: int, real: int, span: list[list[float]]) -> str:
    generated = (
        "the generated points (orange)" if k == 1 else f"each of the {k} generators' points in its colour"
    )
    (x0, x1), (y0, y1) = span
    return (
        f"picture: {generated} over the test split's {real} real points (black); background: D's P(real) "
        f"(blue: generated, red: real) on a {GRID} x {GRID} grid, x in [{x0:.2f}, {x1:.2f}], "
        f"y in [{y0:.2f}, {y1:.2f}]"
    )


def _per_generator(points: torch.Tensor) -> torch.Tensor:
    """Generated points (B, 2), or (B, k, 2) from k generators, as (k, B, 2)."""
    if points.dim() == 2:
        points = points[:, None]  # (B, 1, 2)
    if points.dim() != 3 or points.shape[-1] != 2:
        raise NotViewable(f"the points GAN viewer draws 2-D points; the generator made {tuple(points.shape)}")
    return points.transpose(0, 1)


def _p_real(logits: torch.Tensor) -> torch.Tensor:
    """D's P(real) per point: the sigmoid of its one logit (N,), or the last (real) column of its
    (k + 1)-way softmax (N, k + 1)."""
    return logits.sigmoid() if logits.dim() == 1 else logits.softmax(-1)[:, -1]


def _plane(points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid's x and y coordinates (GRID,) each: a square around every point (so the ring stays
    round), with a MARGIN of its side left on each side."""
    low, high = points.min(0).values, points.max(0).values  # (2,) each
    centre, half = (low + high) / 2, float((high - low).max().clamp_min(1e-3)) * (0.5 + MARGIN)
    return tuple(torch.linspace(float(c) - half, float(c) + half, GRID) for c in centre)  # type: ignore[return-value]


def _scatter(
    real: torch.Tensor, clouds: dict[str, torch.Tensor], heat: torch.Tensor, x: torch.Tensor, y: torch.Tensor
) -> str:
    """The picture: D's P(real) as the background, real points black, each generator's in its colour."""
    figure = Figure(figsize=(5.4, 4.6), dpi=100, layout="constrained")
    ax = figure.subplots()
    extent = (float(x[0]), float(x[-1]), float(y[0]), float(y[-1]))
    image = ax.imshow(heat.numpy(), origin="lower", extent=extent, cmap="coolwarm", vmin=0, vmax=1)
    for g, (name, points) in enumerate(clouds.items()):
        colour = GENERATOR_COLOURS[g % len(GENERATOR_COLOURS)]
        ax.scatter(points[:, 0], points[:, 1], s=4, c=colour, alpha=0.8, label=name)
    # the real points last, on top: a collapsed generator's cloud must not hide the modes it misses
    ax.scatter(real[:, 0], real[:, 1], s=3, c="black", label="real (test split)")
    ax.set(xlim=extent[:2], ylim=extent[2:], aspect="equal")
    ax.legend(loc="upper right", fontsize=7, markerscale=2, framealpha=0.8)
    figure.colorbar(image, ax=ax, shrink=0.8).set_label("D's P(real)")
    return figure_url(figure)


def _quality_notes(data: DataModule, coverage: float, clouds: dict[str, torch.Tensor]) -> list[str]:
    """The report's measures of each cloud: the share within 3 std of a mode, the modes covered."""
    if not isinstance(data, RingPointsData):
        return []
    lines = []
    for name, points in clouds.items():
        quality = mixture_quality(points, data.centers, data.std, coverage)
        lines.append(
            f"{name}: {100 * float(quality['high_quality']):.1f}% of points within 3 std of a mode, "
            f"{int(quality['modes'])} of {data.num_modes} modes covered"
        )
    return lines
