"""A class whose name is one of sort's own folders ("empty", "failed") must not share that folder:
the photos with such a detection would be mixed with the photos where nothing was seen."""
from __future__ import annotations

from ssd.camtrap.sorting import folder_for
from ssd.inference.filtering import ShownFilter

NAMES = {"1": "empty", "2": "Failed", "3": "animal"}


def _entry(cat=None):
    dets = [] if cat is None else [{"category": cat, "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}]
    return {"file": "a.jpg", "detections": dets}


def test_classes_named_like_the_state_folders_get_folders_of_their_own():
    shown = ShownFilter.at(0.5, True)
    nothing = folder_for(_entry(), NAMES, shown)
    failed = folder_for({"file": "b.jpg", "detections": None, "failure": "x"}, NAMES, shown)
    named_empty, named_failed = folder_for(_entry("1"), NAMES, shown), folder_for(_entry("2"), NAMES, shown)
    assert nothing == "empty" and failed == "failed"
    assert len({nothing, failed, named_empty, named_failed}) == 4
    assert named_failed.lower() != "failed"              # case-insensitive disks see one folder
    assert folder_for(_entry("3"), NAMES, shown) == "animal"


def test_a_species_named_like_the_species_state_folders_gets_a_folder_of_its_own():
    from ssd.camtrap.sorting import BySpecies, species_folder

    by = BySpecies(names={"1": "Unclassified", "2": "multiple", "3": "red deer"}, threshold=0.5)
    folders = [species_folder([{"category": "1", "conf": 0.9, "classifications": [[c, 0.9]]}], by)
               for c in ("1", "2", "3")]
    assert folders == ["class-Unclassified", "class-multiple", "red-deer"]
    assert species_folder([{"category": "1", "conf": 0.9, "classifications": [["3", 0.1]]}], by) == "unclassified"
