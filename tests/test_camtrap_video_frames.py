"""A video's frames as the run counted them: the browser shows (and crops) the very frame a
detection came from, also in a clip of variable frame rate; a clip that ends before its header
says keeps its detections but is marked, counted and shown as cut short."""
import json
import os
import subprocess
import sys

import numpy as np

from video_clips import set_avi_frame_count, variable_rate_mp4, write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


def _number_in(img):
    """The frame number painted into a frame of ``variable_rate_mp4`` (brightness 12 per frame)."""
    return int(round(np.asarray(img)[..., 0].mean() / 12.0))


def test_the_browser_shows_the_frame_the_run_counted_in_a_variable_rate_clip(tmp_path):
    """Seeking by frame number converts it to a time by the average rate (2 fps here): frame 5,
    at 1.0 s, came back as frame 4 and the last frame not at all. Every frame must be the one a
    sequential decode counts, as the detection's ``frame_number`` does."""
    from ssd.camtrap.video import read_frame

    clip = tmp_path / "phone.mp4"
    variable_rate_mp4(clip)
    got = [read_frame(str(clip), n) for n in range(20)]
    assert all(img is not None for img in got)
    assert [_number_in(img) for img in got] == list(range(20))
    assert read_frame(str(clip), 20) is None                      # past the end: nothing, not the last


def test_a_detections_crop_comes_from_its_own_frame_of_a_variable_rate_clip(tmp_path):
    from ssd.camtrap.browse import crop, open_picture

    clip = tmp_path / "phone.mp4"
    variable_rate_mp4(clip)
    entry = {"file": "phone.mp4", "frame_rate": 2.0, "frames_processed": [0, 12, 17], "failure": None,
             "detections": [{"category": "1", "conf": 0.9, "bbox": [0.2, 0.2, 0.5, 0.5], "frame_number": 12},
                            {"category": "2", "conf": 0.8, "bbox": [0.2, 0.2, 0.5, 0.5], "frame_number": 17}]}
    assert _number_in(open_picture(entry, str(tmp_path))) == 12
    assert _number_in(crop(entry, entry["detections"][1], str(tmp_path))) == 17


def _cut_avi(path, frames=20):
    """An MJPEG AVI whose header (read first) lists ``frames`` frames, cut to its first half."""
    write_video(path, frames=frames, fourcc="MJPG")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_a_clip_cut_short_keeps_its_frames_and_says_so(tmp_path):
    from ssd.camtrap.video import sample_frames

    clip = tmp_path / "cut.avi"
    _cut_avi(clip)
    v = sample_frames(str(clip), clip.name, 16, every_s=0.2)
    assert v.numbers and v.numbers[-1] < 12 and len(v.pixels) == len(v.numbers)
    assert v.cut_short and "20" in v.cut_short and f"{v.decoded}" in v.cut_short


def test_a_header_overstating_by_a_frame_or_two_is_no_warning(tmp_path):
    from ssd.camtrap.video import sample_frames

    for stated in (21, 22):
        clip = tmp_path / f"said{stated}.avi"
        write_video(clip, frames=20, fourcc="MJPG")
        set_avi_frame_count(clip, stated)
        v = sample_frames(str(clip), clip.name, 16, every_s=0.2)
        assert v.decoded == 20 and v.cut_short is None
    set_avi_frame_count(clip, 40)                                  # half the clip missing: said
    assert sample_frames(str(clip), clip.name, 16, every_s=0.2).cut_short


def test_a_header_overstating_the_length_past_the_frame_cap_does_not_thin_the_clip_read(tmp_path):
    """The header's frame count spaces the samples of a clip longer than the cap; where it overstates
    (a damaged or pre-written header) the clip actually read must still get a look every S seconds,
    not frame 0 alone (the animal in the next seconds was never looked at)."""
    from ssd.camtrap.video import sample_frames

    clip = tmp_path / "header says hours.avi"
    write_video(clip, frames=40, fps=4.0, size=(32, 24), fourcc="MJPG")    # 10 s
    set_avi_frame_count(clip, 40000)                                          # header: 10,000 s
    v = sample_frames(str(clip), clip.name, 16, every_s=1.0)
    assert v.numbers == [0, 4, 8, 12, 16, 20, 24, 28, 32, 36] and len(v.pixels) == 10
    assert v.cut_short and "40 of the 40000" in v.cut_short


