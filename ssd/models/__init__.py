"""Models: anchors, targets, losses, the recipe interface, the registry, TinySSD and the GluonCV SSDs."""
