"""``results draw`` and ``results crops``: copies with boxes drawn, and one JPEG per detection.

Tiny synthetic photos made here with PIL and a hand-written results file: the boxes land where the
results say (in the EXIF-upright picture, as detection saw it), originals are never touched, a
second run skips what is done, names from the file stay inside the images folder, and what comes
from the file is escaped in the gallery page and guarded in the CSV.
"""
from __future__ import annotations

import csv
import json
import os

import pytest
from PIL import Image

from ssd.cli.main import main

CATS = {"1": "animal", "2": "person"}
GREY = (128, 128, 128)
BOX = [0.25, 0.25, 0.25, 0.25]            # on 200×100: x 50..100, y 25..50


def _doc(*entries):
    return {"info": {"format_version": "1.4", "detector": "test",
                     "detector_metadata": {"typical_detection_threshold": 0.2}},
            "detection_categories": dict(CATS), "images": list(entries)}


def _entry(file, *dets):
    return {"file": file, "failure": None, "max_detection_conf": max([d[1] for d in dets], default=0.0),
            "detections": [{"category": c, "conf": s, "bbox": list(b)} for c, s, b in dets]}


def _photo(path, size=(200, 100), colour=GREY):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def _season(tmp_path, *entries):
    images = tmp_path / "photos"
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_doc(*entries)))
    return images, str(results)


def _near(px, colour, tol=40):
    return all(abs(a - b) <= tol for a, b in zip(px, colour))


def test_draw_boxes_land_where_the_results_say(tmp_path):
    images, results = _season(tmp_path, _entry("a/cam1/one.jpg", ("1", 0.9, BOX)))
    _photo(images / "a/cam1/one.jpg")
    out = tmp_path / "drawn"
    assert main(["results", "draw", results, "--out", str(out), "--images", str(images), "--width", "0"]) == 0
    drawn = Image.open(out / "a/cam1/one.jpg").convert("RGB")
    assert drawn.size == (200, 100)
    assert not _near(drawn.getpixel((50, 37)), GREY)          # the left edge of the box
    assert _near(drawn.getpixel((75, 40)), GREY, 12)          # inside the box: the photo
    assert _near(drawn.getpixel((20, 80)), GREY, 12)          # outside: the photo
    assert (out / "index.html").is_file()


def test_originals_unchanged_and_a_second_run_skips(tmp_path, capsys):
    images, results = _season(tmp_path, _entry("one.jpg", ("1", 0.9, BOX)), _entry("two.jpg"))
    for name in ("one.jpg", "two.jpg"):
        _photo(images / name)
    before = {n: ((images / n).read_bytes(), os.stat(images / n).st_mtime_ns) for n in ("one.jpg", "two.jpg")}
    out = tmp_path / "drawn"
    args = ["results", "draw", results, "--out", str(out), "--images", str(images)]
    assert main(args) == 0
    first = os.stat(out / "one.jpg").st_mtime_ns
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "0 written" in err and "2 skipped" in err
    assert os.stat(out / "one.jpg").st_mtime_ns == first
    assert main(["results", "crops", results, "--out", str(tmp_path / "crops"), "--images", str(images)]) == 0
    after = {n: ((images / n).read_bytes(), os.stat(images / n).st_mtime_ns) for n in ("one.jpg", "two.jpg")}
    assert after == before


def test_out_may_not_be_the_images_folder_nor_land_on_a_photo(tmp_path, capsys):
    images, results = _season(tmp_path, _entry("one.jpg", ("1", 0.9, BOX)), _entry("d/one.jpg"))
    _photo(images / "one.jpg")
    _photo(images / "d/one.jpg")
    before = (images / "d/one.jpg").read_bytes()
    for action, out in (("draw", images), ("crops", images), ("draw", images / "d")):
        if True:
            assert main(["results", action, results, "--out", str(out), "--images", str(images)]) == 2
            assert "original" in capsys.readouterr().err
    assert (images / "d/one.jpg").read_bytes() == before


