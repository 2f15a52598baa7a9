"""RecordIO detection files: our writer and reader against MXNet's and GluonCV's readers."""
from __future__ import annotations

import os
import pickle
import struct

import numpy as np
import pytest

from ssd.data.dataset import DatasetSplits, open_dataset
from ssd.base.errors import DatasetError
from ssd.data.recordio import RecordDetectionDataset
from ssd.data.recordio_labels import default_class_names
from ssd.data.recordio_write import write_detection_rec

SIZE = 256


def _image(i: int, size: int = SIZE) -> np.ndarray:
    """A smooth, JPEG-friendly picture that differs per index."""
    yy, xx = np.mgrid[0:size, 0:size]
    img = np.stack([(xx + 20 * i) % 256, (yy * 0.7 + 40) % 256, (xx + yy) // 2 % 256], axis=-1)
    return img.astype(np.uint8)


def _labels() -> list:
    return [
        np.array([[0, 0.1, 0.2, 0.5, 0.6]], np.float32),
        np.array([[0, 0.0, 0.0, 1.0, 1.0], [2, 0.25, 0.3, 0.45, 0.9]], np.float32),
        np.array([[1, 0.6, 0.05, 0.95, 0.4]], np.float32),
        np.array([[0, 0.33, 0.33, 0.66, 0.66], [0, 0.1, 0.7, 0.2, 0.8], [1, 0.5, 0.5, 0.51, 0.52]], np.float32),
        np.array([[2, 0.7, 0.7, 0.9, 0.95]], np.float32),
    ]


@pytest.fixture()
def rec(tmp_path):
    path = str(tmp_path / "train.rec")
    labels = _labels()
    n = write_detection_rec(path, ((_image(i), l) for i, l in enumerate(labels)))
    assert n == len(labels)
    return path, labels


def test_round_trip_labels_and_pixels(rec):
    path, labels = rec
    ds = RecordDetectionDataset(path)
    assert ds.idx_path == path[:-4] + ".idx"
    assert len(ds) == len(labels)
    assert ds.classes == ["class_0", "class_1", "class_2"]
    for i, want in enumerate(labels):
        img, lab = ds[i]
        assert img.dtype == np.uint8 and img.shape == (SIZE, SIZE, 3)
        assert lab.dtype == np.float32
        np.testing.assert_array_equal(lab, want)       # labels are stored as float32: exact
        assert np.abs(img.astype(int) - _image(i)).mean() < 3   # JPEG q95
    got = ds.labels()
    assert all(np.array_equal(a, b) for a, b in zip(got, labels))
    assert ds[-1][1].shape == labels[-1].shape
    with pytest.raises(IndexError):
        ds[len(labels)]


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 0, 255), (20, 200, 40)])
def test_colours_survive_the_bgr_round_trip(tmp_path, rgb):
    img = np.zeros((64, 64, 3), np.uint8)
    img[:] = rgb
    path = str(tmp_path / "c.rec")
    write_detection_rec(path, [(img, np.array([[0, 0.1, 0.1, 0.9, 0.9]], np.float32))])
    out, _ = RecordDetectionDataset(path)[0]
    assert np.abs(out.reshape(-1, 3).mean(0) - np.array(rgb)).max() < 4


def test_mxnet_image_det_iter_reads_our_file(rec):
    import mxnet as mx

    path, labels = rec
    it = mx.image.ImageDetIter(batch_size=2, data_shape=(3, SIZE, SIZE), path_imgrec=path,
                               path_imgidx=path[:-4] + ".idx")
    seen = []
    for batch in it:
        data, lab = batch.data[0].asnumpy(), batch.label[0].asnumpy()
        assert data.shape == (2, 3, SIZE, SIZE)
        for j in range(2 - batch.pad):
            rows = lab[j][lab[j][:, 0] >= 0]
            seen.append(rows[:, :5])
    assert len(seen) == len(labels)
    for got, want in zip(seen, labels):
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_gluoncv_record_file_detection_reads_our_file(rec):
    from gluoncv.data import RecordFileDetection

    path, labels = rec
    ds = RecordFileDetection(path)
    assert len(ds) == len(labels)
    for i, want in enumerate(labels):
        img, lab = ds[i]
        assert img.shape == (SIZE, SIZE, 3)
        # GluonCV: [xmin, ymin, xmax, ymax, cls] in pixels
        np.testing.assert_allclose(lab[:, :4], want[:, 1:] * SIZE, atol=1e-3)
        np.testing.assert_array_equal(lab[:, 4], want[:, 0])
        assert np.abs(img.asnumpy().astype(int) - _image(i)).mean() < 3   # GluonCV decodes RGB too