def test_a_cut_short_clip_is_counted_by_the_run_and_its_results(tmp_path):
    """The run called a clip that stopped half-way a success; only ``frames_processed`` told. Now
    its entry keeps its detections (a failure would need ``"detections": null``, losing them) and
    carries a ``warning`` MegaDetector's validator accepts; stderr's last line, ``info`` and the
    summary count it."""
    from megadetector.postprocessing.validate_batch_results import (ValidateBatchResultsOptions,
                                                                    validate_batch_results)

    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.summary import summarize, summary_text

    folder = tmp_path / "card"
    folder.mkdir()
    _cut_avi(folder / "cut.avi")
    write_video(folder / "whole.avi", frames=20, fourcc="MJPG")
    out = tmp_path / "out.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", MODEL, str(folder), "--quiet",
                        "--frame-every", "0.4", "--json", str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "0 failed" in last and "1 video(s) cut short" in last, last
    opts = ValidateBatchResultsOptions()
    opts.check_image_existence, opts.relative_path_base = True, str(folder)
    assert validate_batch_results(str(out), opts)["validation_results"]["errors"] == []
    doc = read_results(str(out))
    by = {im["file"]: im for im in doc["images"]}
    assert by["cut.avi"]["failure"] is None and isinstance(by["cut.avi"]["detections"], list)
    assert "cut short" in by["cut.avi"]["warning"] and "warning" not in by["whole.avi"]
    assert doc["info"]["ssd_batch"]["cut_short"] == 1
    s = summarize(doc, 0.5)
    assert s["cut_short"] == 1 and s["failed"] == 0
    assert "cut short" in summary_text(s, 0.5)
    json.dumps(doc)


def test_the_camera_traps_page_lists_and_warns_of_clips_cut_short():
    from ssd.camtrap.browse import STATES, filter_entries

    doc = {"detection_categories": {"1": "animal"}, "images": [
        {"file": "a.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0], "detections": [],
         "warning": "cut short: decoding stopped after 6 of the 20 frames its header lists"},
        {"file": "b.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0], "detections": []}]}
    assert "cut short" in STATES
    assert [e["file"] for e in filter_entries(doc, 0.5, state="cut short")] == ["a.mp4"]


def test_merged_shards_count_the_clips_cut_short_of_all_shards(tmp_path):
    from ssd.camtrap.merging import merge_results

    paths = []
    for k in range(2):
        images = [{"file": f"s{k}/{i}.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0],
                   "detections": [], **({"warning": "cut short: …"} if i < k + 1 else {})} for i in range(3)]
        doc = {"info": {"format_version": "1.6", "ssd_batch": {"cut_short": k + 1, "shard": [k + 1, 2]}},
               "detection_categories": {"1": "animal"}, "images": images}
        paths.append(str(tmp_path / f"s{k}.json"))
        with open(paths[-1], "w") as fh:
            json.dump(doc, fh)
    assert merge_results(paths)["info"]["ssd_batch"]["cut_short"] == 3


def test_the_exports_carry_a_cut_short_clips_warning(tmp_path):
    """A researcher's next tools see the warning too: the CSV's ``warning`` column (its ``error``
    column means failure), the spreadsheet's image sheet and Camtrap DP's ``mediaComments``."""
    import csv
    import io

    from openpyxl import load_workbook

    from ssd.camtrap.camtrap_dp import PackageOptions, camtrap_tables
    from ssd.camtrap.results import results_csv
    from ssd.camtrap.spreadsheet import xlsx_bytes

    warning = "cut short: decoding stopped after 6 of the 20 frames its header lists"
    doc = {"info": {"format_version": "1.6"}, "detection_categories": {"1": "animal"}, "images": [
        {"file": "cam/a.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0, 5],
         "datetime": "2024:05:01 10:00:00", "warning": warning,
         "detections": [{"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2], "frame_number": 5}]},
        {"file": "cam/b.mp4", "failure": None, "frame_rate": 5.0, "frames_processed": [0],
         "datetime": "2024:05:01 12:00:00", "detections": []}]}
    rows = list(csv.DictReader(io.StringIO(results_csv(doc))))
    assert [(r["file"], r["warning"], r["error"]) for r in rows] == [("cam/a.mp4", warning, ""), ("cam/b.mp4", "", "")]
    sheet = load_workbook(io.BytesIO(xlsx_bytes(doc, 0.5))).worksheets[0]
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    col = values[0].index("warning")
    assert [v[col] or "" for v in values[1:]] == [warning, ""]
    _, tables, _ = camtrap_tables(doc, 0.5, PackageOptions(default_location=(1.0, 2.0)))
    assert [m["mediaComments"] for m in tables["media"]] == [warning, ""]


def test_a_zero_byte_clip_is_said_to_be_empty(tmp_path):
    """Cameras leave 0-byte clips behind (card full, battery gone as recording began): the failure
    says so, as it does for a 0-byte photo, instead of guessing at a damaged or foreign file."""
    import pytest

    from ssd.camtrap.video import sample_frames

    clip = tmp_path / "EMPTY0001.MP4"
    clip.write_bytes(b"")
    with pytest.raises(ValueError, match=r"'EMPTY0001.MP4' is empty \(0 bytes\)"):
        sample_frames(str(clip), clip.name, 16)
