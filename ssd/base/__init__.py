"""Base layer: errors, atomic writes, device selection and box geometry; imports nothing of SSD."""