def test_threshold_and_classes_filter_and_count(tmp_path, capsys):
    images, results = _season(tmp_path,
                              _entry("a.jpg", ("1", 0.9, BOX), ("2", 0.3, [0.6, 0.6, 0.2, 0.2])),
                              _entry("b.jpg", ("2", 0.8, BOX)), _entry("c.jpg", ("1", 0.1, BOX)))
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        _photo(images / name)
    out = tmp_path / "crops"
    assert main(["results", "crops", results, "--out", str(out), "--images", str(images),
                 "--threshold", "0.5"]) == 0
    assert sorted(os.listdir(out)) == ["a.jpg_crop000.jpg", "b.jpg_crop000.jpg", "crops.csv"]
    out2 = tmp_path / "crops2"
    assert main(["results", "crops", results, "--out", str(out2), "--images", str(images),
                 "--thresholds", "person=0.2", "--threshold", "0.5", "--classes", "person"]) == 0
    assert sorted(os.listdir(out2)) == ["a.jpg_crop001.jpg", "b.jpg_crop000.jpg", "crops.csv"]
    drawn = tmp_path / "drawn"
    capsys.readouterr()
    assert main(["results", "draw", results, "--out", str(drawn), "--images", str(images),
                 "--classes", "person", "--threshold", "0.5"]) == 0
    assert sorted(os.listdir(drawn)) == ["b.jpg", "index.html"]
    assert "1 written" in capsys.readouterr().err
    assert main(["results", "draw", results, "--out", str(drawn), "--images", str(images),
                 "--classes", "deer"]) == 2


def test_crop_sizes_are_the_box_with_its_margin(tmp_path, capsys):
    images, results = _season(tmp_path, _entry("a.jpg", ("1", 0.9, BOX)))
    _photo(images / "a.jpg")
    for flags, size in (([], (50, 25)), (["--margin", "0.2"], (70, 35)), (["--square"], (50, 50)),
                        (["--margin", "0.2", "--square"], (70, 70))):
        out = tmp_path / ("c" + "".join(flags))
        assert main(["results", "crops", results, "--out", str(out), "--images", str(images), *flags]) == 0
        assert Image.open(out / "a.jpg_crop000.jpg").size == size, flags
    out = tmp_path / "small"
    capsys.readouterr()
    assert main(["results", "crops", results, "--out", str(out), "--images", str(images), "--min-size", "60"]) == 0
    assert os.listdir(out) == ["crops.csv"]
    assert "1 box(es) smaller than --min-size" in capsys.readouterr().err


