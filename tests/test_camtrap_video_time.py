"""When a video was recorded: the time its container carries (MP4/MOV ``mvhd``, QuickTime's
creation date or ``©day``, AVI's ``IDIT``), not the file's modification time, which copying a card
to a disk changes. Clips are made by OpenCV's writer and their headers rewritten here."""
import calendar
import json
import os
import struct
import time

import pytest

from video_clips import write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")
MP4_EPOCH = 2082844800                     # 1904-01-01 to 1970-01-01, in seconds
COPIED = calendar.timegm((2025, 3, 3, 9, 0, 0, 0, 0, 0))     # when the card was copied (the mtime)


def _utc(*fields):
    return calendar.timegm(fields + (0, 0, 0))


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def set_mvhd_time(path, unix_seconds):
    """Write ``unix_seconds`` as the movie header's creation time (version 0: 32 bits since 1904)."""
    b = bytearray(path.read_bytes())
    o = b.find(b"mvhd") + 4
    assert b[o] == 0
    b[o + 4:o + 8] = struct.pack(">I", (unix_seconds + MP4_EPOCH) if unix_seconds else 0)
    path.write_bytes(bytes(b))
    os.utime(path, (COPIED, COPIED))


def add_to_moov(path, box):
    """Append ``box`` inside ``moov`` (which OpenCV's writer puts last), growing moov's size."""
    b = bytearray(path.read_bytes())
    o = b.find(b"moov") - 4
    size = struct.unpack(">I", b[o:o + 4])[0]
    assert o + size == len(b), "moov is not the last box"
    b[o:o + 4] = struct.pack(">I", size + len(box))
    path.write_bytes(bytes(b) + box)
    os.utime(path, (COPIED, COPIED))


def quicktime_creationdate(text: str) -> bytes:
    keys = _box(b"keys", bytes(4) + struct.pack(">I", 2)
                + _box(b"mdta", b"com.apple.quicktime.make") + _box(b"mdta", b"com.apple.quicktime.creationdate"))
    value = lambda s: _box(b"data", struct.pack(">II", 1, 0) + s.encode())   # noqa: E731
    ilst = _box(b"ilst", _box(struct.pack(">I", 1), value("Apple")) + _box(struct.pack(">I", 2), value(text)))
    return _box(b"meta", _box(b"hdlr", bytes(8) + b"mdta" + bytes(12)) + keys + ilst)


def add_idit(path, text: bytes):
    """An ``IDIT`` chunk at the end of the AVI's ``hdrl`` list, as trail cameras write it."""
    b = bytearray(path.read_bytes())
    h = b.find(b"hdrl") - 8
    assert b[h:h + 4] == b"LIST"
    chunk = b"IDIT" + struct.pack("<I", len(text)) + text + (b"\0" if len(text) % 2 else b"")
    end = h + 8 + struct.unpack("<I", b[h + 4:h + 8])[0]
    b[h + 4:h + 8] = struct.pack("<I", struct.unpack("<I", b[h + 4:h + 8])[0] + len(chunk))
    b[4:8] = struct.pack("<I", struct.unpack("<I", b[4:8])[0] + len(chunk))
    b[end:end] = chunk
    path.write_bytes(bytes(b))
    os.utime(path, (COPIED, COPIED))


def test_an_mp4s_movie_header_gives_its_recording_time_not_the_copy_time(tmp_path):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "walk.mp4"
    write_video(path)
    set_mvhd_time(path, _utc(2024, 1, 1, 12, 0, 0))
    assert recorded_time(str(path)) == ("2024:01:01 12:00:00", "mvhd")


