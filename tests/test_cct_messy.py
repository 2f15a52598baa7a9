"""COCO Camera Traps files as people actually hand them over: repeated category names, files of
tens of megabytes in COCO's own key order, truncated downloads."""
import json
import os

import pytest
from PIL import Image

from ssd.base.errors import DatasetError
from ssd.data.dataset import detect_format, open_dataset
from ssd.data.summary import format_summary, summarize


def _write(root, images, annotations, categories, files=None, order=("images", "annotations", "categories")):
    """``root/data.json`` with its sections in ``order``, and a small JPEG for each listed file."""
    root.mkdir(parents=True, exist_ok=True)
    for name in files if files is not None else [im["file_name"] for im in images]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (90, 110, 70)).save(path, format="JPEG")
    data = {"images": images, "annotations": annotations, "categories": categories}
    (root / "data.json").write_text(json.dumps({k: data[k] for k in order}))
    return root / "data.json"


def _images(n):
    return [{"id": i, "file_name": f"cam/{i}.jpg", "width": 64, "height": 48} for i in range(n)]


def test_categories_sharing_a_name_keep_their_own_counts(tmp_path):
    # ids 1 and 2 are both called "deer" (two sets merged): 2 boxes of id 1, 4 of id 2
    anns = [{"id": i, "image_id": i, "category_id": 1 if i < 2 else 2, "bbox": [1, 1, 10, 10]} for i in range(6)]
    _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}, {"id": 2, "name": "deer"}])
    splits = open_dataset(str(tmp_path / "set"))
    assert len(set(splits.classes)) == 2                              # two classes, told apart
    totals = {c: v["total"] for c, v in summarize(splits)["boxes_per_class"].items()}
    assert sorted(totals.values()) == [2, 4]
    by_id = {m["id"]: m["name"] for m in splits.class_mapping}
    assert totals[by_id[1]] == 2 and totals[by_id[2]] == 4
    assert "deer" in by_id[1] and "deer" in by_id[2]


def test_large_file_in_coco_key_order_is_recognised(tmp_path):
    # COCO writers put images, annotations, categories in that order; with 3,000 entries the
    # "annotations" key sits far from both ends of the file
    n = 3000
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(n)]
    path = _write(tmp_path / "big", _images(n), anns, [{"id": 1, "name": "deer"}],
                  files=[f"cam/{i}.jpg" for i in range(5)])
    assert os.path.getsize(path) > 4 * 64 * 1024
    assert detect_format(str(tmp_path / "big")) == "coco-camera-traps"
    splits = open_dataset(str(tmp_path / "big"))
    assert len(splits.train) + len(splits.val) == 5


def test_cut_json_says_so(tmp_path):
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(6)]
    path = _write(tmp_path / "cut", _images(6), anns, [{"id": 1, "name": "deer"}])
    text = path.read_text()
    path.write_text(text[: len(text) * 2 // 3])                     # the download stopped part way
    with pytest.raises(DatasetError, match="not valid JSON.*may be truncated"):
        open_dataset(str(tmp_path / "cut"))


def test_ids_written_as_text_in_one_section_still_join(tmp_path):
    # a CSV-to-JSON conversion wrote the annotations' ids as text: "3" is image 3, "1" category 1
    anns = [{"id": i, "image_id": str(i), "category_id": "1", "bbox": [1, 1, 10, 10]} for i in range(6)]
    _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}])
    summary = summarize(open_dataset(str(tmp_path / "set")))
    assert summary["boxes"]["total"] == 6 and summary["images_without_boxes"]["total"] == 0
    assert summary["skipped"] == {}


