"""The explorer driven in a real headless browser (Debian's Chromium through Playwright): the runs
table, filter and sort, a run's page with curves and figures, comparing two runs, the token, each
viewer, painting and saving an ABN map, and jobs. Screenshots land in build/test-artifacts/explorer/
(look at them)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from attnlab.data.edited_maps import map_file_name, read_map_png
from tests.explorer.conftest import CHROMIUM, SHOTS, serve

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def test_browse_filter_open_and_compare_runs(runs_folder: Path, page):
    for url in serve(runs_folder, token=None):
        page.goto(url)
        rows = page.locator("#runs tbody tr")
        rows.first.wait_for()
        assert rows.count() == 5
        assert page.locator("tr.broken").count() == 3
        assert "config.yaml is missing" in page.locator("tr[data-run='no-config']").inner_text()
        page.screenshot(path=str(SHOTS / "runs.png"), full_page=True)

        page.fill("#filter", "finished")
        assert rows.count() == 2 and page.inner_text("#count") == "2 of 5 runs"
        page.click("th[data-key='started']")  # oldest first
        assert [rows.nth(i).get_attribute("data-run") for i in range(2)] == ["demo/a", "demo/b"]

        page.click("a[href='#/run/demo%2Fa']")
        page.locator(".chart[data-tag='train/loss'] polyline").wait_for()
        points = page.get_attribute(".chart[data-tag='train/loss'] polyline", "points") or ""
        assert len(points.split()) == 10
        figure = page.locator("#figures img")
        figure.wait_for()
        page.wait_for_function("document.querySelector('#figures img').naturalWidth > 0")
        assert figure.evaluate("img => img.naturalWidth") == 40
        assert "0.7500" in page.inner_text("table.metrics")
        page.screenshot(path=str(SHOTS / "run.png"), full_page=True)

        page.go_back()
        rows.first.wait_for()
        for run in ("demo/a", "demo/b"):
            page.check(f"tr[data-run='{run}'] input[type=checkbox]")
        page.click("#compare")
        table = page.locator("#compare-metrics")
        table.wait_for()
        assert "0.7500" in table.inner_text() and "0.9500" in table.inner_text()
        assert page.locator(".chart[data-tag='train/loss'] polyline").count() == 2
        page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)


def test_the_page_sends_the_token_it_was_opened_with(runs_folder: Path, page):
    for url in serve(runs_folder, token="s3cret"):
        page.goto(url.replace("?token=s3cret", "?token=wrong"))
        page.locator("#error:not([hidden])").wait_for()
        assert "needs its token" in page.inner_text("#error")
        page.evaluate("sessionStorage.clear()")
        page.goto(url)
        page.locator("#runs tbody tr").first.wait_for()
        page.click("a[href='#/run/demo%2Fb']")
        page.wait_for_function("document.querySelector('#figures img')?.naturalWidth > 0")


def test_a_transformers_heads_and_layers(trained_url: str, page):
    page.goto(trained_url + "#/run/demo")
    page.locator(".attention canvas.overlay").nth(1).wait_for()
    assert page.inner_text(".example") == "example 1 of 16"
    assert page.locator(".layer option").all_inner_texts() == ["blocks.0.attn", "blocks.1.attn"]
    page.select_option(".layer", "1")
    page.select_option(".head", "0")
    page.wait_for_selector("figcaption:has-text('blocks.1.attn, head 0')")
    page.click(".next")
    page.wait_for_selector(".example:has-text('example 2 of 16')")
    page.screenshot(path=str(SHOTS / "attention_demo.png"), full_page=True)


def test_abn_gradcam_and_an_uploaded_picture(trained_url: str, tmp_path: Path, page):
    page.goto(trained_url + "#/run/abn")
    page.wait_for_selector("figcaption:has-text('attention branch')")
    page.select_option(".method", "gradcam")
    page.wait_for_selector("figcaption:has-text('gradcam')")
    assert page.inner_text(".prediction").startswith("prediction: ")
    page.screenshot(path=str(SHOTS / "attention_abn_gradcam.png"), full_page=True)
    picture = tmp_path / "mine.png"
    Image.new("RGB", (60, 40), (220, 220, 220)).save(picture)
    page.set_input_files(".upload", str(picture))
    page.wait_for_selector(".example:has-text('your picture')")
    page.wait_for_selector("figcaption:has-text('gradcam')")  # the chosen method, on the upload


def test_slots_across_frames(trained_url: str, page):
    page.goto(trained_url + "#/run/sfa")
    page.wait_for_selector("figure.slot >> nth=3")
    assert page.locator("figure.slot").count() == 4
    page.fill(".frame", "2")  # a range input: the last of 3 frames
    page.wait_for_selector("label:has-text('frame 3 of 3')")
    page.click(".play")
    page.wait_for_selector(".play:has-text('pause')")
    page.screenshot(path=str(SHOTS / "attention_sfa.png"), full_page=True)


def test_st_abn_temporal_bars_follow_the_frame(trained_url: str, page):
    page.goto(trained_url + "#/run/stabn")
    page.wait_for_selector("figure.temporal rect >> nth=15")
    page.fill(".frame", "5")
    page.wait_for_selector("figure.temporal rect[data-frame='5'][fill='#cf222e']")
    page.screenshot(path=str(SHOTS / "attention_st_abn.png"), full_page=True)


def test_seq2seq_alignment_matrix(trained_url: str, page):
    page.goto(trained_url + "#/run/seq2seq")
    page.wait_for_selector("figure.matrix figcaption:has-text('attention, forced decoding')")
    page.select_option(".layer", "1")
    page.wait_for_selector("figure.matrix figcaption:has-text('known alignment')")
    page.screenshot(path=str(SHOTS / "attention_seq2seq.png"), full_page=True)


def test_a_point_cloud_turns_and_shows_a_boxs_explanation(trained_url: str, page):
    page.goto(trained_url + "#/run/pointpillars")
    page.wait_for_selector("figure.cloud canvas")
    page.select_option(".box", "0")
    page.select_option(".point-map", "guided-odam")
    page.wait_for_selector("figure.cloud figcaption:has-text('guided-odam, box 0')")
    cloud = page.locator("figure.cloud canvas")
    before = cloud.screenshot()
    box = cloud.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + 100, box["y"] + 100)
    page.mouse.down()
    page.mouse.move(box["x"] + 220, box["y"] + 60, steps=5)  # turn the scene
    page.mouse.up()
    assert cloud.screenshot() != before
    page.locator(".attention").screenshot(path=str(SHOTS / "points_guided_odam.png"))


def test_self_supervised_views(trained_url: str, page):
    page.goto(trained_url + "#/run/vjepa")
    page.wait_for_selector("figure.slot figcaption:has-text('mask 1: prediction error')")
    page.locator(".attention").screenshot(path=str(SHOTS / "vjepa_masks.png"))
    page.goto(trained_url + "#/run/mae")
    page.wait_for_selector("figure.extra figcaption:has-text('reconstruction, seen patches pasted back')")
    page.goto(trained_url + "#/run/dino")
    page.wait_for_selector("figcaption:has-text('[CLS] to patches')")
    page.select_option(".head", "1")
    page.wait_for_selector("figcaption:has-text('head 1')")
    page.goto(trained_url + "#/run/distill")
    page.wait_for_selector("figcaption:has-text('student: [CLS] to patches')")
    page.select_option(".layer", "2")
    page.wait_for_selector("figcaption:has-text('teacher 2: [CLS] to patches')")
    assert page.inner_text(".prediction").startswith("prediction: student: ")


def test_two_runs_side_by_side_on_one_example(trained_url: str, page):
    page.goto(trained_url + "#/compare/abn|demo")
    sections = page.locator("#side-by-side section.attention")
    sections.nth(1).locator(".example").wait_for()
    assert "different datasets" in page.inner_text("#side-by-side")
    sections.nth(0).locator(".next").click()
    for i in range(2):
        sections.nth(i).locator(".example:has-text('example 2 of')").wait_for()


def test_paint_a_map_save_it_fine_tune_and_cancel(trained_runs: Path, tmp_path: Path, page):
    root = tmp_path / "runs"
    shutil.copytree(trained_runs / "abn", root / "abn")
    for url in serve(root, token=None):
        page.goto(url + "#/run/abn")
        page.click("#start-editing")
        canvas = page.locator("#paint")
        canvas.wait_for()
        before = page.inner_text("#edited-prediction")
        page.check("#brush-ignore")
        box = canvas.bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
        page.mouse.down()
        for step in range(1, 30):  # a stroke across the middle
            page.mouse.move(box["x"] + step * box["width"] / 30, box["y"] + box["height"] / 2)
        page.mouse.up()
        page.wait_for_function(f"document.querySelector('#edited-prediction').textContent !== {before!r}")
        page.click("#save-map")
        page.wait_for_selector("#saved:has-text('saved abn/edited_maps/maps/')")
        saved = read_map_png(root / "abn" / "edited_maps" / "maps" / map_file_name(0), (28, 28))
        assert (saved[0, 14] == 0).all()  # the stroke's row is "ignore" from edge to edge
        page.screenshot(path=str(SHOTS / "edit_abn.png"), full_page=True)

        page.fill("#finetune-steps", "2")
        page.click("#finetune")
        page.wait_for_selector("#job-table .status.finished", timeout=240_000)
        page.fill("#finetune-steps", "100000")
        page.click("#finetune")
        page.click("#job-table button.cancel")
        page.wait_for_selector("#job-table .status.cancelled", timeout=60_000)
        page.reload()  # the jobs are the server's: a reload lists them again
        page.wait_for_selector("#job-table .status.finished")
        assert page.locator("#job-table tr").count() == 2
        page.screenshot(path=str(SHOTS / "jobs.png"), full_page=True)