@pytest.mark.parametrize("when", [-MP4_EPOCH, 0, _utc(1950, 1, 1, 0, 0, 0), _utc(2039, 1, 1, 0, 0, 0)])
def test_a_zero_or_absurd_movie_header_time_is_unknown(tmp_path, when):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "walk.mp4"
    write_video(path)
    b = bytearray(path.read_bytes())
    o = b.find(b"mvhd") + 8
    b[o:o + 4] = struct.pack(">I", when + MP4_EPOCH)      # 0: never set; 1970: Unix seconds
    path.write_bytes(bytes(b))
    assert recorded_time(str(path)) is None


def test_quicktimes_creation_date_is_the_cameras_wall_clock_and_comes_first(tmp_path):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "phone.mov"
    write_video(path)
    set_mvhd_time(path, _utc(2024, 6, 1, 6, 30, 0))           # UTC, as phones write it
    add_to_moov(path, quicktime_creationdate("2024-06-01T08:30:00+0200"))
    assert recorded_time(str(path)) == ("2024:06:01 08:30:00", "QuickTime creationdate")


def test_quicktime_user_data_day_is_read(tmp_path):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "cam.mov"
    write_video(path)
    set_mvhd_time(path, 0)
    text = b"2023-11-05T21:14:09+0100"
    add_to_moov(path, _box(b"udta", _box(b"\xa9day", struct.pack(">HH", len(text), 0) + text)))
    assert recorded_time(str(path)) == ("2023:11:05 21:14:09", "\u00a9day")


@pytest.mark.parametrize("text, expected", [(b"MON JAN 01 12:00:00 2024\n\0", "2024:01:01 12:00:00"),
                                            (b"2024:02:29 23:59:58\0", "2024:02:29 23:59:58"),
                                            (b"Tue Mar  5 07:08:09 2024", "2024:03:05 07:08:09")])
def test_an_avis_idit_chunk_gives_its_recording_time(tmp_path, text, expected):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "trail.AVI"
    write_video(path, fourcc="MJPG")
    add_idit(path, text)
    assert recorded_time(str(path)) == (expected, "IDIT")
    import cv2                                 # the clip still plays

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened() and cap.grab()
    cap.release()


@pytest.mark.parametrize("data", [
    b"",
    b"not a video at all",
    struct.pack(">I", 0xFFFFFFFF) + b"moov" + b"\0" * 20,                     # declares 4 GB, holds 28 bytes
    struct.pack(">I", 1) + b"moov" + struct.pack(">Q", 2 ** 63) + _box(b"mvhd", b"\0" * 4),  # 64-bit size
    _box(b"moov", _box(b"meta", _box(b"keys", bytes(4) + struct.pack(">I", 2 ** 31)))),    # a billion keys
    struct.pack(">I", 16) + b"moov" + struct.pack(">I", 4) + b"mvhd" + b"\0" * 100,        # a box smaller than its header
    b"RIFF" + struct.pack("<I", 2 ** 31) + b"AVI " + b"LIST" + struct.pack("<I", 2 ** 31) + b"hdrl"
    + b"IDIT" + struct.pack("<I", 2 ** 31) + b"2024",
])
def test_damaged_or_hostile_headers_are_simply_unknown(tmp_path, data):
    from ssd.data.video_time import recorded_time

    path = tmp_path / "bad.mp4"
    path.write_bytes(data)
    t0 = time.perf_counter()
    assert recorded_time(str(path)) is None
    assert time.perf_counter() - t0 < 1.0
    assert recorded_time(str(tmp_path / "missing.mp4")) is None


@pytest.mark.parametrize("text", [b"0001-01-01T00:00:00", b"1970-01-01 00:00:00", b"1850:01:01 00:00:00",
                                  b"2099:01:01 00:00:00", b"9999-12-31 23:59:59"])
