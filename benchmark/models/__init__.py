"""Submissions and the adapters that run them: manifests, packaging, nnU-Net prediction."""
