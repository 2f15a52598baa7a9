"""``python -m ssd train``: train a model into models/NAME (any registered architecture)."""
from __future__ import annotations

import argparse
import os
import sys
from typing import List

from ssd.base.argtypes import (GIVEN, DefaultsWhereSet, fraction, nonnegative_float, nonnegative_int, positive_float,
                               positive_int, record_given)
from ssd.base.text import terminal_safe
from ssd.data.dataset import DEFAULT_VAL_FRACTION
from ssd.training import defaults


def register(sub) -> None:
    t = sub.add_parser("train", help="train a model into a model folder (--out)", formatter_class=DefaultsWhereSet)
    t.add_argument("--data", required=True,
                   help="dataset folder: RecordIO (Pikachu-style), COCO / COCO Camera Traps JSON with its images, "
                        "train/ + valid/ COCO folders (Roboflow), or Pascal VOC XMLs (VOC2007/2012, a VOCdevkit "
                        "holding both, CVAT's PASCAL VOC 1.1 export, LabelImg)")
    # the names are not listed here: the registry imports MXNet, and every command builds this parser
    # (ONNX Runtime runs of detect need no MXNet); an unknown name is answered with the known ones
    t.add_argument("--model", dest="arch",
                   help="default: the architecture of a --pretrained model folder, else tiny. "
                        "architecture: tiny (TinySSD), a GluonCV SSD (ssd_512_mobilenet1.0, ssd_300_vgg16_atrous, "
                        "ssd_512_resnet50_v1, ssd_512_resnet50_v1b) or torchvision's ssdlite320_mobilenet_v3_large; "
                        "an unknown name is answered with the list")
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/my-model")
    t.add_argument("--epochs", type=positive_int, default=defaults.EPOCHS, help="epochs in all (with --resume: the total to reach)")
    t.add_argument("--batch-size", type=positive_int, default=defaults.BATCH_SIZE, help="images per step (per worker under launch)")
    t.add_argument("--lr", type=positive_float, help="default: 0.01 for tiny, 0.001×batch/32 for GluonCV SSDs, "
                        "0.15×batch/192 for SSDlite")
    t.add_argument("--wd", type=nonnegative_float, default=defaults.WEIGHT_DECAY, help="weight decay")
    t.add_argument("--momentum", type=nonnegative_float, help="default: 0.9")
    t.add_argument("--lr-schedule", choices=["constant", "cosine", "step"], help="default: cosine (tiny, SSDlite), step (GluonCV SSDs)")
    t.add_argument("--warmup-iters", type=nonnegative_int, default=defaults.WARMUP_ITERS,
                   help=f"iterations the learning rate climbs from a tenth to its value, at most a quarter of the "
                        f"run; 0 = none (default {defaults.WARMUP_ITERS})")
    t.add_argument("--input-size", type=positive_int, help="default: 256 (tiny), the native size (others)")
    t.add_argument("--sizes", type=_parse_floats, help="anchor sizes per scale, e.g. '0.2,0.272;0.37,0.447;…'")
    t.add_argument("--ratios", type=_parse_floats, help="anchor ratios per scale (one group = all scales)")
    t.add_argument("--cls-loss", choices=["ce", "focal"], default="ce", help="class loss: cross-entropy or focal")
    t.add_argument("--box-loss", choices=["l1", "smooth_l1"], help="default: smooth_l1")
    t.add_argument("--hard-negative-ratio", type=nonnegative_float, help="negatives kept per positive; 0 = off (default: 3, the SSD paper)")
    t.add_argument("--loss-norm", choices=["d2l", "positives"],
                   help="positives (default): SSD paper, divide by positive anchors; d2l: mean over anchors")
    t.add_argument("--no-augment", dest="augment", action="store_false",
                   help="train on the images as they are: no random crops, flips or colour jitter")
    t.add_argument("--seed", type=nonnegative_int, default=0, 
                   help="random seed: initialization, shuffling, augmentation, and the validation split a dataset lacks")
    t.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --out")
    t.add_argument("--device", choices=["auto", "cpu", "gpu"], default="auto",
                   help="auto: every usable GPU, else the CPU (the reason is printed)")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="training arithmetic. auto: bfloat16 convolutions with float32 master weights on a "
                        "CPU with native bfloat16 (AVX512_BF16/AMX), else float32. The saved model is float32 "
                        "either way")
    t.add_argument("--val-fraction", type=fraction, default=DEFAULT_VAL_FRACTION,
                   help="validation share when the dataset has none")
    t.add_argument("--no-cache", dest="cache", action="store_false",
                   help="decode large photos every epoch instead of once into a cache")
    t.add_argument("--limit-train", type=positive_int, help="use only the first N training images")
    t.add_argument("--limit-val", type=positive_int, help="use only the first N validation images")
    t.add_argument("--max-iters", type=positive_int, dest="max_iters_per_epoch", help="cap iterations per epoch")
    t.add_argument("--kvstore", default="device", help="gluon.Trainer kvstore (device, local, dist_sync…)")
    t.add_argument("--pretrained", help="imagenet (a live ImageNet backbone, where one fits: SSD300, "
                   "ssd_512_resnet50_v1b, SSDlite), voc or coco (a pretrained detector re-headed to your classes), a .params "
                   "file, or a saved model folder (models pull's, say)")
    t.add_argument("--default", action="store_true", help="mark the model as the app's default")
    t.add_argument("--quantize", action="store_true",
                   help="then quantize to INT8 on the same data (as python -m ssd quantize)")
    t.set_defaults(func=cmd_train)
    record_given(t)     # train --resume takes the run's own value of every option left out


