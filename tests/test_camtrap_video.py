"""Camera-trap videos: sampled frames, MegaDetector's video fields (validated), the best frame shown,
and a killed run resumed video by video."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kill_helpers import kill9_after_first_checkpoint
from video_clips import variable_rate_mp4, write_video

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(REPO, "models", "tiny-pikachu")


def _strip_times(doc):
    doc = json.loads(json.dumps(doc))
    doc["info"].pop("detection_completion_time", None)
    return doc


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    root = tmp_path_factory.mktemp("clips")
    (root / "cam1").mkdir()
    (root / "cam2").mkdir()
    write_video(root / "cam1" / "walk.mp4")
    write_video(root / "cam2" / "night.AVI", fourcc="MJPG", seed=1)
    (root / "cam2" / "broken.mp4").write_bytes(b"not a video at all")
    from PIL import Image
    Image.new("RGB", (80, 60), (90, 120, 60)).save(root / "cam2" / "photo.jpg")
    return root


def test_videos_get_megadetector_video_fields_and_pass_its_validator(clips, tmp_path):
    from megadetector.postprocessing.validate_batch_results import (ValidateBatchResultsOptions,
                                                                    validate_batch_results)

    from ssd.camtrap.video import sample_frames
    from ssd.inference.engines import load_detector

    out = tmp_path / "clips.json"
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", MODEL, str(clips), "--recursive",
                        "--frame-every", "0.4", "--json", str(out), "--quiet"], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0 and "1 failed" in r.stderr and "Traceback" not in r.stderr, r.stderr
    opts = ValidateBatchResultsOptions()
    opts.check_image_existence, opts.relative_path_base = True, str(clips)
    assert validate_batch_results(str(out), opts)["validation_results"]["errors"] == []
    doc = json.loads(out.read_text())
    by = {im["file"]: im for im in doc["images"]}
    assert set(by) == {"cam1/walk.mp4", "cam2/night.AVI", "cam2/broken.mp4", "cam2/photo.jpg"}
    walk = by["cam1/walk.mp4"]
    # 5 fps, a frame every 0.4 s → every int(0.4 * 5) = 2nd frame of 10
    assert walk["frame_rate"] == 5.0 and walk["frames_processed"] == [0, 2, 4, 6, 8]
    assert (walk["width"], walk["height"]) == (96, 64) and walk["failure"] is None
    assert walk["detections"] and len({d["frame_number"] for d in walk["detections"]}) == 1
    # the best frame is the one whose top detection scores highest (checked against the network directly)
    det = load_detector(MODEL)             # the engine and precision detect's default (auto) ran
    frames = sample_frames(str(clips / "cam1" / "walk.mp4"), "walk.mp4", det.input_size, 0.4)
    tops = [float(s.max()) if len(s) else 0.0 for _, s, _ in det.predict_arrays(frames.pixels, floor=0.005)]
    best = frames.numbers[int(np.argmax(tops))]
    assert walk["detections"][0]["frame_number"] == best
    assert walk["max_detection_conf"] == pytest.approx(max(tops), abs=1e-3)
    broken = by["cam2/broken.mp4"]
    assert broken["detections"] is None and broken["failure"] and broken["frames_processed"] == []
    assert "frame_rate" not in by["cam2/photo.jpg"]
    # the browser shows the video's best frame with its boxes
    from ssd.camtrap.browse import picture

    pic = picture(walk, doc["detection_categories"], str(clips), 0.0, side=96)
    assert pic is not None and pic.size == (96, 64)


def test_a_killed_video_run_resumes_video_by_video(tmp_path):
    folder = tmp_path / "card"
    folder.mkdir()
    for i in range(24):
        write_video(folder / f"v{i:02d}.mp4", frames=4, fps=4.0, size=(64, 48), seed=i)
    args = ["--model", MODEL, str(folder), "--batch-size", "1", "--workers", "1", "--quiet", "--frame-every", "0.25"]
    ckpt, out = tmp_path / "run.checkpoint.jsonl", tmp_path / "run.json"
    kill9_after_first_checkpoint(REPO, ["detect", *args, "--json", out, "--checkpoint-every", "2"], ckpt, out)
    lines = ckpt.read_text().splitlines()[1:]
    done = [json.loads(t) for t in lines if t.endswith("}")]
    assert 0 < len(done) < 24 and all(e["frames_processed"] == [0, 1, 2, 3] for e in done)   # whole videos only
    # a resume with another frame spacing would mix two samplings in one file: refused, nothing lost
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", *args[:-1], "0.5", "--json", str(out), "--resume"],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "frame_every" in r.stderr and ckpt.exists(), r.stderr
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", *args, "--json", str(out), "--resume"], cwd=REPO,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"running: {len(done)}/24" in r.stderr          # the journal's videos were not redone
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", *args, "--json", str(tmp_path / "once.json")],
                       cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    resumed, once = json.loads(out.read_text()), json.loads((tmp_path / "once.json").read_text())
    assert _strip_times(resumed) == _strip_times(once)


def test_a_clip_longer_than_the_frame_cap_is_sampled_to_its_end(tmp_path, monkeypatch):
    """The cap on frames held bounds memory; it must not leave the end of a long clip unseen."""
    from ssd.camtrap import video

    monkeypatch.setattr(video, "MAX_FRAMES", 10)
    path = tmp_path / "long walk.avi"
    write_video(path, frames=60, fps=2.0, size=(32, 24), fourcc="MJPG")    # 30 s; one frame a second: 30 > 10
    v = video.sample_frames(str(path), path.name, 16, every_s=1.0)
    assert len(v.numbers) <= 10 and len(v.pixels) == len(v.numbers)
    step = v.numbers[1] - v.numbers[0]
    assert step >= 2 and all(b - a == step for a, b in zip(v.numbers, v.numbers[1:]))   # evenly spaced
    assert v.numbers[-1] > 60 - step - 1                                  # the last seconds were looked at


def test_the_pipeline_holds_only_a_few_videos_at_once(tmp_path, monkeypatch):
    """Each video may bring up to MAX_FRAMES frames: a decode window counted in files must not be
    filled with videos (16 long clips at 256² held 3 GB), whatever the batch size."""
    from ssd.camtrap import pipeline
    from ssd.camtrap.video import VideoFrames

    started = []

    def fake_sample(path, name, size, every_s, on_frames=None):
        started.append(name)
        return VideoFrames(list(range(0, 40, 5)), np.zeros((8, size, size, 3), np.uint8), 5.0, (size, size))

    class Detector:
        input_size, classes = 8, ["animal"]

        def predict_arrays(self, images, nms=0.45, floor=0.005):
            return [(np.zeros(1, np.float32), np.full(1, 0.5, np.float32), np.zeros((1, 4), np.float32))
                    for _ in images]

    monkeypatch.setattr(pipeline, "sample_frames", fake_sample)
    names = [f"clip{i:02d}.mp4" for i in range(20)] + ["photo.jpg"]
    held, done = [], 0
    for out in pipeline.run_pipeline(Detector(), [str(tmp_path / n) for n in names], names, 0.45, 0.005,
                                     batch_size=8, workers=2):
        done += 1
        held.append(len(started) - done)
        assert out.is_video == names[out.index].endswith(".mp4")
    assert done == 21 and len(started) == 20 and max(held) <= 2, held


def _rotate_mp4(path, out):
    """``path`` (an MP4 from OpenCV's writer) with a phone's "rotate 90°" display matrix in its track header."""
    import struct

    b = bytearray(path.read_bytes())
    at = b.find(b"tkhd") + 4 + 4 + 20 + 8 + 8       # version/flags, times, ids, duration, reserved, layer…volume
    b[at:at + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(b))


def test_a_portrait_phone_clip_is_read_upright_as_players_show_it(tmp_path):
    """Phones store portrait clips landscape with a rotation in the metadata; every player shows them
    upright, so the network, the sizes, the boxes and the browser's frame must use the upright picture."""
    import cv2

    from ssd.camtrap.video import read_frame, sample_frames

    flat = tmp_path / "flat.mp4"
    w = cv2.VideoWriter(str(flat), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (96, 64))
    for _ in range(6):
        f = np.zeros((64, 96, 3), np.uint8)
        f[:, :20] = 255                              # a white band down the stored picture's left side
        w.write(f)
    w.release()
    clip = tmp_path / "Handy Fuchs.mp4"
    _rotate_mp4(flat, clip)
    v = sample_frames(str(clip), clip.name, 32)
    assert v.size == (64, 96)                        # upright: portrait
    rows = v.pixels[0, :, :, 0].astype(float)
    assert np.ptp(rows.mean(axis=1)) > 100 and np.ptp(rows.mean(axis=0)) < 30   # the band now runs across
    shown = read_frame(str(clip), 5)
    assert shown is not None and shown.size == (64, 96)


def test_a_variable_frame_rate_clip_is_sampled_every_second_of_its_time(tmp_path):
    """Counting frames at the average rate (2 fps here) looked 6 times in the first 2 s and missed
    whole seconds after; the frames' time stamps give one look a second all through."""
    from ssd.camtrap.video import sample_frames

    clip = tmp_path / "phone.mp4"
    variable_rate_mp4(clip)
    v = sample_frames(str(clip), clip.name, 16, every_s=1.0)
    times = [0.2 * n if n <= 10 else 2.0 + 0.8 * (n - 10) for n in v.numbers]
    assert v.fps == 2.0 and np.allclose(v.pixels[:, 0, 0, 0], [12 * n for n in v.numbers], atol=6)
    assert sum(t <= 2.0 for t in times) == 3                       # 0, 1 and 2 s
    assert all(min(abs(t - k) for t in times) <= 0.4 + 1e-6 for k in range(10))   # a frame nearest each second


def test_a_clip_of_unknown_length_is_thinned_not_cut_at_the_frame_cap(tmp_path, monkeypatch):
    """A stream that does not say how many frames it has (a raw MJPEG stream here; MPEG files
    guess short) cannot be spaced out ahead: the frames held are thinned as it goes instead."""
    import io

    from PIL import Image

    from ssd.camtrap import video

    buf = io.BytesIO()
    for i in range(60):                                   # 60 JPEGs back to back: FFmpeg reads 25 fps
        Image.fromarray(np.full((24, 32, 3), i * 4, np.uint8)).save(buf, "JPEG")
    clip = tmp_path / "trailcam.avi"
    clip.write_bytes(buf.getvalue())
    monkeypatch.setattr(video, "MAX_FRAMES", 10)
    v = video.sample_frames(str(clip), clip.name, 8, every_s=0.04)        # every frame wanted: 60 > 10
    assert len(v.numbers) <= 10 and len(v.pixels) == len(v.numbers)
    assert v.numbers[-1] >= 50                                            # the end was looked at
    gaps = {b - a for a, b in zip(v.numbers, v.numbers[1:])}
    assert max(gaps) <= 2 * min(gaps)                                     # still about evenly spaced
    assert np.allclose(v.pixels[:, 0, 0, 0], [4 * n for n in v.numbers], atol=4)   # each frame is its number


def test_damaged_clips_give_our_messages_not_ffmpegs_log_lines(tmp_path):
    """A clip cut off mid-recording (camera out of power) printed FFmpeg's internal log lines
    ("[mov,mp4,… @ 0x…] moov atom not found") among the run's progress, even with --quiet."""
    good = tmp_path / "good.mp4"
    write_video(good, frames=20)
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:len(data) // 2])
    write_video(tmp_path / "cut.avi", frames=20, fourcc="MJPG")
    avi = (tmp_path / "cut.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(avi[:len(avi) // 2 + 7])          # stops inside a frame
    good.unlink()
    r = subprocess.run([sys.executable, "-m", "ssd", "detect", "--model", MODEL, str(tmp_path), "--quiet",
                        "--json", str(tmp_path / "out.json")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "@ 0x" not in r.stderr and "moov" not in r.stderr, r.stderr
    by = {im["file"]: im for im in json.loads((tmp_path / "out.json").read_text())["images"]}
    assert "cut off" in by["cut.mp4"]["failure"] and by["cut.avi"]["frames_processed"][0] == 0


def test_a_class_seen_only_outside_the_best_frame_is_kept_with_its_frame():
    """A deer at 0.9 in one frame and a person at 0.8 in another: only the deer's frame was kept,
    so the person was lost to the summary, the sort and the exports. Now each class the best frame
    lacks brings its top detection from its own frame (as MegaDetector's conversion keeps each
    class's top detection), and the browser still draws only the shown frame's boxes."""
    from ssd.camtrap.browse import entry_detections
    from ssd.camtrap.video import video_entry
    from ssd.inference.detector import RawDetections

    classes = ["deer", "person"]

    def raw(*dets):
        return RawDetections(np.array([c for c, _ in dets], np.int64), np.array([s for _, s in dets], np.float32),
                             np.array([[10, 10, 40, 40]] * len(dets), np.float32).reshape(-1, 4), (100, 100), classes)

    frames = [(0, raw((0, 0.3))), (30, raw((0, 0.9), (0, 0.6))), (60, raw((1, 0.8), (0, 0.5))), (90, raw((1, 0.4)))]
    entry = video_entry("clip.mp4", frames, 30.0, None, 0.005, 100)
    got = [(d["category"], d["conf"], d["frame_number"]) for d in entry["detections"]]
    assert got == [("1", 0.9, 30), ("2", 0.8, 60), ("1", 0.6, 30)]
    assert entry["max_detection_conf"] == 0.9
    shown = entry_detections(entry, {"1": "deer", "2": "person"}, 0.0, True, (100, 100))
    assert sorted(shown.scores.tolist()) == pytest.approx([0.6, 0.9])          # frame 30's boxes only
    # the cap on detections per entry still holds
    assert len(video_entry("clip.mp4", frames, 30.0, None, 0.005, 2)["detections"]) == 2


def test_a_video_counts_its_sampled_frames_towards_the_journal_checkpoint(tmp_path, monkeypatch):
    """--checkpoint-every counts images; a video brings many frames of work, so it counts each one.
    Counting it as one image let a kill -9 lose up to 500 videos' worth of frames (hours of clips)."""
    from ssd.camtrap.batch_run import run_batch
    from ssd.camtrap.run_store import RunStore
    from ssd.camtrap.settings import RunSettings

    folder = tmp_path / "card"
    folder.mkdir()
    for i in range(3):
        write_video(folder / f"v{i}.mp4", frames=8, fps=4.0, size=(64, 48), seed=i)   # 8 frames sampled each
    done_at = []
    real = RunStore.checkpoint

    def spy(self):
        done_at.append(sum(1 for off in self._offsets if off >= 0))
        real(self)

    monkeypatch.setattr(RunStore, "checkpoint", spy)
    opts = RunSettings(MODEL, [str(folder)], out_json=str(tmp_path / "run.json"), checkpoint_every=8,
                       batch_size=8, workers=1, frame_every=0.25)
    res = run_batch(opts, stream=None)
    assert res.total == 3 and not res.stopped
    assert done_at[:2] == [1, 2]          # after each video's 8 frames, not only at the end


def test_camtrap_dp_export_says_how_many_failed_files_it_left_out(tmp_path, capsys):
    """A clip that could not be read has no place in media.csv; the export said nothing of it, so a
    season's unreadable videos went missing from the published package without a word."""
    from PIL import Image

    from ssd.cli.main import main

    (tmp_path / "cam1").mkdir()
    Image.new("RGB", (64, 48), (90, 120, 60)).save(tmp_path / "cam1" / "a.jpg")
    doc = {"info": {"format_version": "1.6", "detector": "test"}, "detection_categories": {"1": "animal"},
           "images": [{"file": "cam1/a.jpg", "width": 64, "height": 48, "failure": None, "detections": []},
                      {"file": "cam1/cut.MP4", "failure": "could not be opened", "frame_rate": -1.0,
                       "frames_processed": [], "detections": None}]}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    code = main(["results", "export", str(tmp_path / "r.json"), "--format", "camtrap-dp", "--out",
                 str(tmp_path / "dp"), "--images", str(tmp_path), "--latitude", "1", "--longitude", "2"])
    err = capsys.readouterr().err
    assert code == 0 and "1 media" in err, err
    assert "1 failed file(s) left out" in err, err
