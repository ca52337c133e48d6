"""Submissions and the adapters that run them: manifests, packaging, nnU-Net prediction, and the sandbox
that runs untrusted (command and python) submissions."""
