"""The Camera traps page (AppTest): a background run of a folder, then the results browser."""
import json
import os
import time

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")
MODELS = os.path.join(REPO_ROOT, "models")


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
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("SSD_MODELS_DIR", MODELS)
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
    # the grid: one thumbnail per image that decodes, the failure as text; filter to the failed one
    assert len(at.image) == 6
    at.selectbox(key="ct_state").set_value("failed").run()
    _ok(at)
    opens = [b for b in at.button if b.key and b.key.startswith("ct_open_")]
    assert len(opens) == 1
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


def test_batch_job_stops_with_a_checkpoint_and_resumes(env):
    from ssd import jobs
    from ssd.camtrap.settings import RunSettings

    n = 400   # enough that the stop lands mid-run on a fast machine too (the first checkpoint is at 5)
    folder = _folder(env / "photos", n)
    runs_root = jobs.camera_runs_dir()
    settings = RunSettings(os.path.join(MODELS, "tiny-pikachu"), (folder,), recursive=True, threshold=0.3,
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
