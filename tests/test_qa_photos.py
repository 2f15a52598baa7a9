"""Hostile inputs for ``results draw`` and ``results crops``: what a QA pass found broken.

Each test builds a tiny season in ``tmp_path`` and runs the command as a person would."""
from __future__ import annotations

import csv
import json
import os
import struct
import zlib

import pytest
from PIL import Image

from ssd.cli.main import main

CATS = {"1": "animal"}
BOX = [0.25, 0.25, 0.5, 0.5]


def _results(tmp_path, *files):
    dets = [{"category": "1", "conf": 0.9, "bbox": list(BOX)}]
    doc = {"info": {"format_version": "1.4"}, "detection_categories": dict(CATS),
           "images": [{"file": f, "max_detection_conf": 0.9, "detections": dets} for f in files]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))        # json writes a lone surrogate as \udcff, as MegaDetector does
    return str(path)


def _photo(path, colour=(128, 128, 128), size=(64, 48)):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_two_photos_with_one_copy_name_are_refused_not_overwritten(tmp_path, capsys):
    # a TIFF's copy is NAME.tif.jpg: beside a photo of that name, one copy silently replaced the other
    # (both counted as written, the gallery showing one picture twice)
    images = tmp_path / "photos"
    _photo(str(images / "a.tif"), (200, 0, 0))
    _photo(str(images / "a.tif.jpg"), (0, 0, 200))
    results = _results(tmp_path, "a.tif", "a.tif.jpg")
    out = tmp_path / "out"
    assert main(["results", "draw", results, "--images", str(images), "--out", str(out)]) != 0
    err = capsys.readouterr().err
    assert "a.tif" in err and "a.tif.jpg" in err and "Traceback" not in err
    assert not (out / "a.tif.jpg").exists()         # refused before anything is written


