"""A classified season (every box with its ``classifications``) is read as it goes: ``results
summary`` and the page's compact records hold per image what the counts need (each detection's top
species, shared), not the boxes nor their classifications."""
from __future__ import annotations

import json
import tracemalloc

from ssd.cli.main import main
from tests.test_results_summary_memory import FIXED_BYTES, PER_IMAGE_BYTES

IMAGES = 2000
BOXES = 84


def _classified_season(path) -> None:
    """IMAGES entries of BOXES boxes each, every box with three classifications, as MegaDetector +
    SpeciesNet write them (compact, one entry a line)."""
    rows = []
    for i in range(IMAGES):
        confs = sorted((round(0.005 + ((i * 7 + k * 13) % 150) / 1000, 3) for k in range(BOXES)), reverse=True)
        dets = ",".join(f'{{"category":"1","conf":{c},"bbox":[0.1234,0.2345,0.3456,0.4567],'
                        f'"classifications":[["{(i + k) % 5}",{0.5 + (k % 40) / 100}],["9",0.01],["8",0.005]]}}'
                        for k, c in enumerate(confs))
        rows.append(f'{{"file":"site{i % 7}/cam{i % 5}/IMG_{i:06d}.JPG","detections":[{dets}]}}')
    head = json.dumps({"info": {"format_version": "1.6", "detector": "md_v5a.0.0.pt", "classifier": "speciesnet"},
                       "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
                       "classification_categories": {str(k): f"species {k}" for k in range(10)}})
    path.write_text(head[:-1] + ',\n "images": [\n  ' + ",\n  ".join(rows) + "\n ]\n}\n")


def _peak(call) -> int:
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_summary_of_a_classified_season_holds_images_not_boxes(tmp_path, capsys):
    path = tmp_path / "a.json"
    _classified_season(path)
    peak = _peak(lambda: main(["results", "summary", str(path), "--json", "--threshold", "0.1"]))
    s = json.loads(capsys.readouterr().out)
    assert sum(s["per_species_images"].values()) > IMAGES
    assert peak < FIXED_BYTES + PER_IMAGE_BYTES * IMAGES, f"peak {peak / 2 ** 20:.0f} MiB"


def test_the_pages_compact_records_of_a_classified_season_hold_no_classifications_but_the_top(tmp_path):
    from ssd.camtrap.page_results import open_compact

    path = tmp_path / "a.json"
    _classified_season(path)
    held = {}
    peak = _peak(lambda: held.update(doc=open_compact(str(path))[0]))
    assert peak < FIXED_BYTES + 2 * PER_IMAGE_BYTES * IMAGES, f"peak {peak / 2 ** 20:.0f} MiB"
    d = held["doc"]["images"][0]["detections"][0]
    assert d["classifications"] == [["0", 0.5]] and "bbox" not in d
