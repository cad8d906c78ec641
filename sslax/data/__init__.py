"""Data: sources, the deterministic host pipeline, on-device augmentation."""
