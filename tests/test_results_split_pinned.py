"""``results split``'s outputs pinned byte for byte: the lines it prints, the exit status, every
refusal's message and every file it writes (each part's text, nothing else left in the folder), over
files covering each case the split handles (camera rules from the flag or the file, the recorded
images folder and depth moved down, ``--path-prefix``, Windows names, file names no file system
takes, names too long, folders that would share a file, refusals of the file, the names and the
output folder).

Why: split was rewritten to read the file as it goes (a first pass for the names, a second copying
each entry into its part) rather than hold the document parsed (~4.3 GB at 100,000 images of 84
boxes). The outputs of the code that shipped the command are kept in
``tests/data/results_split_pinned.json``. Regenerate them only for a change meant to alter them:
``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_results_split_pinned.py``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from tests.pinned import held_to_pin, reading_in_pieces
from tests.test_results_compare_pinned import _det, _doc, _fail, _ok
from tests.test_results_summary_pinned import FILE_REFUSALS, _episodes_doc, _summary_files

PINNED = os.path.join(os.path.dirname(__file__), "data", "results_split_pinned.json")


def _split_files(folder: str) -> None:
    """The summary's files and those only a split reads differently."""
    _summary_files(folder)

    def put(name: str, doc: Any) -> None:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            fh.write(doc if isinstance(doc, str) else json.dumps(doc))

    deep = _episodes_doc(True)
    deep["info"]["ssd_batch"] = {"camera_depth": 2, "images_root": "season", "absolute_paths": False, "x": [1]}
    put("ep_depth2.json", deep)
    absolute = _episodes_doc(True)
    absolute["info"]["ssd_batch"] = {"camera_depth": 1, "images_root": "/data/season", "absolute_paths": True}
    put("ep_absolute_root.json", absolute)
    put("no_info.json", {"detection_categories": {"1": "animal"}, "images": [_ok("c/1.jpg"), _ok("2.jpg")],
                         "extra": "kept"})
    put("odd_names.json", _doc([_ok("CON/1.jpg"), _ok("ab:c*d/2.jpg"), _ok("nul.x/3.jpg"), _ok("ü ñ/4.jpg"),
                                _ok(("long" * 60) + "/5.jpg"), _ok(("long" * 60) + "er/6.jpg"),
                                _ok("tab\there/7.jpg", _det("2", 0.5), datetime="2024:06:01 10:00:00"),
                                _fail("CON/8.jpg")]))
    put("shared.json", _doc([_ok("site_A/cam/1.jpg"), _ok("site/A_cam/2.jpg")]))
    put("shared_case.json", _doc([_ok("CamA/1.jpg"), _ok("cama/2.jpg")]))
    put("shared_nfc.json", _doc([_ok("caf\u00e9/1.jpg"), _ok("cafe\u0301/2.jpg")]))
    put("dot_name.json", _doc([_ok("a/./b/1.jpg"), _ok("a//b/2.jpg"), _ok("a/b/3.jpg")]))
    put("backslash.json", _doc([_ok("cam1\\sub\\1.jpg"), _ok("cam1/sub/2.jpg")]))
    put("big_number.json", _doc([_ok("c/1.jpg", width=1e400)]))
    put("big_number_info.json", dict(_doc([_ok("c/1.jpg")]), extra={"v": 1e400}))
    put("ordered.json", '{"images": [{"max_detection_conf": 0.5, "file": "c/1.jpg", "detections": '
                        '[{"bbox": [1e-05, 0.50, 1.0E2, -0.0], "conf": 5e-1, "category": "1"}], "z": "\\u00e9\\n"}], '
                        '"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"}}')
    os.makedirs(os.path.join(folder, "taken"))
    with open(os.path.join(folder, "taken", "siteA_cam1.json"), "w") as fh:
        fh.write("mine")
    with open(os.path.join(folder, "a_file"), "w") as fh:
        fh.write("mine")


