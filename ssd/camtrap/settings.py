"""One typed settings object for a camera-trap batch run: made by the CLI and the Camera traps
page alike, saved as the run's ``run.json``, turned back into the ``detect`` command line of a
background job.

Why one object: a run's settings used to change form four times (page state → dict / run.json →
argv → argparse namespace → options), each conversion written by hand, so a new setting had to
be added in five places and the page and the CLI disagreed on defaults. Here each setting is one
dataclass field whose metadata says its flag, type and help; ``add_arguments``, ``from_args``,
``to_argv``, ``to_dict`` and ``from_dict`` are all derived from those fields.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

from ssd.base.argtypes import nms_threshold, nonnegative_int, positive_int, probability, seconds
from ssd.base.atomic import atomic_write_json
from ssd.base.errors import SSDError
from ssd.base.json_file import MAX_STATE_BYTES, read_json_file
from ssd.camtrap.cameras import CAMERA_DEPTH_HELP, DEFAULT_CAMERA_DEPTH, CameraRule, camera_depth
from ssd.camtrap.episodes import DEFAULT_EPISODE_GAP
from ssd.camtrap.folders import FolderError, parse_shard
from ssd.camtrap.video import DEFAULT_FRAME_EVERY
from ssd.inference.engines import ENGINES
from ssd.inference.thresholds import DEFAULT_NMS, MAX_DETECTIONS, RESULTS_FLOOR, TYPICAL_THRESHOLD

CATEGORIES = ("none", "megadetector")
PRECISIONS = ("auto", "fp32", "int8")


class SettingsError(SSDError):
    """A run.json (or a dict) that does not describe a batch run."""


def _flag(flag: str, help: str, **argparse_kw: Any) -> Dict[str, Any]:
    """A field's command-line form: its flag, help and the argparse keywords that read it."""
    return {"flag": flag, "help": help, "argparse": argparse_kw}


def shard_arg(text: str) -> Tuple[int, int]:
    """``--shard``'s argparse type: ``folders.parse_shard``'s check, reported by argparse."""
    try:
        return parse_shard(text)
    except FolderError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


