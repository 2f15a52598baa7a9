"""GluonCV model-zoo SSDs, one concept a module (presets, build, weights, finetune, anchors, training, decode, metadata, recipe)."""