def test_record_without_idx_is_scanned(rec):
    path, labels = rec
    with_idx = RecordDetectionDataset(path)
    os.remove(path[:-4] + ".idx")
    ds = RecordDetectionDataset(path)
    assert ds.idx_path is None and len(ds) == len(labels)
    for i in (3, 0, 4):
        np.testing.assert_array_equal(ds[i][1], labels[i])
        np.testing.assert_array_equal(ds[i][0], with_idx[i][0])


def test_image_without_objects_round_trips_and_gluoncv_reads_it(tmp_path):
    from gluoncv.data import RecordFileDetection

    path = str(tmp_path / "e.rec")
    write_detection_rec(path, [(_image(0), np.zeros((0, 5), np.float32)),
                               (_image(1), np.array([[0, 0.1, 0.1, 0.2, 0.2]], np.float32))])
    ds = RecordDetectionDataset(path)
    assert ds[0][1].shape == (0, 5) and ds.labels()[0].shape == (0, 5)
    assert ds[1][1].shape == (1, 5)
    lab = RecordFileDetection(path)[0][1]
    assert lab.shape == (1, 5) and np.all(lab[:, 4] == -1)   # the -1 padding row


def test_truncated_file_is_a_dataset_error_naming_file_and_record(rec):
    path, labels = rec
    size = os.path.getsize(path)
    with open(path, "r+b") as fh:
        fh.truncate(size - 100)
    with pytest.raises(DatasetError) as err:
        RecordDetectionDataset(path)
    assert "train.rec" in str(err.value) and f"record {len(labels) - 1}" in str(err.value)
    os.remove(path[:-4] + ".idx")
    with pytest.raises(DatasetError, match=rf"record {len(labels) - 1}\b.*cut off"):
        RecordDetectionDataset(path)
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)
    with pytest.raises(DatasetError, match="train.rec"):
        RecordDetectionDataset(path)


def test_garbage_and_wrong_idx_are_dataset_errors(tmp_path, rec):
    junk = tmp_path / "junk.rec"
    junk.write_bytes(os.urandom(5000))
    with pytest.raises(DatasetError, match=r"junk\.rec: record 0 .*RecordIO marker"):
        RecordDetectionDataset(str(junk))
    path, _ = rec
    bad_idx = tmp_path / "bad.idx"
    good_idx = open(path[:-4] + ".idx").read().splitlines()
    bad_idx.write_text(f"{good_idx[0]}\n1\t13\n{good_idx[-1]}\n")   # 13 is not a record boundary
    ds = RecordDetectionDataset(path, str(bad_idx), classes=["a", "b", "c"])   # first and last are fine
    with pytest.raises(DatasetError, match="record 1 .*another .rec"):
        ds[1]
    bad_idx.write_text("0\t0\n1\t13\n")   # now the last entry is the broken one: found at open
    with pytest.raises(DatasetError, match="record 1"):
        RecordDetectionDataset(path, str(bad_idx), classes=["a", "b", "c"])
    bad_idx.write_text("zero\tnothing\n")
    with pytest.raises(DatasetError, match="line 1"):
        RecordDetectionDataset(path, str(bad_idx))
    with pytest.raises(DatasetError, match="does not exist"):
        RecordDetectionDataset(str(tmp_path / "missing.rec"))


def _raw_rec(path: str, payloads) -> None:
    import mxnet as mx

    w = mx.recordio.MXIndexedRecordIO(path[:-4] + ".idx", path, "w")
    for i, p in enumerate(payloads):
        w.write_idx(i, p)
    w.close()


def _jpeg(img: np.ndarray) -> bytes:
    import cv2

    return cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]))[1].tobytes()


def test_malformed_labels_are_dataset_errors_with_record_index(tmp_path):
    import mxnet as mx

    good = np.array([4, 5, 64, 64, 0, 0.1, 0.1, 0.5, 0.5], np.float32)
    cases = {
        "short": np.array([4, 5, 64, 64, 0, 0.1], np.float32),          # 2 values, rows of 5
        "width": np.array([4, 3, 64, 64, 0, 0.1, 0.1], np.float32),     # object width < 5
        "pixels": np.array([4, 5, 64, 64, 0, 10, 10, 50, 50], np.float32),
        "nan": np.array([4, 5, 64, 64, 0, np.nan, 0.1, 0.5, 0.5], np.float32),
    }
    img = _jpeg(_image(0, 64))
    for name, bad in cases.items():
        path = str(tmp_path / f"{name}.rec")
        _raw_rec(path, [mx.recordio.pack(mx.recordio.IRHeader(0, good, 0, 0), img),
                        mx.recordio.pack(mx.recordio.IRHeader(0, bad, 1, 0), img)])
        ds = RecordDetectionDataset(path, classes=["x"])
        np.testing.assert_allclose(ds[0][1], good[4:].reshape(1, 5))
        with pytest.raises(DatasetError, match=rf"{name}\.rec: record 1: malformed"):
            ds[1]
        with pytest.raises(DatasetError, match="record 1"):
            RecordDetectionDataset(path)   # naming classes reads every label
    path = str(tmp_path / "scalar.rec")
    _raw_rec(path, [mx.recordio.pack(mx.recordio.IRHeader(0, 3.0, 0, 0), img)])
    with pytest.raises(DatasetError, match="record 0: record has a single scalar label"):
        RecordDetectionDataset(path)
    path = str(tmp_path / "notimg.rec")
    _raw_rec(path, [mx.recordio.pack(mx.recordio.IRHeader(0, good, 0, 0), b"not a jpeg at all")])
    with pytest.raises(DatasetError, match="record 0: the image bytes"):
        RecordDetectionDataset(path)[0]


