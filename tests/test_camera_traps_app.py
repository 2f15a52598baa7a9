"""The Camera traps page (AppTest): a background run of a folder, then the results browser."""
import json
import os
import time

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _folder(root, n):
    from ssd.data.synthetic import render_example

    for i in range(n):
        sub = root / f"cam{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(render_example(1, i, "val")[0]).resize((160, 120)).save(sub / f"{i:03d}.jpg")
    (root / "readme.txt").write_text("not a photo")
    return str(root)


@pytest.fixture
def env(monkeypatch, tmp_path, shipped_models_root):
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))        # the photos and sort targets live here
    return tmp_path


def _wait(runs_root, seconds=120):
    from ssd import jobs

    deadline = time.time() + seconds
    while jobs.current_batch_job(runs_root) is not None and time.time() < deadline:
        time.sleep(0.3)
    assert jobs.current_batch_job(runs_root) is None, "the batch job did not finish in time"


def _failures(at: AppTest):
    """(file, folder) of the rows of the page's "could not be read" table."""
    table = next((d.value for d in at.dataframe if "reason" in d.value.columns), None)
    return [] if table is None else list(zip(table["file"], table["folder"]))


class _Browser:
    """The Results box as a browser shows it: it adopts the server's value only when told to
    (``set_value``), else keeps its own, and sends what it shows with every interaction."""

    def __init__(self) -> None:
        self.shown = None

    def look(self, at: AppTest) -> str:
        box = at.selectbox(key="ct_results")
        if box.proto.set_value:
            self.shown = box.proto.raw_value
        elif self.shown is None:
            self.shown = box.proto.options[box.proto.default]
        return self.shown

    def send(self, at: AppTest) -> AppTest:
        from ssd import jobs

        finished = os.path.join(jobs.camera_runs_dir(), self.shown, jobs.BATCH_RESULTS)
        at.selectbox(key="ct_results").set_value(finished if os.path.isfile(finished) else self.shown)
        return at


def _start_run(at: AppTest, browser: _Browser, folder: str, name: str) -> None:
    from ssd import jobs

    at.text_input(key="ct_folder").set_value(folder)
    at.text_input(key="ct_name").set_value(name)
    browser.send(at)
    next(b for b in at.button if b.label == "Start").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    _wait(jobs.camera_runs_dir())
    at.run()
    _ok(at)


def test_the_results_shown_are_always_the_run_named(env):
    """The first run of a session, then a second while the first exists: each, once finished, is the
    one the Results box names and the totals count, and filter changes keep it."""
    browser = _Browser()
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    _ok(at)
    assert browser.look(at) == "another results file…"          # no run yet
    _start_run(at, browser, _folder(env / "big", 6), "ux-big")
    assert any("Finished: 7 images" in s.value for s in at.success)
    assert browser.look(at) == "ux-big" and _metrics(at)["Images"] == "7"
    browser.send(at).slider(key="ct_conf").set_value(0.0).run()   # the filter change that emptied the results
    assert browser.look(at) == "ux-big" and _metrics(at)["Images"] == "7" and len(at.image) == 6
    _start_run(at, browser, _folder(env / "big2", 9), "ux-big2")
    assert any(t.value == "Run ux-big2: done" for t in at.text)
    assert browser.look(at) == "ux-big2" and _metrics(at)["Images"] == "10"
    for change in (lambda: at.slider(key="ct_conf").set_value(0.5), lambda: at.selectbox(key="ct_state").set_value(
            "with detections"), lambda: at.checkbox(key="ct_hide_suspect").uncheck()):
        browser.send(at)
        change()
        at.run()
        _ok(at)
        assert browser.look(at) == "ux-big2" and _metrics(at)["Images"] == "10"
    browser.shown = "ux-big"                                     # the user picks the first run: it stays
    browser.send(at).run()
    browser.send(at).slider(key="ct_conf").set_value(0.1).run()
    assert browser.look(at) == "ux-big" and _metrics(at)["Images"] == "7"


def _metrics(at: AppTest):
    return {m.label: m.value for m in at.metric}


def test_results_to_show_follows_a_finished_run_and_keeps_a_pick():
    from ssd.jobs import results_to_show

    other = "another…"
    assert results_to_show({}, {}, None, other) == other
    first = {"/r/a/results.json": 1.0}
    assert results_to_show(first, {}, other, other) == "/r/a/results.json"       # finished since last look
    assert results_to_show(first, first, other, other) == other                  # the user chose another file
    both = {"/r/b/results.json": 2.0, **first}
    assert results_to_show(both, first, "/r/a/results.json", other) == "/r/b/results.json"
    assert results_to_show(both, both, "/r/a/results.json", other) == "/r/a/results.json"
    again = {"/r/a/results.json": 3.0, "/r/b/results.json": 2.0}                 # a re-run of a, finished
    assert results_to_show(again, both, "/r/b/results.json", other) == "/r/a/results.json"
    assert results_to_show(first, both, "/r/b/results.json", other) == "/r/a/results.json"   # b was deleted


