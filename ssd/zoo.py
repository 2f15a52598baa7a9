"""GluonCV model-zoo SSDs: build, fine-tune, train, decode and describe their anchors.

Three architectures from GluonCV's zoo, named as our CLI's ``--model`` takes them:

=========================  ==========  ===========  ============================
arch                       input (px)  anchors      published (GluonCV)
=========================  ==========  ===========  ============================
``ssd_512_mobilenet1.0``   512         6132         VOC07 mAP 75.4, COCO AP 21.7
``ssd_300_vgg16_atrous``   300         8732         VOC07 mAP 77.6
``ssd_512_resnet50_v1``    512         6132         VOC07 mAP 80.1
=========================  ==========  ===========  ============================

Why it is built this way:

* **Our own table of GluonCV's presets** (:data:`ZOO_SPECS`, copied from
  ``gluoncv/model_zoo/ssd/presets.py``, checked against it by the tests). A net is built with
  ``gluoncv.model_zoo.ssd.get_ssd`` directly with *our* class names and the anchor sizes of the
  preset it starts from (``custom``, ``voc`` or ``coco`` differ for VGG-300 and ResNet-50), so a
  saved model is rebuilt from ``meta.json`` without a forward pass or a ``reset_class``.
* **Starting points** (``TrainConfig.pretrained``): ``None`` (from scratch), ``"imagenet"``
  (pretrained base network), ``"voc"``/``"coco"`` (the zoo detector, its class predictors
  reset to our classes with ``reset_class``, reusing the weights of classes whose names match
  case-insensitively, e.g. COCO's bird/cat/dog/horse/bear for ENA24), or a local ``.params``
  file (every parameter whose name and shape match is loaded).
* **Weights** come from GluonCV's model store: the file ``NAME-SHORTSHA1.params`` under
  ``$MXNET_HOME/models`` (default ``~/.mxnet/models``) checked against GluonCV's SHA-1 table.
  A missing or mismatching file is fetched from the store's URL with :func:`ssd.download.download`
  (timeouts, resume, atomic); offline, a :class:`~ssd.errors.DownloadError` says which file to
  put where.
* **Training** follows GluonCV's ``train_ssd.py``: ``SSDDefaultTrainTransform`` builds the
  targets in the data loader from anchors taken by one forward pass in ``autograd.train_mode``,
  ``SSDMultiBoxLoss`` (softmax CE with 3:1 hard negative mining + smooth L1, normalized by the
  positives of the whole batch), SGD momentum 0.9, wd 5e-4, lr 0.001 per 32 images, step decay.
  The loop itself, checkpoints, events, meta and resume are ``ssd.training.train``'s.
* **Inference**: GluonCV nets decode and apply their own NMS; boxes come back in input pixels
  and are normalized here. A hybridized graph is cached regardless of train/predict mode, so
  the cache is cleared whenever the mode or the NMS setting changes.

Nothing here imports GluonCV at module level: ``ssd.model`` imports this module for its names.
"""
from __future__ import annotations

import functools
import os
import re
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import DownloadError, ModelError, SSDError

# ---------------------------------------------------------------------------------------------
# The architectures
# ---------------------------------------------------------------------------------------------

_RATIOS_6 = ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1.0 / 3),) * 3 + ((1.0, 2.0, 0.5),) * 2
VARIANTS = ("custom", "voc", "coco")
PRETRAINED_CHOICES = ("imagenet", "voc", "coco")
NMS_TOPK = 400          # candidates entering NMS (GluonCV's default)
POST_NMS = 100          # detections kept per image after NMS (GluonCV's default)
SCORE_FLOOR = 0.01      # GluonCV's decoders drop class scores below this, whatever we ask


@dataclass(frozen=True)
class ZooSpec:
    arch: str
    base_network: str                      # GluonCV name of the backbone (its ImageNet weights)
    base_size: int                         # native input size; anchor sizes/steps are in its pixels
    features: Union[str, Tuple[str, ...]]  # backbone outputs, or "vgg16_atrous_300"
    filters: Optional[Tuple[int, ...]]     # extra layers appended by FeatureExpander
    sizes: Dict[str, Tuple[float, ...]]    # per variant; len = layers + 1
    ratios: Tuple[Tuple[float, ...], ...]
    steps: Tuple[float, ...]
    min_input: int                         # smallest square input the layers accept
    published: Dict[str, float] = field(default_factory=dict)
    reference_cpu_s: Optional[float] = None  # REFERENCE.md: s/image on the 2-core dev machine