#: name → the command line after ``results split`` (files relative to the folder of inputs); each
#: splits into ``out/NAME`` unless it names ``--out`` itself.
RUNS: Dict[str, List[str]] = {
    "a": ["a.json"],
    "b_indented": ["b.json"],
    "b_images_first": ["b_images_first.json"],
    "ep": ["ep.json"],
    "ep_depth0": ["ep.json", "--camera-depth", "0"],
    "ep_depth1": ["ep.json", "--camera-depth", "1"],
    "ep_depth3": ["ep.json", "--camera-depth", "3"],
    "ep_depth_auto": ["ep.json", "--camera-depth", "auto"],
    "ep_recorded": ["ep_recorded.json"],
    "ep_depth2_file": ["ep_depth2.json"],
    "ep_depth2_file_flag": ["ep_depth2.json", "--camera-depth", "1"],
    "ep_absolute_root": ["ep_absolute_root.json"],
    "no_info": ["no_info.json"],
    "odd_names": ["odd_names.json"],
    "dot_name": ["dot_name.json"],
    "backslash": ["backslash.json"],
    "ordered": ["ordered.json"],
    "empty": ["empty.json"],
    "ep_none": ["ep_none.json"],
    "bom": ["bom.json"],
    "dup_key": ["dup_key.json"],
    "abs_prefix": ["abs_ep.json", "--path-prefix", "/data/season"],
    "abs_prefix_upper": ["abs_ep.json", "--path-prefix", "/data", "--camera-depth", "1"],
    "win_prefix": ["win.json", "--path-prefix", "D:\\season"],
    "existing_folder": ["a.json", "--out", "taken/sub"],
    "refused_big_number": ["big_number.json"],
    "refused_big_number_info": ["big_number_info.json"],
    "refused_win": ["win.json"],
    "refused_abs": ["abs_ep.json"],
    "refused_prefix_outside": ["abs_ep.json", "--path-prefix", "/elsewhere"],
    "refused_prefix_relative": ["a.json", "--path-prefix", "/data/season"],
    "refused_prefix_twice": ["abs_twice.json", "--path-prefix", "/data"],
    "refused_dotdot": ["dotdot.json"],
    "refused_shared": ["shared.json"],
    "refused_shared_case": ["shared_case.json"],
    "refused_shared_nfc": ["shared_nfc.json"],
    "refused_part_exists": ["ep.json", "--out", "taken"],
    "refused_out_is_file": ["ep.json", "--out", "a_file"],
    "refused_depth": ["ep.json", "--camera-depth", "-1"],
    **FILE_REFUSALS,
}


def tree(folder: str) -> Dict[str, str]:
    """Every file below ``folder`` (hidden ones too: a temporary file left is a fault) and its text."""
    out: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as fh:
                out[os.path.relpath(path, folder)] = fh.read()
    return out


def outputs(folder: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    """Each run's exit status, stdout, stderr (``folder`` written as ``TOP``) and the files it made."""
    _split_files(folder)
    capsys.readouterr()
    top = os.path.realpath(folder)
    got: Dict[str, Dict[str, Any]] = {}
    for name, argv in RUNS.items():
        out = [] if "--out" in argv else ["--out", f"out/{name}"]
        try:
            rc: Any = main(["results", "split", *argv, *out])
        except (Exception, SystemExit) as err:       # what escapes main is pinned too
            rc = f"raised {type(err).__name__}: {err}"
        captured = capsys.readouterr()
        made = argv[argv.index("--out") + 1] if "--out" in argv else f"out/{name}"
        got[name] = {"rc": rc, "stdout": captured.out.replace(top, "TOP").replace(folder, "TOP"),
                     "stderr": captured.err.replace(top, "TOP").replace(folder, "TOP"),
                     "tree": tree(made) if os.path.isdir(made) else None}
    return got


@pytest.mark.parametrize("read_chars, open_at_once", [(None, None), (7, None), (None, 1), (7, 2)])
def test_outputs_are_those_pinned(tmp_path, capsys, monkeypatch, read_chars, open_at_once):
    """``read_chars=7``: files read 7 characters at a time, values cut at every place a buffer can
    end; ``open_at_once``: parts written a few at a time, the file read again for each few."""
    monkeypatch.chdir(tmp_path)
    reading_in_pieces(monkeypatch, read_chars)
    if open_at_once is not None:
        from ssd.camtrap import splitting
        monkeypatch.setattr(splitting, "OPEN_AT_ONCE", open_at_once)
    got = outputs(str(tmp_path), capsys)
    held_to_pin(got, PINNED, may_repin=read_chars is None and open_at_once is None)


def test_pinned_runs_cover_what_they_claim():
    """Not vacuous: parts written with their boxes, depths and folders moved down, odd names made
    safe; refusals that are refusals and wrote nothing."""
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    ep = pinned["ep"]["tree"]
    assert len(ep) > 3 and '"bbox":[0.1,0.2,0.3,0.4]' in ep["siteA_cam1.json"]
    assert pinned["ep_depth1"]["tree"].keys() != ep.keys()
    assert '"camera_depth": 0' in pinned["ep_depth2_file"]["tree"]["siteA_cam1.json"]
    assert '"images_root": "season/siteA/cam1"' in pinned["ep_depth2_file"]["tree"]["siteA_cam1.json"]
    assert any(k.startswith("_CON") for k in pinned["odd_names"]["tree"])
    assert pinned["win_prefix"]["tree"].keys() == ep.keys()
    assert pinned["refused_part_exists"]["tree"]["siteA_cam1.json"] == "mine"
    for name in RUNS:
        assert (pinned[name]["rc"] != 0) == name.startswith("refused"), name
        if name.startswith("refused"):
            assert not pinned[name]["tree"] or name == "refused_part_exists", name
            assert pinned[name]["stderr"].startswith(("error:", "usage:")) or "raised" in str(pinned[name]["rc"]), name