def test_camera_trap_page_runs_a_folder_and_browses_the_results(env):
    from ssd import jobs

    folder = _folder(env / "photos", 6)
    at = AppTest.from_file(APP, default_timeout=120).run()
    _ok(at)
    at.switch_page("app_pages/camera_traps.py").run()
    _ok(at)
    at.text_input(key="ct_folder").set_value(folder)
    at.text_input(key="ct_name").set_value("card1")
    next(b for b in at.button if b.label == "Start").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    runs_root = jobs.camera_runs_dir()
    _wait(runs_root)
    at.run()
    _ok(at)
    assert any("Finished: 7 images, 1 failed" in s.value for s in at.success), \
        [s.value for s in at.success] + [jobs.read_log_tail(os.path.join(runs_root, "card1"), 20, jobs.BATCH_LOG_FILE)]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Images"] == "7" and metrics["Failed"] == "1"
    doc = json.load(open(os.path.join(runs_root, "card1", jobs.BATCH_RESULTS)))
    assert {im["file"] for im in doc["images"]} == {f"cam{i % 2}/{i:03d}.jpg" for i in range(6)} | {"readme.txt"}
    # the grid: one thumbnail per image that decodes; the failure listed apart; filter to the failed one
    assert len(at.image) == 6 and _failures(at) == [("readme.txt", "")]
    at.selectbox(key="ct_state").set_value("failed").run()
    _ok(at)
    assert not [b for b in at.button if b.key and b.key.startswith("ct_open_")]
    assert _failures(at) == [("readme.txt", "")]
    at.selectbox(key="ct_state").set_value("all").run()
    at.slider(key="ct_conf").set_value(0.0).run()               # every decodable image has detections at 0
    assert {m.label: m.value for m in at.metric}["With detections"] == "6"
    next(b for b in at.button if b.key == "ct_open_0").click().run()
    _ok(at)
    assert any(t.value == doc["images"][0]["file"] for t in at.text)
    # sort into folders from the page
    at.text_input(key="ct_sort_into").set_value(str(env / "sorted"))
    at.slider(key="ct_conf").set_value(0.0)
    next(b for b in at.button if b.label == "Sort into folders").click().run()
    _ok(at)
    assert len(os.listdir(env / "sorted" / "pikachu" / "cam0")) == 3
    assert os.listdir(env / "sorted" / "failed") == ["readme.txt"]


def test_batch_job_stops_with_a_checkpoint_and_resumes(env, shipped_models_root):
    from ssd import jobs
    from ssd.camtrap.settings import RunSettings

    n = 400   # enough that the stop lands mid-run on a fast machine too (the first checkpoint is at 5)
    folder = _folder(env / "photos", n)
    runs_root = jobs.camera_runs_dir()
    settings = RunSettings(os.path.join(shipped_models_root, "tiny-pikachu"), (folder,), recursive=True, threshold=0.3,
                           checkpoint_every=5)
    jobs.start_batch_job(runs_root, "long", settings)
    run_dir = os.path.join(runs_root, "long")
    checkpoint = os.path.join(run_dir, "results.checkpoint.jsonl")
    deadline = time.time() + 120
    while not os.path.isfile(checkpoint) and time.time() < deadline:
        time.sleep(0.02)
    assert jobs.stop_batch_job(runs_root, timeout=60)
    _wait(runs_root)
    status = jobs.batch_status(run_dir)
    assert status["state"] == "stopped" and 0 < status["done"] < n + 1
    assert os.path.isfile(checkpoint)
    jobs.start_batch_job(runs_root, "long", resume=True)
    _wait(runs_root)
    status = jobs.batch_status(run_dir)
    assert status["state"] == "done" and status["done"] == n + 1 and status["failures"] == 1
    assert len(json.load(open(os.path.join(run_dir, jobs.BATCH_RESULTS)))["images"]) == n + 1


