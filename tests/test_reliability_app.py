"""The app in a browser user's hands: folders only under the photo roots, a password once the server
listens beyond 127.0.0.1, upload names never Markdown. Each test failed before its fix."""
from __future__ import annotations

import io
import json
import os
import re

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _camera_page(secrets=None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for section, values in (secrets or {}).items():
        at.secrets[section] = values
    at.run()
    _ok(at)
    return at.switch_page("app_pages/camera_traps.py").run()


def _texts(at: AppTest) -> str:
    """What the page says, Markdown escapes removed."""
    return " ".join(str(e.value) for kind in ("error", "warning", "markdown", "subheader", "title")
                    for e in getattr(at, kind)).replace("\\", "")


# ------------------------------------------------------------------ photo roots

@pytest.fixture
def roots_env(app_env, tmp_path, monkeypatch):
    """Photo roots: one folder of this test (photos, sort targets); /etc and the rest are outside."""
    from PIL import Image

    root = tmp_path / "allowed"
    (root / "photos").mkdir(parents=True)
    Image.new("RGB", (64, 48), (20, 90, 40)).save(root / "photos" / "a.jpg")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(root))
    return root


def test_the_camera_traps_page_runs_no_folder_outside_the_photo_roots(roots_env, tmp_path):
    from ssd import jobs

    at = _camera_page()
    for folder in ("/etc", str(tmp_path), str(roots_env / ".." / "allowed" / ".." )):
        at.text_input(key="ct_folder").set_value(folder)
        at.text_input(key="ct_name").set_value("roots-probe")
        next(b for b in at.button if b.label == "Start").click().run()
        _ok(at)
        assert "outside the folders this app may use" in _texts(at) and str(roots_env) in _texts(at)
        assert not os.path.exists(os.path.join(jobs.camera_runs_dir(), "roots-probe"))   # nothing started


def test_the_results_browser_shows_and_sorts_only_under_the_photo_roots(roots_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    doc = {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"},
           "images": [{"file": "a.jpg", "failure": None, "detections": []}]}
    (outside / "r.json").write_text(json.dumps(doc))
    (roots_env / "r.json").write_text(json.dumps(doc))
    at = _camera_page()
    at.selectbox(key="ct_results").set_value("another results file…").run()
    for results, images in ((str(outside / "r.json"), str(roots_env / "photos")), ("/etc/passwd", ""),
                            (str(roots_env / "r.json"), "/etc")):
        at.text_input(key="ct_results_path").set_value(results)
        at.text_input(key="ct_image_root").set_value(images).run()
        _ok(at)
        assert "outside the folders this app may use" in _texts(at) and not at.metric
    at.text_input(key="ct_results_path").set_value(str(roots_env / "r.json"))
    at.text_input(key="ct_image_root").set_value(str(roots_env / "photos")).run()
    _ok(at)
    assert [m.value for m in at.metric if m.label == "Images"] == ["1"]
    at.text_input(key="ct_sort_into").set_value(str(outside / "sorted"))
    next(b for b in at.button if b.label == "Sort into folders").click().run()
    _ok(at)
    assert "outside the folders this app may use" in _texts(at) and not (outside / "sorted").exists()
    at.text_input(key="ct_sort_into").set_value(str(roots_env / "sorted"))
    next(b for b in at.button if b.label == "Sort into folders").click().run()
    _ok(at)
    assert os.path.islink(roots_env / "sorted" / "empty" / "a.jpg")


def test_exports_and_reviews_are_written_only_under_the_photo_roots(roots_env, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "where.csv").write_text("deploymentID,latitude,longitude\n.,46.5,7.25\n")
    doc = {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"},
           "images": [{"file": "a.jpg", "failure": None, "datetime": "2024:06:01 10:00:00",
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "suspect": True}]}]}
    (roots_env / "r.json").write_text(json.dumps(doc))
    at = _camera_page()
    at.selectbox(key="ct_results").set_value("another results file…").run()
    at.text_input(key="ct_results_path").set_value(str(roots_env / "r.json"))
    at.text_input(key="ct_image_root").set_value(str(roots_env / "photos")).run()
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25)
    at.text_input(key="ct_dp_out").set_value(str(outside / "package")).run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    _ok(at)
    assert "outside the folders this app may use" in _texts(at) and not (outside / "package").exists()
    at.text_input(key="ct_dp_out").set_value(str(roots_env / "package"))
    at.text_input(key="ct_dp_locations").set_value(str(outside / "where.csv")).run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    _ok(at)
    assert "The locations CSV" in _texts(at) and not (roots_env / "package").exists()
    at.text_input(key="ct_dp_locations").set_value("").run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    _ok(at)
    assert (roots_env / "package" / "datapackage.json").exists()


