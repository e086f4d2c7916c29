"""The viewers added for SAM, the GANs, StarGAN v2, video QA and the RL agents, and the uploads of
a video and a point cloud, driven in the real headless browser as test_browser.py drives the
others. Screenshots land in build/test-artifacts/explorer/ (look at them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.explorer.conftest import CHROMIUM, SHOTS, serve
from tests.explorer.test_viewers_agents import DQN
from tests.explorer.test_viewers_agents import QUICK as AGENT_QUICK
from tests.explorer.test_viewers_gans import GAN, STARGAN
from tests.explorer.test_viewers_gans import QUICK as GAN_QUICK
from tests.explorer.test_viewers_qa import QUICK as QA_QUICK
from tests.explorer.test_viewers_qa import TINY
from tests.explorer.test_viewers_sam import SMALL

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


@pytest.fixture(scope="module")
def family_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One tiny run of each family (the viewer tests' settings), served."""
    from attnlab.cli import main
    from attnlab.data.fashion_mnist import DEFAULT_ROOT

    if not Path(DEFAULT_ROOT).is_dir():
        pytest.skip(f"{DEFAULT_ROOT} is missing (scripts/setup.sh installs Debian's dataset-fashion-mnist)")
    root = tmp_path_factory.mktemp("families")
    cache = str(tmp_path_factory.mktemp("cache"))
    trained = {
        "sam": ["sam-cells", *SMALL, "--model.img_size", "64"],
        "ktg": ["ktg_gan-fmnist", *GAN_QUICK, *GAN, "--task.classifier_cache", cache],
        "stargan": ["stargan2_class_aware-digits", *GAN_QUICK, *STARGAN],
        "qa": ["aloe-oracle-clevrer_lite", *QA_QUICK, *TINY, "--data.cache_dir", cache],
        "aqt": ["aqt-nav", *AGENT_QUICK, *DQN],
    }
    for name, (recipe, *overrides) in trained.items():
        assert main(["run", recipe, "--run-dir", str(root / name), *overrides]) == 0
    yield from serve(root, token=None)


def test_sam_masks_boxes_and_decoder_attention(family_url: str, page):
    page.goto(family_url + "#/run/sam")
    page.wait_for_selector("ul.notes li:has-text('IoU')")
    names = page.locator(".layer option").all_inner_texts()
    assert "cell 1: predicted mask" in names and any("final" in n for n in names)
    page.select_option(".method", "box error 20%")
    page.wait_for_selector("ul.notes li:has-text('20%')")
    page.locator(".attention").screenshot(path=str(SHOTS / "family_sam.png"))


def test_gan_samples_and_transfer_maps(family_url: str, page):
    page.goto(family_url + "#/run/ktg")
    page.wait_for_selector('figure.extra figcaption:has-text("G2\'s sample")')
    assert page.inner_text(".prediction").startswith("prediction: G0's sample: ")
    page.select_option(".head", "1")
    page.wait_for_selector("figcaption:has-text('head 1')")
    page.locator(".attention").screenshot(path=str(SHOTS / "family_ktg_gan.png"))
    page.goto(family_url + "#/run/stargan")
    page.wait_for_selector("figure.extra figcaption:has-text('into the source domain, latent 3')")
    page.locator(".attention").screenshot(path=str(SHOTS / "family_stargan2.png"))


def test_a_question_its_answer_and_aloes_attention(family_url: str, page):
    page.goto(family_url + "#/run/qa")
    page.wait_for_selector("ul.notes li >> nth=1")
    page.wait_for_selector("figure.extra canvas")
    assert page.inner_text(".example").startswith("example 1 of ")
    page.fill(".frame", "3")
    page.wait_for_selector("label:has-text('frame 4 of')")
    page.locator(".attention").screenshot(path=str(SHOTS / "family_video_qa.png"))


def test_an_agents_episode_step_by_step(family_url: str, page):
    page.goto(family_url + "#/run/aqt")
    page.wait_for_selector(".layer option >> nth=3", state="attached")  # a map per layer and action query
    assert "(chosen)" in page.locator(".layer option").first.inner_text()
    assert "Q=" in page.inner_text(".prediction")
    page.click(".next")
    page.wait_for_selector(".example:has-text('example 2 of')")
    page.locator(".attention").screenshot(path=str(SHOTS / "family_aqt.png"))


def test_upload_a_video_to_slots_and_a_scan_to_a_detector(trained_url: str, tmp_path: Path, page):
    video = np.full((6, 40, 40, 3), 90, dtype=np.uint8)
    for t in range(6):
        video[t, 10:22, 2 + 3 * t : 14 + 3 * t] = (230, 40, 40)
    frames = [Image.fromarray(f) for f in video]
    clip = tmp_path / "square.gif"
    frames[0].save(clip, save_all=True, append_images=frames[1:], duration=80, loop=0)
    page.goto(trained_url + "#/run/sfa")
    page.wait_for_selector("figure.slot >> nth=3")
    page.set_input_files(".upload", str(clip))
    page.wait_for_selector(".example:has-text('your video')")
    page.wait_for_selector("figure.slot >> nth=3")
    rng = np.random.default_rng(0)
    xyz = np.column_stack([rng.uniform(2, 30, 800), rng.uniform(-15, 15, 800), rng.uniform(-2, 0, 800)])
    scan = tmp_path / "scan.bin"
    scan.write_bytes(np.column_stack([xyz, rng.uniform(0, 1, 800)]).astype("<f4").tobytes())
    page.goto(trained_url + "#/run/pointpillars")
    page.wait_for_selector("figure.cloud canvas")
    page.set_input_files(".upload", str(scan))
    page.wait_for_selector(".example:has-text('your point cloud')")
    page.wait_for_selector("figure.cloud figcaption:has-text('800 points · 0 true boxes')")
    page.select_option(".box", "0")
    page.select_option(".point-map", "odam")  # explained on the uploaded scan, not a test scene
    page.wait_for_selector("figure.cloud figcaption:has-text('odam, box 0')")
    assert "800 points" in page.inner_text("figure.cloud figcaption")
    page.locator(".attention").screenshot(path=str(SHOTS / "upload_scan_odam.png"))