def test_one_file_listed_under_two_ids_is_one_image(tmp_path):
    # image 1 is listed again as image 9 (two sets merged), with the other half of its boxes;
    # and as "1" (the same id written as text): the file must not be an image twice (once without boxes)
    images = _images(4) + [{"id": 9, "file_name": "cam/1.jpg", "width": 64, "height": 48},
                           {"id": "1", "file_name": "cam/1.jpg", "width": 64, "height": 48}]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(4)]
    anns.append({"id": 9, "image_id": 9, "category_id": 1, "bbox": [30, 20, 10, 10]})
    _write(tmp_path / "set", images, anns, [{"id": 1, "name": "deer"}], files=[f"cam/{i}.jpg" for i in range(4)])
    splits = open_dataset(str(tmp_path / "set"))
    records = list(splits.train.records) + list(splits.val.records)
    assert sorted(r.file_name for r in records) == [f"cam/{i}.jpg" for i in range(4)]
    [one] = [r for r in records if r.file_name == "cam/1.jpg"]
    assert len(one.label) == 2                                       # both entries' boxes, on one image
    assert sum(splits.skipped.values()) == 2 and len(splits.skipped) == 2


def test_extension_case_differing_from_the_json_is_found(tmp_path):
    # the JSON says .jpg, the card holds .JPG (and one .Jpg): the same files on a case-blind disk
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(4)]
    files = ["cam/0.JPG", "cam/1.JPG", "cam/2.Jpg", "cam/3.jpg"]
    _write(tmp_path / "set", _images(4), anns, [{"id": 1, "name": "deer"}], files=files)
    splits = open_dataset(str(tmp_path / "set"))
    assert len(splits.train) + len(splits.val) == 4 and splits.skipped == {}
    assert sorted(os.path.basename(r.path) for r in splits.train.records + splits.val.records) == \
        ["0.JPG", "1.JPG", "2.Jpg", "3.jpg"]


def test_case_fallback_does_not_follow_a_link_out_of_the_folder(tmp_path):
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(3)]
    _write(tmp_path / "set", _images(3), anns, [{"id": 1, "name": "deer"}], files=["cam/1.jpg", "cam/2.jpg"])
    Image.new("RGB", (64, 48)).save(tmp_path / "secret.jpg")
    os.symlink(tmp_path / "secret.jpg", tmp_path / "set" / "cam" / "0.JPG")
    splits = open_dataset(str(tmp_path / "set"))
    paths = [r.path for r in splits.train.records + (splits.val.records if splits.val else ())]
    assert len(paths) == 2 and not any("0.JPG" in p for p in paths)
    assert splits.skipped.get("image file missing") == 1


def test_no_class_is_seen_only_by_validation():
    # rare classes of one or two sequences: each must keep some training boxes, or the model never
    # learns it and its AP is 0 whatever the training does
    import numpy as np

    from ssd.data.cct_labels import CCTImage
    from ssd.data.cct_split import split_indices

    for seed in range(60):
        rng = np.random.RandomState(seed)
        records = []
        for i in range(rng.randint(8, 40)):
            c = rng.choice(6, p=[.5, .2, .1, .1, .05, .05])
            seq = None if rng.rand() < .5 else f"s{i // 3}"
            records.append(CCTImage(i, f"{i}.jpg", "", 10, 10, seq, np.array([[c, 0, 0, 1, 1]], np.float32)))
        train, val = split_indices(records, 6, 0.2, seed)
        seen = {int(records[i].label[0, 0]) for i in train}
        assert {int(records[i].label[0, 0]) for i in val} <= seen, seed
        assert val and sorted(train + val) == list(range(len(records)))


def test_a_folder_of_two_json_files_opens_by_naming_one(tmp_path, capsys):
    # COCO-style sets ship train.json and val.json side by side: the folder is ambiguous, the file is not
    from ssd.cli.main import main

    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(6)]
    _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}])
    os.rename(tmp_path / "set" / "data.json", tmp_path / "set" / "train.json")
    _write(tmp_path / "set", _images(3), anns[:3], [{"id": 1, "name": "deer"}])
    os.rename(tmp_path / "set" / "data.json", tmp_path / "set" / "val.json")
    with pytest.raises(DatasetError, match=r"several .*give the \.json file itself"):
        open_dataset(str(tmp_path / "set"))
    splits = open_dataset(str(tmp_path / "set" / "val.json"))
    assert len(splits.train) + len(splits.val) == 3
    assert main(["data", "info", "--json", str(tmp_path / "set" / "train.json")]) == 0
    assert json.loads(capsys.readouterr().out)["images"]["total"] == 6