def _parse_floats(text: str) -> List[List[float]]:
    """'0.2,0.272;0.37,0.447' → [[0.2, 0.272], [0.37, 0.447]] (one group per scale)."""
    try:
        return [[float(v) for v in grp.split(",") if v.strip()] for grp in text.split(";") if grp.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like '0.2,0.272;0.37,0.447', got {text!r}")


def cmd_train(args: argparse.Namespace) -> int:
    from ssd.training.config import TrainConfig, command_line, settle_architecture
    from ssd.training.loop import train

    fields = {k: getattr(args, k) for k in TrainConfig.__dataclass_fields__ if hasattr(args, k)}
    if args.resume:
        from ssd.training.resume import adopt_run_settings

        taken = adopt_run_settings(fields, getattr(args, GIVEN, ()), args.out)
        if taken:
            _say(f"the run's own settings (from its checkpoint): {', '.join(taken)}")
    if not (args.resume and fields["arch"]):   # a resume's start is a record: its folder may be gone or changed
        fields["arch"], note = settle_architecture(fields["arch"], fields["pretrained"])   # as the Train page's
        if note:                                                                           # start_from
            _say(note)
    fields["command"] = (os.environ.get("SSD_LAUNCH_COMMAND")   # a worker of `python -m ssd launch`
                         or (command_line(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""))
    cfg = TrainConfig(**fields)
    res = train(cfg)
    best = res.best
    dist = res.extra.get("distributed") or {}
    if dist.get("rank", 0) != 0:   # a worker of `python -m ssd launch`; rank 0 reports the model
        print(f"{res.status}: worker rank {dist['rank']} of {dist['workers']} (rank 0 writes {res.model_dir})")
        return _exit_status(res.status)
    msg = f"{res.status}: model in {res.model_dir}"
    if best.get("val_map") is not None:
        msg += f" (best epoch {best['epoch']}, val mAP {best['val_map']:.4f})"
    print(msg)
    if cfg.quantize and res.status == "done":
        from ssd.cli.quantize import engines_for
        from ssd.inference.quantize import quantize_engines

        recs = quantize_engines(res.model_dir, engines_for("auto"), data=cfg.data,
                                log=lambda line: print(line, flush=True))
        print("INT8 graph written for " + ", ".join(f"{engine} (default precision there: {rec['recommended']})"
                                                    for engine, rec in recs.items()))
    return _exit_status(res.status)


def _say(line: str) -> None:
    print(terminal_safe(line), file=sys.stderr, flush=True)   # names from outside: control characters escaped


def _exit_status(status: str) -> int:
    """0 for a finished run, 130 for a stopped one (Ctrl-C, SIGTERM: ``--resume`` goes on), as ``detect``:
    a script or a job scheduler must not take a stopped run for a completed one."""
    return 130 if status == "stopped" else 0
