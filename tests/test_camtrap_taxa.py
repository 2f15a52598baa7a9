"""Camtrap DP from a species model: ``--taxa TAXA.csv`` gives each class its scientific name.

Without it a model whose classes are species (deer, fox) wrote observations with an empty
``scientificName`` (the class only as the tag ``class:deer``) and an empty ``taxonomic`` list:
GBIF and Agouti could use none of them.
"""
from __future__ import annotations

import csv
import json

import pytest

from ssd.camtrap.megadetector import ResultsError
from ssd.camtrap.taxa import read_taxa
from ssd.cli.main import main

CATS = {"1": "deer", "2": "red fox", "3": "person", "4": "badger"}
TAXA = ("class,scientificName,taxonID,taxonRank,vernacularNames.eng,vernacularNames.nld\n"
        "deer,Capreolus capreolus,https://example.org/taxon/capreolus-capreolus,species,roe deer,ree\n"
        "Red Fox,Vulpes vulpes,,species,red fox,vos\n"
        "person,Homo sapiens,,,,\n"
        "foxx,Vulpes lagopus,,,,\n")


def _image(file, *cats, when="2024:05:01 10:00:00"):
    dets = [{"category": c, "conf": 0.9, "bbox": [0.1, 0.1, 0.3, 0.3]} for c in cats]
    return {"file": file, "failure": None, "width": 4, "height": 4, "datetime": when, "detections": dets}


def _season(tmp_path, taxa=TAXA):
    doc = {"info": {"format_version": "1.4", "detector": "ssd-studio:species"}, "detection_categories": CATS,
           "images": [_image("cam1/a.jpg", "1", "2"), _image("cam1/b.jpg", "3", when="2024:05:01 11:00:00"),
                      _image("cam2/c.jpg", "4"), _image("cam2/d.jpg")]}
    (tmp_path / "r.json").write_text(json.dumps(doc))
    (tmp_path / "taxa.csv").write_bytes(taxa.encode("utf-8") if isinstance(taxa, str) else taxa)
    return ["results", "export", str(tmp_path / "r.json"), "--format", "camtrap-dp", "--out", str(tmp_path / "dp"),
            "--images", str(tmp_path), "--latitude", "52", "--longitude", "5", "--threshold", "0.5"]


