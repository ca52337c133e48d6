"""Seals: an HMAC saying "cordbench wrote this, in this workspace", for what it reads back from its own caches.

A prediction cache lives in the submission's folder (``predictions/``), which its author controls: a submission
can ship a cache entry (a record naming the ground truth, a mask copied from it, an exported network) that looks
exactly like one cordbench wrote. A checksum stored next to the entry proves nothing, since whoever wrote the entry
wrote the checksum too. A seal is an HMAC-SHA256 keyed with a secret that only cordbench reads: the workspace's
``work/.seal-key`` (32 random bytes, created on first use, mode 0600), which no submission sees (the sandbox does
not bind the workspace). Without a workspace the key is random per process, so caches are reused within one run
only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from functools import lru_cache
from pathlib import Path

KEY_NAME = ".seal-key"
KEY_BYTES = 32
_PROCESS_KEY = secrets.token_bytes(KEY_BYTES)


@lru_cache(maxsize=8)
def _workspace_key(path: str) -> bytes:
    key_path = Path(path)
    for _attempt in range(50):
        try:
            key = key_path.read_bytes()
        except FileNotFoundError:
            key_path.parent.mkdir(parents=True, exist_ok=True)
            try:  # O_EXCL: of two processes creating it at once, one writes the key and both read it
                descriptor = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                continue
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(secrets.token_bytes(KEY_BYTES))
            continue
        if key:  # empty: another process created it and has not written it yet
            return key
        time.sleep(0.01)
    raise OSError(f"{key_path}: the seal key stays empty")


def _key() -> bytes:
    from benchmark import workspace

    active = workspace.active()
    if active is None:
        return _PROCESS_KEY
    try:
        return _workspace_key(str(active.work_dir / KEY_NAME))
    except OSError:  # a read-only workspace: nothing can be cached there anyway
        return _PROCESS_KEY


def seal(*parts: str) -> str:
    """The seal of ``parts`` (joined unambiguously) under this workspace's key."""
    message = "\0".join(parts).encode("utf-8")
    return hmac.new(_key(), message, hashlib.sha256).hexdigest()


def is_sealed(value: object, *parts: str) -> bool:
    """Whether ``value`` is the seal of ``parts`` (constant-time comparison; anything else is False)."""
    return isinstance(value, str) and hmac.compare_digest(value, seal(*parts))
