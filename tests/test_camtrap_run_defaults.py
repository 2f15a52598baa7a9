"""The Camera traps page in a new browser session: the run form offers the last run's photo folder
and a run name no run has yet, and the Results box lists every results file of the runs (the
cleaned files a repeat review wrote among them), labelled and newest first."""
import json
import os
import time

from streamlit.testing.v1 import AppTest

from test_camtrap_page import APP, season  # noqa: F401  (the page's season fixture)


def _finished_run(name: str, photos: str, results: str = "") -> str:
    """A run folder as a finished run leaves it: its settings, and its results when given."""
    from ssd import jobs
    from ssd.camtrap.settings import RunSettings

    run_dir = os.path.join(jobs.camera_runs_dir(), name)
    os.makedirs(run_dir)
    model = os.path.join(os.environ["SSD_MODELS_DIR"], "tiny-pikachu")
    RunSettings(model=model, inputs=(photos,)).save(os.path.join(run_dir, jobs.BATCH_SETTINGS))
    if results:
        with open(os.path.join(run_dir, jobs.BATCH_RESULTS), "w", encoding="utf-8") as fh:
            fh.write(results)
    return run_dir


def _page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("app_pages/camera_traps.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_form_defaults_offer_the_last_folder_and_an_unused_name(season):
    from ssd import jobs

    runs = jobs.camera_runs_dir()
    assert jobs.form_defaults(runs) == ("", jobs.DEFAULT_RUN_NAME)          # no run yet
    photos = str(season / "photos")
    _finished_run("season", photos)
    assert jobs.form_defaults(runs) == (photos, "photos")
    _finished_run("photos", photos)
    assert jobs.form_defaults(runs) == (photos, "photos-2")
    odd = season / "card 1 (May)"                   # a folder name no run may have
    odd.mkdir()
    time.sleep(0.02)
    _finished_run("may", str(odd))
    assert jobs.form_defaults(runs) == (str(odd), "season-2")


def test_a_new_session_offers_the_last_runs_folder_and_a_name_not_taken(season):
    """A new session drew an empty folder and "season", whose Start was refused ("already exists")."""
    photos = str(season / "photos")
    _finished_run("season", photos, (season / "season.json").read_text())
    at = _page()
    assert at.text_input(key="ct_folder").value == photos
    assert at.text_input(key="ct_name").value == "photos"
    at.text_input(key="ct_name").set_value("mine").run()         # a name typed stays over reruns
    assert at.text_input(key="ct_name").value == "mine"


def test_the_results_box_lists_a_runs_cleaned_file_labelled_newest_first(season):
    from ssd import jobs

    run_dir = _finished_run("season", str(season / "photos"), (season / "season.json").read_text())
    doc = json.loads((season / "season.json").read_text())
    doc["images"] = doc["images"][:3]
    time.sleep(0.02)
    cleaned = os.path.join(run_dir, "results.reviewed.json")
    with open(cleaned, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    for bookkeeping in (jobs.BATCH_PROGRESS, ".results.json.tmp"):
        with open(os.path.join(run_dir, bookkeeping), "w", encoding="utf-8") as fh:
            fh.write("{}")
    at = _page()
    box = at.selectbox(key="ct_results")
    assert box.options == ["season · results.reviewed.json (cleaned by a repeat review)", "season",
                           "another results file…"]
    assert box.value == os.path.join(run_dir, jobs.BATCH_RESULTS)    # the run that finished is shown first
    box.set_value(cleaned).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Images"] == "3"
    assert at.selectbox(key="ct_results").value == cleaned             # the pick holds over a rerun