def _observations(out):
    with open(out / "observations.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_species_package_names_each_taxon_and_validates_against_the_profile(tmp_path, capsys):
    from camtrap_dp_offline import validate_offline

    argv = _season(tmp_path)
    assert main(argv + ["--taxa", str(tmp_path / "taxa.csv")]) == 0
    err = capsys.readouterr().err
    out = tmp_path / "dp"
    report, served = validate_offline(str(out / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    assert any(u.endswith("camtrap-dp-profile.json") for u in served)
    got = {o["observationTags"]: (o["observationType"], o["scientificName"]) for o in _observations(out)}
    assert got == {"class:deer": ("animal", "Capreolus capreolus"), "class:red fox": ("animal", "Vulpes vulpes"),
                   "class:person": ("human", "Homo sapiens"), "class:badger": ("animal", ""), "": ("blank", "")}
    taxonomic = json.loads((out / "datapackage.json").read_text())["taxonomic"]
    assert taxonomic == [
        {"scientificName": "Capreolus capreolus", "taxonID": "https://example.org/taxon/capreolus-capreolus",
         "taxonRank": "species", "vernacularNames": {"eng": "roe deer", "nld": "ree"}},
        {"scientificName": "Homo sapiens"},
        {"scientificName": "Vulpes vulpes", "taxonRank": "species", "vernacularNames": {"eng": "red fox", "nld": "vos"}}]
    assert "'badger'" in err and "scientificName" in err          # what GBIF will not get
    typo = next(line for line in err.splitlines() if "'foxx'" in line)
    assert "no class of these results" in typo and "'Red Fox'" not in typo          # matched, case aside


def test_without_taxa_a_species_class_stays_a_tag_and_nothing_is_warned(tmp_path, capsys):
    assert main(_season(tmp_path)) == 0
    assert "scientificName" not in capsys.readouterr().err
    assert {o["scientificName"] for o in _observations(tmp_path / "dp")} == {""}


@pytest.mark.parametrize("header", ["class,name", "species,scientificName", "label;latin"])
def test_a_taxa_header_without_class_and_scientific_name_is_refused_showing_it(tmp_path, capsys, header):
    argv = _season(tmp_path, f"{header}\ndeer,Capreolus capreolus\n")
    assert main(argv + ["--taxa", str(tmp_path / "taxa.csv")]) == 2
    err = capsys.readouterr().err
    assert f"header is '{header.replace(';', ',')}'" in err and "class, scientificName" in err and "line 2" not in err
    assert not (tmp_path / "dp").exists()


def test_an_excel_taxa_file_with_bom_and_semicolons_is_read(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes("\ufeffClass;ScientificName;taxonRank;vernacularName\r\ndeer;Capreolus capreolus;Species;"
                     "roe deer\r\n".encode("utf-8"))
    taxon = read_taxa(str(path))["deer"]
    assert taxon.entry() == {"scientificName": "Capreolus capreolus", "taxonRank": "species",
                             "vernacularNames": {"eng": "roe deer"}}


@pytest.mark.parametrize("row,said", [
    ("deer,=HYPERLINK(\"http://x\"),,", "formula"),
    ("deer,Capreolus\x1b[31m capreolus,,", "control character"),
    ("deer,Capreolus capreolus,,specie", "taxonRank"),
    ("deer,Capreolus capreolus,,\ndeer,Cervus elaphus,,", "twice"),
    ("deer," + "a" * 300 + ",,", "long"),
])
def test_untrusted_taxa_cells_are_refused_with_their_line(tmp_path, row, said):
    path = tmp_path / "t.csv"
    path.write_text("class,scientificName,taxonID,taxonRank\n" + row + "\n", encoding="utf-8")
    with pytest.raises(ResultsError, match=said) as err:
        read_taxa(str(path))
    assert "line 2" in str(err.value) or "line 3" in str(err.value)


def test_a_huge_or_unknown_language_taxa_file_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("class,scientificName\n" + "deer,Capreolus capreolus\n" * 200_000, encoding="utf-8")
    with pytest.raises(ResultsError, match="MB"):
        read_taxa(str(path))
    path.write_text("class,scientificName,vernacularNames.en\ndeer,Capreolus capreolus,roe deer\n", encoding="utf-8")
    with pytest.raises(ResultsError, match="three letters"):
        read_taxa(str(path))


def test_european_excel_files_read_decimal_commas_and_windows_1252(tmp_path):
    """Excel in most of Europe saves ';' between cells, ',' as the decimal mark and, unless told
    "CSV UTF-8", Windows-1252 text: positions and accented names are read as meant."""
    from ssd.camtrap.locations import read_locations

    loc = tmp_path / "cameras.csv"
    loc.write_bytes("deploymentID;latitude;longitude\r\ncam1;52,3702;4,8952\r\ncam2;-1,5;36\r\n".encode("cp1252"))
    assert read_locations(str(loc)) == {"cam1": (52.3702, 4.8952), "cam2": (-1.5, 36.0)}
    taxa = tmp_path / "taxa.csv"
    taxa.write_bytes("class;scientificName;vernacularNames.fra\r\ndeer;Capreolus capreolus;Chevreuil européen\r\n"
                     .encode("cp1252"))
    assert read_taxa(str(taxa))["deer"].entry()["vernacularNames"] == {"fra": "Chevreuil européen"}


@pytest.mark.parametrize("value", ["1_0", "\u0665\u0662", "1e1", "inf", "nan", "0x10", "1,2,3", "52.3,7"])
def test_a_position_is_a_plain_decimal(tmp_path, value):
    """Python's float() takes 1_0, Arabic-Indic digits, 1e1, inf: none is how a position is typed."""
    from ssd.camtrap.locations import read_locations

    loc = tmp_path / "cameras.csv"
    loc.write_text(f'deploymentID;latitude;longitude\ncam1;{value};4\n', encoding="utf-8")
    with pytest.raises(ResultsError, match="must be numbers"):
        read_locations(str(loc))


def test_the_higher_ranks_taxonomic_class_included_reach_the_package_and_it_validates(tmp_path):
    """The CSV's ``class`` column is the model's class, so the taxonomic class (Mammalia) has its own
    header, ``taxonClass``, and is written as the profile's ``class`` beside kingdom … genus."""
    from camtrap_dp_offline import validate_offline

    taxa = ("class,scientificName,taxonRank,kingdom,phylum,taxonClass,order,family,genus\n"
            "deer,Capreolus capreolus,species,Animalia,Chordata,Mammalia,Artiodactyla,Cervidae,Capreolus\n"
            "red fox,Vulpes vulpes,species,,,Mammalia,,,\n")
    argv = _season(tmp_path, taxa)
    assert main(argv + ["--taxa", str(tmp_path / "taxa.csv")]) == 0
    report, _ = validate_offline(str(tmp_path / "dp" / "datapackage.json"))
    assert report.valid, report.flatten(["type", "note"])
    taxonomic = json.loads((tmp_path / "dp" / "datapackage.json").read_text())["taxonomic"]
    assert taxonomic == [
        {"scientificName": "Capreolus capreolus", "taxonRank": "species", "kingdom": "Animalia",
         "phylum": "Chordata", "class": "Mammalia", "order": "Artiodactyla", "family": "Cervidae",
         "genus": "Capreolus"},
        {"scientificName": "Vulpes vulpes", "taxonRank": "species", "class": "Mammalia"}]
    assert {o["observationTags"] for o in _observations(tmp_path / "dp")} >= {"class:deer", "class:red fox"}


def test_the_taxonomic_class_header_may_be_written_taxon_class(tmp_path):
    (tmp_path / "t.csv").write_text("class,scientificName,taxon_class\ndeer,Capreolus capreolus,Mammalia\n")
    assert read_taxa(str(tmp_path / "t.csv"))["deer"].entry() == {"scientificName": "Capreolus capreolus",
                                                                   "class": "Mammalia"}
