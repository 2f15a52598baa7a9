"""The Camera traps page's drawn copies and crops: ``results draw|crops`` run as a job at the page's
thresholds, its summary shown, the images folder refused."""
from __future__ import annotations

import os
import time

from test_camtrap_page import _ok, _open, season  # noqa: F401  (the fixture)


def _click(at, key):
    next(b for b in at.button if b.key == key).click().run()


def _wait(out, action):
    from ssd.jobs.photos import current_photo_job

    deadline = time.time() + 120
    while current_photo_job(str(out), action) is not None and time.time() < deadline:
        time.sleep(0.2)


def test_crops_at_the_page_thresholds_and_the_images_folder_refused(season):  # noqa: F811
    at = _open(season)
    photos = sorted(os.listdir(season / "photos" / "cam1"))
    at.text_input(key="ct_photos_out").set_value(str(season / "photos")).run()
    _click(at, "ct_draw_go")
    assert any("images folder" in e.value for e in at.error), [e.value for e in at.error]
    assert sorted(os.listdir(season / "photos" / "cam1")) == photos
    out = season / "crops"
    at.text_input(key="ct_photos_out").set_value(str(out)).run()
    _click(at, "ct_crops_go")
    _ok(at)
    _wait(out, "crops")
    at.run()
    _ok(at)
    # at the page's 0.3 with suspects hidden: cam1/0's animal (0.9, its second box) and cam2/u1's person (0.4)
    assert sorted(p.name for p in (out / "cam1").iterdir()) == ["0.jpg_crop001.jpg"]
    assert (out / "crops.csv").read_text().count("\n") == 3
    assert any("2 written" in c.value for c in at.code), [c.value for c in at.code]


def test_the_job_log_refreshes_by_itself_only_while_a_job_runs(season, monkeypatch):  # noqa: F811
    # as the detection run's monitor: a fragment rerun every 2 s while a draw/crops job runs, none after
    import streamlit

    from ssd.jobs import photos

    real, every = streamlit.fragment, []

    def spy(func=None, *, run_every=None):
        def wrap(f):
            every.append((f.__name__, run_every))
            return real(f, run_every=run_every)
        return wrap(func) if func is not None else wrap

    monkeypatch.setattr(streamlit, "fragment", spy)
    running = {"crops": True}
    monkeypatch.setattr(photos, "current_photo_job",
                        lambda out, action: object() if running.get(action) else None)
    out = season / "crops"
    out.mkdir()
    (out / "crops.log").write_text("12/40 photos\n")
    at = _open(season)
    at.text_input(key="ct_photos_out").set_value(str(out)).run()
    _ok(at)
    polls = [s for name, s in every if name == "photo_jobs"]
    assert polls and polls[-1] == 2.0
    assert any("12/40" in c.value for c in at.code), [c.value for c in at.code]
    running["crops"] = False
    (out / "crops.log").write_text("crops: 40 written\n")
    at.run()
    _ok(at)
    assert [s for name, s in every if name == "photo_jobs"][-1] is None
    assert any("40 written" in c.value for c in at.code), [c.value for c in at.code]