_MOBILENET_SIZES = (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492)
ZOO_SPECS: Dict[str, ZooSpec] = {
    "ssd_512_mobilenet1.0": ZooSpec(
        "ssd_512_mobilenet1.0", "mobilenet1.0", 512, ("relu22_fwd", "relu26_fwd"), (512, 512, 256, 256),
        {"custom": _MOBILENET_SIZES, "voc": _MOBILENET_SIZES, "coco": _MOBILENET_SIZES},
        _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"voc_map": 75.4, "coco_ap": 21.7}, 0.14),
    "ssd_300_vgg16_atrous": ZooSpec(
        "ssd_300_vgg16_atrous", "vgg16_atrous", 300, "vgg16_atrous_300", None,
        {"custom": (21, 45, 99, 153, 207, 261, 315), "voc": (30, 60, 111, 162, 213, 264, 315),
         "coco": (21, 45, 99, 153, 207, 261, 315)},
        _RATIOS_6, (8, 16, 32, 64, 100, 300), 260,
        {"voc_map": 77.6}, 0.63),
    "ssd_512_resnet50_v1": ZooSpec(
        "ssd_512_resnet50_v1", "resnet50_v1", 512, ("stage3_activation5", "stage4_activation2"),
        (512, 512, 256, 256),
        {"custom": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72),
         "voc": (51.2, 102.4, 189.4, 276.4, 363.52, 450.6, 492),
         "coco": (51.2, 133.12, 215.04, 296.96, 378.88, 460.8, 542.72)},
        _RATIOS_6, (16, 32, 64, 128, 256, 512), 32,
        {"voc_map": 80.1}, 0.63),
}
ZOO_ARCHS: Tuple[str, ...] = tuple(ZOO_SPECS)


def is_zoo_arch(arch: Optional[str]) -> bool:
    return arch in ZOO_SPECS


def spec_of(arch: str) -> ZooSpec:
    try:
        return ZOO_SPECS[arch]
    except KeyError:
        raise SSDError(f"unknown model-zoo architecture {arch!r}; known: {', '.join(ZOO_ARCHS)}") from None


def variant_of(pretrained: Optional[str]) -> str:
    """Which preset's anchors a net starting from ``pretrained`` has: voc, coco or custom."""
    p = (pretrained or "").strip().lower()
    return p if p in ("voc", "coco") else "custom"


def gluoncv_name(arch: str, variant: str) -> str:
    """The zoo's own name, e.g. ``ssd_512_mobilenet1.0_voc``."""
    return f"{arch}_{variant}"


@contextmanager
def _quiet():
    """GluonCV/MXNet warn about symbol inputs and re-initialization on every build."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def build_zoo_net(arch: str, classes: Sequence[str], variant: str = "custom", pretrained_base: bool = False):
    """An uninitialized GluonCV SSD with ``classes`` and the anchors of ``variant``'s preset.

    Never downloads unless ``pretrained_base`` (then the backbone file must be present, see
    :func:`ensure_weights`, or GluonCV fetches it).
    """
    from gluoncv.model_zoo.ssd.ssd import get_ssd
    from gluoncv.model_zoo.ssd.vgg_atrous import vgg16_atrous_300

    spec = spec_of(arch)
    if variant not in VARIANTS:
        raise SSDError(f"unknown zoo variant {variant!r}; use one of {', '.join(VARIANTS)}")
    if not classes:
        raise SSDError("a detector needs at least one class")
    features = vgg16_atrous_300 if spec.features == "vgg16_atrous_300" else list(spec.features)
    with _quiet():
        return get_ssd(spec.base_network, spec.base_size, features=features,
                       filters=list(spec.filters) if spec.filters else None,
                       sizes=list(spec.sizes[variant]), ratios=[list(r) for r in spec.ratios],
                       steps=list(spec.steps), classes=list(classes),
                       dataset=variant if variant != "custom" else "", pretrained=False,
                       pretrained_base=pretrained_base)


def initialize(net, ctxs=None, input_size: Optional[int] = None):
    """Initialize what is not loaded yet (Xavier; BatchNorm gamma/var 1, beta/mean/bias 0),
    finish deferred shapes with one forward in ``train_mode`` and return its anchors (1, N, 4).

    GluonCV's backbones are SymbolBlocks whose parameters carry no initializer of their own, so a
    plain ``net.initialize(Xavier())`` fails on BatchNorm vectors; we name their init first.
    """
    import mxnet as mx
    from mxnet import autograd

    ctxs = list(ctxs or [mx.cpu()])
    for name, p in net.collect_params().items():
        if p.init is None:
            if re.search(r"(gamma|running_var|moving_var)$", name):
                p.init = "ones"
            elif re.search(r"(beta|bias|running_mean|moving_mean)$", name):
                p.init = "zeros"
    with _quiet():
        net.initialize(init=mx.init.Xavier(), ctx=ctxs)
        net.collect_params().reset_ctx(ctxs)
    size = int(input_size or _base_size(net))
    with autograd.train_mode():
        _, _, anchors = net(mx.nd.zeros((1, 3, size, size), ctx=ctxs[0]))
    return anchors


def _base_size(net) -> int:
    return int(net.anchor_generators[0]._im_size[0])


# ---------------------------------------------------------------------------------------------
# Pretrained weights (GluonCV's model store)
# ---------------------------------------------------------------------------------------------

def model_store_root() -> str:
    """Where GluonCV keeps weights: ``$MXNET_HOME/models``, else ``~/.mxnet/models``."""
    if "MXNET_HOME" in os.environ:
        return os.path.join(os.path.expanduser(os.environ["MXNET_HOME"]), "models")
    return os.path.expanduser(os.path.join("~", ".mxnet", "models"))


def _store_sha1(name: str) -> str:
    from gluoncv.model_zoo import model_store

    try:
        return model_store._model_sha1[name]
    except KeyError:
        raise ModelError(f"GluonCV publishes no pretrained weights named {name!r}") from None


def weights_file_name(name: str) -> str:
    """``NAME-SHORTSHA1.params``: the file name GluonCV's model store looks for."""
    return f"{name}-{_store_sha1(name)[:8]}.params"


