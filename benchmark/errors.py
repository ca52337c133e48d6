"""The one base of every error cordbench raises on purpose.

A ``CordbenchError`` is a user-facing problem (bad input, missing data, a refused model): the CLI prints its
message, which names the file and what is wrong, and exits with code 2, without a traceback unless
``--debug`` is given. Anything else that escapes is a bug and keeps its traceback.

Each stage's error keeps its own name and also derives from the builtin it replaced (``ValueError`` or
``RuntimeError``), so existing ``except ValueError`` code keeps working.
"""

from __future__ import annotations


class CordbenchError(Exception):
    """Base of every error cordbench raises on purpose; its message names the file and the problem."""

    exit_code: int = 2
