"""A student sets a parameter, looks at another page and comes back: the parameter is still theirs.

Streamlit forgets a widget's value as soon as a run does not draw it, so without
``persist_state="session"`` every page switch put the Train page's options, the Learn pages' sliders and
the Anchors page's threshold back to their defaults.
"""
from __future__ import annotations

import os

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")


def _widget(at: AppTest, label: str):
    found = [w for kind in ("slider", "number_input", "text_input", "selectbox", "checkbox", "radio")
             for w in at.get(kind) if getattr(w, "label", None) == label]
    assert found, f"no widget labelled {label!r}"
    return found[0]


@pytest.mark.parametrize("page, label, value", [
    ("app_pages/train.py", "Show box sizes and aspect ratios", True),
    ("app_pages/anchors.py", "Overlap threshold (IoU) for a positive anchor", 0.7),
    ("app_pages/learn_anchors.py", "Anchor size on the 4×4 map", 0.3),
    ("app_pages/learn_anchors.py", "Aspect ratios", "1, 3"),
    ("app_pages/learn_losses.py", "σ of smooth L1 (training uses 1)", 5.0),
    ("app_pages/learn_losses.py", "Negatives per positive", 1.0),
    ("app_pages/learn_nms.py", "NMS threshold (IoU)", 0.6),
    ("app_pages/learn_eval.py", "IoU threshold", 0.7),
])
def test_a_parameter_survives_a_visit_to_another_page(app_env, page, label, value):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page(page).run()
    _widget(at, label).set_value(value).run()
    assert not at.exception, [e.value for e in at.exception]
    at = at.switch_page("app_pages/home.py").run()
    at = at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _widget(at, label).value == value


def test_a_kept_step_beyond_the_next_images_steps_starts_it_at_step_one(app_env):
    """A kept value must still fit the widget: the last NMS step of an image with many kept boxes,
    then an image with fewer, raised "value greater than max_value" instead of showing step 1."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/learn_nms.py").run()
    _widget(at, "NMS threshold (IoU)").set_value(0.95).run()
    images = _widget(at, "Image (synthetic, with its ground truth)").options
    kept = {}
    for name in images:
        _widget(at, "Image (synthetic, with its ground truth)").set_value(name).run()
        assert not at.exception, (name, [e.value for e in at.exception])
        steps = [s for s in at.slider if s.label == "Step"]
        kept[name] = steps[0].max if steps else 1
    many, few = max(kept, key=kept.get), min((n for n in kept if kept[n] > 1), key=kept.get, default=None)
    assert few is not None and kept[many] > kept[few], kept
    _widget(at, "Image (synthetic, with its ground truth)").set_value(many).run()
    _widget(at, "Step").set_value(kept[many]).run()
    _widget(at, "Image (synthetic, with its ground truth)").set_value(few).run()
    assert not at.exception, [e.value for e in at.exception]
    assert _widget(at, "Step").value == 1


def test_detect_settings_survive_a_visit_to_home_and_camera_traps(app_env):
    """A person sets Detect's view and sidebar, looks at Home and Camera traps, and comes back: every
    setting is as left, and sent to the browser as such (not shown at the default while the boxes are
    filtered with the kept value)."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    assert not at.exception, [e.value for e in at.exception]
    labels = at.multiselect[0].options
    assert len(labels) >= 1
    at.slider(key="detect_threshold").set_value(0.3)
    at.slider(key="detect_nms").set_value(0.7)
    at.number_input(key="detect_max").set_value(7)
    at.selectbox(key="detect_engine").set_value("mxnet").run()
    assert not at.exception, [e.value for e in at.exception]
    chosen = labels[:-1]                # one class fewer than the default (all of them)
    at.multiselect[0].set_value(chosen).run()
    kept = {"detect_threshold": 0.3, "detect_nms": 0.7, "detect_max": 7, "detect_engine": "mxnet",
            "detect_precision": at.selectbox(key="detect_precision").value}
    shown = at.session_state["detect_stats"]["shown"]
    for page in ("app_pages/home.py", "app_pages/camera_traps.py", "app_pages/detect.py"):
        at = at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    assert not at.warning, [w.value for w in at.warning]     # no "set through the Session State API" warning
    widgets = {"detect_threshold": at.slider(key="detect_threshold"), "detect_nms": at.slider(key="detect_nms"),
               "detect_max": at.number_input(key="detect_max"), "detect_engine": at.selectbox(key="detect_engine"),
               "detect_precision": at.selectbox(key="detect_precision")}
    assert {k: w.value for k, w in widgets.items()} == kept
    assert at.multiselect[0].value == chosen
    assert at.session_state["detect_stats"]["shown"] == shown
    # the browser is told the kept values (only what differs from a widget's default needs sending)
    for key in ("detect_threshold", "detect_nms", "detect_max", "detect_engine"):
        assert widgets[key].proto.set_value, key
    assert at.multiselect[0].proto.set_value


