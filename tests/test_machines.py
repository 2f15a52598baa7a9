"""A season split over several machines: shards merged on one, a journal resumed on another.

Each test failed before its fix: ``results merge`` joined 2/4 with 3/5, or three of four shards,
into a file that looked like one whole run; a journal copied to a machine where the season and
the model sit at other paths was refused.
"""
from __future__ import annotations

import dataclasses
import os
import json
import shutil

import pytest

from ssd.camtrap.batch_run import run_batch
from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.merging import merge_results
from ssd.cli.main import main
from test_reliability_results import _doc, _img
from test_run_store import MODEL, FakeDetector, _opts, _season, _stop_after, _strip


def _shard_file(tmp_path, name, files, shard):
    """A shard's results file as a batch run writes it (``info.ssd_batch.shard`` = [I, N])."""
    doc = _doc([_img(f) for f in files])
    doc["info"]["ssd_batch"] = {"floor": 0.01, "nms": 0.45, "max_detections": 100, "shard": shard,
                                "inference": {"engine": "onnx", "precision": "fp32", "device": "CPU"}}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_shards_of_different_counts_do_not_merge(tmp_path):
    a = _shard_file(tmp_path, "a", ["x.jpg"], [2, 4])
    b = _shard_file(tmp_path, "b", ["y.jpg"], [3, 5])
    with pytest.raises(ResultsError, match="2/4.*3/5"):
        merge_results([a, b])


def test_one_shard_given_twice_is_refused_by_its_number(tmp_path):
    a = _shard_file(tmp_path, "a", ["x.jpg"], [1, 2])
    b = _shard_file(tmp_path, "b", ["y.jpg"], [1, 2])         # the same shard, run again elsewhere
    with pytest.raises(ResultsError, match="shard 1/2 is in both"):
        merge_results([a, b])


def test_a_missing_shard_is_named_and_merges_only_when_allowed(tmp_path, capsys):
    paths = [_shard_file(tmp_path, f"s{i}", [f"cam{i}/x.jpg"], [i, 4]) for i in (1, 2, 4)]
    out = tmp_path / "all.json"
    assert main(["results", "merge", *paths, "-o", str(out)]) == 2
    assert "3/4" in capsys.readouterr().err and not out.exists()
    assert main(["results", "merge", *paths, "-o", str(out), "--allow-missing"]) == 0
    assert "3/4" in capsys.readouterr().err                   # still said, as a warning
    batch = json.loads(out.read_text())["info"]["ssd_batch"]
    assert batch["shard"] is None and batch["shards_merged"] == [[1, 4], [2, 4], [4, 4]]
    assert batch["shards_missing"] == [[3, 4]]
    # the missing shard arrives later: the partial file and it make the whole season
    last = _shard_file(tmp_path, "s3", ["cam3/x.jpg"], [3, 4])
    whole = merge_results([str(out), last])
    assert len(whole["images"]) == 4 and "shards_merged" not in whole["info"]["ssd_batch"]
    assert "shards_missing" not in whole["info"]["ssd_batch"]


def test_every_shard_merges_as_before(tmp_path):
    paths = [_shard_file(tmp_path, f"s{i}", [f"cam{i}/x.jpg"], [i, 3]) for i in (3, 1, 2)]
    merged = merge_results(paths)
    assert [im["file"] for im in merged["images"]] == ["cam1/x.jpg", "cam2/x.jpg", "cam3/x.jpg"]
    assert merged["info"]["ssd_batch"]["shard"] is None and "shards_merged" not in merged["info"]["ssd_batch"]



def _run(model, season, out, det, stop=None, **kw):
    """``detect --shard 1/2`` of ``season`` with ``model`` (by path), as ``test_run_store`` runs it."""
    opts = dataclasses.replace(_opts(season, out, shard=(1, 2), **kw), model=str(model))
    return run_batch(opts, det, stop=stop, stream=None)


