"""The object-centric task sums the objective's weighted terms, and weights them nowhere else."""

import pytest
import torch

from attnlab.errors import ConfigError
from attnlab.metrics.segmentation import fg_ari, hungarian_miou
from attnlab.models import create_model
from attnlab.models.object_centric.motion import slot_motion_spread
from attnlab.models.object_centric.spread import slot_compactness, slot_spread
from attnlab.objectives.object_centric import monet_losses, vimon_losses
from attnlab.objectives.sfa import sfa_losses
from attnlab.runs.config import OptimConfig
from attnlab.train.object_centric import ObjectCentricTask
from tests.models.object_centric import SMALL_SLOT_VAE

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = SMALL_SLOT_VAE | dict(
    use_mean=True,  # deterministic: two tasks see the same forward
)


def task(name: str, **weights: float | str) -> ObjectCentricTask:
    torch.manual_seed(0)
    extra = {"gru_dim": 8} if name == "vimon" else {}
    return ObjectCentricTask(model=create_model(name, **TINY, **extra), optim=OptimConfig(), **weights)


@pytest.mark.parametrize("name", ["vimon", "monet"])
def test_doubling_beta_doubles_exactly_the_kl_term_the_task_sums(name):
    batch = {"video": torch.rand(2, 4, 3, 16, 16)}
    one, two = task(name, beta=0.3, gamma=0.7), task(name, beta=0.6, gamma=0.7)
    with torch.no_grad():
        a, b = one.loss_terms(batch), two.loss_terms(batch)
    assert a.keys() == b.keys() and "kl" in a
    assert torch.equal(b["kl"], 2 * a["kl"])
    for key in a.keys() - {"kl"}:
        assert torch.equal(a[key], b[key]), key
    # and gamma scales exactly the mask term
    three = task(name, beta=0.3, gamma=1.4)
    with torch.no_grad():
        c = three.loss_terms(batch)
    assert torch.equal(c["mask"], 2 * a["mask"]) and torch.equal(c["kl"], a["kl"])


def test_the_task_sums_what_the_objective_weights():
    """The loss the task trains on is recon + pred + beta * KL + gamma * (mask terms), computed by hand."""
    batch = {"video": torch.rand(2, 4, 3, 16, 16)}
    t = task("vimon", beta=0.3, gamma=0.7)
    with torch.no_grad():
        terms = t.loss_terms(batch)
        raw = vimon_losses(t.model(batch["video"][:, :-1]), batch["video"], beta=0.3, gamma=0.7)
    expected = raw.recon + raw.pred + 0.3 * raw.kl + 0.7 * (raw.curr_mask + raw.next_mask)
    torch.testing.assert_close(torch.stack(list(terms.values())).sum(), expected, rtol=1e-6, atol=0)
    torch.testing.assert_close(raw.total(), expected, rtol=1e-6, atol=0)


def test_defaults_come_from_the_objective():
    assert (task("vimon").beta, task("vimon").gamma) == (1.0, 2.0)
    assert (task("monet").beta, task("monet").gamma) == (0.5, 0.5)
    assert task("vimon").objective.drop_last and not task("monet").objective.drop_last


def test_gamma_for_a_loss_without_a_mask_term_and_a_foreign_model_are_config_errors():
    sfa = dict(num_slots=3, latent_dim=4, image_size=16, dim=16, num_heads=2, encoder_channels=(4, 8))
    with pytest.raises(ConfigError, match=r"task\.gamma: the sfa loss has no mask term"):
        ObjectCentricTask(
            model=create_model("sfa", **sfa, encoder_strides=(2, 2)), optim=OptimConfig(), gamma=1.0
        )
    with pytest.raises(ConfigError, match="trains object-centric models"):
        ObjectCentricTask(model=torch.nn.Linear(2, 2), optim=OptimConfig())


