"""GluonCV's SSD presets as we copy them: our table equals GluonCV's own presets (an entry GluonCV
does not publish equals the one it derives from, but for its backbone), a new preset is one entry,
and the anchor counts per layer match a forward pass. Builds only, offline, nothing downloaded."""
from __future__ import annotations

import numpy as np
import pytest

from ssd.base.errors import SSDError
from ssd.models.gluoncv import anchors as gcv_anchors, build as gcv_build, presets as gcv_presets
from ssd.models.gluoncv import recipe as gcv_recipe

pytestmark = pytest.mark.filterwarnings("ignore:Cannot decide type")


@pytest.fixture(autouse=True)
def _own_store(monkeypatch, tmp_path):
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "mxnet_home"))


@pytest.mark.parametrize("arch", gcv_presets.ZOO_ARCHS)
def test_presets_match_gluoncv_and_build_offline(arch):
    """Our preset table equals GluonCV's: same anchor maps for custom/voc/coco, same parameters.

    An entry GluonCV does not publish (``ssd_512_resnet50_v1b``) must name the preset it copies
    (``derived_from``) and equals that one in everything but the backbone, which is GluonCV's own
    ``base_network`` with the same feature-map sizes (so the same anchors at any input size)."""
    from gluoncv.model_zoo import get_model, get_model_list

    spec = gcv_presets.spec_of(arch)
    published = gcv_presets.gluoncv_name(arch, "custom") in get_model_list()
    reference = arch if published else spec.derived_from
    assert reference and (published or gcv_presets.gluoncv_name(reference, "custom") in get_model_list()), \
        f"{arch} is neither a GluonCV preset nor derived from one"
    for variant in gcv_presets.VARIANTS:
        kw = {"classes": ["a", "b"]} if variant == "custom" else {}
        theirs = get_model(gcv_presets.gluoncv_name(reference, variant), pretrained=False, pretrained_base=False, **kw)
        ours = gcv_build.build_zoo_net(arch, theirs.classes, variant)
        mine, their_names = sorted(ours._collect_params_with_prefix()), sorted(theirs._collect_params_with_prefix())
        if published:
            assert mine == their_names
        else:
            assert _without_backbone(mine) == _without_backbone(their_names)
            assert _backbone(mine) == sorted("features." + p.name for k, p in get_model(
                spec.base_network, pretrained=False)._collect_params_with_prefix().items() if not k.startswith("fc."))
        for a, b in zip(ours.anchor_generators, theirs.anchor_generators):
            np.testing.assert_allclose(gcv_anchors._anchor_map(a), gcv_anchors._anchor_map(b))
    if not published:
        ours_fwd = gcv_build.initialize(ours, input_size=96)
        theirs_fwd = gcv_build.initialize(theirs, input_size=96)
        np.testing.assert_allclose(ours_fwd.asnumpy(), theirs_fwd.asnumpy())


def _backbone(names):
    """Parameters of the base network inside an SSD's ``features`` (not its extra ``expand_`` layers)."""
    return [n for n in names if n.startswith("features.") and not n.startswith("features.expand_")]


def _without_backbone(names):
    return [n for n in names if n not in set(_backbone(names))]