@pytest.fixture
def machine_a(tmp_path):
    """Machine A ran shard 1/2 and was stopped after 8 pictures: its season, model and journal."""
    season = _season(tmp_path / "mnt" / "a" / "season", 30)
    model = tmp_path / "home" / "a" / "models" / "tiny-pikachu"
    shutil.copytree(MODEL, model)
    stop, check = _stop_after(8)
    res = _run(model, season, tmp_path / "A" / "s1.json", FakeDetector(check), stop)
    assert res.stopped
    return season, model, res.checkpoint


def _copied_to_b(tmp_path, machine_a, season_name="season"):
    """Machine B: the season under another mount, the model in another folder, the journal copied."""
    season, model, journal = machine_a
    b_season, b_model = tmp_path / "data" / season_name, tmp_path / "B" / "models" / "tiny-pikachu"
    shutil.copytree(season, b_season)
    shutil.copytree(model, b_model)
    (tmp_path / "B" / "out").mkdir()
    shutil.copy(journal, tmp_path / "B" / "out" / "s1.checkpoint.jsonl")
    return str(b_season), b_model, tmp_path / "B" / "out" / "s1.json"


def test_a_journal_copied_to_another_machine_resumes_where_paths_differ(tmp_path, machine_a):
    season, model, out = _copied_to_b(tmp_path, machine_a)
    det = FakeDetector()
    res = _run(model, season, out, det, resume=True)
    whole = FakeDetector()
    once = _run(model, season, tmp_path / "once.json", whole)
    assert not res.stopped and 0 < det.images <= whole.images - 6      # A's pictures were not run again
    assert _strip(json.loads(out.read_text()))["images"] == _strip(once.document)["images"]


def test_a_copied_journal_still_refuses_another_season_or_other_weights(tmp_path, machine_a):
    season, model, out = _copied_to_b(tmp_path, machine_a, "season-2020")
    with pytest.raises(ResultsError, match="other settings.*base"):
        _run(model, season, out, FakeDetector(), resume=True)
    with open(model / "model.params", "ab") as fh:      # retrained: same folder name, other weights
        fh.write(b"\0")
    shutil.move(season, str(tmp_path / "data" / "season"))
    with pytest.raises(ResultsError, match="other settings.*weights"):
        _run(model, str(tmp_path / "data" / "season"), out, FakeDetector(), resume=True)


def test_a_hosts_file_saved_by_notepad_reads_its_first_host(tmp_path):
    """A byte-order mark made the first host '\\ufeffnode1': ssh then could not resolve it."""
    from ssd.training.cluster import read_hosts

    f = tmp_path / "hosts"
    f.write_bytes("node1\r\nnode2:2222\r\n".encode("utf-8-sig"))
    assert read_hosts(str(f)) == [("node1", "22"), ("node2", "2222")]


@pytest.mark.parametrize("line", ["-oProxyCommand=/tmp/evil", "node1:99999", "node1:0"])
def test_a_host_line_that_ssh_would_take_as_an_option_or_a_bad_port_is_refused(tmp_path, line):
    """'-oProxyCommand=…' reached ssh's command line as an option (it ran a local program instead
    of connecting); port 99999 reached ssh, which failed late with "Bad port"."""
    from ssd.training.cluster import LaunchError, read_hosts

    f = tmp_path / "hosts"
    f.write_text(f"node0\n{line}\n")
    with pytest.raises(LaunchError, match="host line"):
        read_hosts(str(f))


def test_merge_never_writes_over_one_of_its_shards(tmp_path, capsys):
    """``results merge season.json s3.json -o season.json`` (the late shard joined in place) would replace a
    results file by its merge: refused by name, as ``rebase`` and ``repeats apply`` refuse, the file unchanged."""
    paths = [_shard_file(tmp_path, f"s{i}", [f"cam{i}/x.jpg"], [i, 2]) for i in (1, 2)]
    before = open(paths[0], encoding="utf-8").read()
    assert main(["results", "merge", *paths, "-o", paths[0]]) == 2
    err = capsys.readouterr().err
    assert paths[0] in err and "another -o" in err
    assert open(paths[0], encoding="utf-8").read() == before
    os.symlink(paths[1], tmp_path / "alias.json")                     # the same file by another name
    assert main(["results", "merge", *paths, "-o", str(tmp_path / "alias.json")]) == 2
    assert main(["results", "merge", *paths, "-o", str(tmp_path / "all.json")]) == 0