def test_the_likelihood_floor_and_the_image_likelihood_reach_the_loss():
    batch = {"video": torch.rand(2, 4, 3, 16, 16)}
    sfa = dict(num_slots=3, latent_dim=4, image_size=16, dim=16, num_heads=2, encoder_channels=(4, 8))
    model = create_model("sfa", **sfa, encoder_strides=(2, 2), use_mean=True)
    with torch.no_grad():
        out = model(batch["video"][:, :-1])
        for floor, likelihood in ((0.0, "mixture"), (1e-5, "image"), (0.0, "pixel_mixture")):
            t = ObjectCentricTask(
                model=model, optim=OptimConfig(), min_likelihood=floor, likelihood=likelihood
            )
            raw = sfa_losses(out, batch["video"], min_likelihood=floor, likelihood=likelihood)
            torch.testing.assert_close(t.loss_terms(batch)["recon"], raw.recon)
    for name, losses in (("vimon", vimon_losses), ("monet", monet_losses)):
        t = task(name, likelihood="image").eval()  # eval: the latent is the mean, as in the raw call
        video = batch["video"][:, :-1] if name == "vimon" else batch["video"]
        with torch.no_grad():
            raw = losses(t.model(video), batch["video"], likelihood="image")
            torch.testing.assert_close(t.loss_terms(batch)["recon"], raw.recon)
    with pytest.raises(ConfigError, match="min_likelihood must be >= 0"):
        task("vimon", min_likelihood=-1.0)


def test_pred_weight_scales_exactly_the_prediction_term():
    batch = {"video": torch.rand(2, 4, 3, 16, 16)}
    one, scaled = task("vimon"), task("vimon", pred_weight=0.25)
    with torch.no_grad():
        a, b = one.loss_terms(batch), scaled.loss_terms(batch)
    torch.testing.assert_close(b["pred"], 0.25 * a["pred"])
    for key in a.keys() - {"pred"}:
        assert torch.equal(a[key], b[key]), key
    with pytest.raises(ConfigError, match="pred_weight must be >= 0"):
        task("vimon", pred_weight=-1.0)
    with pytest.raises(ConfigError, match="monet loss has no prediction term"):
        task("monet", pred_weight=0.0)


def test_image_warmup_trains_with_the_image_likelihood_first_and_evaluates_with_the_other():
    batch = {"video": torch.rand(2, 4, 3, 16, 16)}
    t = task("vimon", likelihood="pixel_mixture", min_likelihood=0.0, image_warmup_steps=3)
    video = batch["video"]
    with torch.no_grad():
        out = t.model(video[:, :-1])
        image = vimon_losses(out, video, likelihood="image")
        pixel = vimon_losses(out, video, likelihood="pixel_mixture", min_likelihood=0.0)
        t.train()  # global_step 0 (no trainer) < 3: warming up
        torch.testing.assert_close(t.loss_terms(batch)["recon"], image.recon)
        t.eval()
        torch.testing.assert_close(t.loss_terms(batch)["recon"], pixel.recon)
    assert task("vimon", image_warmup_steps=0).image_warmup_steps == 0
    with pytest.raises(ConfigError, match="image_warmup_steps must be >= 0"):
        task("vimon", image_warmup_steps=-1)


def test_the_chromaticity_target_is_what_the_likelihood_scores():
    batch = {"video": torch.rand(2, 4, 3, 16, 16) * 0.9 + 0.1}
    rgb, chroma = task("vimon"), task("vimon", target="chromaticity")
    video = batch["video"]
    by_hand = video / video.sum(dim=2, keepdim=True)  # rgb / (r + g + b) per pixel, frame by frame
    with torch.no_grad():
        out = chroma.model(video[:, :-1])
        expected = vimon_losses(out, by_hand, beta=chroma.beta, gamma=chroma.gamma)
        got = chroma.loss_terms(batch)
        torch.testing.assert_close(got["recon"], expected.recon, rtol=1e-2, atol=0)  # eps 1e-3 apart
        assert not torch.allclose(got["recon"], rgb.loss_terms(batch)["recon"])
    with pytest.raises(ConfigError, match=r"task\.target must be 'rgb' or 'chromaticity'"):
        task("vimon", target="lab")