@dataclass(frozen=True)
class RunSettings:
    """Everything a batch run depends on; each field is one ``detect`` flag."""

    model: str = field(metadata=_flag("--model", "model folder, e.g. models/tiny-pikachu", required=True))
    inputs: Tuple[str, ...] = field(default=(), metadata={"positional": "images",
                                                          "help": "image files and/or folders"})
    threshold: float = field(default=TYPICAL_THRESHOLD, metadata=_flag(
        "--threshold", f"score shown in the table; written as the typical threshold in the JSON (default "
        f"{TYPICAL_THRESHOLD:g})", type=probability))
    floor: float = field(default=RESULTS_FLOOR, metadata=_flag(
        "--floor", f"lowest score written to the JSON/CSV, so tools can re-threshold (default {RESULTS_FLOOR:g})",
        type=probability))
    max_detections: int = field(default=MAX_DETECTIONS, metadata=_flag(
        "--max-detections", f"most detections written per image, highest scores first (default {MAX_DETECTIONS})",
        type=positive_int, metavar="N"))
    nms: float = field(default=DEFAULT_NMS, metadata=_flag("--nms", f"NMS IoU threshold (default {DEFAULT_NMS:g})",
                                                                  type=nms_threshold))
    out_json: Optional[str] = field(default=None, metadata=_flag(
        "--json", "write MegaDetector-format JSON here (-: to stdout, instead of the table)", metavar="OUT"))
    out_csv: Optional[str] = field(default=None, metadata=_flag(
        "--csv", "write CSV here (a row per detection, per empty image, per failure; -: to stdout)", metavar="OUT"))
    batch_size: int = field(default=8, metadata=_flag("--batch-size", "images per forward pass (default 8)",
                                                                  type=positive_int))
    workers: int = field(default=2, metadata=_flag("--workers", "decode threads (default 2)", type=positive_int))
    recursive: bool = field(default=False, metadata=_flag("--recursive", "walk subfolders of the folders given"))
    absolute_paths: bool = field(default=False, metadata=_flag(
        "--absolute-paths", "write absolute paths (default with one folder: paths relative to it)"))
    checkpoint: Optional[str] = field(default=None, metadata=_flag(
        "--checkpoint", "the run's append-only journal (default: OUT.checkpoint.jsonl beside the --json output)",
        metavar="FILE"))
    checkpoint_every: int = field(default=500, metadata=_flag(
        "--checkpoint-every", "images between the journal's fsyncs (a video counts its sampled frames; default 500)",
        type=positive_int, metavar="N"))
    resume: bool = field(default=False, metadata=_flag("--resume", "skip the images the checkpoint has done"))
    previous_results: Optional[str] = field(default=None, metadata=_flag(
        "--previous-results", "process only images not in this results file", metavar="OLD.json"))
    shard: Optional[Tuple[int, int]] = field(default=None, metadata=_flag(
        "--shard", "process the I-th of N deterministic shares of the sorted list (1 ≤ I ≤ N: every N-th file "
        "from the I-th on); results merge joins them", metavar="I/N", type=shard_arg))
    flag_repeats: int = field(default=0, metadata=_flag(
        "--flag-repeats", "flag a box seen at the same place in ≥ K images of one camera (see --camera-depth) as "
        "suspect (default 0: off)",
        type=nonnegative_int, metavar="K"))
    progress_file: Optional[str] = field(default=None, metadata=_flag("--progress-file", argparse.SUPPRESS,
                                                                      metavar="FILE"))
    categories: str = field(default="none", metadata=_flag(
        "--categories", "megadetector: map a COCO/VOC model's classes to animal/person/vehicle (ids 1/2/3), "
        "merging overlapping boxes across the classes of one category; others are dropped (default none: the model's "
        "own classes)", choices=CATEGORIES))
    episode_gap: float = field(default=DEFAULT_EPISODE_GAP, metadata=_flag(
        "--episode-gap", "images of one camera folder at most this many seconds apart form one episode (a burst; "
        f"default {DEFAULT_EPISODE_GAP:g}, Timelapse's 2 minutes)", type=seconds, metavar="SECONDS"))
    camera_depth: Optional[int] = field(default=DEFAULT_CAMERA_DEPTH, metadata=_flag(
        "--camera-depth", CAMERA_DEPTH_HELP + "; recorded in the results for later tools",
        type=camera_depth, metavar="auto|N"))
    frame_every: float = field(default=DEFAULT_FRAME_EVERY, metadata=_flag(
        "--frame-every", f"videos (.mp4 .avi .mov .mkv): look at one frame every S seconds (default {DEFAULT_FRAME_EVERY:g})",
        type=seconds, metavar="S"))
    precision: str = field(default="auto", metadata=_flag(
        "--precision", "int8 needs `python -m ssd quantize` first; auto (default): the model's evaluated choice",
        choices=PRECISIONS))
    engine: str = field(default="auto", metadata=_flag(
        "--engine", "inference engine: auto (default: the fastest this machine runs), mxnet, or onnxruntime "
        "(a GPU when "
        "onnxruntime-gpu can use one); a resumed run must keep the engine it began with", choices=ENGINES))

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(str(p) for p in self.inputs))
        if self.shard is not None:
            object.__setattr__(self, "shard", (int(self.shard[0]), int(self.shard[1])))

    @property
    def camera_rule(self) -> CameraRule:
        """Which folder is the camera (``cameras``): episodes and repeats are made per camera."""
        return CameraRule(self.camera_depth)

    def images_root(self) -> Dict[str, Any]:
        """What the results record of where the photos were (``info.ssd_batch``): the one folder given
        (None for several inputs) and whether the names are absolute. A merge of ``--absolute-paths``
        shards compares it: names under two roots would list one season twice over."""
        one = len(self.inputs) == 1 and os.path.isdir(self.inputs[0])
        return {"images_root": os.path.abspath(self.inputs[0]) if one else None,
                "absolute_paths": bool(self.absolute_paths)}

    # ---- the command line -------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add one argument per field to ``detect``'s parser (flags, types, helps from the fields)."""
        for f in fields(cls):
            if "positional" in f.metadata:
                parser.add_argument(f.metadata["positional"], nargs="+", metavar="PATH", help=f.metadata["help"])
                continue
            kw = dict(f.metadata["argparse"], dest=f.name, help=f.metadata["help"])
            if f.type in (bool, "bool"):
                kw["action"] = "store_true"
            elif not kw.get("required"):
                kw["default"] = f.default
            parser.add_argument(f.metadata["flag"], **kw)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "RunSettings":
        """The settings an argparse namespace of ``detect`` holds."""
        values = {f.name: getattr(args, f.name) for f in fields(cls) if "positional" not in f.metadata}
        return cls(inputs=tuple(args.images), **values)

    def to_argv(self) -> List[str]:
        """``detect``'s flags for these settings (those that differ from the defaults), then
        ``--`` and the inputs: what a background job runs, derived rather than rebuilt by hand."""
        argv: List[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if "positional" in f.metadata or (f.name != "model" and value == f.default):
                continue
            if value is True:
                argv.append(f.metadata["flag"])
            elif f.name == "shard":
                argv += [f.metadata["flag"], f"{value[0]}/{value[1]}"]
            else:
                argv += [f.metadata["flag"], str(value)]
        return argv + ["--"] + list(self.inputs)

    # ---- run.json -----------------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """Plain JSON types (tuples as lists)."""
        out = dataclasses.asdict(self)
        out["inputs"] = list(self.inputs)
        out["shard"] = list(self.shard) if self.shard else None
        return out

    @classmethod
    def from_dict(cls, data: Any, where: str = "settings") -> "RunSettings":
        """Settings from a dict read off disk (untrusted): unknown keys and bad values are refused
        with the reason; the form older app versions saved (``folder`` instead of ``inputs``) is read."""
        if not isinstance(data, dict):
            raise SettingsError(f"{where}: expected an object of settings, got {type(data).__name__}")
        data = dict(data)
        if "folder" in data and "inputs" not in data:               # run.json written by older versions
            data["inputs"] = [data.pop("folder")]
            data.setdefault("recursive", True)
        names = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise SettingsError(f"{where}: unknown setting(s) {', '.join(map(repr, unknown))}")
        if not isinstance(data.get("model"), str):
            raise SettingsError(f"{where}: 'model' must be a model folder path")
        return cls(**{k: _checked(names[k], v, where) for k, v in data.items()})

    def save(self, path: str) -> None:
        atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str) -> "RunSettings":
        try:
            data = read_json_file(path, MAX_STATE_BYTES)
        except (OSError, ValueError) as err:
            raise SettingsError(f"cannot read the run's settings {path}: {err}") from None
        return cls.from_dict(data, os.path.basename(path))

    def journal_settings(self, classes: List[str], base: Optional[str], engine: str = "mxnet",
                         precision: Optional[str] = None, weights: Optional[str] = None) -> Dict[str, Any]:
        """What decides the entries: a journal made with other values cannot be resumed. ``engine``
        and ``precision`` are the ones that run (``auto`` resolved): a resumed run may not switch
        engines, nor INT8 and fp32 (their scores differ), silently. ``weights``: the digest of the
        model's weights, which identifies it on another machine (``run_checkpoint.check_settings``)."""
        return {"model": os.path.abspath(self.model), "classes": list(classes), "nms": float(self.nms),
                "engine": engine, **({"precision": precision} if precision else {}),
                **({"weights": weights} if weights else {}),
                "floor": float(self.floor), "max_detections": int(self.max_detections),
                "shard": list(self.shard) if self.shard else None,
                "base": base, "absolute_paths": bool(self.absolute_paths),
                # only when not the default: journals from before videos were read resume as they are
                **({"frame_every": float(self.frame_every)} if self.frame_every != DEFAULT_FRAME_EVERY else {})}


