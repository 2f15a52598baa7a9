"""``results export --format coco``: a season's detections as a COCO file a labelling tool (CVAT, Label
Studio) imports as pre-annotations, and that our own dataset loader trains on after correction."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from ssd.cli.main import main

SIZES = {"a.jpg": (200, 100), "cam1/b.jpg": (160, 120), "cam1/empty.jpg": (80, 60), "c.png": (90, 90)}


def _det(cat, conf, box, **extra):
    return {"category": cat, "conf": conf, "bbox": box, **extra}


@pytest.fixture()
def season(tmp_path):
    """Photos in a folder and a MegaDetector results file beside them (one failure, one video)."""
    images = tmp_path / "photos"
    for name, size in SIZES.items():
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (90, 120, 60)).save(images / name)
    entries = [
        {"file": "a.jpg", "width": 200, "height": 100, "failure": None,
         "detections": [_det("1", 0.9, [0.1, 0.2, 0.5, 0.4]), _det("2", 0.6, [0.6, 0.5, 0.25, 0.5]),
                        _det("1", 0.05, [0.0, 0.0, 0.1, 0.1])]},
        # no width/height: read from the image's header
        {"file": str(images / "cam1" / "b.jpg"), "failure": None,
         "detections": [_det("2", 0.8, [0.25, 0.25, 0.5, 0.5])]},
        {"file": "cam1/empty.jpg", "width": 80, "height": 60, "failure": None,
         "detections": [_det("1", 0.1, [0.2, 0.2, 0.3, 0.3])]},
        {"file": "c.png", "width": 90, "height": 90, "failure": None, "detections": []},
        {"file": "broken.jpg", "failure": "Failure image access", "detections": None},
        {"file": "clip.mp4", "width": 640, "height": 480, "failure": None, "frames_processed": [0],
         "detections": [_det("1", 0.9, [0.1, 0.1, 0.2, 0.2], frame_number=0)]},
    ]
    doc = {"info": {"format_version": "1.6", "detector": "test"},
           "detection_categories": {"1": "animal", "2": "person"}, "images": entries}
    results = tmp_path / "season.json"
    results.write_text(json.dumps(doc))
    return results, images


def _export(results, out, images, *flags):
    return main(["results", "export", str(results), "--format", "coco", "--out", str(out),
                 "--images", str(images), "--threshold", "0.2", *flags])


def test_written_file_has_what_cvat_and_label_studio_import(season, capsys):
    results, images = season
    out = images / "annotations" / "instances_default.json"
    assert _export(results, out, images) == 0
    err = capsys.readouterr().err
    assert "1 failed" in err and "1 video" in err
    coco = json.loads(out.read_text())
    assert [c["name"] for c in coco["categories"]] == ["animal", "person"]
    assert [c["id"] for c in coco["categories"]] == [1, 2]
    names = {im["file_name"]: im for im in coco["images"]}
    assert set(names) == set(SIZES)                 # failures and videos left out, empty frames kept
    for name, (w, h) in SIZES.items():
        assert (names[name]["width"], names[name]["height"]) == (w, h)
    for im in coco["images"]:
        assert isinstance(im["id"], int)
    assert len(coco["annotations"]) == 3            # 0.05 and 0.1 are below the threshold
    for ann in coco["annotations"]:
        assert set(ann) >= {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "score"}
        assert ann["iscrowd"] == 0 and isinstance(ann["id"], int)
        assert ann["segmentation"] == []            # CVAT (Datumaro) requires the field; [] means a box
        assert ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3], abs=0.01)
    a = names["a.jpg"]["id"]
    first = [ann for ann in coco["annotations"] if ann["image_id"] == a and ann["category_id"] == 1]
    assert first[0]["bbox"] == pytest.approx([20, 20, 100, 40]) and first[0]["score"] == 0.9


def test_our_own_loader_reads_the_export_with_the_same_boxes(season, capsys):
    from ssd.data.dataset import open_dataset

    results, images = season
    assert _export(results, images / "season.coco.json", images) == 0
    splits = open_dataset(str(images))
    assert splits.classes == ["animal", "person"]
    records = {r.file_name: r for ds in (splits.train, splits.val) if ds is not None for r in ds.records}
    assert set(records) == set(SIZES)
    px = {name: r.label[:, 1:] * [r.width, r.height, r.width, r.height] for name, r in records.items()}
    assert np.allclose(sorted(px["a.jpg"].tolist()), [[20, 20, 120, 60], [120, 50, 170, 100]], atol=1)
    assert np.allclose(px["cam1/b.jpg"], [[40, 30, 120, 90]], atol=1)
    assert records["cam1/b.jpg"].label[0, 0] == 1 and len(records["cam1/empty.jpg"].label) == 0
    capsys.readouterr()
    assert main(["data", "info", str(images)]) == 0
    shown = capsys.readouterr().out
    assert "coco-camera-traps dataset" in shown and "animal (id 1)" in shown and "person (id 2)" in shown
    rows = {line.split()[0]: line.split()[-1] for line in shown.splitlines()
            if line.split()[:1] in (["images"], ["boxes"]) and line.split()[-1].isdigit()}
    assert rows == {"images": "4", "boxes": "3"}


def test_refuses_replacing_and_names_outside_the_images_folder(season, tmp_path, capsys):
    results, images = season
    original = results.read_text()
    assert _export(results, results, images) == 2
    assert "is the results file" in capsys.readouterr().err and results.read_text() == original
    out = tmp_path / "coco.json"
    out.write_text("{}")
    assert _export(results, out, images) == 2
    assert "--replace" in capsys.readouterr().err and out.read_text() == "{}"
    assert _export(results, out, images, "--replace") == 0
    assert len(json.loads(out.read_text())["images"]) == 4
    doc = json.loads(results.read_text())
    for bad in ("../outside.jpg", str(tmp_path / "elsewhere" / "x.jpg")):
        doc["images"][0]["file"] = bad
        results.write_text(json.dumps(doc))
        assert _export(results, tmp_path / "new.json", images) == 2
        assert "outside the images folder" in capsys.readouterr().err
        assert not (tmp_path / "new.json").exists()


def test_a_season_is_written_row_by_row_not_held_as_one_document(tmp_path):
    """At a million images the whole document as dicts, then as text, then as bytes cost a GB more than
    reading the results; the file is written from one compact string a row: the memory the export
    takes beyond its input stays near the file's own size (it was over 6x), and the file is the same
    as the page's download."""
    import tracemalloc

    from ssd.camtrap.coco_export import coco_bytes, write_coco

    rng = np.random.default_rng(0)
    entries = [{"file": f"cam{i % 7}/IMG_{i:05d}.JPG", "width": 1920, "height": 1080, "failure": None,
                "detections": [_det(str(1 + k % 2), round(float(rng.uniform(0.3, 1)), 3),
                                    [round(float(v), 4) for v in rng.uniform(0, 0.5, 4)]) for k in range(3)]}
               for i in range(3000)]
    doc = {"info": {"detector": "test"}, "detection_categories": {"1": "animal", "2": "person"}, "images": entries}
    out = tmp_path / "coco.json"
    tracemalloc.start()
    try:
        counts = write_coco(doc, str(out), 0.2, str(tmp_path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (counts.images, counts.annotations) == (3000, 9000)
    size = out.stat().st_size
    assert peak < 3 * size, (peak, size)
    coco = json.loads(out.read_text())
    assert [a["id"] for a in coco["annotations"]] == list(range(1, 9001))
    assert coco["images"][5] == {"id": 6, "file_name": "cam5/IMG_00005.JPG", "width": 1920, "height": 1080}
    assert out.read_bytes() == coco_bytes(doc, 0.2, str(tmp_path))[0]


def test_an_image_listed_twice_is_refused_even_by_another_spelling(season, tmp_path, capsys):
    """One photo, two entries (an absolute and a relative name): COCO would hold two images of one
    file, and a results file of 10^6 repeats read each one's header again."""
    results, images = season
    doc = json.loads(results.read_text())
    doc["images"].append(dict(doc["images"][0], file=str(images / "a.jpg")))
    results.write_text(json.dumps(doc))
    assert _export(results, tmp_path / "coco.json", images) == 2
    assert "listed twice" in capsys.readouterr().err and not (tmp_path / "coco.json").exists()


def test_a_video_that_failed_is_counted_as_a_failure_not_as_a_video_left_out(tmp_path):
    """"N video(s) left out: COCO holds still images" told of videos with boxes to correct elsewhere;
    a clip that could not be read has none and belongs with the failures."""
    from ssd.camtrap.coco_export import coco_rows

    doc = {"info": {"format_version": "1.6", "detector": "test"}, "detection_categories": {"1": "animal"},
           "images": [{"file": "clip.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0],
                       "detections": [_det("1", 0.9, [0.1, 0.1, 0.2, 0.2], frame_number=0)]},
                      {"file": "cut.MP4", "failure": "could not be opened", "frame_rate": -1.0,
                       "frames_processed": [], "detections": None}]}
    _, counts = coco_rows(doc, 0.2, str(tmp_path))
    assert counts.videos == ["clip.mp4"] and counts.failed == ["cut.MP4"]