def one_pixel_moving() -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (2, 4, 2, 16, 16) of a one-pixel object moving one column a frame, and its motion by
    hand (2, 4, 2, 16, 16): (0, 1/15) in [0, 1] units on its pixel from the second frame."""
    masks = torch.zeros(2, 4, 2, 16, 16)  # (B, T, 1 + K, H, W)
    for t in range(4):
        masks[:, t, 1, 5, 3 + t] = 1
    masks[:, :, 0] = 1 - masks[:, :, 1]
    by_hand = torch.zeros(2, 4, 2, 16, 16)
    for t in range(1, 4):  # the first frame has no past: 0
        by_hand[:, t, 1, 5, 3 + t] = 1 / 15
    return masks, by_hand


def test_the_motion_target_is_scored_beside_the_colour():
    video = torch.rand(2, 4, 3, 16, 16)
    masks, by_hand = one_pixel_moving()
    sfa = dict(num_slots=3, latent_dim=4, image_size=16, dim=16, num_heads=2, encoder_channels=(4, 8))
    model = create_model("sfa", **sfa, encoder_strides=(2, 2), use_mean=True, motion_channels=2)
    batch = {"video": video, "masks": masks}
    for weight in (2.0, 8.0):
        t = ObjectCentricTask(model=model, optim=OptimConfig(), motion_weight=weight)
        with torch.no_grad():
            raw = sfa_losses(model(video[:, :-1]), torch.cat([video, weight * by_hand], dim=2))
            torch.testing.assert_close(t.loss_terms(batch)["recon"], raw.recon)
    with pytest.raises(ConfigError, match="go together"):
        ObjectCentricTask(model=model, optim=OptimConfig())  # paints motion, nothing scores it
    with pytest.raises(ConfigError, match="go together"):
        task("vimon", motion_weight=1.0)
    with pytest.raises(ConfigError, match="motion_weight must be finite and >= 0"):
        ObjectCentricTask(model=model, optim=OptimConfig(), motion_weight=-1.0)
    with pytest.raises(ConfigError, match="go together"):  # the slots fit it: nothing would score the paint
        ObjectCentricTask(model=model, optim=OptimConfig(), motion_weight=1.0, motion_fit="slots")


def test_the_appearance_is_scored_beside_the_chromaticity_and_before_the_motion():
    video = torch.rand(2, 4, 3, 16, 16)
    masks, by_hand = one_pixel_moving()
    sfa = dict(num_slots=3, latent_dim=4, image_size=16, dim=16, num_heads=2, encoder_channels=(4, 8))
    batch = {"video": video, "masks": masks}
    paints = create_model("sfa", **sfa, encoder_strides=(2, 2), use_mean=True, appearance_channels=3)
    chroma = (video + 1e-3 / 3) / (video.sum(dim=2, keepdim=True) + 1e-3)  # rgb / (r + g + b), eps 1e-3
    for weight in (0.1, 0.5):
        t = ObjectCentricTask(
            model=paints, optim=OptimConfig(), target="chromaticity", appearance_weight=weight
        )
        target = t.reconstruction_target(batch)  # (B, T, 6, H, W): chromaticity, then weight * RGB
        torch.testing.assert_close(target[:, :, :3], chroma)
        torch.testing.assert_close(target[:, :, 3:], weight * video)
        with torch.no_grad():
            raw = sfa_losses(paints(video[:, :-1]), target)
            torch.testing.assert_close(t.loss_terms(batch)["recon"], raw.recon)
    both = create_model(
        "sfa", **sfa, encoder_strides=(2, 2), use_mean=True, appearance_channels=3, motion_channels=2
    )
    t = ObjectCentricTask(
        model=both, optim=OptimConfig(), target="chromaticity", appearance_weight=0.5, motion_weight=2.0
    )
    target = t.reconstruction_target(batch)
    assert target.shape == (2, 4, 8, 16, 16)
    torch.testing.assert_close(target[:, :, 6:], 2.0 * by_hand)  # the motion comes last
    with pytest.raises(ConfigError, match="go together"):  # paints the RGB, nothing scores it
        ObjectCentricTask(model=paints, optim=OptimConfig(), target="chromaticity")
    with pytest.raises(ConfigError, match="go together"):  # the RGB target already holds the shading
        ObjectCentricTask(model=paints, optim=OptimConfig(), appearance_weight=0.5)
    with pytest.raises(ConfigError, match="go together"):
        task("vimon", target="chromaticity", appearance_weight=0.5)
    with pytest.raises(ConfigError, match="appearance_weight must be finite and >= 0"):
        ObjectCentricTask(model=paints, optim=OptimConfig(), target="chromaticity", appearance_weight=-1.0)


def test_the_slots_motion_fit_is_a_term_of_its_own():
    """With ``motion_fit="slots"`` the colour terms are those without motion, and the motion term is
    the spread of the weighted motion around each slot's fit over the trained frames, / (2 sigma^2)."""
    video = torch.rand(2, 4, 3, 16, 16)
    masks, by_hand = one_pixel_moving()
    batch = {"video": video, "masks": masks}
    plain = task("vimon")
    with torch.no_grad():
        out = plain.model(video[:, :-1])
        without = plain.loss_terms(batch)
        for weight in (2.0, 8.0):
            fitted = task("vimon", motion_weight=weight, motion_fit="slots", sigmas=(0.05, 0.2))
            got = fitted.loss_terms(batch)
            assert got.keys() == without.keys() | {"motion"}
            torch.testing.assert_close(got["recon"], vimon_losses(out, video, sigmas=(0.05, 0.2)).recon)
            want = slot_motion_spread(out.masks, weight * by_hand[:, :3]).mean() / (2 * 0.2**2)
            torch.testing.assert_close(got["motion"], want)
            assert got["motion"] > 0  # the model's soft masks share the moving pixel with still ones
    with pytest.raises(ConfigError, match=r"task\.motion_fit must be 'decoder' or 'slots'"):
        task("vimon", motion_weight=1.0, motion_fit="pixels")