def weights_path(name: str) -> str:
    return os.path.join(model_store_root(), weights_file_name(name))


def weights_url(name: str) -> str:
    from gluoncv.model_zoo import model_store

    repo = os.environ.get("MXNET_GLUON_REPO", model_store.apache_repo_url)
    if not repo.endswith("/"):
        repo += "/"
    return model_store._url_format.format(repo_url=repo, file_name=weights_file_name(name)[:-len(".params")])


def ensure_weights(name: str, download: bool = True, progress=None) -> str:
    """Path of GluonCV's pretrained file ``name`` with the right SHA-1, fetching it if needed.

    ``DownloadError`` when it is missing/wrong and cannot be fetched: the message names the file,
    the folder to put it in, its SHA-1 and the URL of the zip that holds it.
    """
    from .download import DownloadError as _DE, download as fetch, safe_extract, sha1_of_file

    sha1 = _store_sha1(name)
    path = weights_path(name)
    fname = os.path.basename(path)
    root = os.path.dirname(path)
    if os.path.isfile(path):
        got = sha1_of_file(path)
        if got == sha1:
            return path
        problem = f"{path} has SHA-1 {got}, not GluonCV's {sha1} (a partial or different file)"
    else:
        problem = f"{path} does not exist"
    url = weights_url(name)
    by_hand = (f"Put the file {fname} (SHA-1 {sha1}; it is inside {url}) in {root} — GluonCV's model "
               "store folder: ~/.mxnet/models, or $MXNET_HOME/models when MXNET_HOME is set — and run "
               "the same command again.")
    if not download:
        raise DownloadError(f"pretrained weights {name!r} are not available: {problem}. {by_hand}")
    import shutil

    zip_path = path[:-len(".params")] + ".zip"
    staging = os.path.join(root, ".extract-" + fname)
    try:
        try:
            fetch(url, zip_path, progress=progress)
            extracted = safe_extract(zip_path, staging)
        except _DE as err:
            gist = str(err).split(" To install it by hand")[0]
            raise DownloadError(f"pretrained weights {name!r} are not available: {problem}, and fetching "
                                f"them failed: {gist} {by_hand}") from None
        member = next((m for m in extracted if os.path.basename(m) == fname), None)
        if member is None:
            raise DownloadError(f"{url} does not contain {fname} (it holds {', '.join(extracted) or 'nothing'}). "
                                f"{by_hand}")
        src = os.path.join(staging, *member.split("/"))
        got = sha1_of_file(src)
        if got != sha1:
            raise DownloadError(f"{fname} from {url} has SHA-1 {got}, not GluonCV's {sha1}; it was not "
                                f"installed. {by_hand}")
        os.replace(src, path)  # same folder: atomic, and only a verified file gets the final name
    finally:
        if os.path.exists(zip_path):
            os.remove(zip_path)
        shutil.rmtree(staging, ignore_errors=True)
    return path


# ---------------------------------------------------------------------------------------------
# Starting points (fine-tuning)
# ---------------------------------------------------------------------------------------------

_SYNONYMS = {"human": "person", "people": "person", "man": "person", "woman": "person",
             "motorbike": "motorcycle", "aeroplane": "airplane", "sofa": "couch", "tvmonitor": "tv"}


def _norm_name(name: str) -> str:
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


def class_reuse_map(new_classes: Sequence[str], old_classes: Sequence[str]) -> Dict[str, str]:
    """``{new: old}`` for classes the pretrained detector already knows.

    A name matches when equal ignoring case, spaces/underscores; else when its last word is an
    old class (``Domestic Cat`` → ``cat``, ``American Black Bear`` → ``bear``); else through a
    few synonyms (``Human`` → ``person``). Two new classes may start from the same old one.
    """
    old = {_norm_name(o): o for o in old_classes}
    out: Dict[str, str] = {}
    for n in new_classes:
        k = _norm_name(n)
        hit = old.get(k)
        if hit is None and " " in k:
            hit = old.get(k.split(" ")[-1])
        if hit is None:
            syn = _SYNONYMS.get(k) or _SYNONYMS.get(k.split(" ")[-1] if k else "")
            if syn:
                hit = old.get(syn)
        if hit is not None:
            out[n] = hit
    return out


