"""A Camtrap DP package is written only where it loses nothing: into a new or empty folder, or over
a package of ours; a folder holding other files is refused unless the user says to replace (the
page's one-shot tick, ``--replace`` on the command line). Writing overwrote such files unasked."""
from __future__ import annotations

import json

import pytest

from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.package_folder import check_package_folder, is_our_package
from ssd.cli.main import main
from test_camtrap_page import season, write_season  # noqa: F401  (the page's season fixture)


def _export(season_dir, out, *extra) -> int:
    return main(["results", "export", str(season_dir / "season.json"), "--format", "camtrap-dp", "--out", str(out),
                 "--images", str(season_dir / "photos"), "--latitude", "52", "--longitude", "5", *extra])


def test_the_folder_rule(tmp_path):
    check_package_folder(str(tmp_path / "new"))                   # new: made
    check_package_folder(str(tmp_path))                           # empty
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError, match="holds other files.*'notes.txt'.*replace"):
        check_package_folder(str(tmp_path))
    check_package_folder(str(tmp_path), replace=True)
    with pytest.raises(ResultsError, match="is a file, not a folder"):
        check_package_folder(str(tmp_path / "notes.txt"), replace=True)
    (tmp_path / "datapackage.json").write_text(json.dumps({"profile": "https://example.org/camtrap-dp-profile.json"}))
    assert not is_our_package(str(tmp_path))                      # another tool's package: not ours to replace
    (tmp_path / "datapackage.json").write_text("[[[")
    assert not is_our_package(str(tmp_path))


def test_the_cli_refuses_a_folder_of_other_files_unless_replace(tmp_path, capsys):
    write_season(tmp_path)
    out = tmp_path / "project"
    out.mkdir()
    (out / "deployments.csv").write_text("my hand-made deployments")
    assert _export(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert "holds other files" in err and "deployments.csv" in err
    assert (out / "deployments.csv").read_text() == "my hand-made deployments"
    assert not (out / "datapackage.json").exists()
    assert _export(tmp_path, out, "--replace") == 0
    assert is_our_package(str(out))
    (out / "README.txt").write_text("kept")
    assert _export(tmp_path, out) == 0                            # a package of ours: a re-export proceeds
    assert (out / "README.txt").read_text() == "kept"


def test_the_page_refuses_a_folder_of_other_files_until_replace_is_ticked(season):  # noqa: F811
    from test_camtrap_page import _open

    out = season / "project"
    out.mkdir()
    (out / "media.csv").write_text("mine")
    at = _open(season)
    at.number_input(key="ct_dp_lat").set_value(46.5)
    at.number_input(key="ct_dp_lon").set_value(7.25)
    at.text_input(key="ct_dp_out").set_value(str(out)).run()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    assert any("holds other files" in e.value and "media.csv" in e.value for e in at.error), [e.value for e in at.error]
    assert (out / "media.csv").read_text() == "mine"
    at.checkbox(key="ct_dp_replace").check()
    next(b for b in at.button if b.key == "ct_dp_write").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert is_our_package(str(out)) and any("Camtrap DP package in" in s.value for s in at.success)
    assert at.checkbox(key="ct_dp_replace").value is False        # one replace per tick, not a standing order