# Value widgets Streamlit can keep; a keyed one not passing persist_state is reset by a page switch.
_VALUE_WIDGETS = {"text_input", "number_input", "slider", "select_slider", "selectbox", "multiselect", "checkbox",
                  "toggle", "radio", "text_area", "date_input", "time_input", "color_picker", "pills",
                  "segmented_control", "feedback"}
# Deliberately forgotten: a password is not kept in the session once the form is sent, and the
# consent to replace a run's results, or the files of a Camtrap DP folder, is given for one Start or
# one write only (cleared after it). The Train page's locked architecture and input size show the
# chosen start folder's own (one option, disabled): nothing a person set, so nothing to keep.
_NOT_KEPT = {"access_password", "ct_replace", "ct_dp_replace", "train_arch_of_start", "train_input_of_start"}


def test_every_keyed_setting_is_kept_by_persist_state():
    """One mechanism on every page: each keyed value widget in app_pages/ passes persist_state (a page
    that copied its values by hand, or forgot to, lost them on a page switch or drew the defaults)."""
    import ast
    import glob

    missing = []
    for path in sorted(glob.glob(os.path.join(REPO_ROOT, "app_pages", "*.py"))):
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in _VALUE_WIDGETS):
                continue
            kw = {k.arg: k.value for k in node.keywords}
            key = kw.get("key")
            if key is None or (isinstance(key, ast.Constant) and key.value in _NOT_KEPT):
                continue
            if "persist_state" not in kw:
                missing.append(f"{os.path.basename(path)}:{node.lineno} {node.func.attr}")
    assert missing == [], missing
    assert len(glob.glob(os.path.join(REPO_ROOT, "app_pages", "*.py"))) > 5        # the scan saw the pages


def _upload_png() -> bytes:
    import io

    from PIL import Image

    from ssd.data.synthetic import render_example

    buf = io.BytesIO()
    Image.fromarray(render_example(0, 3, "val")[0]).save(buf, format="PNG")
    return buf.getvalue()


def test_detect_uploads_come_back_after_a_visit_to_another_page(app_env):
    """Streamlit empties a file uploader on a page switch (it cannot keep one); the page keeps the
    images itself, says so, and forgets them when asked or when the person empties the uploader."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    images = lambda: next(m.value for m in at.metric if m.label == "Images")     # noqa: E731
    assert images() == "6 of 6"                                                  # the samples
    png = _upload_png()
    at.file_uploader(key="detect_upload").set_value([("a.png", png, "image/png"), ("b.png", png, "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert images() == "2 of 2"
    at = at.switch_page("app_pages/home.py").run()
    at = at.switch_page("app_pages/detect.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.file_uploader(key="detect_upload").value      # what Streamlit does…
    assert images() == "2 of 2"                                  # …and what the person sees
    assert any("from before you left this page" in i.value for i in at.info)
    at.button(key="detect_forget_uploads").click().run()
    assert images() == "6 of 6"
    # emptied by hand in the uploader: the samples, not the images of before
    at.file_uploader(key="detect_upload").set_value([("a.png", png, "image/png")]).run()
    at.file_uploader(key="detect_upload").set_value([]).run()
    assert images() == "6 of 6"


def test_the_detect_view_chosen_survives_a_visit_to_another_page(app_env):
    """Images / Table / Download: the view a person opened is the one they come back to (tabs keep no
    state across a page switch, so it was Images again, the table or the downloads one click away)."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    at = at.switch_page("app_pages/detect.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe) == 0                          # Images first: no table built
    at.slider(key="detect_threshold").set_value(0.01)      # the tiny test model's boxes, however weak
    at.session_state["detect_tab"] = "Table"
    at.run()
    assert len(at.dataframe) == 2                          # the detections and the per-class counts
    for page in ("app_pages/home.py", "app_pages/detect.py"):
        at = at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
    assert len(at.dataframe) == 2 and not at.image, "the Images view came back instead of the Table"
    view = at.segmented_control(key="detect_tab")
    assert view.value == "Table" and view.proto.set_value   # and the browser is told so
    view.set_value("Download").run()
    at = at.switch_page("app_pages/home.py").run()
    at = at.switch_page("app_pages/detect.py").run()
    assert [b.label for b in at.download_button if "CSV" in b.label] and len(at.dataframe) == 0


def test_no_setting_sits_in_a_form_but_the_password():
    """A form's values stay in the browser until its submit button is pressed, so a look at another
    page threw away what was typed into it, persist_state or not (AppTest sends every value at once
    and cannot see it). Only the password form may forget: it is meant to."""
    import ast
    import glob

    found = []
    for path in sorted(glob.glob(os.path.join(REPO_ROOT, "app_pages", "*.py"))) + [APP]:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
        found += [f"{os.path.basename(path)}:{node.lineno}" for node in ast.walk(tree)
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "form"]
    assert [f for f in found if not f.startswith("_access.py:")] == [], found
