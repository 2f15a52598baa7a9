"""The Camera traps page (AppTest) with a season's results: episodes as rows, per-class thresholds,
the threshold explorer, a repeat review that writes a cleaned file, and the Camtrap DP / XLSX exports."""
import io
import json
import os

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from conftest import REPO_ROOT

APP = os.path.join(REPO_ROOT, "app.py")
TIMES = ["2024:06:01 10:00:00", "2024:06:01 10:00:02", "2024:06:01 10:00:04", "2024:06:01 11:00:00",
         "2024:06:01 11:00:01", "2024:06:01 12:00:00"]


@pytest.fixture
def season(monkeypatch, tmp_path, shipped_models_root):
    monkeypatch.setenv("SSD_MODELS_DIR", shipped_models_root)
    monkeypatch.setenv("SSD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SSD_FORCE_CPU", "1")
    monkeypatch.setenv("SSD_PHOTO_ROOTS", str(tmp_path))       # the season, its exports and reviews live here
    write_season(tmp_path)
    return tmp_path


def write_season(tmp_path) -> None:
    """``photos/`` and ``season.json``: cam1 has six timed frames in three bursts, a rock flagged in
    four of them; cam2 two untimed frames, one with a person at 0.4. Classes animal "1", person "2"."""
    photos = tmp_path / "photos"
    images = []
    for i, when in enumerate(TIMES):
        (photos / "cam1").mkdir(parents=True, exist_ok=True)
        exif = Image.Exif()
        exif[306] = when
        Image.new("RGB", (120, 90), (30 * i, 100, 60)).save(photos / "cam1" / f"{i}.jpg", exif=exif)
        dets = [{"category": "1", "conf": 0.8, "bbox": [0.5, 0.5, 0.1, 0.1], "suspect": True}] if i < 4 else []
        if i == 0:
            dets.append({"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.3, 0.3]})
        images.append({"file": f"cam1/{i}.jpg", "width": 120, "height": 90, "datetime": when, "detections": dets,
                       "failure": None})
    for i in range(2):
        (photos / "cam2").mkdir(exist_ok=True)
        Image.new("RGB", (120, 90), (200, 30 * i, 60)).save(photos / "cam2" / f"u{i}.jpg")
        images.append({"file": f"cam2/u{i}.jpg", "width": 120, "height": 90, "failure": None,
                       "detections": [{"category": "2", "conf": 0.4, "bbox": [0.2, 0.2, 0.2, 0.5]}] if i else []})
    doc = {"info": {"format_version": "1.6", "detector": "ssd-studio:test",
                    "detector_metadata": {"typical_detection_threshold": 0.3},
                    "ssd_batch": {"episode_gap": 120.0, "flag_repeats": 3}},
           "detection_categories": {"1": "animal", "2": "person"}, "images": images}
    (tmp_path / "season.json").write_text(json.dumps(doc))


def _open(season) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    at.text_input(key="ct_results_path").set_value(str(season / "season.json"))
    at.text_input(key="ct_image_root").set_value(str(season / "photos")).run()
    _ok(at)
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_episodes_per_class_thresholds_and_the_explorer_render(season):
    at = _open(season)
    m = _metrics(at)
    # at 0.3 (suspects hidden): cam1/0 (animal .9) and cam2/u1 (person .4); bursts cam1 {0,1,2} {3,4} {5}, cam2 2 alone
    assert (m["Images"], m["With detections"], m["Episodes"], m["Episodes with detections"]) == ("8", "2", "5", "2")
    at.radio(key="ct_view").set_value("episodes").run()
    _ok(at)
    rows = [t.value for t in at.text if "frame(s)" in t.value]
    assert rows[0].startswith("cam1#1 · 3 frame(s)") and len(rows) == 5
    assert len(at.image) == 8 + 4                  # every frame once, and the review's four crops
    at.checkbox(key="ct_per_class").check().run()
    at.number_input(key="ct_thr_2").set_value(0.5).run()           # people only from 0.5: u1's 0.4 drops out
    _ok(at)
    assert _metrics(at)["With detections"] == "1" and _metrics(at)["Episodes with detections"] == "1"
    images_before = len(at.image)
    at.toggle(key="ct_explore").set_value(True).run()
    _ok(at)
    assert len(at.image) == images_before + 1                        # the sweep's figure
    sweep = next(d.value for d in at.dataframe if "images changed" in d.value.columns)
    assert list(sweep["threshold"])[0] == 0.05 and list(sweep["images"])[0] == 2


def test_repeat_review_on_the_page_writes_a_cleaned_file_the_validator_accepts(season):
    from megadetector.postprocessing.validate_batch_results import validate_batch_results

    at = _open(season)
    assert any("cam1 · place 1 · 4 detection(s) in 4 image(s)" in t.value for t in at.text)
    at.radio(key="ct_rv_0").set_value("false positive").run()
    at.text_input(key="ct_rv_out").set_value(str(season / "clean.json")).run()
    next(b for b in at.button if b.key == "ct_rv_write").click().run()
    _ok(at)
    assert any("4 detection(s) removed" in s.value for s in at.success), [s.value for s in at.success]
    clean = json.loads((season / "clean.json").read_text())
    assert [len(im["detections"]) for im in clean["images"]] == [1, 0, 0, 0, 0, 0, 0, 1]
    assert clean["info"]["repeat_review"][0]["groups"][0]["decision"] == "false positive"
    assert validate_batch_results(str(season / "clean.json"))["validation_results"]["errors"] == []
    assert len(json.loads((season / "season.json").read_text())["images"][1]["detections"]) == 1   # untouched


def test_exports_from_the_page_write_a_valid_camtrap_dp_package_and_a_workbook(season):
    from openpyxl import load_workbook

    from camtrap_dp_offline import validate_offline

    at = _open(season)
    at.text_input(key="ct_dp_out").set_value(str(season / "package")).run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    assert any("latitude and longitude" in e.value for e in at.error)    # refused: no position given
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25)
    at.text_input(key="ct_dp_utc").set_value("+01:00").run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    _ok(at)
    report, _ = validate_offline(str(season / "package" / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    next(b for b in at.button if b.key == "ct_dp_prepare").click().run()
    _ok(at)
    ready = at.session_state["ct_dl_ready"]
    wb = load_workbook(io.BytesIO(ready["xlsx"]))
    assert len(list(wb["images"].iter_rows())) == 1 + 8
    import zipfile

    assert sorted(zipfile.ZipFile(io.BytesIO(ready["zip"])).namelist()) == [
        "datapackage.json", "deployments.csv", "media.csv", "observations.csv"]


def _write_package(at, out, **fields):
    """Give the Camtrap DP export a default position, the ``text_input`` values of ``fields`` (by key
    suffix: ``locations``, ``taxa``, …) and ``out``; press "Write"."""
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25)
    for key, value in fields.items():
        at.text_input(key=key).set_value(str(value))
    at.text_input(key="ct_dp_out").set_value(str(out)).run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()


def test_the_page_warns_of_a_locations_row_that_names_no_camera_folder(season):
    """A typo in the locations CSV (``cam 1`` for ``cam1``) let cam1 take the default position silently."""
    (season / "loc.csv").write_text("deploymentID,latitude,longitude\ncam 1,10,20\ncam2,11,21\n")
    at = _open(season)
    _write_package(at, season / "package", ct_dp_locations=season / "loc.csv")
    _ok(at)
    warned = [w.value for w in at.warning if "no camera folder" in w.value]
    assert len(warned) == 1 and "'cam 1'" in warned[0] and "'cam2'" not in warned[0].split(";")[0], warned


def test_the_page_exports_scientific_names_from_a_taxa_csv_and_warns_of_a_typo(season):
    """A species model's classes reached Camtrap DP only as tags: GBIF could use no observation."""
    (season / "taxa.csv").write_text("class,scientificName,taxonRank\nAnimal,Cervus elaphus,species\n"
                                     "persn,Homo sapiens,species\n")
    at = _open(season)
    _write_package(at, season / "package", ct_dp_taxa=season / "taxa.csv")
    _ok(at)
    desc = json.loads((season / "package" / "datapackage.json").read_text())
    assert desc["taxonomic"] == [{"scientificName": "Cervus elaphus", "taxonRank": "species"}]
    obs = (season / "package" / "observations.csv").read_text()
    assert ",animal,,Cervus elaphus," in obs and "Homo sapiens" not in obs
    warned = [w.value for w in at.warning if "persn" in w.value]
    assert len(warned) == 1 and "no class of these results" in warned[0], [w.value for w in at.warning]


def test_a_display_change_neither_rereads_the_results_nor_remakes_the_downloads(season, monkeypatch):
    """A season's results file is read (parsed and checked) once per version on disk; the JSON and
    CSV downloads are made when clicked. A slider move reran both, seconds at 200,000 entries."""
    import ssd.camtrap.page_results as page_results
    import ssd.camtrap.results_csv as results_csv
    import ssd.camtrap.run_checkpoint as run_checkpoint

    reads, csvs = [], []
    real_read = page_results.open_compact
    monkeypatch.setattr(page_results, "open_compact", lambda path: reads.append(path) or real_read(path))
    monkeypatch.setattr(results_csv, "write_results_csv_of", lambda *a: csvs.append(1))
    monkeypatch.setattr(run_checkpoint, "write_images_json", lambda *a: csvs.append(1))
    at = _open(season)
    at.slider(key="ct_conf").set_value(0.85).run()
    _ok(at)
    assert _metrics(at)["With detections"] == "1"          # the new threshold counted (cam1/0.jpg at 0.9)
    at.checkbox(key="ct_hide_suspect").set_value(False).run()
    _ok(at)
    assert reads.count(str(season / "season.json")) == 1 and csvs == []
    os.utime(season / "season.json", ns=(1, 1))             # a new version on disk is read again
    at.slider(key="ct_conf").set_value(0.5).run()
    _ok(at)
    assert reads.count(str(season / "season.json")) == 2


def test_settings_outlive_a_visit_to_another_page(season):
    """A researcher who looks at the Home page and comes back finds the run form, the results file,
    the filters and the per-class thresholds as left (Streamlit forgets a widget not drawn in a run)."""
    at = _open(season)
    at.text_input(key="ct_folder").set_value(str(season / "photos"))
    at.number_input(key="ct_repeats").set_value(4)
    at.text_input(key="ct_path_prefix").set_value("")
    at.slider(key="ct_conf").set_value(0.5)
    at.checkbox(key="ct_hide_suspect").uncheck()
    at.checkbox(key="ct_per_class").check().run()
    at.number_input(key="ct_thr_2").set_value(0.2).run()
    at.text_input(key="ct_dp_title").set_value("Season one").run()          # the Camtrap DP form
    at.number_input(key="ct_rg_gap").set_value(150.0).run()                # the results' episodes regrouped
    at.selectbox(key="ct_sort_mode").set_value("copy")                     # a form's widget: kept once submitted
    next(b for b in at.button if b.label == "Sort into folders").click().run()      # no folder: sorts nothing
    at.checkbox(key="ct_per_class").uncheck().run()                 # the thresholds hidden, not forgotten
    at.checkbox(key="ct_per_class").check().run()
    assert at.number_input(key="ct_thr_2").value == 0.2
    before = _metrics(at)
    at.switch_page("app_pages/home.py").run()
    _ok(at)
    at.switch_page("app_pages/camera_traps.py").run()
    _ok(at)
    assert not at.warning, [w.value for w in at.warning]     # no "set through the Session State API" warning
    # what the browser is sent: the kept values, not the defaults (else it shows Hide suspect ticked
    # while the totals are counted without it)
    sent = {k: (w.proto.set_value, w.proto.value) for k, w in (
        ("ct_hide_suspect", at.checkbox(key="ct_hide_suspect")), ("ct_folder", at.text_input(key="ct_folder")),
        ("ct_results_path", at.text_input(key="ct_results_path")))}
    assert sent == {"ct_hide_suspect": (True, False), "ct_folder": (True, str(season / "photos")),
                    "ct_results_path": (True, str(season / "season.json"))}
    assert at.slider(key="ct_conf").proto.set_value and list(at.slider(key="ct_conf").proto.value) == [0.5]
    assert at.text_input(key="ct_folder").value == str(season / "photos")
    assert at.number_input(key="ct_repeats").value == 4
    assert at.text_input(key="ct_results_path").value == str(season / "season.json")
    assert at.slider(key="ct_conf").value == 0.5 and at.checkbox(key="ct_hide_suspect").value is False
    assert at.number_input(key="ct_thr_2").value == 0.2
    assert at.text_input(key="ct_dp_title").value == "Season one" and at.selectbox(key="ct_sort_mode").value == "copy"
    assert at.selectbox(key="ct_sort_mode").proto.set_value
    assert at.number_input(key="ct_rg_gap").value == 150.0
    assert _metrics(at) == before


def test_filters_outlive_choosing_another_results_file(season):
    """Clearing the results path (to type another) draws no filters in that run: they are kept, and
    the run that does so raises nothing (the run form's widgets, drawn in it, are not touched)."""
    at = _open(season)
    at.slider(key="ct_conf").set_value(0.6).run()
    at.text_input(key="ct_results_path").set_value("").run()
    _ok(at)
    assert not at.metric
    at.text_input(key="ct_results_path").set_value(str(season / "season.json")).run()
    _ok(at)
    assert at.slider(key="ct_conf").value == 0.6
    assert at.slider(key="ct_conf").proto.set_value and list(at.slider(key="ct_conf").proto.value) == [0.6]


DOWNLOADS = {"ct_dl_dp", "ct_dl_xlsx", "ct_dl_coco"}


def _offered(at) -> set:
    """The keys of the download buttons the page shows."""
    return {b.key for b in at.get("download_button")}


def test_prepared_downloads_are_withdrawn_when_what_they_hold_changes(season):
    """The Camtrap DP zip holds the cameras' position, clock offset and title, and the folder the
    photos are in: prepared, then the latitude changed, it was still offered with the old one (a
    package whose deployments disagree with the form). Now it must be prepared again."""
    at = _open(season)
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25).run()
    next(b for b in at.button if b.key == "ct_dp_prepare").click().run()
    _ok(at)
    assert DOWNLOADS <= _offered(at)
    at.number_input(key="ct_dp_lat").set_value(10.0).run()
    _ok(at)
    assert not DOWNLOADS & _offered(at)
    next(b for b in at.button if b.key == "ct_dp_prepare").click().run()
    assert DOWNLOADS <= _offered(at)
    at.text_input(key="ct_image_root").set_value(str(season)).run()    # another photo folder: media paths differ
    assert not DOWNLOADS & _offered(at)


def test_a_page_turn_or_a_photo_opened_large_does_not_recount_the_season(season, monkeypatch):
    """The totals and the filtered list are counted over every entry (seconds at 100,000): a change
    that alters neither (the grid's page, a photo opened large) reuses them; a new threshold does not."""
    import ssd.camtrap.browse as browse
    import ssd.camtrap.summary as summary

    counts = {"summarize": 0, "filter_entries": 0}

    def counting(module, name):
        real = getattr(module, name)

        def wrapped(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)
        monkeypatch.setattr(module, name, wrapped)

    counting(summary, "summarize")
    counting(browse, "filter_entries")
    at = _open(season)
    before = dict(counts)
    next(b for b in at.button if b.key.startswith("ct_open_")).click().run()
    _ok(at)
    assert any(t.value == "cam1/0.jpg" for t in at.text)           # the large view is shown
    at.number_input(key="ct_page").set_value(1).run()
    assert counts == before
    at.slider(key="ct_conf").set_value(0.85).run()
    _ok(at)
    assert counts["summarize"] == before["summarize"] + 1 and counts["filter_entries"] == before["filter_entries"] + 1
    assert _metrics(at)["With detections"] == "1"


def test_sort_with_no_folder_says_so_instead_of_doing_nothing(season):
    """"Sort into folders" with the folder box empty did nothing and said nothing: now it asks for one."""
    at = _open(season)
    next(b for b in at.button if b.label == "Sort into folders").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("folder to sort into" in e.value for e in at.error), [e.value for e in at.error]


def test_the_cleaned_file_just_written_opens_from_the_review(season):
    """After "Write cleaned results" the page went on showing the file before review (and exported it),
    with no word of it: it now says so, and "Open the cleaned results" shows the cleaned file."""
    at = _open(season)
    at.checkbox(key="ct_hide_suspect").uncheck()                    # the rock's boxes counted while it is there
    at.radio(key="ct_rv_0").set_value("false positive").run()
    at.text_input(key="ct_rv_out").set_value(str(season / "clean.json")).run()
    next(b for b in at.button if b.key == "ct_rv_write").click().run()
    assert any("still shows the results before this review" in s.value for s in at.success)
    before = _metrics(at)["With detections"]
    next(b for b in at.button if b.key == "ct_rv_open").click().run()
    _ok(at)
    assert at.text_input(key="ct_results_path").value == str(season / "clean.json")
    assert at.text_input(key="ct_image_root").value == str(season / "photos")
    assert int(_metrics(at)["With detections"]) < int(before)       # the rock's frames are empty now
    assert len(at.image) > 0                                          # its photos are found


def test_review_decisions_stay_with_the_results_file_they_were_made_on(season):
    """Decisions were kept by the group's place in the list: marking season.json's first group a
    false positive, then opening another season's results, showed that season's first group marked
    too, and "Write cleaned results" removed its boxes though nobody had looked at them."""
    (season / "other.json").write_text((season / "season.json").read_text())
    at = _open(season)
    at.radio(key="ct_rv_0").set_value("false positive").run()
    at.text_input(key="ct_results_path").set_value(str(season / "other.json")).run()
    _ok(at)
    assert at.radio(key="ct_rv_0").value == "undecided"
    assert next(b for b in at.button if b.key == "ct_rv_write").disabled
    at.text_input(key="ct_results_path").set_value(str(season / "season.json")).run()
    assert at.radio(key="ct_rv_0").value == "undecided"     # a new file, a new review: nothing carried back


def test_sort_finding_no_photos_names_the_recorded_folder_in_the_pages_own_words(season):
    """The refusal when none of the photos is in the folder given named the folder the run recorded,
    but as a command-line flag (``--images …``) the page has no field for: it names the page's field."""
    doc = json.loads((season / "season.json").read_text())
    doc["info"]["ssd_batch"]["images_root"] = str(season / "photos")
    (season / "season.json").write_text(json.dumps(doc))
    (season / "elsewhere").mkdir()
    at = _open(season)
    at.text_input(key="ct_image_root").set_value(str(season / "elsewhere")).run()
    at.text_input(key="ct_sort_into").set_value(str(season / "sorted")).run()
    next(b for b in at.button if b.key == "ct_sort_go").click().run()
    errors = [e.value.replace("\\", "") for e in at.error]         # the page escapes Markdown
    assert any(str(season / "photos") in e and "'Folder its paths start from'" in e for e in errors), errors
    assert not any("--images" in e for e in errors), errors
    assert not (season / "sorted").exists() or not any((season / "sorted").iterdir())


def test_a_package_with_no_photos_found_names_the_recorded_folder_in_the_pages_own_words(season):
    """The same for Camtrap DP: no time stamp in the results and no photo in the folder given is a
    refusal naming the folder the run recorded, as the page's field, not ``--images``."""
    doc = json.loads((season / "season.json").read_text())
    doc["info"]["ssd_batch"]["images_root"] = str(season / "photos")
    for im in doc["images"]:
        im.pop("datetime", None)
    (season / "season.json").write_text(json.dumps(doc))
    (season / "elsewhere").mkdir()
    at = _open(season)
    _write_package(at, season / "package", ct_image_root=season / "elsewhere")
    errors = [e.value.replace("\\", "") for e in at.error]
    assert any(str(season / "photos") in e and "'Folder its paths start from'" in e for e in errors), errors
    assert not any("--images" in e for e in errors), errors


def test_the_path_prefix_help_speaks_of_the_pages_field_not_the_command(season):
    """Its help was the command line's with one flag swapped: "… (to the folder its paths start from,
    where the command takes one)" — no command on the page."""
    at = _open(season)
    words = at.text_input(key="ct_path_prefix").help
    assert "'Folder its paths start from'" in words, words
    assert "command" not in words and "--" not in words, words


def test_a_file_rewritten_in_place_is_not_shown_with_another_versions_boxes(season):
    """The page holds a compact record per image and reads the boxes of the images it shows back
    from the file: a file rewritten since (here with its size and time put back, so the version
    looks the same) is refused with a warning, never drawn with the new file's boxes."""
    at = _open(season)
    path = season / "season.json"
    st = os.stat(path)
    path.write_text(path.read_text().replace('"conf": 0.9,', '"conf": 0.7,'))      # same length
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    at.slider(key="ct_conf").set_value(0.2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("changed since it was opened" in w.value for w in at.warning), [w.value for w in at.warning]


def test_a_shards_file_says_its_totals_cover_only_that_shard(season):
    """One ``--shard 1/2`` run's file opened alone: the totals say they cover only its files."""
    doc = json.loads((season / "season.json").read_text())
    at = _open(season)
    assert not [c for c in at.caption if "shard" in c.value]
    doc["info"]["ssd_batch"]["shard"] = [1, 2]
    (season / "shard.json").write_text(json.dumps(doc))
    at.text_input(key="ct_results_path").set_value(str(season / "shard.json")).run()
    _ok(at)
    assert [c for c in at.caption if c.value.startswith("shard 1 of 2: counts cover only its files")]


def test_a_merge_lacking_shards_or_parts_says_so_above_its_totals(season):
    """A merge made with --allow-missing: the totals, as ``results summary``'s, say what it lacks."""
    doc = json.loads((season / "season.json").read_text())
    doc["info"]["ssd_batch"].update(shard=None, shards_merged=[[1, 3], [2, 3]], shards_missing=[[3, 3]],
                                    parts_missing=2)
    (season / "partial.json").write_text(json.dumps(doc))
    at = _open(season)
    at.text_input(key="ct_results_path").set_value(str(season / "partial.json")).run()
    _ok(at)
    captions = [c.value for c in at.caption]
    assert [c for c in captions if c.startswith("merged without shard(s) 3/3: counts lack their images")]
    assert "merged without 2 part(s) of a split: counts lack their cameras' images" in captions


def test_the_json_and_csv_downloads_are_written_from_the_file_an_entry_at_a_time(season, monkeypatch):
    """Clicked, the JSON download is the file itself (its bytes, as opened), or with the episodes
    regrouped its entries read back one at a time (``whole_json_bytes``); the CSV is the command's
    (``results_csv_bytes``, from the file on disk): ``json.dumps`` and ``results_csv`` of
    ``whole_doc`` held every box of a season as Python objects (GBs at 10^6 images)."""
    from streamlit.delta_generator import DeltaGenerator

    from ssd.camtrap.megadetector import read_results
    from ssd.camtrap.episodes import regrouped
    from ssd.camtrap.page_results import open_compact, whole_json_bytes
    from ssd.camtrap.results import results_csv
    from ssd.camtrap.results_index import EntryIndex

    made = {}
    real = DeltaGenerator.download_button

    def recording(self, label, data, *args, **kwargs):
        made[label] = data
        return real(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", recording)
    _open(season)
    path = str(season / "season.json")
    assert made["Results (MegaDetector JSON)"]() == (season / "season.json").read_bytes()      # the file as opened
    at = _open(season)
    at.number_input(key="ct_rg_gap").set_value(30.0).run()
    _ok(at)
    doc, index = open_compact(path)
    assert made["Results (MegaDetector JSON)"]() == whole_json_bytes(regrouped(doc, 30.0), index)
    monkeypatch.setattr(EntryIndex, "entry", lambda *a: pytest.fail("the CSV read the season back through the page"))
    assert made["Results (CSV)"]() == results_csv(read_results(path)).encode("utf-8")