def _source_classes(variant: str) -> List[str]:
    if variant == "voc":
        from gluoncv.data import VOCDetection
        return list(VOCDetection.CLASSES)
    from gluoncv.data import COCODetection
    return list(COCODetection.CLASSES)


def load_matching_params(net, path: str, ctx=None, skip: Callable[[str], bool] = lambda k: False) -> Dict[str, Any]:
    """Load every parameter of ``path`` whose structural name and shape match ``net``'s.

    Returns ``{"loaded": n, "skipped": [names…], "total": n_net}``; ``ModelError`` if none match.
    Uses MXNet's own loader (no pickle).
    """
    import mxnet as mx

    try:
        saved = mx.nd.load(path)
    except Exception as err:
        from .errors import error_gist
        raise ModelError(f"{path}: not an MXNet parameter file ({error_gist(err)})") from None
    if not isinstance(saved, dict):
        raise ModelError(f"{path}: holds a list of arrays, not named parameters")
    saved = {k.split(":", 1)[1] if k.startswith(("arg:", "aux:")) else k: v for k, v in saved.items()}
    params = net._collect_params_with_prefix()
    loaded, skipped = 0, []
    for name, p in params.items():
        if skip(name):
            continue
        arr = saved.get(name)
        shape = tuple(p.shape or ())
        if arr is None or (shape and (len(shape) != arr.ndim
                                      or any(s not in (0, a) for s, a in zip(shape, arr.shape)))):
            skipped.append(name)
            continue
        p._load_init(arr.astype(p.dtype or arr.dtype, copy=False), ctx or [mx.cpu()])
        loaded += 1
    if loaded == 0:
        raise ModelError(f"{path}: none of its parameters fit this network ({len(saved)} in the file, "
                         f"{len(params)} in the network); is it a model of another architecture?")
    return {"loaded": loaded, "skipped": skipped, "total": len(params)}


def create_for_training(arch: str, classes: Sequence[str], pretrained: Optional[str], ctxs=None,
                        input_size: Optional[int] = None, load_weights: bool = True):
    """Network ready to train and what was loaded: ``(net, anchors (1,N,4) on CPU, info dict)``.

    ``load_weights=False`` (resuming) builds the same variant without fetching any weights.
    """
    import mxnet as mx

    ctxs = list(ctxs or [mx.cpu()])
    spec = spec_of(arch)
    p = (pretrained or "").strip()
    kind = p.lower()
    variant = variant_of(p)
    info: Dict[str, Any] = {"pretrained": pretrained or None, "variant": variant}
    if kind in ("", "none", "scratch"):
        info["pretrained"] = None
        net = build_zoo_net(arch, classes, "custom")
    elif kind == "imagenet":
        if load_weights:
            info["weights"] = ensure_weights(spec.base_network)
        net = build_zoo_net(arch, classes, "custom", pretrained_base=load_weights)
    elif kind in ("voc", "coco"):
        name = gluoncv_name(arch, variant)
        if load_weights:
            path = ensure_weights(name)
            old = _source_classes(variant)
            net = build_zoo_net(arch, old, variant)
            try:
                with _quiet():
                    net.load_parameters(path, ctx=mx.cpu())
            except Exception as err:
                from .errors import error_gist
                raise ModelError(f"{path}: GluonCV weights do not load into {name} ({error_gist(err)}); "
                                 "delete the file so that it is fetched again") from None
            reuse = class_reuse_map(classes, old)
            with _quiet():
                net.reset_class(list(classes), reuse_weights=dict(reuse) if reuse else None)
            info.update(weights=path, reused_classes=reuse)
        else:
            net = build_zoo_net(arch, classes, variant)
    else:
        path = p
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "model.params")):
            path = os.path.join(path, "model.params")
        if not os.path.isfile(path):
            raise SSDError(f"--pretrained {pretrained!r}: not imagenet, voc, coco or an existing .params file")
        net = build_zoo_net(arch, classes, "custom")
        if load_weights:
            # keep our own anchors: they follow this build's preset, not the file's
            info.update(weights=os.path.abspath(path),
                        **load_matching_params(net, path, skip=lambda k: k.startswith("anchor_generators.")))
    anchors = initialize(net, ctxs, input_size)
    return net, anchors.as_in_context(mx.cpu()), info


def zoo_defaults(arch: str, batch_size: int) -> Dict[str, Any]:
    """GluonCV's reference settings (train_ssd.py) for options a user left unset.

    Native input size, lr 0.001 × batch / 32, SGD momentum 0.9, step schedule, 3:1 hard
    negatives (``SSDMultiBoxLoss``). ``ssd.training.resolve_defaults`` applies them, so an
    explicit ``--lr`` or ``--input-size`` is always kept.
    """
    return {"input_size": spec_of(arch).base_size, "lr": 0.001 * batch_size / 32, "momentum": 0.9,
            "lr_schedule": "step", "hard_negative_ratio": 3.0}