def test_the_compactness_is_a_term_of_its_own():
    """``compact_weight`` adds the spread of every slot but the background around its centre, times
    the weight, / (2 sigma^2), over the trained frames, and changes no other term."""
    video = torch.rand(2, 4, 3, 16, 16)
    batch = {"video": video}
    plain = task("vimon", sigmas=(0.05, 0.2))
    with torch.no_grad():
        out = plain.model(video[:, :-1])
        without = plain.loss_terms(batch)
        for weight in (0.5, 3.0):
            got = task("vimon", compact_weight=weight, sigmas=(0.05, 0.2)).loss_terms(batch)
            assert got.keys() == without.keys() | {"compact"}
            for key in without:
                torch.testing.assert_close(got[key], without[key])
            want = weight * slot_compactness(out.masks).mean() / (2 * 0.2**2)
            torch.testing.assert_close(got["compact"], want)
            assert got["compact"] > 0
        everyone = task("vimon", compact_weight=2.0, compact_background=True, sigmas=(0.05, 0.2))
        want = 2.0 * slot_compactness(out.masks, free_background=False).mean() / (2 * 0.2**2)
        torch.testing.assert_close(everyone.loss_terms(batch)["compact"], want)
        assert want > 2.0 * slot_compactness(out.masks).mean() / (2 * 0.2**2)  # the background's counted
    with pytest.raises(ConfigError, match=r"task\.compact_weight must be finite and >= 0"):
        task("vimon", compact_weight=-1.0)
    with pytest.raises(ConfigError, match=r"task\.compact_background true needs task\.compact_weight > 0"):
        task("vimon", compact_background=True)


@pytest.mark.parametrize("target", ["rgb", "chromaticity"])
def test_the_colour_fit_is_the_spread_of_the_scored_colour_around_each_slots_mean(target):
    """``colour_fit_weight`` adds the spread of the colour the likelihood scores (the frames or their
    chromaticity) around each slot's mean colour, over the trained frames, times the weight, /
    (2 sigma^2), and changes no other term."""
    video = torch.rand(2, 4, 3, 16, 16)
    batch = {"video": video}
    plain = task("vimon", sigmas=(0.05, 0.2), target=target)
    colour = plain.reconstruction_target(batch)[:, :3]  # the trained frames
    with torch.no_grad():
        out = plain.model(video[:, :-1])
        without = plain.loss_terms(batch)
        got = task("vimon", colour_fit_weight=3.0, sigmas=(0.05, 0.2), target=target).loss_terms(batch)
    assert got.keys() == without.keys() | {"colour_fit"}
    for key in without:
        torch.testing.assert_close(got[key], without[key])
    want = 3.0 * slot_spread(out.masks, colour).sum(dim=2).mean() / (2 * 0.2**2)
    torch.testing.assert_close(got["colour_fit"], want)
    with pytest.raises(ConfigError, match=r"task\.colour_fit_weight must be finite and >= 0"):
        task("vimon", colour_fit_weight=float("nan"))


def test_the_metrics_match_the_masks_by_fg_ari_and_by_matched_iou():
    """The evaluation scores the model's masks of every frame against the segmentation by FG-ARI,
    which ignores the background's pixels, and by the Hungarian-matched IoU, which counts them."""
    video = torch.rand(2, 4, 3, 16, 16)
    segmentation = torch.zeros(2, 4, 16, 16, dtype=torch.int64)
    segmentation[:, :, 2:7, 3:9] = 1
    segmentation[:, :, 9:14, 8:15] = 2
    t = task("vimon")

    class NotTesting:
        testing = False

    t._trainer = NotTesting()  # type: ignore[assignment]
    with torch.no_grad():
        values = t.metrics({"video": video, "segmentation": segmentation})
        masks = t.model(video).masks[:, :, :, 0]  # (B, T, K, H, W)
    torch.testing.assert_close(values["fg_ari"], fg_ari(masks, segmentation).mean().float())
    torch.testing.assert_close(values["miou"], hungarian_miou(masks, segmentation).mean().float())
    assert 0 < values["miou"] < 1
