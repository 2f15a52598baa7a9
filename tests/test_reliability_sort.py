"""Sorting photos into class folders never destroys or leaks a file: each test failed before its fix.

A results file is untrusted (it may come from anyone), and the target folder may already hold
things: sort reads only inside the images folder, writes only new files under the target, never
through a link, and checks every entry before it writes anything.
"""
from __future__ import annotations

import json
import os

import pytest

from ssd.camtrap.megadetector import ResultsError
from ssd.cli.main import main

CATS = {"1": "animal"}


def _doc(*entries):
    return {"info": {"format_version": "1.6", "detector": "ssd-studio:x",
                     "detector_metadata": {"typical_detection_threshold": 0.2,
                                           "conservative_detection_threshold": 0.08}},
            "detection_categories": dict(CATS), "images": list(entries)}


def _empty(file):
    return {"file": file, "detections": [], "failure": None, "width": 4, "height": 4, "max_detection_conf": 0.0}


def _animal(file):
    return {"file": file, "failure": None, "width": 4, "height": 4, "max_detection_conf": 0.9,
            "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}]}


def _write(path, doc):
    path.write_text(json.dumps(doc))
    return str(path)


def _tree(root):
    """Every path under ``root`` (links not followed) with what it is."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = "link" if os.path.islink(p) else "dir" if os.path.isdir(p) else "file"
    return out


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_sorting_into_the_photos_own_folder_is_refused_and_no_original_is_touched(tmp_path, capsys, mode):
    photos = tmp_path / "S"
    (photos / "empty").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"photo a")
    (photos / "empty" / "a.jpg").write_bytes(b"photo b")        # another photo that happens to be there
    results = _write(tmp_path / "S.json", _doc(_empty("a.jpg"), _empty("empty/a.jpg")))
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(photos), "--mode", mode])
    err = capsys.readouterr().err
    assert rc == 2 and "inside the images folder" in err
    assert (photos / "empty" / "a.jpg").read_bytes() == b"photo b" and not (photos / "empty" / "a.jpg").is_symlink()
    assert (photos / "a.jpg").read_bytes() == b"photo a"
    inner = photos / "sub"
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(inner), "--mode", mode])
    assert rc == 2 and "inside the images folder" in capsys.readouterr().err and not inner.exists()


def test_sort_never_replaces_a_file_already_in_the_target(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    (photos / "b.jpg").write_bytes(b"b")
    (out / "empty").mkdir(parents=True)
    (out / "empty" / "b.jpg").write_bytes(b"someone's file")
    results = _write(tmp_path / "r.json", _doc(_empty("a.jpg"), _empty("b.jpg")))
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(out), "--mode", "copy"])
    err = capsys.readouterr().err
    assert rc == 2 and "b.jpg" in err and "already exists" in err
    assert (out / "empty" / "b.jpg").read_bytes() == b"someone's file"
    assert not (out / "empty" / "a.jpg").exists()               # refused before anything was written
    os.unlink(out / "empty" / "b.jpg")
    assert main(["results", "sort", results, "--images", str(photos), "--into", str(out)]) == 0
    assert main(["results", "sort", results, "--images", str(photos), "--into", str(out)]) == 0   # again: as is
    assert os.readlink(out / "empty" / "a.jpg") == str(photos / "a.jpg")


@pytest.mark.parametrize("name", ["/etc/passwd", "//etc/passwd", "../outside.jpg", "sub/../../outside.jpg",
                                  "link/secret.jpg", "leak.jpg"])
def test_sort_reads_only_inside_the_images_folder(tmp_path, capsys, name):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    (photos / "ok.jpg").write_bytes(b"ok")
    (tmp_path / "outside.jpg").write_bytes(b"secret")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "secret.jpg").write_bytes(b"secret")
    os.symlink(tmp_path / "elsewhere", photos / "link")          # a link inside that leads out
    os.symlink(tmp_path / "outside.jpg", photos / "leak.jpg")    # a file that is such a link
    results = _write(tmp_path / "r.json", _doc(_empty("ok.jpg"), _empty(name)))
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(out), "--mode", "copy"])
    err = capsys.readouterr().err
    assert rc == 2 and "outside the images folder" in err and name in err
    assert not out.exists() or _tree(out) == {}                 # nothing sorted, not even ok.jpg


def test_sort_never_writes_through_a_link_in_the_target(tmp_path, capsys):
    photos, out, victim = tmp_path / "photos", tmp_path / "out", tmp_path / "victim"
    photos.mkdir()
    victim.mkdir()
    out.mkdir()
    (photos / "x.jpg").write_bytes(b"new")
    (victim / "x.jpg").write_bytes(b"precious")
    os.symlink("../victim", out / "empty")
    results = _write(tmp_path / "r.json", _doc(_empty("x.jpg")))
    for mode in ("symlink", "copy", "hardlink"):
        rc = main(["results", "sort", results, "--images", str(photos), "--into", str(out), "--mode", mode])
        err = capsys.readouterr().err
        assert rc == 2 and "symbolic link" in err
        assert (victim / "x.jpg").read_bytes() == b"precious" and not (victim / "x.jpg").is_symlink()
    assert sorted(os.listdir(victim)) == ["x.jpg"]


def test_a_name_beginning_with_two_dots_sorts_and_a_refusal_sorts_nothing(tmp_path, capsys):
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir()
    for n in ("..foo.jpg", "a.jpg", "b.jpg"):
        (photos / n).write_bytes(n.encode())
    results = _write(tmp_path / "r.json", _doc(_empty("..foo.jpg"), _animal("a.jpg")))
    assert main(["results", "sort", results, "--images", str(photos), "--into", str(out)]) == 0
    assert os.path.islink(out / "empty" / "..foo.jpg") and os.path.islink(out / "animal" / "a.jpg")
    capsys.readouterr()
    # a bad entry after good ones: nothing at all is sorted, and the message says so
    results = _write(tmp_path / "r2.json", _doc(_animal("b.jpg"), _empty("../../x.jpg")))
    rc = main(["results", "sort", results, "--images", str(photos), "--into", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    assert rc == 2 and "nothing was sorted" in err
    assert not (tmp_path / "out2").exists()


def test_the_library_call_checks_the_same_rules(tmp_path):
    from ssd.camtrap.sorting import sort_into_folders

    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(b"a")
    with pytest.raises(ResultsError, match="outside the images folder"):
        sort_into_folders(_doc(_empty("/etc/hostname")), str(tmp_path / "imgs"), str(tmp_path / "out"), 0.2)
    counts = sort_into_folders(_doc(_empty("a.jpg"), _empty("gone.jpg")), str(tmp_path / "imgs"),
                               str(tmp_path / "out"), 0.2, "hardlink")
    assert counts == {"empty": 1, "missing": 1}
    assert os.path.samefile(tmp_path / "out" / "empty" / "a.jpg", tmp_path / "imgs" / "a.jpg")


def test_a_name_that_is_not_utf8_sorts_from_its_escaped_form(tmp_path):
    from ssd.camtrap.sorting import sort_into_folders

    photos = tmp_path / "photos"
    photos.mkdir()
    with open(os.path.join(os.fsencode(photos), b"bad\xff.jpg"), "wb") as fh:
        fh.write(b"x")
    counts = sort_into_folders(_doc(_empty("bad\\xff.jpg")), str(photos), str(tmp_path / "out"), 0.2)
    assert counts == {"empty": 1}
    assert os.listdir(os.fsencode(tmp_path / "out" / "empty")) == [b"bad\xff.jpg"]


def test_the_resolver_answers_each_name_as_a_full_resolution_would(tmp_path):
    """Folders are resolved once per plan: a second name in a refused folder is refused too, a link
    to a file inside is followed to that file, and an ordinary name resolves below the real root."""
    from ssd.base.safe_paths import InsideResolver, PathRefused

    photos = tmp_path / "photos"
    (photos / "cam").mkdir(parents=True)
    (photos / "cam" / "a.jpg").write_bytes(b"a")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", photos / "out")
    os.symlink(photos / "cam" / "a.jpg", photos / "cam" / "alias.jpg")
    os.symlink(photos, tmp_path / "root-link")
    resolver = InsideResolver(str(tmp_path / "root-link"))
    for name in ("out/x.jpg", "out/y.jpg"):
        with pytest.raises(PathRefused):
            resolver.resolve(name)
    assert resolver.resolve("cam/a.jpg") == (["cam", "a.jpg"], str(photos / "cam" / "a.jpg"))
    assert resolver.resolve("cam/alias.jpg") == (["cam", "alias.jpg"], str(photos / "cam" / "a.jpg"))


def test_results_saved_away_from_the_photos_are_refused_naming_the_recorded_folder(tmp_path, capsys):
    """``detect /data/season --json ~/season.json`` then ``results sort ~/season.json --into …`` looked
    for the photos beside the results: every image "missing", exit 0, an empty target folder."""
    photos = tmp_path / "season"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    doc = _doc(_empty("a.jpg"))
    doc["info"]["ssd_batch"] = {"images_root": str(photos), "absolute_paths": False}
    (tmp_path / "home").mkdir()
    results = _write(tmp_path / "home" / "season.json", doc)
    into = tmp_path / "sorted"
    assert main(["results", "sort", results, "--into", str(into)]) == 2
    err = capsys.readouterr().err
    assert "none of the 1 image(s)" in err and f"--images {photos}" in err and "nothing was sorted" in err
    assert not into.exists()
    assert main(["results", "sort", results, "--images", str(photos), "--into", str(into)]) == 0
    assert os.path.islink(into / "empty" / "a.jpg")


def test_some_originals_missing_are_counted_and_named_on_stderr(tmp_path, capsys):
    photos = tmp_path / "imgs"
    photos.mkdir()
    (photos / "a.jpg").write_bytes(b"a")
    results = _write(tmp_path / "r.json", _doc(_empty("a.jpg"), _empty("gone.jpg")))
    assert main(["results", "sort", results, "--images", str(photos), "--into", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "missing" in captured.out
    assert "1 of 2 image(s) not found" in captured.err and "gone.jpg" in captured.err
