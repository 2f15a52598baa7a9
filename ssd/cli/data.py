"""``python -m ssd data …``: make (synth), download (pikachu, banana, ena24) and describe (info) datasets."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from ssd.base.atomic import atomic_path
from ssd.base.argtypes import nonnegative_int, positive_int
from ssd.base.text import terminal_safe
from ssd.data.dataset import open_dataset
from ssd.data.fetchers import (BANANA_BASE_URL, BANANA_ZIP, ENA24_BASE_URL, PIKACHU_BASE_URL, fetch_banana,
                               fetch_ena24, fetch_pikachu)
from ssd.data.summary import format_summary, plot_box_stats, summarize
from ssd.data.synthetic import generate


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Add the ``data`` command and its sub-commands."""
    data = subparsers.add_parser("data", help="make, download or describe datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    dsub.required = True
    register_synth(dsub)
    register_downloads(dsub)
    register_info(dsub)


def _cmd_synth(args: argparse.Namespace) -> int:
    bar = None
    progress = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.num_train + args.num_val, unit="img", desc="synth", file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)
    t0 = time.perf_counter()
    try:
        info = generate(args.out, num_train=args.num_train, num_val=args.num_val, seed=args.seed,
                        size=args.size, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    print(f"wrote {info['num_train']} train + {info['num_val']} val synthetic Pikachu images "
          f"({info['size']}x{info['size']}, seed {info['seed']}) to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def register_synth(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``synth`` to the ``data`` command's subparsers."""
    p = subparsers.add_parser("synth", help="generate a synthetic Pikachu detection dataset (RecordIO)",
                              description="Draw a synthetic Pikachu dataset: train.rec/.idx, val.rec/.idx "
                                          "and dataset.json, in the official Pikachu RecordIO format.")
    p.add_argument("--out", required=True, help="folder to write into (created if missing)")
    p.add_argument("--num-train", type=positive_int, default=1000, help="training images (default 1000)")
    p.add_argument("--num-val", type=nonnegative_int, default=100, help="validation images (default 100)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="random seed; the same seed gives the same files (default 0)")
    p.add_argument("--size", type=positive_int, default=256, help="image side in pixels (default 256)")
    p.set_defaults(func=_cmd_synth)


def _cmd_pikachu(args: argparse.Namespace) -> int:
    path = fetch_pikachu(args.out, base_url=args.base_url)
    print(f"Pikachu dataset ready in {path} (train.rec, train.idx, val.rec; SHA-1 verified)")
    return 0


def _cmd_banana(args: argparse.Namespace) -> int:
    path = fetch_banana(args.out, base_url=args.base_url)
    print(f"banana dataset ready in {path} (SHA-1 verified)")
    return 0


def _cmd_ena24(args: argparse.Namespace) -> int:
    print("note: LILA publishes no checksums for ENA24; files are checked by parsing the JSON and "
          "by the zip's CRC-32 only", file=sys.stderr)
    path = fetch_ena24(args.out, images=not args.metadata_only, base_url=args.base_url,
                       keep_zip=args.keep_zip)
    what = "metadata" if args.metadata_only else "metadata and images"
    print(f"ENA24 {what} ready in {path}")
    return 0


#: What each download does, for its ``--help`` (the fetchers' docstrings speak to developers).
DOWNLOAD_ABOUT = {
    "pikachu": "Download the official Pikachu RecordIO set (train.rec, train.idx, val.rec; SHA-1 checked) into "
               "--out. Its host has been unreachable since February 2024: the error then says where each file "
               "would go and points to `data synth` (the same format, drawn offline) and `data banana`.",
    "banana": "Download the banana-detection set of Dive into Deep Learning (a zip, SHA-1 checked) and unpack "
              "it into --out. The zip is kept, so a rerun skips the download.",
    "ena24": "Download ENA24-detection from LILA: ena24.json and the 3.6 GB of images (into --out/images). "
             "LILA publishes no checksums: the JSON is checked by parsing it and the zip by its CRC-32s. The zip "
             "is deleted once unpacked (unless --keep-zip), and a rerun then skips download and unpacking.",
}


def register_downloads(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add ``pikachu``, ``banana`` and ``ena24`` to the ``data`` sub-commands."""
    specs = [("pikachu", "download the official Pikachu RecordIO dataset (unreachable since February 2024)",
              _cmd_pikachu, f"mirror to download from (default: {PIKACHU_BASE_URL})", DOWNLOAD_ABOUT["pikachu"]),
             ("banana", "download the d2l banana-detection dataset", _cmd_banana,
              f"mirror folder holding {BANANA_ZIP} (default: {BANANA_BASE_URL})", DOWNLOAD_ABOUT["banana"]),
             ("ena24", "download ENA24-detection camera-trap images (LILA, 3.6 GB)", _cmd_ena24,
              f"mirror folder (default: {ENA24_BASE_URL})", DOWNLOAD_ABOUT["ena24"])]
    for name, help_, handler, base_help, about in specs:
        p = subparsers.add_parser(name, help=help_, description=about)
        p.add_argument("--out", metavar="DIR", default=os.path.join("data", name),
                       help="destination folder (default: %(default)s)")
        p.add_argument("--base-url", metavar="URL", default=None, help=base_help)
        if name == "ena24":
            p.add_argument("--metadata-only", action="store_true",
                           help="fetch only ena24.json (3.6 MB), not the 3.6 GB of images")
            p.add_argument("--keep-zip", action="store_true", help="keep ena24.zip after extracting it")
        p.set_defaults(func=handler)


def _info(args: argparse.Namespace) -> int:
    splits = open_dataset(args.dir)
    summary = summarize(splits)
    if getattr(args, "json", False):
        print(json.dumps(summary, indent=2))
    else:
        print(terminal_safe(format_summary(summary), keep_newlines=True))   # file names from the dataset
    if args.plot:
        fig = plot_box_stats(splits)
        fmt = os.path.splitext(args.plot)[1].lstrip(".").lower() or "png"
        with atomic_path(args.plot) as tmp:
            fig.savefig(tmp, format=fmt, dpi=100)
        print(f"box statistics plot written to {args.plot}")
    return 0


def register_info(subparsers: "argparse._SubParsersAction") -> None:
    """Add ``info DIR [--plot OUT.png] [--json]`` to the ``data`` sub-commands."""
    p = subparsers.add_parser("info", help="summarize a dataset folder: images, boxes per class, skipped items",
                              description="Print images per split, boxes per class, images without boxes, "
                                          "what the loader skipped, and box size / aspect-ratio statistics.")
    p.add_argument("dir", help="dataset folder (RecordIO, COCO Camera Traps, ...), or a COCO Camera Traps "
                               ".json file where its folder holds several")
    p.add_argument("--plot", metavar="OUT.png", default=None,
                   help="also save a plot of box sizes and aspect ratios (for choosing anchors)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")
    p.set_defaults(func=_info)