def test_crops_csv_guards_a_formula_file_name(tmp_path):
    name = "=HYPERLINK(1).jpg"
    images, results = _season(tmp_path, _entry(name, ("1", 0.9, BOX)))
    _photo(images / name)
    out = tmp_path / "crops"
    assert main(["results", "crops", results, "--out", str(out), "--images", str(images)]) == 0
    with open(out / "crops.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1
    assert rows[0]["image"] == "'" + name and rows[0]["crop"].startswith("'=")
    assert rows[0]["class"] == "animal"
    assert [rows[0][k] for k in ("x_min", "y_min", "x_max", "y_max")] == ["50", "25", "100", "50"]


def test_a_name_leaving_the_images_folder_is_counted_not_read(tmp_path, capsys):
    images, results = _season(tmp_path, _entry("../secret.jpg", ("1", 0.9, BOX)), _entry("ok.jpg", ("1", 0.9, BOX)),
                              _entry("gone.jpg", ("1", 0.9, BOX)), _entry("bad.jpg", ("1", 0.9, BOX)),
                              _entry("clip.mp4", ("1", 0.9, BOX)))
    _photo(tmp_path / "secret.jpg")
    _photo(images / "ok.jpg")
    (images / "bad.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    for action in ("crops", "draw"):
        out = tmp_path / action
        capsys.readouterr()
        assert main(["results", action, results, "--out", str(out), "--images", str(images)]) == 0
        err = capsys.readouterr().err
        assert "1 outside the images folder" in err and "secret.jpg" in err
        assert "2 missing" in err and "gone.jpg" in err and "clip.mp4" in err     # a clip is looked for too
        assert "1 unreadable" in err and "bad.jpg" in err
        assert not (tmp_path / "secret.jpg_crop000.jpg").exists() and not (out / "secret.jpg").exists()


def test_exif_rotated_photo_crops_the_upright_region(tmp_path):
    upright = Image.new("RGB", (200, 100), GREY)
    upright.paste((255, 0, 0), (50, 25, 100, 50))             # red exactly where BOX is, upright
    stored = upright.rotate(90, expand=True)                   # as the camera wrote it: 100×200
    exif = Image.Exif()
    exif[274] = 6                                              # display: rotate 90° clockwise
    images, results = _season(tmp_path, _entry("r.jpg", ("1", 0.9, BOX)))
    images.mkdir()
    stored.save(images / "r.jpg", exif=exif, quality=95)
    out = tmp_path / "crops"
    assert main(["results", "crops", results, "--out", str(out), "--images", str(images)]) == 0
    crop = Image.open(out / "r.jpg_crop000.jpg").convert("RGB")
    assert crop.size == (50, 25)
    assert _near(crop.getpixel((25, 12)), (255, 0, 0))


def test_gallery_escapes_names_from_the_results(tmp_path):
    name = "<script>alert(1)</script>.jpg"
    images, results = _season(tmp_path, _entry(name, ("1", 0.9, BOX)))
    _photo(images / name)
    out = tmp_path / "drawn"
    assert main(["results", "draw", results, "--out", str(out), "--images", str(images)]) == 0
    page = (out / "index.html").read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "animal" in page


def test_sample_takes_n_images_the_same_each_time(tmp_path):
    names = [f"p{i}.jpg" for i in range(6)]
    images, results = _season(tmp_path, *[_entry(n, ("1", 0.9, BOX)) for n in names])
    for n in names:
        _photo(images / n, size=(20, 10))
    picked = []
    for k in range(2):
        out = tmp_path / f"s{k}"
        assert main(["results", "draw", results, "--out", str(out), "--images", str(images),
                     "--sample", "3", "--seed", "7"]) == 0
        picked.append(sorted(set(os.listdir(out)) - {"index.html"}))
    assert len(picked[0]) == 3 and picked[0] == picked[1]


@pytest.mark.parametrize("action", ["draw", "crops"])
def test_help_names_the_flags(action, capsys):
    with pytest.raises(SystemExit):
        main(["results", action, "--help"])
    assert "--path-prefix" in capsys.readouterr().out


def test_out_above_the_images_folder_may_not_land_on_a_photo(tmp_path, capsys):
    # --out is the images folder's parent: the copy of "photos/one.jpg" would be photos/one.jpg itself
    images, results = _season(tmp_path, _entry("one.jpg", ("1", 0.9, BOX)), _entry("photos/one.jpg"))
    _photo(images / "one.jpg")
    _photo(images / "photos/one.jpg")
    before = (images / "one.jpg").read_bytes()
    assert main(["results", "draw", results, "--out", str(tmp_path), "--images", str(images)]) == 2
    assert "original" in capsys.readouterr().err
    assert (images / "one.jpg").read_bytes() == before and not (tmp_path / "index.html").exists()


def test_a_crop_is_named_by_its_box_place_at_any_threshold(tmp_path):
    images, results = _season(tmp_path, _entry("a.jpg", ("2", 0.05, BOX), ("1", 0.9, BOX)))
    _photo(images / "a.jpg")
    out = tmp_path / "crops"
    assert main(["results", "crops", results, "--out", str(out), "--images", str(images), "--threshold", "0.5"]) == 0
    assert sorted(os.listdir(out)) == ["a.jpg_crop001.jpg", "crops.csv"]


def test_the_page_job_runs_the_command_with_the_page_thresholds(tmp_path):
    import time

    from ssd.inference.filtering import ShownFilter
    from ssd.jobs.photos import current_photo_job, photo_job_argv, photo_job_log, start_photo_job

    shown = ShownFilter.of(0.5, hide_suspect=False, per_class={"person": 0.2})
    assert photo_job_argv("crops", "r.json", "o", "i", shown, "D:\\\\s", ["person"]) == [
        "results", "crops", "r.json", "--out", "o", "--images", "i", "--threshold", "0.5",
        "--thresholds", "person=0.2", "--show-suspect", "--classes", "person", "--path-prefix", "D:\\\\s"]
    images, results = _season(tmp_path, _entry("a.jpg", ("1", 0.9, BOX)))
    _photo(images / "a.jpg")
    with pytest.raises(Exception, match="images folder"):
        start_photo_job("draw", results, str(images), str(images), shown)
    assert sorted(os.listdir(images)) == ["a.jpg"]
    out = tmp_path / "drawn"
    start_photo_job("draw", results, str(out), str(images), shown)
    deadline = time.time() + 120
    while current_photo_job(str(out), "draw") is not None and time.time() < deadline:
        time.sleep(0.2)
    assert (out / "a.jpg").is_file() and (out / "index.html").is_file(), photo_job_log(str(out), "draw")
    assert "1 written" in photo_job_log(str(out), "draw")


def test_atomic_writes_from_threads_keep_the_umask(tmp_path, monkeypatch):
    # the pool writes from threads; temp_beside read the umask by setting it to 0 and back: a second
    # thread reading it in between took 0 for the umask (a world-writable file) and put 0 back for good
    import threading

    from ssd.base import atomic

    real = os.umask
    inner: list = []

    def umask(mask):
        old = real(mask)
        if mask == 0 and not inner:               # the first thread is between its two calls
            t = threading.Thread(target=atomic.atomic_write_bytes, args=(str(tmp_path / "b"), b"b"))
            inner.append(t)
            t.start()
            t.join(0.5)                           # with a lock it waits for the first one: let it
        return old

    before = real(0o022)
    try:
        monkeypatch.setattr(atomic.os, "umask", umask)
        atomic.atomic_write_bytes(str(tmp_path / "a"), b"a")
        inner[0].join(5)
        monkeypatch.undo()
        assert real(0o022) == 0o022
        assert os.stat(tmp_path / "b").st_mode & 0o777 == 0o644
        assert os.stat(tmp_path / "a").st_mode & 0o777 == 0o644
    finally:
        real(before)


def test_gallery_shows_at_most_its_cap_per_group_and_counts_all(tmp_path, monkeypatch):
    # a season's million photos on one page is a page no browser opens: a cap per group, all counted
    from ssd.camtrap import drawing_copies

    monkeypatch.setattr(drawing_copies, "GALLERY_PER_GROUP", 2)
    names = [f"p{i}.jpg" for i in range(5)]
    images, results = _season(tmp_path, *[_entry(n, ("1", 0.9, BOX)) for n in names])
    for n in names:
        _photo(images / n, size=(20, 10))
    out = tmp_path / "drawn"
    assert main(["results", "draw", results, "--out", str(out), "--images", str(images)]) == 0
    page = (out / "index.html").read_text()
    assert page.count("<figure>") == 2 and "animal (5)" in page and "3 more" in page
    assert len(os.listdir(out)) == 6


def _clip(path, frames=8, size=(96, 64)):
    """A clip whose frame ``i`` is a flat grey of ``20 + 25 * i``: a frame's pixels say which it is."""
    import cv2
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, size)
    assert w.isOpened()
    for i in range(frames):
        w.write(np.full((size[1], size[0], 3), 20 + 25 * i, np.uint8))
    w.release()


def _video_entry(file, *dets):
    """A MegaDetector 1.6 video entry: ``dets`` are (category, conf, bbox, frame_number)."""
    return {"file": file, "failure": None, "frame_rate": 5.0, "frames_processed": list(range(0, 8, 2)),
            "max_detection_conf": max([d[1] for d in dets], default=0.0),
            "detections": [{"category": c, "conf": s, "bbox": list(b), "frame_number": f} for c, s, b, f in dets]}


def test_a_video_is_drawn_and_cropped_frame_by_frame(tmp_path, capsys):
    # frames 2 and 6 carry a box above the threshold, frame 4 only one below it
    images, results = _season(tmp_path, _entry("one.jpg", ("1", 0.9, BOX)),
                              _video_entry("cam/clip.mp4", ("1", 0.9, BOX, 6), ("2", 0.8, BOX, 2),
                                           ("1", 0.05, BOX, 4)))
    _photo(images / "one.jpg")
    _clip(images / "cam/clip.mp4")
    drawn = tmp_path / "drawn"
    assert main(["results", "draw", results, "--out", str(drawn), "--images", str(images), "--width", "0"]) == 0
    assert "3 written" in capsys.readouterr().err          # the photo and two frames
    assert sorted(os.listdir(drawn / "cam")) == ["clip.mp4_frame000002.jpg", "clip.mp4_frame000006.jpg"]
    for frame in (2, 6):
        copy = Image.open(drawn / f"cam/clip.mp4_frame{frame:06d}.jpg").convert("RGB")
        assert copy.size == (96, 64)
        grey = 20 + 25 * frame
        assert _near(copy.getpixel((5, 60)), (grey,) * 3, 12)          # outside the box: that frame
        assert not _near(copy.getpixel((24, 24)), (grey,) * 3, 12)     # the box's left edge, drawn
    page = (drawn / "index.html").read_text()
    assert "clip.mp4_frame000006.jpg" in page and "frame 6" in page
    crops = tmp_path / "crops"
    assert main(["results", "crops", results, "--out", str(crops), "--images", str(images)]) == 0
    assert sorted(os.listdir(crops / "cam")) == ["clip.mp4_crop000.jpg", "clip.mp4_crop001.jpg"]
    crop = Image.open(crops / "cam/clip.mp4_crop000.jpg").convert("RGB")
    assert crop.size == (24, 16) and _near(crop.getpixel((12, 8)), (20 + 25 * 6,) * 3, 12)
    with open(crops / "crops.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["crop"], r["frame"]) for r in rows] == [        # a video's frames in order
        ("one.jpg_crop000.jpg", ""), ("cam/clip.mp4_crop001.jpg", "2"), ("cam/clip.mp4_crop000.jpg", "6")]


def test_a_video_that_cannot_be_read_is_named_once_as_unreadable(tmp_path, capsys):
    images, results = _season(tmp_path, _video_entry("bad.mp4", ("1", 0.9, BOX, 0), ("1", 0.9, BOX, 2)))
    images.mkdir()
    (images / "bad.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video at all")
    for action in ("draw", "crops"):
        out = tmp_path / action
        capsys.readouterr()
        assert main(["results", action, results, "--out", str(out), "--images", str(images)]) == 0
        err = capsys.readouterr().err
        assert "1 unreadable: 'bad.mp4'" in err and "0 written" in err
        assert not [n for n in os.listdir(out) if "bad.mp4" in n]


def test_a_rerun_removes_only_the_temporary_files_a_killed_run_left(tmp_path, capsys):
    # atomic writes make .NAME.XXXXXXXX.tmp beside NAME; a killed run leaves them: a rerun removes
    # those of its own outputs, and nothing else (other names, links, folders, the images folder)
    images, results = _season(tmp_path, _entry("d/one.jpg", ("1", 0.9, BOX)))
    _photo(images / "d/one.jpg")
    stale = {"draw": [".index.html.k2x_9abc.tmp", "d/.one.jpg.abcd1234.tmp", "e/.x.png.zzzzzzzz.tmp"],
             "crops": [".crops.csv.a1b2c3d4.tmp", "d/.one.jpg_crop000.jpg.qwertyui.tmp"]}
    kept = [".one.jpg.tmp", ".one.jpg.ABCD1234.tmp", ".one.jpg.abc.tmp", "d/.notes.txt.abcd1234.tmp",
            "one.jpg.abcd1234.tmp", ".one.jpg.abcd1234.tmp.bak"]
    for action, other in (("draw", "crops"), ("crops", "draw")):
        out = tmp_path / action
        for name in stale[action] + stale[other] + kept:
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            (out / name).write_bytes(b"half")
        (out / "f").mkdir()
        os.symlink(images / "d/one.jpg", out / "f/.link.jpg.abcd1234.tmp")
        (out / "f/.dir.jpg.abcd1234.tmp").mkdir()
        capsys.readouterr()
        assert main(["results", action, results, "--out", str(out), "--images", str(images)]) == 0
        assert f"{len(stale[action])} unfinished" in capsys.readouterr().err
        for name in stale[action]:
            assert not (out / name).exists(), name
        for name in stale[other] + kept + ["f/.link.jpg.abcd1234.tmp", "f/.dir.jpg.abcd1234.tmp"]:
            assert os.path.lexists(out / name), name
    assert (images / "d/one.jpg").is_file()


def test_a_rerun_into_the_images_folders_parent_leaves_the_images_folder_alone(tmp_path):
    images, results = _season(tmp_path, _entry("one.jpg", ("1", 0.9, BOX)))
    _photo(images / "one.jpg")
    (images / ".one.jpg.abcd1234.tmp").write_bytes(b"not ours")
    (tmp_path / ".one.jpg.abcd1234.tmp").write_bytes(b"half")
    assert main(["results", "draw", results, "--out", str(tmp_path), "--images", str(images)]) == 0
    assert not (tmp_path / ".one.jpg.abcd1234.tmp").exists()
    assert (images / ".one.jpg.abcd1234.tmp").read_bytes() == b"not ours"


@pytest.mark.parametrize("action", ["draw", "crops"])
def test_a_photo_listed_twice_is_refused_before_anything_is_written(tmp_path, capsys, action):
    # as results sort and the COCO export refuse it: two entries of one photo would give one output
    # and a second silently "skipped (already there)", or two rows of one crop
    images, results = _season(tmp_path, _entry("d/a.jpg", ("1", 0.9, BOX)), _entry("b.jpg"),
                              _entry("d/./a.jpg", ("2", 0.8, BOX)))
    _photo(images / "d/a.jpg")
    _photo(images / "b.jpg")
    out = tmp_path / "out"
    assert main(["results", action, results, "--out", str(out), "--images", str(images)]) == 2
    err = capsys.readouterr().err
    assert "listed twice" in err and "'d/a.jpg'" in err and "nothing was written" in err
    assert not out.exists() or not os.listdir(out)


def test_a_video_box_without_a_frame_number_is_drawn_on_the_frame_the_browser_shows(tmp_path):
    # an older or hand-made file: no frame_number, frames_processed not a list of numbers
    entry = _video_entry("clip.mp4")
    entry.update(frames_processed={"x": 1}, detections=[{"category": "1", "conf": 0.9, "bbox": BOX}])
    images, results = _season(tmp_path, entry)
    _clip(images / "clip.mp4")
    out = tmp_path / "drawn"
    assert main(["results", "draw", results, "--out", str(out), "--images", str(images)]) == 0
    assert sorted(os.listdir(out)) == ["clip.mp4_frame000000.jpg", "index.html"]


@pytest.mark.parametrize("action", ["draw", "crops", "sort", "export"])
def test_help_says_images_defaults_to_the_folder_the_results_file_is_in(action, capsys, monkeypatch):
    """"the results' folder" read as the photos' folder the run recorded; it is the results file's
    own folder, which is why a season.json beside the photos needs no --images and one elsewhere does."""
    monkeypatch.setenv("COLUMNS", "400")
    with pytest.raises(SystemExit):
        main(["results", action, "--help"])
    line = next(l for l in capsys.readouterr().out.splitlines() if l.strip().startswith("--images"))
    assert "default: the folder the results file is in" in line, line


@pytest.mark.parametrize("action", ["draw", "crops"])
def test_a_video_without_a_box_is_reported_in_words_true_of_either_command(action, tmp_path, capsys):
    """``crops`` writes no frames: its summary said "(no frame written)" of a clip without a box, as
    ``draw``'s does. Both now say nothing was written for it."""
    images, results = _season(tmp_path, _video_entry("cam/clip.mp4", ("1", 0.05, BOX, 4)))
    _clip(images / "cam/clip.mp4")
    assert main(["results", action, results, "--out", str(tmp_path / "out"), "--images", str(images)]) == 0
    err = capsys.readouterr().err
    assert "1 video(s) without a box at these thresholds (nothing written for them)" in err, err