def test_results_browser_pages_through_a_loaded_results_file(env):
    """A results file from elsewhere: 30 images give two pages of 24; a filter leaving one page clamps it."""
    from ssd.base.atomic import atomic_write_json

    folder = _folder(env / "photos", 30)
    images = [{"file": f"cam{i % 2}/{i:03d}.jpg", "failure": None, "width": 160, "height": 120,
               "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.3, 0.3]}] if i % 3 else []}
              for i in range(30)]
    atomic_write_json(str(env / "r.json"), {"info": {"format_version": "1.6",
                                                     "detector_metadata": {"typical_detection_threshold": 0.5}},
                                            "detection_categories": {"1": "animal"}, "images": images})
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    _ok(at)
    at.text_input(key="ct_results_path").set_value(str(env / "r.json"))
    at.text_input(key="ct_image_root").set_value(folder).run()
    _ok(at)
    assert {m.label: m.value for m in at.metric}["Empty"] == "10" and len(at.image) == 24
    at.number_input(key="ct_page").set_value(2).run()
    _ok(at)
    assert len(at.image) == 6
    at.selectbox(key="ct_state").set_value("empty").run()      # 10 images: one page; page 2 is clamped to 1
    _ok(at)
    assert len(at.image) == 10 and at.number_input(key="ct_page").value == 1
    assert not at.warning, [w.value for w in at.warning]


def test_the_grid_names_files_lists_failures_apart_and_the_large_view_follows_the_filters(env):
    """Buttons read the file name (the folder on hover), a failure's long reason is not in a grid cell,
    and the large view's table lists the boxes drawn at the slider, not every box down to the floor."""
    from ssd.base.atomic import atomic_write_json
    from ssd.data.synthetic import render_example

    root = env / "season"
    (root / "siteA" / "cam3").mkdir(parents=True)
    images = []
    for i in range(3):
        Image.fromarray(render_example(1, i, "val")[0]).save(root / "siteA" / "cam3" / f"IMG_{i:04d}.JPG")
        images.append({"file": f"siteA/cam3/IMG_{i:04d}.JPG", "failure": None, "width": 256, "height": 256,
                       "detections": [{"category": "1", "conf": c, "bbox": [0.1 * k, 0.1, 0.2, 0.2]}
                                      for k, c in enumerate((0.9, 0.169, 0.12))]})
    reason = "image file is truncated (4,194,304 of 9,876,543 bytes read): the card was pulled mid-write " * 2
    images.append({"file": "siteA/cam3/IMG_0003.JPG", "failure": reason, "detections": None})
    atomic_write_json(str(env / "r.json"), {"info": {"format_version": "1.6",
                                                     "detector_metadata": {"typical_detection_threshold": 0.2}},
                                            "detection_categories": {"1": "animal"}, "images": images})
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(env / "r.json"))
    at.text_input(key="ct_image_root").set_value(str(root)).run()
    _ok(at)
    opens = [b for b in at.button if b.key and b.key.startswith("ct_open_")]
    assert [b.label for b in opens] == ["IMG\\_0000.JPG", "IMG\\_0001.JPG", "IMG\\_0002.JPG"]   # Markdown-escaped
    assert all("siteA/cam3/" in b.help.replace("\\", "") for b in opens)
    assert len(at.image) == 3 and not any(reason.strip() in t.value for t in [*at.text, *at.caption, *at.markdown])
    table = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert list(table["file"]) == ["IMG_0003.JPG"] and list(table["folder"]) == ["siteA/cam3"]
    assert table["reason"][0] == reason
    opens[1].click().run()
    _ok(at)
    rows = next(d.value for d in at.dataframe if "conf" in d.value.columns)
    assert list(rows["conf"]) == [0.9]                      # 0.169 and 0.12 are below the slider's 0.20
    assert any("2 more below the confidence" in c.value for c in at.caption)
    at.slider(key="ct_conf").set_value(0.15).run()
    rows = next(d.value for d in at.dataframe if "conf" in d.value.columns)
    assert list(rows["conf"]) == [0.9, 0.169]


def test_the_page_warns_of_videos_cut_short_and_lists_them(env):
    """A clip that ended before its header said keeps its detections; the page must say so, not
    count it as an ordinary video."""
    from ssd.base.atomic import atomic_write_json

    images = [{"file": f"cam/{i}.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0], "detections": [],
               **({"warning": "cut short: decoding stopped after 6 of the 20 frames its header lists"} if i else {})}
              for i in range(3)]
    atomic_write_json(str(env / "v.json"), {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"},
                                            "images": images})
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(env / "v.json"))
    at.text_input(key="ct_image_root").set_value(str(env)).run()
    _ok(at)
    assert any("2 video(s) ended before their header said" in w.value for w in at.warning), \
        [w.value for w in at.warning]
    at.selectbox(key="ct_state").set_value("cut short").run()
    _ok(at)
    assert "2 image(s) match" in " ".join(c.value for c in at.caption), [c.value for c in at.caption]


def test_start_refuses_to_wipe_a_run_of_the_same_name_until_replace_is_ticked(env):
    """A second Start under a finished run's name kept nothing of it (its results deleted, no word):
    now it is refused, the results untouched, until the user ticks "Replace"."""
    from ssd import jobs

    folder = _folder(env / "photos", 4)
    browser = _Browser()
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    browser.look(at)
    _start_run(at, browser, folder, "season")
    results = os.path.join(jobs.camera_runs_dir(), "season", jobs.BATCH_RESULTS)
    before = open(results, "rb").read()
    assert at.text_input(key="ct_name").value == "photos"       # the next Start is offered a name not taken
    browser.look(at)
    browser.send(at)
    at.text_input(key="ct_name").set_value("season")
    next(b for b in at.button if b.label == "Start").click().run()
    _ok(at)
    assert any("already exists" in e.value and "season" in e.value for e in at.error), [e.value for e in at.error]
    assert jobs.current_batch_job(jobs.camera_runs_dir()) is None
    assert open(results, "rb").read() == before
    at.checkbox(key="ct_replace").check()
    _start_run(at, browser, folder, "season")
    assert any("Finished: 5 images" in s.value for s in at.success)
    assert at.checkbox(key="ct_replace").value is False          # one replace per tick, not a standing order