def test_shards_of_two_models_of_one_name_do_not_merge(tmp_path):
    """Two machines each had a ``models/tiny-pikachu``, one retrained: the results name the same
    detector, and were merged into one file as if one model had scored the season."""
    season = _season(tmp_path / "season", 12)
    models = []
    for machine in ("a", "b"):
        models.append(tmp_path / machine / "models" / "tiny-pikachu")
        shutil.copytree(MODEL, models[-1])
    with open(models[1] / "model.params", "ab") as fh:       # retrained: other weights
        fh.write(b"\0")
    paths = []
    for i, model in ((1, models[0]), (2, models[1]), (2, models[0])):
        opts = dataclasses.replace(_opts(season, tmp_path / f"s{i}-{model.parent.parent.name}.json", shard=(i, 2)),
                                   model=str(model))
        paths.append(run_batch(opts, FakeDetector(), stream=None).results)
    with pytest.raises(ResultsError, match="other weights"):
        merge_results(paths[:2])
    assert len(merge_results([paths[0], paths[2]])["images"]) == 13       # one model's shards merge (and notes.txt)


def test_a_shard_whose_run_has_not_finished_is_named_with_its_journal(tmp_path, machine_a):
    """Machine A's shard 1/2 was stopped (its journal is there, its results not yet, or an older
    run's): merge said only "'s1.json' does not exist", or merged the older file while the run
    that replaces it had not finished."""
    _season_path, _model, journal = machine_a
    s1 = os.path.join(os.path.dirname(journal), "s1.json")
    s2 = _shard_file(tmp_path, "s2", ["cam1/0001.jpg"], [2, 2])
    with pytest.raises(ResultsError, match="not finished.*s1.checkpoint.jsonl.*--resume"):
        merge_results([s1, s2])
    shutil.copy(_shard_file(tmp_path, "older", ["cam0/0000.jpg"], [1, 2]), s1)   # an earlier run's results
    with pytest.raises(ResultsError, match="not finished.*s1.checkpoint.jsonl"):
        merge_results([s1, s2])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="flock: POSIX")
def test_a_shard_whose_run_is_still_going_before_its_first_checkpoint_is_not_merged(tmp_path):
    """A run of shard 1/2 writes its journal under a temporary name until its first checkpoint
    (--checkpoint-every images): merge saw no ``s1.checkpoint.jsonl`` and joined the older
    ``s1.json`` that the live run was about to replace. The run's lock on that journal now counts."""
    from ssd.camtrap.run_store import RunStore, default_journal_path

    s1 = _shard_file(tmp_path, "s1", ["cam0/0000.jpg"], [1, 2])          # an earlier run's results
    s2 = _shard_file(tmp_path, "s2", ["cam1/0001.jpg"], [2, 2])
    live = RunStore.create(default_journal_path(s1), {"k": 1}, ["cam0/0000.jpg"])   # not yet published
    try:
        assert not os.path.lexists(default_journal_path(s1))
        with pytest.raises(ResultsError, match="not finished.*s1.checkpoint.jsonl"):
            merge_results([s1, s2])
    finally:
        live.close()
    assert len(merge_results([s1, s2])["images"]) == 2       # once that run has ended (here: stopped unpublished)