def test_the_default_photo_roots_are_the_data_folder_and_home(monkeypatch, tmp_path):
    from ssd.workspace import OutsideRoots, check_photo_path, photo_roots

    monkeypatch.delenv("SSD_PHOTO_ROOTS", raising=False)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert photo_roots() == [str(tmp_path / "data"), str(tmp_path / "home")]
    assert photo_roots(["/srv/cards"]) == ["/srv/cards"]
    assert check_photo_path(str(tmp_path / "home" / "season"), "x") == str(tmp_path / "home" / "season")
    os.makedirs(tmp_path / "home")
    os.symlink("/etc", tmp_path / "home" / "etc-link")           # a link out of a root is outside
    with pytest.raises(OutsideRoots, match="SSD_PHOTO_ROOTS"):
        check_photo_path(str(tmp_path / "home" / "etc-link"), "x")


# ------------------------------------------------------------------ the password beyond the loopback

@pytest.fixture
def reachable():
    """The server listens on every interface (what decides the lock: Streamlit's server.address)."""
    before = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    yield
    config.set_option("server.address", before)


def test_beyond_the_loopback_the_camera_and_train_pages_stay_locked_without_a_password(app_env, reachable):
    at = _camera_page()
    assert "python -m ssd password" in _texts(at)
    assert "Run a folder" not in _texts(at) and not [t for t in at.text_input if t.key == "ct_folder"]
    at.switch_page("app_pages/train.py").run()
    _ok(at)
    assert "python -m ssd password" in _texts(at) and "Data" not in [h.value for h in at.header]
    at.switch_page("app_pages/detect.py").run()                     # uploads only: not locked
    _ok(at)
    assert "python -m ssd password" not in _texts(at)


def test_a_password_stored_hashed_unlocks_them_for_the_session(app_env, reachable):
    from ssd.base.access import hash_password

    at = _camera_page({"auth": {"password_hash": hash_password("correct horse", iterations=1000)}})
    assert not [t for t in at.text_input if t.key == "ct_folder"]
    at.text_input(key="access_password").set_value("wrong")
    at.button[0].click().run()
    _ok(at)
    assert "Wrong password" in _texts(at) and not [t for t in at.text_input if t.key == "ct_folder"]
    at.text_input(key="access_password").set_value("correct horse")
    at.button[0].click().run()
    _ok(at)
    assert [t for t in at.text_input if t.key == "ct_folder"] and "Run a folder" in _texts(at)
    at.switch_page("app_pages/train.py").run()                      # the same session: unlocked
    _ok(at)
    assert "Data" in " ".join(h.value for h in at.header)


def test_on_the_loopback_no_password_is_asked(app_env):
    before = config.get_option("server.address")
    try:
        for address in ("127.0.0.1", "localhost", "::1"):
            config.set_option("server.address", address)
            at = _camera_page()
            assert "Run a folder" in _texts(at) and "password" not in _texts(at)
    finally:
        config.set_option("server.address", before)


def test_the_password_command_prints_a_hash_the_check_accepts(monkeypatch, capsys):
    from ssd.base.access import check_password, listens_beyond_loopback
    from ssd.cli.main import main

    answers = iter(["s3cret pass", "s3cret pass"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr("sys.stdin", type("Terminal", (io.StringIO,), {"isatty": lambda self: True})(""))
    assert main(["password"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("password_hash"))
    stored = line.split("=", 1)[1].strip().strip('"')
    assert "[auth]" in out and check_password("s3cret pass", stored) and not check_password("s3cret", stored)
    assert "s3cret" not in out
    assert [listens_beyond_loopback(a) for a in (None, "", "0.0.0.0", "192.168.1.5", "::", "127.0.0.1", "localhost")] \
        == [True, True, True, True, True, False, False]


# ------------------------------------------------------------------ upload names are not Markdown

def test_an_upload_named_like_links_is_shown_as_text(app_env):
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/detect.py").run()
    name = "see www.evil-example.com mail@evil-example.com https://127.0.0.1:9/p.jpg"
    at.file_uploader(key="detect_upload").set_value([(name, b"not an image at all" * 4, "image/jpeg")]).run()
    _ok(at)
    errors = [e.value for e in at.error]
    assert errors and "evil-example" in errors[0]
    for source in errors:                                             # no autolink literal is left:
        assert "www." not in source.lower()                           # www\. is not a link
        assert not re.search(r"(?<!\\)[:@]", source)                 # nor https\:// nor mail\@host