def check_zoo_config(cfg) -> None:
    """Refuse inputs the zoo layers cannot take, with the reason; ``SSDError``."""
    spec = spec_of(cfg.arch)
    if cfg.input_size < spec.min_input:
        raise SSDError(f"{cfg.arch} needs an input of at least {spec.min_input} px (native {spec.base_size}); "
                       f"got {cfg.input_size}")
    p = (cfg.pretrained or "").strip()
    if p and p.lower() not in PRETRAINED_CHOICES + ("none", "scratch") and not os.path.exists(p):
        raise SSDError(f"--pretrained {p!r}: use imagenet, voc, coco or the path of a .params file")


# ---------------------------------------------------------------------------------------------
# Training (called from ssd.training.train, which owns the loop, checkpoints, events and meta)
# ---------------------------------------------------------------------------------------------

def default_num_workers() -> int:
    """Data-loader processes building targets: ``$SSD_NUM_WORKERS``, else 0 on ≤2 cores, else ≤4."""
    env = os.environ.get("SSD_NUM_WORKERS")
    if env is not None and env.strip().isdigit():
        return int(env)
    n = os.cpu_count() or 1
    return 0 if n <= 2 else min(4, n // 2)


class ZooTrainTransform:
    """One sample of our datasets → ``(image (3,S,S) float32, cls_targets (N,), box_targets (N,4))``.

    Labels come in as ``(K, 5)`` ``[cls, xmin, ymin, xmax, ymax]`` normalized and go to GluonCV's
    ``[xmin, ymin, xmax, ymax, cls]`` in pixels. With ``augment`` it is GluonCV's
    ``SSDDefaultTrainTransform(width, height, anchors)`` (colour distortion, expansion, constrained
    crop, random interpolation, flip, targets); without, a plain resize. An image with no box gets
    all-background targets (GluonCV's target generator cannot take an empty box list).
    """

    def __init__(self, size: int, anchors, augment: bool = True, mean=None, std=None) -> None:
        from gluoncv.data.transforms.presets.ssd import SSDDefaultTrainTransform

        from .transforms import MEAN, STD

        self.size, self.augment = int(size), bool(augment)
        self.mean, self.std = tuple(mean or MEAN), tuple(std or STD)
        self.anchors = anchors
        self.num_anchors = int(anchors.shape[1])
        self._full = SSDDefaultTrainTransform(self.size, self.size, anchors, mean=self.mean, std=self.std)
        self._plain = SSDDefaultTrainTransform(self.size, self.size, None, mean=self.mean, std=self.std)

    def __call__(self, img: np.ndarray, label: np.ndarray):
        import mxnet as mx
        from gluoncv.data.transforms import bbox as tbbox, image as timage

        h, w = img.shape[:2]
        lab = np.asarray(label, dtype=np.float32).reshape(-1, 5)
        lab = lab[lab[:, 0] >= 0]
        bbox = np.concatenate([lab[:, 1:5] * np.array([w, h, w, h], np.float32), lab[:, :1]], axis=1)
        src = mx.nd.array(np.ascontiguousarray(img), dtype="uint8")
        if self.augment and len(bbox):
            return self._full(src, bbox)
        if self.augment:
            x, _ = self._plain(src, bbox)
        else:
            x = timage.imresize(src, self.size, self.size, interp=1)
            x = mx.nd.image.normalize(mx.nd.image.to_tensor(x), mean=self.mean, std=self.std)
            bbox = tbbox.resize(bbox, (w, h), (self.size, self.size))
        if not len(bbox):
            return (x, mx.nd.zeros((self.num_anchors,)), mx.nd.zeros((self.num_anchors, 4)))
        cls_t, box_t, _ = self._full._target_generator(
            self.anchors, None, mx.nd.array(bbox[None, :, :4]), mx.nd.array(bbox[None, :, 4:5]))
        return x, cls_t[0], box_t[0]


class _TransformedDataset:
    """A gluon-compatible dataset applying ``ZooTrainTransform`` to one of our datasets."""

    def __init__(self, ds, transform: ZooTrainTransform) -> None:
        self.ds, self.transform = ds, transform

    def __len__(self) -> int:
        return len(self.ds)

    def __getitem__(self, i: int):
        img, lab = self.ds[int(i)]
        return self.transform(img, lab)


class ZooTraining:
    """The architecture-specific half of a training run; ``ssd.training.train`` drives it.

    ``net`` and ``iters`` are read by the loop; ``epoch(e)`` yields batches; ``step(batch,
    trainer)`` runs forward, loss, backward and ``trainer.step`` and returns the numbers the loop
    accumulates: ``(samples, [loss·n, cls·n, box·n, correct, count], abs_err)``, where the loss is
    ``SSDMultiBoxLoss``'s batch value (normalized by the batch's positive anchors, as GluonCV
    prints it) and correct/count/abs_err give the same class error and box MAE as TinySSD's.
    """

    def __init__(self, cfg, classes: Sequence[str], train_ds, ctxs, emit: Callable[..., None],
                 resuming: bool = False) -> None:
        import mxnet as mx
        from gluoncv.loss import SSDMultiBoxLoss
        from mxnet import gluon

        self.cfg, self.ctxs, self.classes = cfg, list(ctxs), list(classes)
        if cfg.cls_loss != "ce" or cfg.sizes or cfg.ratios:
            emit("warning", message=f"{cfg.arch} uses GluonCV's SSDMultiBoxLoss and its preset anchors; "
                                    "--cls-loss/--box-loss/--sizes/--ratios apply to TinySSD only")
        self.net, anchors, self.info = create_for_training(cfg.arch, classes, cfg.pretrained, self.ctxs,
                                                           cfg.input_size, load_weights=not resuming)
        self.num_anchors = int(anchors.shape[1])
        self.transform = ZooTrainTransform(cfg.input_size, anchors, augment=cfg.augment)
        self.num_workers = default_num_workers()
        ds = _TransformedDataset(train_ds, self.transform)
        bs = min(cfg.batch_size, len(train_ds))
        from gluoncv.data.batchify import Stack, Tuple as BTuple
        self.loader = gluon.data.DataLoader(
            ds, bs, shuffle=True, batchify_fn=BTuple(Stack(), Stack(), Stack()),
            last_batch="rollover" if len(train_ds) >= cfg.batch_size else "keep",
            num_workers=self.num_workers)
        n_batches = len(self.loader)
        self.iters = n_batches if cfg.max_iters_per_epoch is None else min(n_batches, cfg.max_iters_per_epoch)
        self.loss = SSDMultiBoxLoss(negative_mining_ratio=cfg.hard_negative_ratio if cfg.hard_negative_ratio > 0 else 3)

    def epoch(self, epoch: int):
        """Batches of one epoch; the order and augmentation follow ``(seed, epoch)`` when no
        worker processes are used (workers draw from their own forked random state)."""
        np.random.seed((self.cfg.seed * 100003 + epoch) % (2 ** 32))
        self.net.hybridize(static_alloc=True, static_shape=True)  # also drops an inference graph
        self.net._ssd_mode = "train"
        return iter(self.loader)

    def step(self, batch, trainer) -> Tuple[int, np.ndarray, float]:
        from mxnet import autograd, gluon, nd

        data, cls_t, box_t = batch
        n = int(data.shape[0])
        xs = gluon.utils.split_and_load(data, self.ctxs, even_split=False)
        cts = gluon.utils.split_and_load(cls_t, self.ctxs, even_split=False)
        bts = gluon.utils.split_and_load(box_t, self.ctxs, even_split=False)
        with autograd.record():
            cps, bps = [], []
            for x in xs:
                cp, bp, _ = self.net(x)
                cps.append(cp)
                bps.append(bp)
            sum_loss, cls_loss, box_loss = self.loss(cps, bps, cts, bts)
            autograd.backward(sum_loss)
        trainer.step(1)  # SSDMultiBoxLoss already normalizes by the batch's positives
        vals = np.zeros(5)
        abs_err = 0.0
        for sl, cl, bl, cp, bp, ct, bt in zip(sum_loss, cls_loss, box_loss, cps, bps, cts, bts):
            mask = (ct > 0).expand_dims(-1)
            parts = (sl.sum(), cl.sum(), bl.sum(), (nd.argmax(cp, axis=-1) == ct).sum(), nd.ones_like(ct).sum(),
                     nd.mean(nd.abs((bt - bp.reshape(bt.shape)) * mask), axis=(1, 2)).sum())
            stats = nd.concat(*[v.reshape((1,)) for v in parts], dim=0).asnumpy()
            vals[:3] += stats[:3] * n
            vals[3:5] += stats[3:5]
            abs_err += float(stats[5])
        return n, vals, abs_err

    def meta_fields(self) -> Dict[str, Any]:
        """``anchors`` and ``zoo`` sections for meta.json."""
        return zoo_meta_fields(self.net, self.cfg.arch, self.cfg.input_size, self.info,
                               extra={"loss": "gluoncv SSDMultiBoxLoss (softmax CE, hard negatives "
                                              f"{self.loss._negative_mining_ratio:g}:1, smooth L1)",
                                      "transform": "gluoncv SSDDefaultTrainTransform" if self.cfg.augment
                                      else "resize only", "num_workers": self.num_workers})


def zoo_meta_fields(net, arch: str, input_size: int, info: Optional[Dict[str, Any]] = None,
                    extra: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    spec = spec_of(arch)
    info = dict(info or {})
    variant = info.get("variant", "custom")
    layers = zoo_anchor_info(net, input_size)
    zoo = {"variant": variant, "gluoncv_name": gluoncv_name(arch, variant), "base_network": spec.base_network,
           "base_size": spec.base_size, "sizes": list(spec.sizes[variant]),
           "ratios": [list(r) for r in spec.ratios], "steps": list(spec.steps),
           "pretrained": info.get("pretrained"), "published": dict(spec.published)}
    for k in ("weights", "reused_classes", "loaded", "skipped"):
        if k in info:
            zoo[k] = info[k] if k != "skipped" else len(info[k])
    zoo.update(extra or {})
    anchors = {"kind": "gluoncv", "per_scale": [l["count"] for l in layers],
               "total": int(sum(l["count"] for l in layers)),
               "feature_maps": [list(l["feature_hw"]) for l in layers],
               "anchors_per_cell": [l["anchors_per_cell"] for l in layers],
               "sizes_px": [l["sizes_px"] for l in layers], "ratios": [l["ratios"] for l in layers],
               "steps": [l["steps"] for l in layers]}
    return {"anchors": anchors, "zoo": zoo}


def new_zoo_model(arch: str, classes: Sequence[str], variant: str = "custom", input_size: Optional[int] = None,
                  ctx=None):
    """A freshly initialized zoo net and the meta.json fields that rebuild it (tests, benchmarks)."""
    from .transforms import MEAN, STD

    size = int(input_size or spec_of(arch).base_size)
    net = build_zoo_net(arch, classes, variant)
    initialize(net, [ctx] if ctx is not None else None, size)
    meta = {"arch": arch, "classes": list(classes), "input_size": size,
            "normalize": {"mean": list(MEAN), "std": list(STD)}}
    meta.update(zoo_meta_fields(net, arch, size, {"variant": variant}))
    return net, meta


def build_from_meta(meta: Dict[str, Any]):
    """Uninitialized net of a saved zoo model (``store.build_from_meta`` calls this)."""
    variant = (meta.get("zoo") or {}).get("variant", "custom")
    return build_zoo_net(meta["arch"], list(meta["classes"]), variant)


# ---------------------------------------------------------------------------------------------
# Inference decoding (ssd.detection.Detector calls these)
# ---------------------------------------------------------------------------------------------

def output_decoder(net, meta: Dict[str, Any]) -> Optional[Callable]:
    """``decode(net, x, nms, floor) -> [(ids, scores, boxes normalized)]`` for zoo models, else None.

    Live GluonCV nets apply NMS in their graph (``set_nms`` when the setting changes); exported
    graphs are saved without NMS so that it stays adjustable, and get the same ``box_nms`` here.
    """
    if not is_zoo_arch(meta.get("arch")):
        return None
    if meta.get("format") == "symbol":
        return decode_exported
    return decode_live


def prepare_inference(net, nms: float) -> None:
    """Make the next call of ``net`` a prediction with NMS ``nms`` (clears stale cached graphs)."""
    mode = getattr(net, "_ssd_mode", None)
    if mode == "train" and getattr(net, "_active", False):
        net.hybridize(static_alloc=True)  # training's graph was static_shape and train-mode
    if mode != ("infer", float(nms)):
        net.set_nms(nms_thresh=float(nms), nms_topk=NMS_TOPK, post_nms=POST_NMS)
        net._ssd_mode = ("infer", float(nms))


def decode_live(net, x, nms: float, floor: float):
    prepare_inference(net, nms)
    ids, scores, bboxes = net(x)
    return _collect(ids, scores, bboxes, x.shape[3], x.shape[2], floor)


def decode_exported(net, x, nms: float, floor: float):
    from mxnet import nd

    ids, scores, bboxes = net(x)
    res = nd.concat(ids, scores, bboxes, dim=-1)
    if 0 < nms < 1:
        res = nd.contrib.box_nms(res, overlap_thresh=float(nms), topk=NMS_TOPK, valid_thresh=SCORE_FLOOR,
                                 id_index=0, score_index=1, coord_start=2, force_suppress=False)
        res = res.slice_axis(axis=1, begin=0, end=POST_NMS)
    return _collect(res.slice_axis(axis=2, begin=0, end=1), res.slice_axis(axis=2, begin=1, end=2),
                    res.slice_axis(axis=2, begin=2, end=6), x.shape[3], x.shape[2], floor)


def _collect(ids, scores, bboxes, width: int, height: int, floor: float):
    ids, scores, bboxes = ids.asnumpy(), scores.asnumpy(), bboxes.asnumpy()
    scale = np.array([width, height, width, height], dtype=np.float32)
    out = []
    for i in range(ids.shape[0]):
        c, s, b = ids[i, :, 0], scores[i, :, 0], bboxes[i]
        keep = (c >= 0) & (s >= floor)
        c, s, b = c[keep], s[keep], np.clip(b[keep] / scale, 0.0, 1.0)
        order = np.argsort(-s, kind="stable")
        out.append((c[order].astype(np.int64), s[order].astype(np.float32), b[order].astype(np.float32)))
    return out


# ---------------------------------------------------------------------------------------------
# Anchors (the app's Anchors page)
# ---------------------------------------------------------------------------------------------

def _meta_key(meta_or_net) -> Optional[Tuple[str, str]]:
    """``(arch, variant)`` of a meta dict, or None for a network object."""
    if hasattr(meta_or_net, "anchor_generators"):
        return None
    meta = meta_or_net
    if not isinstance(meta, dict) or not is_zoo_arch(meta.get("arch")):
        raise SSDError(f"not a model-zoo SSD: arch {meta.get('arch') if isinstance(meta, dict) else meta!r}")
    return meta["arch"], (meta.get("zoo") or {}).get("variant", "custom")


def _size_of(meta_or_net, net, input_size: Optional[int]) -> int:
    if input_size:
        return int(input_size)
    if isinstance(meta_or_net, dict) and meta_or_net.get("input_size"):
        return int(meta_or_net["input_size"])
    return _base_size(net) if net is not None else spec_of(meta_or_net["arch"]).base_size


@functools.lru_cache(maxsize=32)
def _cached_layout(arch: str, variant: str, size: int):
    """Anchor layout of a saved model's architecture (no classes involved); built once per key,
    on a private network, so concurrent callers (Streamlit threads) never share a block."""
    net = build_zoo_net(arch, ["object"], variant)
    return _layout(net, size)


def _layout(net, size: int):
    info, parts = [], []
    for (h, w), ag in zip(_feature_shapes(net, size), net.anchor_generators):
        amap = _anchor_map(ag)
        d = int(ag.num_depth)
        cell = amap[0, 0, 0, 0].reshape(d, 4)
        step = float(amap[0, 0, 0, 1].reshape(d, 4)[0, 0] - cell[0, 0]) if amap.shape[3] > 1 else float(size)
        info.append({"feature_hw": (h, w), "sizes_px": [float(v) for v in ag._sizes],
                     "ratios": [float(r) for r in ag._ratios], "steps": step, "anchors_per_cell": d,
                     "count": int(h * w * d), "cell_wh_px": cell[:, 2:4].round(3).tolist()})
        a = amap[0, 0, :h, :w].reshape(-1, 4).astype(np.float64)
        if getattr(ag, "_clip", False):
            ih, iw = ag._im_size
            a = np.stack([a[:, 0].clip(0, iw), a[:, 1].clip(0, ih), a[:, 2].clip(0, iw), a[:, 3].clip(0, ih)], 1)
        parts.append(a)
    a = np.concatenate(parts)
    corners = np.stack([a[:, 0] - a[:, 2] / 2, a[:, 1] - a[:, 3] / 2,
                        a[:, 0] + a[:, 2] / 2, a[:, 1] + a[:, 3] / 2], 1) / float(size)
    return info, corners.astype(np.float32)


def _layout_of(meta_or_net, input_size: Optional[int]):
    key = _meta_key(meta_or_net)
    if key is None:
        return _layout(meta_or_net, _size_of(meta_or_net, meta_or_net, input_size))
    return _cached_layout(key[0], key[1], _size_of(meta_or_net, None, input_size))


def _feature_shapes(net, size: int) -> List[Tuple[int, int]]:
    import mxnet as mx

    with _quiet():
        feats = net.features(mx.sym.var("data"))
        group = mx.sym.Group(list(feats)) if isinstance(feats, (list, tuple)) else feats
        try:
            _, outs, _ = group.infer_shape(data=(1, 3, size, size))
        except Exception as err:
            from .errors import error_gist
            raise SSDError(f"input size {size} is too small for this network ({error_gist(err)})") from None
    return [(int(o[2]), int(o[3])) for o in outs]


def _anchor_map(ag) -> np.ndarray:
    """The generator's precomputed (1, 1, A, A, 4·d) centre-format pixel anchors."""
    p = ag.anchors
    if p._data is not None:
        return p.data().asnumpy()  # loaded weights win over the build-time value
    v = p.value
    return v.asnumpy() if hasattr(v, "asnumpy") else np.asarray(v)


def zoo_anchor_info(meta_or_net, input_size: Optional[int] = None) -> List[Dict[str, Any]]:
    """Per output layer: ``feature_hw``, ``sizes_px`` (GluonCV's two square sizes: s_k and
    √(s_k·s_k+1)), ``ratios`` (extra shapes at s_k), ``steps`` (px between cell centres),
    ``anchors_per_cell``, ``count``; plus ``cell_wh_px``, the (w, h) of one cell's anchors.

    ``meta_or_net``: a model's meta dict (``arch``, optional ``zoo.variant`` and ``input_size``)
    or a GluonCV SSD network. No forward pass: feature shapes come from symbolic shape
    inference, anchors from the generators' constant maps (what the forward pass slices).
    """
    info, _ = _layout_of(meta_or_net, input_size)
    return [dict(layer) for layer in info]


def zoo_anchors(meta_or_net, input_size: Optional[int] = None) -> np.ndarray:
    """All anchors ``(N, 4)`` as normalized corners, in the order of the network's outputs
    (GluonCV does not clip them: corners may fall outside [0, 1])."""
    _, corners = _layout_of(meta_or_net, input_size)
    return corners.copy()