def test_a_new_gluoncv_ssd_is_one_preset_entry(monkeypatch):
    """Adding ``ssd_512_vgg16_atrous`` is one ``ZooSpec`` in ``ZOO_SPECS``: the registry, the native input
    size, the anchors (GluonCV's own maps), the build, meta.json, the pullable catalogue and a Detector follow."""
    from gluoncv.model_zoo import get_model

    from ssd.inference.detector import Detector
    from ssd.models import registry
    from ssd.models.pretrained import pretrained_detector

    sizes = (51.2, 76.8, 153.6, 230.4, 307.2, 384.0, 460.8, 537.6)
    spec = gcv_presets.ZooSpec(
        "ssd_512_vgg16_atrous", "vgg16_atrous", 512, "vgg16_atrous_512", None, {v: sizes for v in gcv_presets.VARIANTS},
        ((1.0, 2.0, 0.5),) + ((1.0, 2.0, 0.5, 3.0, 1.0 / 3),) * 4 + ((1.0, 2.0, 0.5),) * 2,
        (8, 16, 32, 64, 128, 256, 512), 512, {"voc": gcv_presets.Published(109.0, 79.4, 1.2)})
    monkeypatch.setitem(gcv_presets.ZOO_SPECS, spec.arch, spec)
    monkeypatch.setattr(registry, "_RECIPES", {})          # the registry as a fresh process builds it

    recipe = registry.recipe_for("ssd_512_vgg16_atrous")
    assert recipe.native_size == 512 and "ssd_512_vgg16_atrous" in registry.architectures()
    assert pretrained_detector("ssd_512_vgg16_atrous_voc").published == 79.4
    theirs = get_model("ssd_512_vgg16_atrous_custom", classes=["a", "b"], pretrained=False, pretrained_base=False)
    net, meta = gcv_recipe.new_zoo_model("ssd_512_vgg16_atrous", ["a", "b"])
    assert sorted(net._collect_params_with_prefix()) == sorted(theirs._collect_params_with_prefix())
    for a, b in zip(net.anchor_generators, theirs.anchor_generators):
        np.testing.assert_allclose(gcv_anchors._anchor_map(a), gcv_anchors._anchor_map(b))
    assert registry.anchors_for_meta(meta).total() == meta["anchors"]["total"] == 24564
    assert meta["zoo"]["published"] == {"voc_map": 79.4}
    rebuilt = registry.build_from_meta(meta)
    assert sorted(rebuilt._collect_params_with_prefix()) == sorted(net._collect_params_with_prefix())
    from PIL import Image

    raw = Detector(net, meta).detect(Image.new("RGB", (96, 64), (90, 120, 60)), floor=0.0)
    assert len(raw) > 0 and raw.image_size == (96, 64) and set(np.unique(raw.class_ids)) <= {0, 1}


def test_native_anchor_counts_and_info_match_a_forward_pass():
    info = gcv_anchors.zoo_anchor_info({"arch": "ssd_300_vgg16_atrous", "classes": ["x"], "input_size": 300})
    assert [l["feature_hw"] for l in info] == [(38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1)]
    assert sum(l["count"] for l in info) == 8732  # SSD300's published prior count
    assert [l["steps"] for l in info] == [8, 16, 32, 64, 100, 300]
    assert sum(l["count"] for l in gcv_anchors.zoo_anchor_info({"arch": "ssd_512_mobilenet1.0", "classes": ["x"],
                                                        "input_size": 512})) == 6132
    net = gcv_build.build_zoo_net("ssd_512_mobilenet1.0", ["a"])
    fwd = gcv_build.initialize(net, input_size=128)[0].asnumpy()   # (N, 4) cx, cy, w, h in pixels
    corners = np.concatenate([fwd[:, :2] - fwd[:, 2:] / 2, fwd[:, :2] + fwd[:, 2:] / 2], 1) / 128
    ours = gcv_anchors.zoo_anchors(net, 128)
    assert ours.shape == corners.shape == (sum(l["count"] for l in gcv_anchors.zoo_anchor_info(net, 128)), 4)
    np.testing.assert_allclose(ours, corners, atol=1e-5)
    info = gcv_anchors.zoo_anchor_info(net, 128)[0]
    assert info["sizes_px"][0] == pytest.approx(51.2) and info["anchors_per_cell"] == 4
    assert set(info) >= {"feature_hw", "sizes_px", "ratios", "steps", "anchors_per_cell", "count"}
    with pytest.raises(SSDError, match="too small"):
        gcv_anchors.zoo_anchor_info({"arch": "ssd_300_vgg16_atrous", "classes": ["x"]}, 128)




def test_the_class_lists_are_gluoncvs_own():
    """The pretrained detectors' class names are constants (listing them imports no GluonCV); they must be
    exactly GluonCV's dataset lists, in order, or a pulled head's outputs would be named wrongly."""
    from gluoncv.data import COCODetection, VOCDetection

    from ssd.models.gluoncv.presets import dataset_classes

    assert dataset_classes("coco") == list(COCODetection.CLASSES)
    assert dataset_classes("voc") == list(VOCDetection.CLASSES)
    with pytest.raises(SSDError, match="voc or coco"):
        dataset_classes("imagenet")
