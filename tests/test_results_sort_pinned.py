"""``results sort``'s outputs pinned byte for byte: the counts it prints, its warnings, the exit
status, every refusal's message and the tree it makes (class folders, links or copies), over files
covering each case the sort handles (modes, episodes, per-class thresholds, suspect repeats,
missing photos, ``--path-prefix``, refusals of the file, the flags and the folders).

Why: sort was rewritten to read the file as it goes and keep only what placing each photo needs
(a 100,000 × 84-box file had needed ~4.3 GB parsed). The outputs of the code that shipped the
command are kept in ``tests/data/results_sort_pinned.json``. Regenerate them only for a change
meant to alter them: ``SSD_REPIN=1 .venv/bin/python -m pytest tests/test_results_sort_pinned.py``.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List

import pytest

from ssd.cli.main import main
from tests.pinned import held_to_pin, reading_in_pieces
from tests.test_results_compare_pinned import _det, _doc, _ok
from tests.test_results_summary_pinned import _episodes_doc, _summary_files

PINNED = os.path.join(os.path.dirname(__file__), "data", "results_sort_pinned.json")


def _sort_files(folder: str) -> None:
    """The summary's files, the photos ``ep.json`` and ``a.json`` name (some missing), and a sort made
    before at another threshold (``earlier/``)."""
    _summary_files(folder)
    photos = os.path.join(folder, "photos")
    names = [im["file"] for im in _episodes_doc(False)["images"]][:-2]        # the last two: missing
    for name in names:
        os.makedirs(os.path.join(photos, os.path.dirname(name)), exist_ok=True)
        with open(os.path.join(photos, name), "w") as fh:
            fh.write(name)
    for i in range(3):
        os.makedirs(os.path.join(folder, "cam1"), exist_ok=True)
        with open(os.path.join(folder, "cam1", f"{i + 1}.jpg"), "w") as fh:
            fh.write(str(i))

    def put(name: str, doc: Any) -> None:
        with open(os.path.join(folder, name), "w", encoding="utf-8") as fh:
            json.dump(doc, fh)

    put("ep_in_photos.json", _episodes_doc(False))
    put("outside.json", _doc([_ok("cam1/1.jpg"), _ok("../a.json", _det("1", 0.9))]))
    put("same_dest.json", _doc([_ok("siteA/cam2/g.jpg", _det("1", 0.9)), _ok("siteA/cam2/./g.jpg", _det("1", 0.9))]))
    put("none_found.json", _doc([_ok("nowhere/1.jpg", _det("1", 0.9))]))
    assert main(["results", "sort", "ep.json", "--images", "photos", "--into", "earlier", "--threshold", "0.05"]) == 0


#: name → the command line after ``results sort`` (files relative to the folder of inputs); each
#: sorts into ``out/NAME`` unless it names ``--into`` itself.
RUNS: Dict[str, List[str]] = {
    "ep": ["ep.json", "--images", "photos"],
    "ep_copy": ["ep.json", "--images", "photos", "--mode", "copy"],
    "ep_hardlink": ["ep.json", "--images", "photos", "--mode", "hardlink"],
    "ep_by_episode": ["ep.json", "--images", "photos", "--by-episode"],
    "ep_by_episode_gap": ["ep.json", "--images", "photos", "--by-episode", "--episode-gap", "3600"],
    "ep_by_episode_depth": ["ep.json", "--images", "photos", "--by-episode", "--camera-depth", "1"],
    "ep_recorded_by_episode": ["ep_recorded.json", "--images", "photos", "--by-episode"],
    "ep_threshold": ["ep.json", "--images", "photos", "--threshold", "0.05"],
    "ep_per_class": ["ep.json", "--images", "photos", "--thresholds", "person=0.5,vehicle=0.05", "--threshold", "0.4"],
    "ep_suspect": ["ep.json", "--images", "photos", "--show-suspect", "--threshold", "0.05"],
    "ep_beside": ["photos/ep_here.json"],
    "refused_into_beside": ["a.json"],
    "abs_prefix": ["abs_ep.json", "--images", "photos", "--path-prefix", "/data/season"],
    "win_prefix": ["win.json", "--images", "photos", "--path-prefix", "D:\\season", "--by-episode"],
    "again_same": ["ep.json", "--images", "photos", "--threshold", "0.05", "--into", "earlier"],
    "empty": ["empty.json", "--images", "photos"],
    "refused_earlier_elsewhere": ["ep.json", "--images", "photos", "--into", "earlier"],
    "refused_win": ["win.json", "--images", "photos"],
    "refused_prefix_outside": ["abs_ep.json", "--images", "photos", "--path-prefix", "/elsewhere"],
    "refused_abs": ["abs_ep.json", "--images", "photos"],
    "refused_outside": ["outside.json", "--images", "photos"],
    "refused_same_dest": ["same_dest.json", "--images", "photos"],
    "refused_none_found": ["none_found.json", "--images", "photos"],
    "refused_into_images": ["ep.json", "--images", "photos", "--into", "photos/sorted"],
    "refused_images_missing": ["ep.json", "--images", "nowhere"],
    "refused_class": ["ep.json", "--images", "photos", "--thresholds", "pikachu=0.5"],
    "refused_class_and_file": ["hostile.json", "--images", "photos", "--thresholds", "pikachu=0.5"],
    "refused_class_and_prefix": ["abs_ep.json", "--images", "photos", "--thresholds", "pikachu=0.5",
                                 "--path-prefix", "/elsewhere"],
    "refused_hostile": ["hostile.json"],
    "refused_hostile_late": ["hostile_late.json"],
    "refused_unknown_category": ["unknown_cat.json"],
    "refused_not_json": ["not_json.json"],
    "refused_no_images": ["no_images.json"],
    "refused_nan": ["nan.json"],
    "refused_missing": ["nowhere.json"],
    "refused_folder": ["folder.json"],
    "refused_dup_key_none": ["dup_key.json", "--images", "photos"],
}


def tree(folder: str, top: str) -> Dict[str, str]:
    """Every file below ``folder``: a link's target (``top`` written as ``TOP``) or a file's text,
    and whether it is a hard link."""
    out: Dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                out[rel] = "link " + os.readlink(path).replace(top, "TOP")
            else:
                with open(path) as fh:
                    out[rel] = ("hardlink " if os.stat(path).st_nlink > 1 else "file ") + fh.read()
    return out


def outputs(folder: str, capsys: Any) -> Dict[str, Dict[str, Any]]:
    """Each run's exit status, stdout, stderr (``folder`` written as ``TOP``) and the tree it made."""
    _sort_files(folder)
    with open(os.path.join(folder, "photos", "ep_here.json"), "w") as fh:
        json.dump(_episodes_doc(False), fh)
    capsys.readouterr()
    top = os.path.realpath(folder)
    got: Dict[str, Dict[str, Any]] = {}
    for name, argv in RUNS.items():
        into = [] if "--into" in argv else ["--into", f"out/{name}"]
        rc = main(["results", "sort", *argv, *into])
        captured = capsys.readouterr()
        made = argv[argv.index("--into") + 1] if "--into" in argv else f"out/{name}"
        got[name] = {"rc": rc, "stdout": captured.out.replace(top, "TOP").replace(folder, "TOP"),
                     "stderr": captured.err.replace(top, "TOP").replace(folder, "TOP"),
                     "tree": tree(made, top) if os.path.isdir(made) else None}
    return got