def test_an_absurd_date_text_is_unknown_as_an_absurd_movie_header_time_is(tmp_path, text):
    """A ``©day`` / creation date / ``IDIT`` outside the years the movie header's time may have
    (a clock never set, Unix zero, a typo) is no recording time either: not a plausible-looking lie."""
    from ssd.data.video_time import recorded_time

    day = _box(b"\xa9day", struct.pack(">HH", len(text), 0) + text)
    (tmp_path / "cam.mov").write_bytes(_box(b"moov", _box(b"udta", day)))
    assert recorded_time(str(tmp_path / "cam.mov")) is None
    idit = b"IDIT" + struct.pack("<I", len(text)) + text + b"\0" * (len(text) % 2)
    (tmp_path / "trail.avi").write_bytes(b"RIFF" + struct.pack("<I", 4 + len(idit)) + b"AVI " + idit)
    assert recorded_time(str(tmp_path / "trail.avi")) is None


@pytest.mark.parametrize("kind", ["fifo", "device", "folder"])
def test_a_fifo_device_or_folder_named_like_a_video_is_unknown_without_waiting(tmp_path, kind):
    """``open`` of a FIFO waits for a writer for ever: a season folder holding one (or a link to one,
    or to ``/dev/zero``) must not hang the run or the export."""
    import signal

    from ssd.data.video_time import recorded_time

    path = tmp_path / "clip.mp4"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        os.symlink("/dev/zero", path)
    else:
        path.mkdir()

    class Hung(Exception):             # not an OSError, which recorded_time would take for "unknown"
        pass

    def hung(*_):
        raise Hung("recorded_time waited on it")
    before = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        assert recorded_time(str(path)) is None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, before)


def test_a_runs_video_entry_carries_its_recording_time_and_where_it_came_from(tmp_path):
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "card"
    folder.mkdir()
    write_video(folder / "a.mp4", frames=4, fps=4.0, size=(64, 48))
    set_mvhd_time(folder / "a.mp4", _utc(2024, 1, 1, 12, 0, 0))
    write_video(folder / "b.mp4", frames=4, fps=4.0, size=(64, 48))
    set_mvhd_time(folder / "b.mp4", _utc(2024, 1, 1, 12, 1, 0))      # a minute later: the same episode
    write_video(folder / "c.mp4", frames=4, fps=4.0, size=(64, 48))
    set_mvhd_time(folder / "c.mp4", 0)                                 # unknown: stands alone
    res = run_batch(RunSettings(MODEL, [str(folder)], out_json=str(tmp_path / "r.json"), frame_every=0.25,
                                workers=1, out_csv=str(tmp_path / "r.csv")), stream=None)
    by = {im["file"]: im for im in res.document["images"]}
    assert by["a.mp4"]["datetime"] == "2024:01:01 12:00:00" and by["a.mp4"]["datetime_source"] == "mvhd"
    assert by["b.mp4"]["episode"] == by["a.mp4"]["episode"]
    assert "datetime" not in by["c.mp4"] and "datetime_source" not in by["c.mp4"]
    assert by["c.mp4"]["episode"] != by["a.mp4"]["episode"]
    import csv

    with open(tmp_path / "r.csv", encoding="utf-8", newline="") as fh:
        sources = {r["file"]: r["datetime_source"] for r in csv.DictReader(fh)}
    assert sources == {"a.mp4": "mvhd", "b.mp4": "mvhd", "c.mp4": ""}


def test_camtrap_dp_times_a_video_by_its_container_as_photos_by_their_exif(tmp_path):
    """Results without times (MegaDetector's): the export reads each file's own time, a video's
    from its container, and falls back to the modification time only where there is none."""
    from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_tables

    (tmp_path / "cam1").mkdir()
    for name, when in (("a.mp4", _utc(2024, 1, 1, 12, 0, 0)), ("b.mp4", 0)):
        write_video(tmp_path / "cam1" / name, frames=4, fps=4.0, size=(64, 48))
        set_mvhd_time(tmp_path / "cam1" / name, when)
    entry = {"width": 64, "height": 48, "failure": None, "detections": [], "frame_rate": 4.0,
             "frames_processed": [0, 1, 2, 3]}
    doc = {"info": {"format_version": "1.6", "detector": "test"}, "detection_categories": {"1": "animal"},
           "images": [dict(entry, file="cam1/a.mp4"), dict(entry, file="cam1/b.mp4")]}
    _, rows, _ = camtrap_tables(doc, 0.5, PackageOptions(default_location=(1.0, 2.0), image_root=str(tmp_path)))
    media = {r["fileName"]: r for r in rows["media"]}
    assert media["a.mp4"]["timestamp"] == "2024-01-01T12:00:00+00:00"
    assert "mvhd" in media["a.mp4"]["mediaComments"]
    assert media["b.mp4"]["timestamp"] == "2025-03-03T09:00:00+00:00"
    assert "modification time" in media["b.mp4"]["mediaComments"]