def test_a_merge_claims_the_weights_only_where_every_shard_records_them(tmp_path):
    """A shard that records no weights' digest (an older run's, MegaDetector's) merges with one that
    does, but the merged file copied the first shard's ``model_weights``: with the recording shard
    first it claimed every entry came from those weights, with it second it claimed none; a later
    merge was then refused or let through by the order of the files."""
    a = _shard_file(tmp_path, "a", ["cam0/0000.jpg"], [1, 2])
    b = _shard_file(tmp_path, "b", ["cam1/0001.jpg"], [2, 2])
    doc = json.loads(open(a, encoding="utf-8").read())
    doc["info"]["ssd_batch"]["model_weights"] = "f" * 40
    with open(a, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    for order in ([a, b], [b, a]):
        assert "model_weights" not in merge_results(order)["info"]["ssd_batch"]
    c = _shard_file(tmp_path, "c", ["cam2/0002.jpg"], [2, 2])
    doc["info"]["ssd_batch"]["shard"] = [2, 2]
    doc["images"] = [_img("cam2/0002.jpg")]
    with open(c, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    assert merge_results([a, c])["info"]["ssd_batch"]["model_weights"] == "f" * 40     # all record the same


def _split_season(tmp_path, name, root, files):
    """``results split`` of a season's file whose run recorded its photos at ``root``: the parts' paths by folder."""
    doc = _doc([_img(f) for f in files])
    doc["info"]["ssd_batch"] = {"floor": 0.01, "images_root": root, "absolute_paths": False}
    whole = tmp_path / f"{name}.json"
    whole.write_text(json.dumps(doc))
    out = tmp_path / f"{name}-parts"
    assert main(["results", "split", str(whole), "--out", str(out)]) == 0
    return {p.stem: str(p) for p in out.iterdir()}


def test_parts_of_one_split_merge_back_into_the_season(tmp_path):
    """Each part names its images relative to its camera's folder (its recorded images folder moved
    down): merged, CAM02's files were read as CAM01's, and a name both hold was called a shard overlap."""
    parts = _split_season(tmp_path, "season", "/data/season",
                          ["CAM01/a.jpg", "CAM01/b.jpg", "CAM02/a.jpg", "CAM02/c.jpg"])
    merged = merge_results([parts["CAM02"], parts["CAM01"]])
    assert [im["file"] for im in merged["images"]] == ["CAM01/a.jpg", "CAM01/b.jpg", "CAM02/a.jpg", "CAM02/c.jpg"]
    assert merged["info"]["ssd_batch"]["images_root"] == "/data/season"
    assert "split_from" not in merged["info"]


def test_parts_whose_roots_cannot_be_reconciled_are_refused_naming_both(tmp_path):
    ours = _split_season(tmp_path, "ours", "/data/season", ["CAM01/a.jpg", "CAM02/b.jpg"])
    theirs = _split_season(tmp_path, "theirs", "/mnt/other", ["CAM03/a.jpg", "CAM04/b.jpg"])
    with pytest.raises(ResultsError, match="/data/season.*/mnt/other"):
        merge_results([ours["CAM01"], theirs["CAM03"]])
    rootless = _doc([_img("x.jpg")])                  # relative names, no folder recorded
    (tmp_path / "rootless.json").write_text(json.dumps(rootless))
    with pytest.raises(ResultsError, match="/data/season.*no images folder|no images folder.*/data/season"):
        merge_results([ours["CAM01"], str(tmp_path / "rootless.json")])


def test_a_stop_after_the_last_file_finishes_the_run(tmp_path):
    """Ctrl-C, SIGTERM or the app's Stop arriving while the last picture was scored left no results
    file and a journal to --resume, though nothing was left to do: the run now ends as a completed one."""
    folder = _season(tmp_path / "season", 9)
    out = tmp_path / "season.json"
    stop, check = _stop_after(9)                   # set as the last picture (the last file) is scored
    res = run_batch(_opts(folder, out, batch_size=1), FakeDetector(check), stop=stop, stream=None)
    assert stop.is_set()
    assert not res.stopped and res.processed == res.total == 10
    assert len(json.loads(out.read_text())["images"]) == 10
    assert not (tmp_path / "season.checkpoint.jsonl").exists()
    # a stop with files left still stops, and keeps the journal for --resume
    out2 = tmp_path / "again.json"
    stop, check = _stop_after(4)
    res = run_batch(_opts(folder, out2, batch_size=2), FakeDetector(check), stop=stop, stream=None)
    assert res.stopped and not out2.exists() and (tmp_path / "again.checkpoint.jsonl").exists()
