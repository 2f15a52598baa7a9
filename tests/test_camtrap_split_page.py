"""The Camera traps page's split per camera: the same files as ``results split``, shown, and never
written over."""
from __future__ import annotations

import json

from test_camtrap_page import _ok, _open, season  # noqa: F401  (the fixture)


def _split(at, out):
    at.text_input(key="ct_split_out").set_value(str(out)).run()
    next(b for b in at.button if b.key == "ct_split_go").click().run()


def test_split_writes_one_file_per_camera_and_refuses_to_write_over_it(season):  # noqa: F811
    at = _open(season)
    out = season / "per-camera"
    _split(at, out)
    _ok(at)
    assert sorted(p.name for p in out.iterdir()) == ["cam1.json", "cam2.json"]
    cam2 = json.loads((out / "cam2.json").read_text())
    assert [im["file"] for im in cam2["images"]] == ["u0.jpg", "u1.jpg"]
    assert cam2["detection_categories"] == {"1": "animal", "2": "person"}
    table = at.dataframe[-1].value
    assert list(table["file"]) == ["cam1.json", "cam2.json"] and list(table["images"]) == [6, 2]
    before = (out / "cam1.json").read_text()
    _split(at, out)
    assert any("exists already" in e.value for e in at.error), [e.value for e in at.error]
    assert (out / "cam1.json").read_text() == before


def test_split_with_no_folder_says_so(season):  # noqa: F811
    at = _open(season)
    next(b for b in at.button if b.key == "ct_split_go").click().run()
    assert any("folder to write the files into" in e.value for e in at.error), [e.value for e in at.error]


def test_split_of_absolute_names_names_the_pages_own_field(season):  # noqa: F811
    """Absolute names need a path prefix to split below: the page names its field, not a flag."""
    doc = json.loads((season / "season.json").read_text())
    for im in doc["images"]:
        im["file"] = str(season / "photos" / im["file"])
    (season / "season.json").write_text(json.dumps(doc))
    at = _open(season)
    _split(at, season / "per-camera")
    refusal = next(e.value for e in at.error if "absolute name" in e.value)
    assert "Path prefix in the results" in refusal and "--path-prefix" not in refusal
    assert not (season / "per-camera").exists() or not any((season / "per-camera").iterdir())
