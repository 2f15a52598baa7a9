"""AppTest tests of every page: renders, detection with uploads, the no-network slider, bad files,
anchor counts, and a tiny training job that ends as a selectable model in Detect."""
from __future__ import annotations

import io
import os
import time

from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")
TIMEOUT = 120


def _app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def _page(path: str) -> AppTest:
    at = _app().run()
    _ok(at)
    return at.switch_page(path).run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _png(index: int = 3, size=None) -> bytes:
    from ssd.data.synthetic import render_example

    img = Image.fromarray(render_example(0, index, "val")[0])
    if size:
        img = img.resize(size)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _detections(at: AppTest):
    tables = [d.value for d in at.dataframe if "score" in d.value.columns]
    return tables[0] if tables else None


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_home_renders_with_environment(app_env):
    at = _app().run()
    _ok(at)
    text = " ".join(m.value for m in at.markdown)
    assert "MXNet" in text and "Device" in text
    assert "tiny-test" in text                      # the fixture model is listed
    assert at.title[0].value == "SSD Studio"
    assert not at.expander                          # the diagram's text is shown on a phone instead of it, not twice
    links = [e.proto.label for e in at.get("page_link")]
    assert [l.split("**")[1] for l in links] == ["Detect", "Camera traps", "Train", "Anchors"]


def test_detect_shows_samples_without_upload(app_env):
    at = _page("app_pages/detect.py")
    _ok(at)
    assert not at.error
    assert _metric(at, "Images") == "6 of 6"
    assert len(at.image) == 6


def test_detect_upload_and_slider_without_network(app_env):
    at = _page("app_pages/detect.py")
    assert len(at.dataframe) == 0                  # only the open tab (Images) is built
    at.session_state["detect_tab"] = "Table"
    at.file_uploader(key="detect_upload").set_value([("photo.png", _png(3, (640, 480)), "image/png")])
    at.slider(key="detect_threshold").set_value(0.02).run()
    _ok(at)
    rows = _detections(at)
    assert rows is not None and len(rows) > 0
    assert set(rows["image"]) == {"photo.png"}
    # boxes are in the original (640×480) pixels
    assert rows["xmax"].max() <= 640 and rows["ymax"].max() <= 480 and rows["xmax"].max() > 256
    stats = dict(at.session_state["detect_stats"])
    assert stats["new_forward_calls"] == 1

    cut = float(rows["score"].median())
    at.slider(key="detect_threshold").set_value(round(min(0.99, cut + 0.005), 2)).run()
    _ok(at)
    after = at.session_state["detect_stats"]
    fewer = _detections(at)
    assert (0 if fewer is None else len(fewer)) < len(rows)
    assert after["forward_calls"] == stats["forward_calls"]   # no new forward pass
    assert after["new_forward_calls"] == 0 and after["network_images"] == 0

    # the class filter and the count limit are free too
    at.number_input(key="detect_max").set_value(1).run()
    at.multiselect[0].set_value([]).run()
    _ok(at)
    assert at.session_state["detect_stats"]["forward_calls"] == stats["forward_calls"]
    # the engine picker: each engine's detector is the server's cached one, and a slider move runs
    # no network on any of them (switching back to an engine runs none either: its results are cached)
    from app_pages import _shared as sh

    at.selectbox(key="detect_engine").set_value("mxnet").run()
    _ok(at)
    dets = [sh.get_detector(app_env["model"], "auto", e) for e in ("auto", "mxnet")]
    assert dets[1].engine == "mxnet" and at.session_state["detect_stats"]["new_forward_calls"] == 1
    calls = [d.forward_calls for d in dets]
    for engine in ("mxnet", "auto", "mxnet"):
        at.selectbox(key="detect_engine").set_value(engine).run()
        at.slider(key="detect_threshold").set_value(0.03).run()
        _ok(at)
        assert at.session_state["detect_stats"]["new_forward_calls"] == 0
    assert [d.forward_calls for d in dets] == calls
    assert [sh.get_detector(app_env["model"], "auto", e) for e in ("auto", "mxnet")] == dets    # not reloaded
    # downloads: one annotated PNG (a single image), MegaDetector JSON and CSV
    at.session_state["detect_tab"] = "Download"
    at.run()
    labels = [b.label for b in at.download_button]
    assert any("PNG" in l for l in labels) and any("JSON" in l for l in labels) and any("CSV" in l for l in labels)