def test_a_set_named_by_its_json_file_gets_its_own_decode_cache(tmp_path):
    # training decodes camera-trap photos once into a cache beside the set: beside the named file,
    # one per file (train.json and val.json in one folder must not share it)
    from ssd.data.decoded import prepare_split

    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(6)]
    json_path = _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}])
    splits = open_dataset(str(json_path))
    ds = prepare_split(splits.train, 32, splits.kind, str(json_path), "train", None)
    assert len(ds) == len(splits.train) and ds[0][0].shape == (32, 32, 3)
    assert [n for n in os.listdir(tmp_path / "set") if "cache" in n] == [".ssd_cache-data"]


def test_accented_names_match_whatever_unicode_form_the_disk_uses(tmp_path):
    # the JSON spells "Kühe" precomposed (NFC); a Mac wrote the folder and files decomposed (NFD)
    import unicodedata

    nfc = [f"Kühe/{i}é.jpg" for i in range(3)]
    images = [{"id": i, "file_name": n, "width": 64, "height": 48} for i, n in enumerate(nfc)]
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(3)]
    _write(tmp_path / "set", images, anns, [{"id": 1, "name": "cow"}],
           files=[unicodedata.normalize("NFD", n) for n in nfc])
    splits = open_dataset(str(tmp_path / "set"))
    assert len(splits.train) + len(splits.val) == 3 and splits.skipped == {}


def test_boxes_written_as_fractions_of_the_image_are_refused_with_the_reason(tmp_path):
    # COCO Camera Traps boxes are pixels; a converter wrote fractions, which would train on 1-pixel boxes
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [0.1 * (i % 5), 0.2, 0.3, 0.25]} for i in range(6)]
    _write(tmp_path / "set", _images(6), anns, [{"id": 1, "name": "deer"}])
    with pytest.raises(DatasetError, match=r"fractions.*pixels"):
        open_dataset(str(tmp_path / "set"))


def test_a_folder_link_out_of_the_set_is_refused(tmp_path):
    # "cam2" is a link to a folder elsewhere; "cam/ok.jpg" is a link to a file of the set (allowed)
    anns = [{"id": i, "image_id": i, "category_id": 1, "bbox": [1, 1, 10, 10]} for i in range(3)]
    _write(tmp_path / "set", _images(3), anns, [{"id": 1, "name": "deer"}])
    (tmp_path / "elsewhere").mkdir()
    Image.new("RGB", (64, 48)).save(tmp_path / "elsewhere" / "9.jpg")
    os.symlink(tmp_path / "elsewhere", tmp_path / "set" / "cam2")
    os.symlink(tmp_path / "set" / "cam" / "0.jpg", tmp_path / "set" / "cam" / "ok.jpg")
    data = json.loads((tmp_path / "set" / "data.json").read_text())
    data["images"] += [{"id": 9, "file_name": "cam2/9.jpg"}, {"id": 10, "file_name": "cam/ok.jpg"}]
    (tmp_path / "set" / "data.json").write_text(json.dumps(data))
    splits = open_dataset(str(tmp_path / "set"))
    names = [r.file_name for r in splits.train.records + (splits.val.records if splits.val else ())]
    assert "cam2/9.jpg" not in names and "cam/ok.jpg" in names
    assert any(k.startswith("file_name outside the image folder") and "cam2/9.jpg" in k for k in splits.skipped)


def test_a_json_nested_300000_deep_or_a_fifo_is_one_clear_error(tmp_path):
    """A stranger's COCO file of ``[[[[…`` crashed the loader with RecursionError (a traceback in
    ``data info`` and on the Train page); a FIFO named like one would block for ever."""
    deep = tmp_path / "deep"
    deep.mkdir()
    (deep / "cct.json").write_text('{"images": ' + "[" * 300_000 + "]" * 300_000 + ', "annotations": [], '
                                   '"categories": []}')
    with pytest.raises(DatasetError, match="nested"):
        open_dataset(str(deep / "cct.json"))
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(DatasetError, match="FIFO"):
        open_dataset(str(fifo))
