"""The Camera traps page's species threshold: the classification score at which a detection counts
for its species, chosen on the page as ``--species-threshold`` is on the command line, and used by
everything the page counts, sorts, exports and starts for a classified file."""
from __future__ import annotations

import io
import os
import zipfile

import pytest
from streamlit.testing.v1 import AppTest

from test_camtrap_page import _open, season  # noqa: F401  (season: the fixture)
from test_species_classifications import _classified_season

KEY = "ct_species_threshold"


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _species_table(at: AppTest) -> dict:
    return next(t.value for t in at.dataframe if "species" in t.value.columns).to_dict("list")


def _reads(monkeypatch) -> list:
    import ssd.camtrap.page_results as page_results

    reads = []
    real_read = page_results.open_compact
    monkeypatch.setattr(page_results, "open_compact", lambda path: reads.append(path) or real_read(path))
    return reads


def test_the_species_threshold_is_offered_only_for_a_classified_file(season):
    at = _open(season)
    assert not [s for s in at.slider if s.key == KEY]
    _classified_season(season)
    at = _open(season)
    _ok(at)
    assert at.slider(key=KEY).value == pytest.approx(0.5)


def test_moving_the_species_threshold_recounts_the_species_without_rereading_the_file(season, monkeypatch):
    _classified_season(season)          # the fox on cam1/0.jpg scored 0.8
    reads = _reads(monkeypatch)
    at = _open(season)
    assert _species_table(at)["images"] == [1, 0]
    at.slider(key=KEY).set_value(0.85).run()
    _ok(at)
    assert _species_table(at) == {"species": ["red fox", "badger"], "images": [0, 0], "detections": [0, 0]}
    assert any("least 0.85" in c.value for c in at.caption)
    assert at.query_params.get("species_conf") in ("0.85", ["0.85"])
    at.slider(key=KEY).set_value(0.75).run()
    _ok(at)
    assert _species_table(at)["images"] == [1, 0]
    assert reads.count(str(season / "season.json")) == 1


@pytest.mark.parametrize("file_in_first_run", [False, True])
def test_the_species_threshold_survives_a_reload_by_its_address(season, file_in_first_run):
    from test_camera_url_settings import _open as open_link

    _classified_season(season)
    at = open_link(season, {"species_conf": "0.9"}, file_in_first_run)
    assert at.slider(key=KEY).value == pytest.approx(0.9)
    assert _species_table(at)["images"] == [0, 0]
    for hostile in ("nan", "2", "-1", "1e999", "<b>x</b>"):
        at = open_link(season, {"species_conf": hostile}, file_in_first_run)
        assert at.slider(key=KEY).value == pytest.approx(0.5), hostile


def test_the_draw_job_the_page_starts_carries_the_species_threshold(season, monkeypatch):
    import ssd.jobs.photos as photos

    _classified_season(season)
    argvs = []
    monkeypatch.setattr(photos, "launch", lambda lock, argv, *a, **k: argvs.append(argv))
    at = _open(season)
    at.slider(key=KEY).set_value(0.85).run()
    at.text_input(key="ct_photos_out").set_value(str(season / "drawn")).run()
    at.button(key="ct_draw_go").click().run()
    _ok(at)
    at.button(key="ct_crops_go").click().run()
    _ok(at)
    draw, crops = argvs
    assert draw[:2] == ["results", "draw"] and draw[draw.index("--species-threshold") + 1] == "0.85"
    assert "--species-threshold" not in crops         # crops.csv gives each crop's top species with its score


def test_the_draw_command_line_takes_the_species_threshold_only_where_given(tmp_path):
    from ssd.cli.main import build_parser
    from ssd.inference.filtering import ShownFilter
    from ssd.jobs.photos import photo_job_argv

    shown = ShownFilter.of(0.3)
    argv = photo_job_argv("draw", "r.json", str(tmp_path / "o"), str(tmp_path), shown, species_threshold=0.85)
    assert build_parser().parse_args(argv).species_threshold == pytest.approx(0.85)
    assert "--species-threshold" not in photo_job_argv("draw", "r.json", "o", "i", shown)
    assert "--species-threshold" not in photo_job_argv("crops", "r.json", "o", "i", shown, species_threshold=0.85)


def test_the_pages_sort_and_workbook_use_the_species_threshold(season):
    from openpyxl import load_workbook

    _classified_season(season)
    at = _open(season)
    at.slider(key=KEY).set_value(0.85).run()
    assert any("at least 0.85" in c.label for c in at.checkbox if c.key == "ct_sort_species")
    at.text_input(key="ct_sort_into").set_value(str(season / "sorted")).run()
    at.checkbox(key="ct_sort_species").check().run()
    at.button(key="ct_sort_go").click().run()
    _ok(at)
    assert not (season / "sorted" / "animal" / "red-fox").exists()
    assert os.path.lexists(season / "sorted" / "animal" / "cam1" / "0.jpg") or \
        any("0.jpg" in f for _, _, fs in os.walk(season / "sorted" / "animal") for f in fs)
    at.number_input(key="ct_dp_lat").set_value(52.0)
    at.number_input(key="ct_dp_lon").set_value(5.0).run()
    at.button(key="ct_dp_prepare").click().run()
    _ok(at)
    data = at.session_state["ct_dl_ready"]["xlsx"]
    cells = [c for row in load_workbook(io.BytesIO(data))["summary"].iter_rows(values_only=True) for c in row]
    assert any(isinstance(c, str) and "≥ 0.85" in c for c in cells), cells
    with zipfile.ZipFile(io.BytesIO(at.session_state["ct_dl_ready"]["zip"])) as z:
        observations = z.read("observations.csv").decode()
    assert "species:" not in observations and "fox" not in observations    # the fox's 0.8 is below 0.85
    at.slider(key=KEY).set_value(0.5).run()             # the workbook made at 0.85 is withdrawn
    _ok(at)
    assert "Results (XLSX)" not in [b.proto.label for b in at.get("download_button")]