def test_detect_bad_files_show_errors_and_others_still_run(app_env):
    at = _page("app_pages/detect.py")
    at.session_state["detect_tab"] = "Table"
    at.file_uploader(key="detect_upload").set_value([
        ("broken.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 40, "image/jpeg"),
        ("empty.png", b"", "image/png"),
        ("notes.png", b"hello, this is text and not a picture\n" * 4, "image/png"),
        ("good.png", _png(5), "image/png"),
    ])
    at.slider(key="detect_threshold").set_value(0.02).run()
    _ok(at)
    errors = " ".join(e.value for e in at.error)
    for name in ("broken.jpg", "empty.png", "notes.png"):
        assert name in errors
    assert "good.png" not in errors
    assert _metric(at, "Images") == "1 of 4"
    rows = _detections(at)
    assert rows is not None and set(rows["image"]) == {"good.png"}


def test_anchors_counts(app_env):
    at = _page("app_pages/anchors.py")
    _ok(at)
    assert _metric(at, "Total anchors") == "5444"
    assert _metric(at, "Anchors in this cell") == "4"
    at.selectbox(key="anchors_scale").set_value(4).run()      # the 1×1 map
    _ok(at)
    assert _metric(at, "Anchors in this cell") == "4"
    assert int(_metric(at, "Positive anchors")) >= 1

    # a custom configuration: 2 sizes + 4 ratios = 5 anchors per cell
    at.radio(key="anchors_source").set_value("Custom").run()
    at.text_input(key="anchors_ratios").set_value("1, 2, 0.5, 3").run()
    _ok(at)
    from app_pages._shared import _figure_cache

    cached = len(_figure_cache())
    at.slider(key="anchors_cov_thr").set_value(0.6).run()   # only the coverage figure depends on it
    _ok(at)
    assert len(_figure_cache()) == cached + 1
    assert _metric(at, "Anchors in this cell") == "5"
    assert _metric(at, "Total anchors") == str((32 * 32 + 16 * 16 + 8 * 8 + 4 * 4 + 1) * 5)
    at.text_input(key="anchors_ratios").set_value("1, two").run()
    _ok(at)
    assert any("not a number" in e.value for e in at.error)


def test_train_tiny_job_then_selectable_in_detect(monkeypatch, tmp_path, synth_dir, data_root):
    from ssd import jobs

    root = str(tmp_path / "models")
    monkeypatch.setenv("SSD_MODELS_DIR", root)
    monkeypatch.setenv("SSD_DATA_DIR", data_root)
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    at = _page("app_pages/train.py")
    _ok(at)
    at.selectbox(key="train_dataset").set_value(synth_dir)
    at.text_input(key="train_name").set_value("from-app")
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_batch").set_value(8)
    at.number_input(key="train_limit").set_value(16)
    at.number_input(key="train_limit_val").set_value(8)
    at.number_input(key="train_max_iters").set_value(2)
    at.selectbox(key="train_device").set_value("cpu")
    next(b for b in at.button if b.label == "Start training").click().run()
    _ok(at)
    assert not at.error, [e.value for e in at.error]
    job = jobs.current_job(root)
    assert job is not None and job.name == "from-app"

    at.run()                                 # a rerun neither stops nor duplicates the job
    assert jobs.current_job(root).pid == job.pid
    deadline = time.time() + 150
    while jobs.current_job(root) is not None and time.time() < deadline:
        time.sleep(0.5)
    assert jobs.current_job(root) is None, "the tiny training job did not finish in time"
    at.run()
    _ok(at)
    assert any("from-app" in s.value and "finished" in s.value for s in at.success), \
        [s.value for s in at.success] + [e.value for e in at.error] + [jobs.train_log_tail(os.path.join(root, "from-app"))]
    # the ENA24 tutorial's validation metrics beside mAP, as "micro-F1 / accuracy" numbers
    f1_acc = {m.label: m.value for m in at.metric}["Val micro-F1 / accuracy"]
    f1, acc = (float(v) for v in f1_acc.split(" / "))
    assert 0 <= f1 <= 1 and 0.5 < acc <= 1

    at.switch_page("app_pages/detect.py").run()
    _ok(at)
    picker = at.selectbox(key="detect_model")
    assert any(o.startswith("from-app") for o in picker.options), picker.options


# ---------------------------------------------------------------- the library calls behind the pages


def test_batch_cache_render_and_export(tiny_model_dir):
    import numpy as np

    from ssd.inference.batch import DetectionCache, detect_images, detection_rows, render_batch, results_for_export
    from ssd.inference.detector import Detector
    from ssd.viz.drawing import annotated_png
    from ssd.viz.overlay import DISPLAY_SIDE
    from ssd.camtrap.results import megadetector_json

    det = Detector.load(tiny_model_dir)
    big = _png(3, (2000, 1500))
    cache = DetectionCache()
    items = [("big.png", big), ("bad.jpg", b"not an image")]
    first = detect_images(det, items, 0.45, cache, key="k")
    assert [r.ok for r in first] == [True, False] and "bad.jpg" in first[1].error
    assert first[0].raw.image_size == (2000, 1500)
    assert max(first[0].display_size) == DISPLAY_SIDE and first[0].display[:2] == b"\xff\xd8"   # a JPEG
    calls = det.forward_calls
    again = detect_images(det, items, 0.45, cache, key="k")
    assert det.forward_calls == calls and not again[0].ran_network
    rendered = render_batch(again, 0.0, None, 5)
    assert len(rendered) == 1 and len(rendered[0].shown) == 5
    assert rendered[0].picture().size == first[0].display_size
    assert rendered[0].svg.count('stroke=') == 2 * 5      # per shown box: its halo and its outline
    rows = detection_rows(rendered)
    assert len(rows) == 5 and max(r["xmax"] for r in rows) <= 2000
    md = megadetector_json(results_for_export(again), det.classes, "tiny", 0.3)
    # downloads follow the MegaDetector rules, not the slider: every candidate down to the floor
    assert md["images"][1]["failure"] and md["images"][1]["detections"] is None
    assert len(md["images"][0]["detections"]) == min(100, len(first[0].raw.filter(0.005))) > 5
    # the full-resolution annotated image keeps the original size
    from PIL import Image
    png = annotated_png(Image.open(io.BytesIO(big)).convert("RGB"), rendered[0].shown)
    assert Image.open(io.BytesIO(png)).size == (2000, 1500)
    # the cache is bounded in bytes
    small = DetectionCache(max_bytes=first[0].nbytes + 10)
    small.put(("a",), first[0])
    small.put(("b",), first[0])
    assert len(small) == 1 and small.get(("a",)) is None
    assert np.all(np.diff(first[0].raw.scores) <= 0)


def test_samples_and_positive_anchors(tmp_path):
    import numpy as np

    from ssd.models.anchors import all_anchors
    from ssd.models.tiny import tiny_anchor_config
    from ssd.models.anchor_set import best_anchor_cell
    from ssd.base.boxes import box_iou
    from ssd.workspace import sample_images
    from ssd.data.synthetic import render_example
    from ssd.models.targets import positive_anchors

    samples = sample_images(3, 0, str(tmp_path))
    again = sample_images(3, 0, str(tmp_path))              # read back from the cache folder
    assert [s.data for s in samples] == [s.data for s in again]
    img, lab = render_example(0, 1, "val")
    assert np.array_equal(samples[1].array(), img) and np.allclose(samples[1].label, lab)

    cfg = tiny_anchor_config()
    assert cfg.total() == 5444
    pos = positive_anchors(cfg, lab, 0.5)
    ious = box_iou(all_anchors(cfg), lab[:, 1:5])[:, 0]
    assert int(np.argmax(ious)) in set(pos.tolist())                # each box claims its best anchor
    assert set(np.flatnonzero(ious >= 0.5).tolist()) <= set(pos.tolist())
    s, r, c = best_anchor_cell(cfg, lab[0, 1:5])
    assert 0 <= s < cfg.num_scales


def test_no_v1_pages_folder_next_to_app():
    """A folder named pages/ beside app.py switches Streamlit into v1 multipage mode whenever the first
    visit to a fresh server is a deep link (it then runs the page file without app.py and lists every
    file, helpers included, as a page). The UI lives in app_pages/ and app.py's st.navigation."""
    assert not os.path.exists(os.path.join(REPO_ROOT, "pages"))
    assert os.path.isfile(os.path.join(REPO_ROOT, "app_pages", "detect.py"))


def test_train_page_does_not_redraw_unchanged_training_curves(app_env, monkeypatch):
    """Every rerun of Train (any widget, and the 2 s poll while a job runs, on the cores the job
    trains on) drew and rendered the run's and the saved model's curves again (~0.2 s each time)."""
    import ssd.viz.plots as plots
    from app_pages import _shared

    _shared._figure_cache.clear()          # earlier tests of this server may have drawn these curves
    calls = []
    real = plots.training_curve_figures
    monkeypatch.setattr(plots, "training_curve_figures", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = _page("app_pages/train.py")
    _ok(at)
    drawn = len(calls)
    assert drawn >= 1, "the curves are shown"
    at.number_input(key="train_epochs").set_value(3)
    at.run()
    at.run()
    _ok(at)
    assert len(calls) == drawn, "curves drawn again for an unchanged history"


def test_anchors_page_shows_an_unreadable_upload_name_as_text_not_markdown(app_env):
    at = _page("app_pages/anchors.py")
    name = "[win](http://evil.example) **now**.png"
    at.file_uploader(key="anchors_upload").set_value([(name, b"not an image", "image/png")]).run()
    _ok(at)
    shown = next(e.value for e in at.error if "not an image" in e.value)
    assert "](http" not in shown and "**" not in shown.replace("\\*", "")   # escaped: no link, no bold
    assert "\\[win\\]" in shown
    assert _metric(at, "Total anchors") == "5444"                          # the page goes on with a sample


def test_detect_picture_caption_shows_an_upload_name_as_text_not_markdown(app_env):
    at = _page("app_pages/detect.py")
    name = "[win](http://evil.example) **now**.png"
    at.file_uploader(key="detect_upload").set_value([(name, _png(5), "image/png")]).run()
    _ok(at)
    caption = at.image[0].proto.imgs[0].caption
    assert "](http" not in caption and "**" not in caption.replace("\\*", "")   # escaped: no link, no bold
    assert "\\[win\\]" in caption


def test_anchors_page_shows_a_dataset_folder_name_as_text_in_the_coverage_figure(tmp_path, monkeypatch):
    """A folder named with a '$' pair was parsed as mathtext in the coverage figure's title: a traceback."""
    from ssd.data.synthetic import generate

    name = r"traps $\oops$ 2024"
    generate(str(tmp_path / name), num_train=4, num_val=4, seed=0)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path))
    at = _page("app_pages/anchors.py")
    at.selectbox(key="anchors_cov_source").set_value(name).run()
    _ok(at)
    assert _metric(at, "Boxes covered").endswith("%")
