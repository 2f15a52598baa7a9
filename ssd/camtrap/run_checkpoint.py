"""The batch run's checkpoint of format 1 (one JSON document), read once to resume old runs.

Why it stays: a season started before the append-only journal (``run_store``) wrote
``season.checkpoint.json``, a document holding the settings that decide the entries (model,
classes, NMS, floor, shard, path base) and every finished ``images`` entry. ``--resume`` converts
such a file into the journal once, refusing it when it was made with other settings. The
streaming JSON writer and the settings check are shared with the journal and the results file.
"""
from __future__ import annotations

import json
import os
from typing import IO, Any, Callable, Dict, Iterable, Iterator, List, Union

from ssd.base.atomic import atomic_path
from ssd.base.json_file import read_json_file
from ssd.base.text import terminal_safe
from ssd.camtrap.megadetector import MAX_RESULTS_BYTES, ResultsError

CHECKPOINT_VERSION = 1


def default_checkpoint_path(out_json: str) -> str:
    """Where format 1 was written by default: ``season.json`` → ``season.checkpoint.json``."""
    root, _ = os.path.splitext(out_json)
    return root + ".checkpoint.json"


def save_checkpoint(path: str, settings: Dict[str, Any], images: Iterable[Union[str, Dict[str, Any]]]) -> None:
    """Write a format-1 checkpoint atomically (what runs before the journal did at every checkpoint).

    Kept for tests and the benchmark's baseline, and as the definition of what ``--resume`` reads.
    """
    write_json_with_images(path, {"ssd_batch_checkpoint": CHECKPOINT_VERSION, "settings": settings}, images)


def write_json_with_images(path: str, head: Dict[str, Any], images: Iterable[Union[str, Dict[str, Any]]]) -> None:
    """Write ``head`` plus an ``images`` list atomically, streaming the entries (no giant string)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        write_images_json(fh, head, images)


def write_images_json(fh: IO[str], head: Dict[str, Any], images: Iterable[Union[str, Dict[str, Any]]]) -> None:
    """``head`` plus an ``images`` list, one compact entry per line, to an open text file."""
    fh.write(images_json_head(head))
    for i, im in enumerate(images):
        fh.write(images_json_entry(i, im if isinstance(im, str) else compact(im)))
    fh.write(IMAGES_JSON_END)


def images_json_head(head: Dict[str, Any]) -> str:
    """What ``write_images_json`` writes before the entries: for writers that add entries to several
    files as they read them (``results split``)."""
    return json.dumps(head, indent=1)[:-1].rstrip() + (",\n" if head else "\n") + ' "images": ['


def images_json_entry(index: int, text: str) -> str:
    """An entry's compact text as ``write_images_json`` writes the ``index``-th (from 0)."""
    return ("\n  " if index == 0 else ",\n  ") + text


#: What ``write_images_json`` writes after the entries.
IMAGES_JSON_END = "\n ]\n}\n"


def read_images_json(fh: IO[str]) -> Iterator[Dict[str, Any]]:
    """The ``images`` entries of a file ``write_images_json`` wrote, one line at a time: what a run
    prints or copies afterwards without parsing a season's document (gigabytes at 10^6 photos)."""
    for line in fh:
        if line.startswith(' "images": ['):
            break
    for line in fh:
        text = line.strip()
        if not text.startswith("{"):
            return
        yield json.loads(text[:-1] if text.endswith(",") else text)


def compact(entry: Dict[str, Any]) -> str:
    """One entry as compact JSON text: a tenth of the memory of the dict it came from."""
    return json.dumps(entry, separators=(",", ":"))


# settings added since journals were first written, with the value every older journal had
LATER_SETTINGS = {"engine": "mxnet"}
# settings added since, whose value in older journals is not known: not compared for those
UNRECORDED_BEFORE = ("precision", "weights")


def _placed(settings: Dict[str, Any]) -> Dict[str, Any]:
    """``settings`` with the machine's paths reduced to folder names: a journal copied to another
    machine, where the season is mounted elsewhere (``/mnt/a/season`` → ``/data/season``) and the
    model sits in another folder, resumes there. The entries' names are relative to the season's
    folder, so only its name must agree; the model is known by its folder name and its weights'
    digest (``weights``). With ``--absolute-paths`` the names hold the full path: it must agree."""
    out = dict(settings)
    if isinstance(out.get("model"), str):
        out["model"] = os.path.basename(os.path.normpath(out["model"]))
    if isinstance(out.get("base"), str) and not out.get("absolute_paths"):
        out["base"] = os.path.basename(os.path.normpath(out["base"]))
    return out


SHOWN_SETTINGS = 8          # differences named in a refusal; a damaged header could hold thousands
SHOWN_VALUE_CHARS = 80      # each value's repr clipped so: a header's value can be megabytes


def _clip(value: Any, form: Callable[[Any], str] = repr) -> str:
    """``form(value)`` with control characters escaped, clipped to ``SHOWN_VALUE_CHARS`` with an ellipsis."""
    text = terminal_safe(form(value))
    return text if len(text) <= SHOWN_VALUE_CHARS else text[:SHOWN_VALUE_CHARS - 1] + "…"


def check_settings(path: str, old: Dict[str, Any], new: Dict[str, Any]) -> None:
    """``ResultsError`` naming each setting that differs between a checkpoint and this run."""
    old, new = _placed(old), _placed(new)
    old = {**{k: v for k, v in LATER_SETTINGS.items() if k in new},
           **{k: new[k] for k in UNRECORDED_BEFORE if k in new}, **old}
    # this run's own settings first: keys only the file has are a damaged or foreign header
    differ = sorted((k for k in set(old) | set(new) if old.get(k) != new.get(k)), key=lambda k: (k not in new, k))
    if differ:
        detail = "; ".join(f"{_clip(k, str)}: {_clip(old.get(k))} then, {_clip(new.get(k))} now"
                           for k in differ[:SHOWN_SETTINGS])
        if len(differ) > SHOWN_SETTINGS:
            detail += f"; {len(differ) - SHOWN_SETTINGS} more settings differ"
        hint = (f" (the run began on {old['engine']}: resume with --engine {old['engine']}, which must work here)"
                if "engine" in differ else
                f" (the run began in {old['precision']}: resume with --precision {old['precision']})"
                if "precision" in differ and old.get("precision") else "")
        raise ResultsError(f"checkpoint '{path}' was made with other settings ({detail}){hint}; "
                           "run with the same options, or delete it to start over")


def load_checkpoint(path: str, settings: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The done entries of a format-1 checkpoint made with the same ``settings`` (``ResultsError`` if not)."""
    try:
        doc = read_json_file(path, MAX_RESULTS_BYTES, hold=True)   # every finished entry of a season
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise ResultsError(f"checkpoint '{path}' cannot be read ({err}); delete it to start over") from None
    if not isinstance(doc, dict) or doc.get("ssd_batch_checkpoint") != CHECKPOINT_VERSION \
            or not isinstance(doc.get("images"), list):
        raise ResultsError(f"'{path}' is not a batch checkpoint of this version; delete it to start over")
    check_settings(path, doc.get("settings") or {}, settings)
    return doc["images"]