def test_longer_headers_and_wider_rows_parse_like_gluoncv(tmp_path):
    import mxnet as mx

    label = np.array([6, 6, 64, 64, 7, 7, 1, 0.1, 0.2, 0.3, 0.4, 9, -1, -1, -1, -1, -1, -1], np.float32)
    path = str(tmp_path / "wide.rec")
    _raw_rec(path, [mx.recordio.pack(mx.recordio.IRHeader(0, label, 0, 0), _jpeg(_image(0, 64)))])
    ds = RecordDetectionDataset(path)
    np.testing.assert_allclose(ds[0][1], [[1, 0.1, 0.2, 0.3, 0.4]])
    assert ds.classes == ["class_0", "class_1"]


def test_records_split_around_the_recordio_magic_are_joined(tmp_path):
    """dmlc splits a payload at every aligned copy of its magic number; the reader must rejoin."""
    import mxnet as mx

    magic = struct.pack("<I", 0xCED7230A)
    label = np.array([4, 5, 64, 64, 0, 0.1, 0.1, 0.5, 0.5], np.float32)   # 24 + 36 = 60 bytes before the JPEG
    jpg = _jpeg(_image(3, 64))
    comment = b"\x00\x00" + magic + b"abcd" + magic + magic + b"xy"   # magic at payload offsets 68, 76, 80
    com = b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment
    payload = mx.recordio.pack(mx.recordio.IRHeader(0, label, 0, 0), jpg[:2] + com + jpg[2:])
    assert payload.count(magic) == 3
    path = str(tmp_path / "split.rec")
    other = mx.recordio.pack(mx.recordio.IRHeader(0, label, 1, 0), jpg)
    _raw_rec(path, [payload, other])
    for idx in (None, "scan"):
        if idx == "scan":
            os.remove(path[:-4] + ".idx")
        ds = RecordDetectionDataset(path)
        assert len(ds) == 2
        img, lab = ds[0]
        np.testing.assert_allclose(lab, [[0, 0.1, 0.1, 0.5, 0.5]])
        assert np.abs(img.astype(int) - _image(3, 64)).mean() < 4
        assert ds[1][1].shape == (1, 5)


def test_open_dataset_on_a_recordio_folder(tmp_path):
    folder = tmp_path / "ds"
    labels = _labels()
    write_detection_rec(str(folder / "train.rec"), ((_image(i), l) for i, l in enumerate(labels)))
    write_detection_rec(str(folder / "val.rec"), [(_image(9), labels[0])])
    os.remove(folder / "val.idx")   # the official val.rec ships without one
    splits = open_dataset(str(folder))
    assert isinstance(splits, DatasetSplits) and splits.kind == "recordio"
    assert len(splits.train) == 5 and len(splits.val) == 1
    assert splits.classes == ["class_0", "class_1", "class_2"] == splits.val.classes
    (folder / "dataset.json").write_text('{"classes": ["cat", "dog", "fox"]}')
    splits = open_dataset(str(folder))
    assert splits.classes == ["cat", "dog", "fox"] and splits.train.classes == splits.classes
    (folder / "dataset.json").write_text('{"classes": ["cat"]}')
    with pytest.raises(DatasetError, match="class id 2"):
        open_dataset(str(folder))
    (folder / "dataset.json").write_text('{"classes": ')
    with pytest.raises(DatasetError, match="dataset.json"):
        open_dataset(str(folder))


def test_single_class_zero_is_named_pikachu_and_val_is_optional(tmp_path):
    folder = tmp_path / "p"
    write_detection_rec(str(folder / "train.rec"), [(_image(0), np.array([[0, .1, .1, .4, .4]], np.float32))])
    splits = open_dataset(str(folder))
    assert splits.classes == ["pikachu"] and splits.val is None
    assert default_class_names([np.zeros((0, 5), np.float32)]) == ["pikachu"]