def test_camtrap_dp_a_lone_videos_event_spans_the_clip():
    """A video alone in its episode had eventEnd equal to eventStart, as a photo has: the event is
    the clip, so it ends where the clip's frames end (last frame looked at over the frame rate)."""
    from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_tables

    video = {"file": "cam1/a.mp4", "width": 64, "height": 48, "failure": None, "detections": [],
             "datetime": "2024:01:01 12:00:00", "frame_rate": 4.0, "frames_processed": list(range(0, 40, 4))}
    photo = {"file": "cam2/p.jpg", "width": 64, "height": 48, "failure": None, "detections": [],
             "datetime": "2024:01:01 12:00:00"}
    late = dict(video, file="cam3/b.mp4", frames_processed=[0, 4, 8])                # 2.25 s
    early = dict(video, file="cam3/a.mp4", datetime="2024:01:01 11:59:59", frames_processed=list(range(0, 400, 4)))
    doc = {"info": {"format_version": "1.6", "detector": "test"}, "detection_categories": {"1": "animal"},
           "images": [video, photo, early, late]}
    _, rows, _ = camtrap_tables(doc, 0.5, PackageOptions(default_location=(1.0, 2.0)))
    obs = {r["mediaID"]: r for r in rows["observations"]}
    assert obs["cam1/a.mp4"]["eventStart"] == "2024-01-01T12:00:00+00:00"
    assert obs["cam1/a.mp4"]["eventEnd"] == "2024-01-01T12:00:10+00:00"      # frames 0..39 at 4 fps
    assert obs["cam2/p.jpg"]["eventEnd"] == obs["cam2/p.jpg"]["eventStart"]
    # an episode of two clips ends where the longer one ends, not where the later one starts
    assert obs["cam3/b.mp4"]["eventID"] == obs["cam3/a.mp4"]["eventID"]
    assert obs["cam3/b.mp4"]["eventEnd"] == "2024-01-01T12:01:39+00:00"