def model_weights(model_dir: str) -> Optional[str]:
    """The digest of the model's weights (its identity in the journal), ``None`` where it has none
    to read: such a journal is compared by the model's folder name alone."""
    from ssd.inference.precision import params_digest
    from ssd.store import read_meta

    try:
        return params_digest(model_dir, read_meta(model_dir))
    except (OSError, ValueError, KeyError, SSDError):
        return None


def _checked(f: dataclasses.Field, value: Any, where: str) -> Any:
    """One value from disk, checked by the same argparse type the command line uses."""
    if f.name == "inputs":
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SettingsError(f"{where}: 'inputs' must be a list of paths")
        return tuple(value)
    if value is None and f.default is None:
        return None
    kw = f.metadata.get("argparse", {})
    try:
        if f.type in (bool, "bool"):
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if f.name == "shard":
            return shard_arg("/".join(str(int(v)) for v in value))
        if "choices" in kw and value not in kw["choices"]:
            raise ValueError(f"expected one of {', '.join(kw['choices'])}")
        kind = kw.get("type")
        if kind is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError("expected a number")
            return kind(str(value))
        if not isinstance(value, str):
            raise ValueError("expected text")
        return value
    except (ValueError, TypeError, argparse.ArgumentTypeError) as err:
        raise SettingsError(f"{where}: {f.name} = {value!r}: {err}") from None