def test_empty_or_broken_train_rec_folder_is_a_dataset_error(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "train.rec").write_bytes(b"")
    with pytest.raises(DatasetError, match="holds no records"):
        open_dataset(str(folder))
    (folder / "train.rec").write_bytes(b"\x0a\x23\xd7\xce" + b"\xff" * 20)
    with pytest.raises(DatasetError, match=r"train\.rec: record 0"):
        open_dataset(str(folder))


def test_write_is_atomic_when_the_sample_stream_fails(rec):
    path, labels = rec
    before = open(path, "rb").read(), open(path[:-4] + ".idx", "rb").read()

    def broken():
        yield _image(0), labels[0]
        raise RuntimeError("generator died")

    with pytest.raises(RuntimeError):
        write_detection_rec(path, broken())
    assert (open(path, "rb").read(), open(path[:-4] + ".idx", "rb").read()) == before
    assert sorted(os.listdir(os.path.dirname(path))) == ["train.idx", "train.rec"]   # no temp files left


@pytest.mark.parametrize("img,label", [
    (np.zeros((8, 8), np.uint8), np.zeros((0, 5))),                       # not HxWx3
    (np.zeros((8, 8, 3), np.float32), np.zeros((0, 5))),                  # not uint8
    (np.zeros((8, 8, 3), np.uint8), np.array([[0, 0.5, 0.5, 0.4, 0.9]])),  # xmax < xmin
    (np.zeros((8, 8, 3), np.uint8), np.array([[0, 0, 0, 8, 8]])),          # pixels, not normalized
    (np.zeros((8, 8, 3), np.uint8), np.array([[0.5, 0, 0, 1, 1]])),        # class not an integer
])
def test_writer_rejects_bad_samples(tmp_path, img, label):
    with pytest.raises(ValueError, match="sample 0"):
        write_detection_rec(str(tmp_path / "x.rec"), [(img, label)])
    assert not os.path.exists(tmp_path / "x.rec")


def test_dataset_pickles_for_worker_processes(rec):
    path, labels = rec
    ds = pickle.loads(pickle.dumps(RecordDetectionDataset(path)))
    np.testing.assert_array_equal(ds[2][1], labels[2])


def _mxnet_writer(rec_path: str, samples, quality: int = 95) -> None:
    """What the writer did through MXNet's own ``MXIndexedRecordIO`` and ``pack_img``: the reference."""
    import warnings

    import mxnet as mx

    from ssd.data.recordio_labels import check_sample, record_label

    writer = mx.recordio.MXIndexedRecordIO(rec_path[:-4] + ".idx", rec_path, "w")
    for i, (img, label) in enumerate(samples):
        img, lab = check_sample(i, img, label)
        header = mx.recordio.IRHeader(flag=0, label=record_label(img, lab), id=i, id2=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            writer.write_idx(i, mx.recordio.pack_img(header, np.ascontiguousarray(img[:, :, ::-1]), quality=quality,
                                                     img_fmt=".jpg"))
    writer.close()


def test_the_files_are_byte_for_byte_mxnets_own(tmp_path):
    """Written without MXNet, the .rec and .idx equal MXNet's writer's, for labels of 0-3 boxes, sizes whose
    payloads need padding, and a quality other than the default."""
    samples = [(_image(i, 96 + 7 * i), l) for i, l in enumerate(_labels())] + [(_image(9, 64), np.zeros((0, 5), np.float32))]
    for quality in (95, 60):
        ours, theirs = str(tmp_path / f"ours{quality}.rec"), str(tmp_path / f"mx{quality}.rec")
        write_detection_rec(ours, samples, quality=quality)
        _mxnet_writer(theirs, samples, quality)
        for a, b in ((ours, theirs), (ours[:-4] + ".idx", theirs[:-4] + ".idx")):
            assert open(a, "rb").read() == open(b, "rb").read(), (a, b)


def test_a_payload_holding_the_magic_is_split_as_dmlc_does(tmp_path):
    """dmlc cuts a record at every 4-byte-aligned copy of its magic number (continuation flags 1, 2, 3);
    MXNet's reader and ours put it back. Unaligned copies stay in the payload."""
    import mxnet as mx

    from ssd.data.recordio_frames import MAGIC
    from ssd.data.recordio_write import frame

    magic = MAGIC.to_bytes(4, "little")
    payloads = [b"abcd" + magic + b"efgh" + magic + b"ij", magic + b"x", b"ab" + magic + b"cd", b"", magic]
    path = str(tmp_path / "raw.rec")
    with open(path, "wb") as fh:
        for p in payloads:
            fh.write(frame(p))
    reader = mx.recordio.MXRecordIO(path, "r")
    assert [reader.read() for _ in payloads] == payloads
    theirs = str(tmp_path / "mx.rec")
    writer = mx.recordio.MXRecordIO(theirs, "w")
    for p in payloads:
        writer.write(p)
    writer.close()
    assert open(path, "rb").read() == open(theirs, "rb").read()