def _timed_doc(source="mvhd"):
    clip = {"file": "cam1/a.mp4", "width": 64, "height": 48, "failure": None, "datetime": "2024:01:01 12:00:00",
            "frame_rate": 4.0, "frames_processed": [0, 4],
            "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "frame_number": 4}]}
    if source is not None:
        clip["datetime_source"] = source
    photo = {"file": "cam1/b.jpg", "width": 64, "height": 48, "failure": None, "datetime": "2024:01:01 12:05:00",
             "detections": []}
    return {"info": {"format_version": "1.4", "detector": "test"}, "detection_categories": {"1": "animal"},
            "images": [clip, photo, {"file": "cam1/c.jpg", "failure": "cannot decode", "detections": None}]}


def test_the_csv_says_where_a_videos_time_came_from_and_no_cell_is_a_formula():
    import csv
    import io

    from ssd.camtrap.results import results_csv

    rows = list(csv.DictReader(io.StringIO(results_csv(_timed_doc()))))
    assert [(r["file"], r["datetime"], r["datetime_source"]) for r in rows] == [
        ("cam1/a.mp4", "2024:01:01 12:00:00", "mvhd"), ("cam1/b.jpg", "2024:01:01 12:05:00", ""),
        ("cam1/c.jpg", "", "")]
    assert rows[2]["error"] == "cannot decode"
    hostile = list(csv.DictReader(io.StringIO(results_csv(_timed_doc("=HYPERLINK(\"x\")")))))
    assert hostile[0]["datetime_source"] == "'=HYPERLINK(\"x\")"


def test_a_results_file_without_time_sources_gives_todays_csv_byte_for_byte():
    from ssd.camtrap.results import results_csv

    assert results_csv(_timed_doc(None)) == (
        "file,class,score,xmin,ymin,xmax,ymax,image_width,image_height,datetime,suspect,error,frame,warning\n"
        "cam1/a.mp4,animal,0.900,6.4,4.8,19.2,14.4,64,48,2024:01:01 12:00:00,,,4,\n"
        "cam1/b.jpg,,,,,,,64,48,2024:01:01 12:05:00,,,,\n"
        "cam1/c.jpg,,,,,,,,,,,cannot decode,,\n")


@pytest.mark.parametrize("source", ["mvhd", None])
def test_the_workbooks_images_sheet_has_the_time_source_only_where_the_results_do(tmp_path, source):
    from openpyxl import load_workbook

    from ssd.camtrap.spreadsheet import write_xlsx

    write_xlsx(_timed_doc(source), str(tmp_path / "r.xlsx"), 0.5)
    rows = list(load_workbook(tmp_path / "r.xlsx")["images"].values)
    if source is None:
        assert "datetime_source" not in rows[0]
        return
    col = rows[0].index("datetime_source")
    assert [r[col] for r in rows[1:]] == ["mvhd", None, None]


def test_camtrap_dp_a_deployment_ends_where_its_last_clip_ends():
    """deploymentEnd was the last media's start: a deployment whose last file is a clip ended before
    it had finished filming. It now ends as events do, where the latest-ending clip ends (here the
    earlier, longer clip), and the package's temporal coverage reaches that day."""
    from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_tables

    clip = {"width": 64, "height": 48, "failure": None, "detections": [], "frame_rate": 4.0}
    long_clip = dict(clip, file="cam3/a.mp4", datetime="2024:01:01 11:59:59", frames_processed=list(range(0, 400, 4)))
    short_clip = dict(clip, file="cam3/b.mp4", datetime="2024:01:01 12:00:00", frames_processed=[0, 4, 8])
    photo = {"file": "cam2/p.jpg", "width": 64, "height": 48, "failure": None, "detections": [],
             "datetime": "2024:01:01 12:00:00"}
    midnight = dict(clip, file="cam4/m.mp4", datetime="2024:01:01 23:59:58", frames_processed=list(range(0, 40, 4)))
    doc = {"info": {"format_version": "1.6", "detector": "test"}, "detection_categories": {"1": "animal"},
           "images": [long_clip, short_clip, photo, midnight]}
    package, rows, _ = camtrap_tables(doc, 0.5, PackageOptions(default_location=(1.0, 2.0)))
    deps = {d["deploymentID"]: d for d in rows["deployments"]}
    assert deps["cam3"]["deploymentStart"] == "2024-01-01T11:59:59+00:00"
    assert deps["cam3"]["deploymentEnd"] == "2024-01-01T12:01:39+00:00"      # not 12:00:00, the last start
    assert deps["cam2"]["deploymentEnd"] == deps["cam2"]["deploymentStart"] == "2024-01-01T12:00:00+00:00"
    assert deps["cam4"]["deploymentEnd"] == "2024-01-02T00:00:08+00:00"
    assert package["temporal"] == {"start": "2024-01-01", "end": "2024-01-02"}
    ends = {o["mediaID"]: o["eventEnd"] for o in rows["observations"]}
    assert deps["cam3"]["deploymentEnd"] == max(ends["cam3/a.mp4"], ends["cam3/b.mp4"])