@pytest.mark.parametrize("read_chars", [None, 7])
def test_outputs_are_those_pinned(tmp_path, capsys, monkeypatch, read_chars):
    monkeypatch.chdir(tmp_path)
    reading_in_pieces(monkeypatch, read_chars)
    got = outputs(str(tmp_path), capsys)
    held_to_pin(got, PINNED, may_repin=read_chars is None)


def test_pinned_runs_cover_what_they_claim():
    """Not vacuous: links, copies and hard links made, episodes kept together, photos missing
    warned of; refusals that are refusals and sorted nothing new."""
    with open(PINNED, encoding="utf-8") as fh:
        pinned = json.load(fh)
    assert any(v.startswith("link TOP/photos/") for v in pinned["ep"]["tree"].values())
    assert any(v.startswith("file ") for v in pinned["ep_copy"]["tree"].values())
    assert any(v.startswith("hardlink ") for v in pinned["ep_hardlink"]["tree"].values())
    assert pinned["ep"]["tree"] != pinned["ep_by_episode"]["tree"]
    assert "not found" in pinned["ep"]["stderr"]
    for name in RUNS:
        assert (pinned[name]["rc"] != 0) == name.startswith("refused"), name
        if name.startswith("refused"):
            assert pinned[name]["stderr"].startswith("error:") and not pinned[name]["stdout"], name
            assert not pinned[name]["tree"] or name == "refused_earlier_elsewhere", name
