"""The shipped model's INT8 files, as the library knows them: trust anchored in code, not in the folder.

``models/tiny-pikachu`` ships INT8 graphs for both engines (``python -m ssd quantize`` on the
development machine). A folder whose files have exactly these sha256 digests is the shipped model:
its INT8 graphs run without the check against the weights (``ssd.inference.int8_trust``), which would
cost the default model's first detection an MXNet import and a conversion (~2 s against ~0.3 s).
tests/test_int8_trust.py proves the ONNX INT8 graph recorded here against these weights, and that
these digests are the files in ``models/tiny-pikachu``. When the shipped model is rebuilt, update
the digests (``sha256sum models/tiny-pikachu/*``) and that test says whether the new graph holds.
"""
from __future__ import annotations

from typing import Dict

_SHARED = {
    "model.params": "9036af5afee2b94a9926feb04fbecc9d541be1bc93e3ca71b4ca4196d2aaca88",
    "meta.json": "64d7e2da0891466d6cfb99c7a44748d2210f0da143cdb4b65b10307f95883ac8",
}

#: folder name -> engine -> file -> sha256: the files each engine's INT8 verdict rests on.
SHIPPED: Dict[str, Dict[str, Dict[str, str]]] = {
    "tiny-pikachu": {
        "onnxruntime": {
            "model-int8.onnx": "703bc2f52ee62bb90d671c1b9330c1266b4a870949399065eadeceddab8ccf47",
            **_SHARED,
        },
        "mxnet": {
            "int8-symbol.json": "62f6fb3e392b5683545e536cf7a3d3d0c0b13572fc4faf59ca5c4b233516d635",
            "int8-0000.params": "f53541cc8e08f4b3a3c94e721ece7d29a788d4051c93688d43e82e79ef96ba24",
            "int8.json": "30d39abf0814f2f338c98fbf785aa237c7d7a624996ed809f0397bd89b93aa8e",
            **_SHARED,
        },
    },
}