@pytest.mark.parametrize("named", ["n\udcff.jpg", "n\\xff.jpg"])      # MegaDetector's form, and ours
def test_a_name_that_is_not_utf8_is_drawn_and_listed(tmp_path, capsys, named):
    # a photo whose name is not UTF-8 (bytes 0xff) is named "\udcff" in the results: the gallery page
    # and crops.csv crashed writing it (UnicodeEncodeError), after the copies were made
    images = tmp_path / "photos"
    os.makedirs(images)
    Image.new("RGB", (64, 48)).save(os.path.join(os.fsencode(str(images)), b"n\xff.jpg"), format="JPEG")
    results = _results(tmp_path, named)
    out = tmp_path / "out"
    assert main(["results", "draw", results, "--images", str(images), "--out", str(out)]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "href='n%FF.jpg'" in page               # the link reaches the file's bytes
    assert os.path.exists(os.path.join(os.fsencode(str(out)), b"n\xff.jpg"))
    crops = tmp_path / "crops"
    assert main(["results", "crops", results, "--images", str(images), "--out", str(crops)]) == 0
    with open(crops / "crops.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][1] == "n\\xff.jpg"              # as every other table names it (escape_name)
    assert os.path.exists(os.path.join(os.fsencode(str(crops)), b"n\xff.jpg_crop000.jpg"))
    assert "Traceback" not in capsys.readouterr().err


def _png_header_only(path, width, height):
    """A PNG whose header claims ``width``×``height`` (a decompression bomb as Pillow sees it)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) +
                 chunk(b"IEND", b""))


def test_crops_count_a_decompression_bomb_unreadable_and_go_on(tmp_path, capsys):
    # upright_size opened the photo with Pillow directly: its DecompressionBombError (no OSError)
    # stopped the whole crop run with a traceback and no crops.csv
    images = tmp_path / "photos"
    _photo(str(images / "a.jpg"))
    _png_header_only(str(images / "bomb.png"), 20000, 10000)        # 200 MP: over Pillow's ceiling
    results = _results(tmp_path, "bomb.png", "a.jpg")
    out = tmp_path / "out"
    assert main(["results", "crops", results, "--images", str(images), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "1 unreadable: 'bomb.png'" in err and "Traceback" not in err
    assert (out / "a.jpg_crop000.jpg").exists() and (out / "crops.csv").exists()


def test_out_inside_the_images_folder_is_refused(tmp_path, capsys):
    # --out photos/drawn was accepted: the copies and crops then sat among the originals, and the next
    # detection run over the season listed them as photos (every animal counted again); results sort
    # refuses such a folder
    images = tmp_path / "photos"
    _photo(str(images / "cam/a.jpg"))
    results = _results(tmp_path, "cam/a.jpg")
    for action in ("draw", "crops"):
        out = images / f"{action}-out"
        assert main(["results", action, results, "--images", str(images), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "inside the images folder" in err and "Traceback" not in err
        assert not out.exists()
    # a link to a folder inside it is the same folder
    os.symlink(images / "cam", tmp_path / "link")
    assert main(["results", "draw", results, "--images", str(images), "--out", str(tmp_path / "link" / "x")]) == 2
    assert not (images / "cam" / "x").exists()


def test_the_page_job_refuses_a_folder_inside_the_images_folder_before_making_it(tmp_path):
    # the page's job made the folder and wrote its lock and log among the originals before the
    # command refused it
    from ssd.inference.filtering import ShownFilter
    from ssd.jobs.photos import start_photo_job

    images = tmp_path / "photos"
    _photo(str(images / "a.jpg"))
    results = _results(tmp_path, "a.jpg")
    with pytest.raises(Exception, match="inside the images folder"):
        start_photo_job("crops", results, str(images / "crops"), str(images), ShownFilter.of(0.5))
    assert sorted(os.listdir(images)) == ["a.jpg"]


def test_a_photo_named_like_a_crop_keeps_its_copy_apart_from_the_crop(tmp_path):
    # the page runs draw and crops into one folder: the copy of a photo named "x.jpg_crop001.jpg" was
    # written where the crop of x.jpg's second box goes, so crops skipped that crop as "already there"
    # and crops.csv listed the full drawn photo as the crop
    images = tmp_path / "photos"
    _photo(str(images / "x.jpg"), size=(100, 100))
    _photo(str(images / "x.jpg_crop001.jpg"), size=(100, 100))
    dets = [{"category": "1", "conf": 0.9, "bbox": [0.0, 0.0, 0.2, 0.2]},
            {"category": "1", "conf": 0.9, "bbox": [0.5, 0.5, 0.3, 0.3]}]
    doc = {"info": {"format_version": "1.4"}, "detection_categories": dict(CATS),
           "images": [{"file": f, "max_detection_conf": 0.9, "detections": dets}
                      for f in ("x.jpg", "x.jpg_crop001.jpg")]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    out = tmp_path / "out"
    for action in ("draw", "crops"):
        assert main(["results", action, str(results), "--images", str(images), "--out", str(out)]) == 0
    with open(out / "crops.csv", encoding="utf-8", newline="") as fh:
        rows = {r["crop"]: r for r in csv.DictReader(fh)}
    with Image.open(out / "x.jpg_crop001.jpg") as crop:
        assert crop.size == (30, 30)                # the box, not the drawn 100×100 copy
    assert rows["x.jpg_crop001.jpg"]["image"] == "x.jpg"
    page = (out / "index.html").read_text(encoding="utf-8")
    copy = next(n for n in os.listdir(out) if n.startswith("x.jpg_crop001.jpg") and n != "x.jpg_crop001.jpg"
                and "_crop000" not in n and "_crop001.jpg_crop" not in n)
    with Image.open(out / copy) as im:
        assert im.size == (100, 100)
    assert f"href='{copy}'" in page


def test_an_output_name_too_long_for_the_disk_is_not_called_unreadable(tmp_path, capsys):
    # a photo with a 249-byte name reads fine, but its crop's name (and the copy's temporary file's)
    # is over the 255 bytes a folder entry holds: it was reported as an unreadable photo
    images = tmp_path / "photos"
    name = "L" * 245 + ".jpg"
    _photo(str(images / name))
    _photo(str(images / "a.jpg"))
    results = _results(tmp_path, name, "a.jpg")
    for action in ("draw", "crops"):
        out = tmp_path / action
        assert main(["results", action, results, "--images", str(images), "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "unreadable" not in err and "1 could not be written" in err, err
        assert name[:20] in err and "too long" in err
        assert (out / ("a.jpg" if action == "draw" else "a.jpg_crop000.jpg")).exists()


def test_a_full_disk_stops_the_run_with_one_line(tmp_path, capsys, monkeypatch):
    # a full disk made every following photo "unreadable", a season's worth, each decoded for nothing
    import errno

    import ssd.base.atomic as atomic

    images = tmp_path / "photos"
    for k in range(3):
        _photo(str(images / f"p{k}.jpg"))
    results = _results(tmp_path, "p0.jpg", "p1.jpg", "p2.jpg")

    def full(dest, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(atomic, "atomic_write_bytes", full)
    for action in ("draw", "crops"):
        assert main(["results", action, results, "--images", str(images), "--out", str(tmp_path / action)]) != 0
        err = capsys.readouterr().err
        assert "No space left" in err and "unreadable" not in err and "Traceback" not in err


def _split_season(tmp_path):
    """A season of four cameras split into its four parts (``results split``); the parts' folder."""
    det = [{"category": "1", "conf": 0.9, "bbox": list(BOX)}]
    doc = {"info": {"format_version": "1.4", "ssd_batch": {"images_root": str(tmp_path / "season"), "camera_depth": 2}},
           "detection_categories": dict(CATS),
           "images": [{"file": f"s{i}/c{j}/img.jpg", "max_detection_conf": 0.9, "detections": det}
                      for i in (1, 2) for j in (1, 2)]}
    season = tmp_path / "season.json"
    season.write_text(json.dumps(doc))
    assert main(["results", "split", str(season), "--out", str(tmp_path / "parts")]) == 0
    return tmp_path / "parts"


def test_merge_refuses_parts_that_disagree_on_their_count(tmp_path, capsys):
    # the count of parts was read from the first part given alone: one part edited to say 2 (of
    # the 4 the other records) let two parts merge, without --allow-missing, into a file that looked
    # like the whole season and lacked two cameras
    parts = _split_season(tmp_path)
    first = parts / "s1_c1.json"
    doc = json.loads(first.read_text())
    doc["info"]["split_from"]["parts"] = 2
    first.write_text(json.dumps(doc))
    merged = tmp_path / "merged.json"
    rc = main(["results", "merge", "-o", str(merged), str(first), str(parts / "s2_c2.json")])
    err = capsys.readouterr().err
    assert rc != 0 and not merged.exists()
    assert "s1_c1.json" in err and "s2_c2.json" in err and "Traceback" not in err


def test_merge_refuses_parts_that_disagree_on_the_seasons_camera_depth(tmp_path, capsys):
    # the merged file took the season's camera depth of whichever part came first: one part edited
    # to record none gave a merged file with none or with 2, by the order the parts were named in
    parts = _split_season(tmp_path)
    edited = parts / "s2_c2.json"
    doc = json.loads(edited.read_text())
    doc["info"]["split_from"]["season_camera_depth"] = None
    edited.write_text(json.dumps(doc))
    merged = tmp_path / "merged.json"
    rc = main(["results", "merge", "-o", str(merged), *sorted(str(p) for p in parts.glob("*.json"))])
    err = capsys.readouterr().err
    assert rc != 0 and not merged.exists() and "season_camera_depth" in err and "s2_c2.json" in err


def test_out_above_the_images_folder_may_not_write_into_it(tmp_path, capsys):
    # --out the images folder's parent, and a camera folder named as the images folder: the crop of
    # photos/a.jpg went to OUT/photos/a.jpg_crop000.jpg, which is inside the images folder (no
    # original overwritten, so it was let through), where the next detection run lists it
    images = tmp_path / "photos"
    _photo(str(images / "photos" / "a.jpg"))
    results = _results(tmp_path, "photos/a.jpg")
    for action in ("draw", "crops"):
        assert main(["results", action, results, "--images", str(images), "--out", str(tmp_path)]) == 2
        assert "inside the images folder" in capsys.readouterr().err
    assert sorted(os.listdir(images)) == ["photos"] and os.listdir(images / "photos") == ["a.jpg"]


@pytest.mark.parametrize("name", ["/data/season/s1/c1/img.jpg", "C:\\cam\\img.jpg"])
def test_merge_refuses_a_part_with_an_absolute_name(tmp_path, capsys, name):
    # a part's names are relative to its camera's folder (split refuses absolute ones); one edited
    # to an absolute name was merged as "s1/c1//data/season/s1/c1/img.jpg" ("..": refused already)
    parts = _split_season(tmp_path)
    edited = parts / "s1_c1.json"
    doc = json.loads(edited.read_text())
    doc["images"][0]["file"] = name
    edited.write_text(json.dumps(doc))
    merged = tmp_path / "merged.json"
    rc = main(["results", "merge", "-o", str(merged), *sorted(str(p) for p in parts.glob("*.json"))])
    err = capsys.readouterr().err
    assert rc != 0 and not merged.exists() and "absolute" in err and "s1_c1.json" in err


@pytest.mark.parametrize("action", ["draw", "crops"])
def test_photos_whose_names_differ_only_in_case_are_refused(tmp_path, capsys, action):
    # on a USB drive (exFAT), Windows or macOS, IMG_1.JPG's and img_1.jpg's outputs are one file: the
    # second was counted "already there" and its picture lost; results split refuses such names too
    images = tmp_path / "photos"
    _photo(str(images / "cam/IMG_1.JPG"), (200, 0, 0))
    _photo(str(images / "cam/img_1.jpg"), (0, 0, 200))
    results = _results(tmp_path, "cam/IMG_1.JPG", "cam/img_1.jpg")
    out = tmp_path / "out"
    assert main(["results", action, results, "--images", str(images), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "IMG_1.JPG" in err and "img_1.jpg" in err and "case" in err
    assert not out.exists() or not os.listdir(out)


def test_a_link_in_out_leading_elsewhere_gets_no_folder_made_through_it(tmp_path, capsys):
    # make_folders created the folders first and checked after: OUT/cam, a link to another folder,
    # got cam/sub made through it (there: in the images folder) before the run was refused
    images = tmp_path / "photos"
    _photo(str(images / "cam/sub/a.jpg"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    results = _results(tmp_path, "cam/sub/a.jpg")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(elsewhere, out / "cam")
    for action in ("draw", "crops"):
        assert main(["results", action, results, "--images", str(images), "--out", str(out)]) == 2
        assert "symbolic link" in capsys.readouterr().err
        assert os.listdir(elsewhere) == []


def test_a_killed_runs_temporary_file_of_a_name_with_a_newline_is_removed(tmp_path, capsys):
    # temp_target's pattern stopped at a newline: the temporary file of the copy of "a\nb.jpg" (a
    # name a camera card can hold) was never known as ours, and stayed after every rerun
    images = tmp_path / "photos"
    _photo(str(images / "a\nb.jpg"))
    results = _results(tmp_path, "a\nb.jpg")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a\nb.jpg.abcd1234.tmp").write_bytes(b"half")
    assert main(["results", "draw", results, "--images", str(images), "--out", str(out)]) == 0
    assert "1 unfinished" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["a\nb.jpg", "index.html"]


def test_a_partial_merge_of_parts_merges_again_with_the_part_it_lacked(tmp_path, capsys):
    # three of four parts merged with --allow-missing, then that file merged with the fourth part:
    # refused without --allow-missing ("1 of its 4 parts are given"), and with it the whole season
    # was recorded as lacking 3 parts (the summary then warned of cameras it had)
    parts = _split_season(tmp_path)
    partial, whole = tmp_path / "partial.json", tmp_path / "whole.json"
    given = [str(parts / n) for n in ("s1_c1.json", "s1_c2.json", "s2_c1.json")]
    assert main(["results", "merge", "--allow-missing", "-o", str(partial), *given]) == 0
    assert json.loads(partial.read_text())["info"]["ssd_batch"]["parts_missing"] == 1
    assert main(["results", "merge", "-o", str(whole), str(partial), str(parts / "s2_c2.json")]) == 0, \
        capsys.readouterr().err
    doc = json.loads(whole.read_text())
    assert len(doc["images"]) == 4 and "parts_missing" not in doc["info"]["ssd_batch"]
    # the part it holds already is refused as given twice
    again = tmp_path / "again.json"
    assert main(["results", "merge", "--allow-missing", "-o", str(again), str(partial), given[0]]) == 2
    assert "s1/c1" in capsys.readouterr().err and not again.exists()


def test_a_partial_merge_split_again_and_merged_back_still_says_what_it_lacks(tmp_path):
    parts = _split_season(tmp_path)
    partial, back = tmp_path / "partial.json", tmp_path / "back.json"
    given = [str(parts / n) for n in ("s1_c1.json", "s1_c2.json", "s2_c1.json")]
    assert main(["results", "merge", "--allow-missing", "-o", str(partial), *given]) == 0
    assert main(["results", "split", str(partial), "--out", str(tmp_path / "again")]) == 0
    again = sorted(str(p) for p in (tmp_path / "again").glob("*.json"))
    assert main(["results", "merge", "-o", str(back), *again]) == 0
    assert json.loads(back.read_text())["info"]["ssd_batch"]["parts_missing"] == 1


def test_a_box_with_a_negative_width_does_not_stop_the_drawing(tmp_path, capsys):
    # the results reader takes [x, y, -w, -h]; Pillow's rectangle raised "x1 must be greater than or
    # equal to x0" through draw_detections, stopping results draw (and the browser) with a traceback
    images = tmp_path / "photos"
    _photo(str(images / "a.jpg"))
    _photo(str(images / "b.jpg"))
    doc = {"info": {"format_version": "1.4"}, "detection_categories": dict(CATS),
           "images": [{"file": "a.jpg", "max_detection_conf": 0.9,
                       "detections": [{"category": "1", "conf": 0.9, "bbox": [0.9, 0.9, -0.5, -0.5]}]},
                      {"file": "b.jpg", "max_detection_conf": 0.9,
                       "detections": [{"category": "1", "conf": 0.9, "bbox": list(BOX)}]}]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    out = tmp_path / "out"
    assert main(["results", "draw", str(results), "--images", str(images), "--out", str(out)]) == 0
    assert "2 written" in capsys.readouterr().err
    assert (out / "a.jpg").is_file() and (out / "index.html").is_file()


def test_crops_name_empty_boxes_apart_from_the_min_size(tmp_path, capsys):
    # a box of no area inside the photo (zero or negative size, or wholly outside it) was reported as
    # "smaller than --min-size" with no --min-size given
    images = tmp_path / "photos"
    _photo(str(images / "a.jpg"))
    doc = {"info": {"format_version": "1.4"}, "detection_categories": dict(CATS),
           "images": [{"file": "a.jpg", "max_detection_conf": 0.9,
                       "detections": [{"category": "1", "conf": 0.9, "bbox": b}
                                      for b in ([0.5, 0.5, 0, 0], [1.0, 1.0, 0.1, 0.1], list(BOX))]}]}
    results = tmp_path / "results.json"
    results.write_text(json.dumps(doc))
    assert main(["results", "crops", str(results), "--images", str(images), "--out", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err
    assert "1 written" in err and "2 box(es) with no area in the photo left out" in err and "--min-size" not in err


def test_photos_whose_names_differ_only_in_unicode_form_are_refused(tmp_path, capsys):
    # a composed é and e + accent are one file on macOS (and after most copies): as results split
    # refuses them, keyed as it keys its files
    images = tmp_path / "photos"
    _photo(str(images / "\u00e9.jpg"), (200, 0, 0))
    _photo(str(images / "e\u0301.jpg"), (0, 0, 200))
    results = _results(tmp_path, "\u00e9.jpg", "e\u0301.jpg")
    assert main(["results", "draw", results, "--images", str(images), "--out", str(tmp_path / "out")]) == 2
    assert "rename one of them" in capsys.readouterr().err


@pytest.mark.parametrize("action", ["draw", "crops"])
def test_a_second_run_into_the_same_folder_is_refused_while_the_first_writes(tmp_path, capsys, action):
    """The second run's start would remove the first's temporary files in flight (as stale ones)."""
    from ssd.camtrap.photo_outputs import held_output

    images, out = tmp_path / "photos", tmp_path / "out"
    images.mkdir()
    out.mkdir()
    Image.new("RGB", (64, 48), (40, 40, 40)).save(images / "a.jpg")
    results = tmp_path / "r.json"
    results.write_text(json.dumps({"info": {"format_version": "1.4"}, "detection_categories": {"1": "animal"},
                                   "images": [{"file": "a.jpg", "detections": [
                                       {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.5, 0.5]}]}]}))
    argv = ["results", action, str(results), "--images", str(images), "--out", str(out)]
    with held_output(str(out), action):
        assert main(argv) == 2
        assert "another 'results " + action + "' is writing" in capsys.readouterr().err
        assert sorted(p.name for p in out.iterdir()) == [f".results-{action}.busy"]
    assert not (out / f".results-{action}.busy").exists()
    assert main(argv) == 0
