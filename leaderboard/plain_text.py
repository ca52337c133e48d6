"""Text from results files and manifests (submission names, descriptions, authors, dataset ids, file paths,
error messages quoting them) shown as plain text: never interpreted as Markdown or HTML.

A submission named ``![x](https://tracker.example/pixel.png)`` would otherwise make every viewer's browser
fetch that image; ``<a href=...>`` in a Plotly title would become a link.
"""

from __future__ import annotations

import html
import re

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$&])")


def markdown_literal(text: object) -> str:
    """``text`` escaped for st.markdown/caption/info/warning: every Markdown and HTML metacharacter is
    backslash-escaped and line breaks become spaces, so it renders as exactly these characters."""
    flat = " ".join(str(text).splitlines())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat)


def html_literal(text: object) -> str:
    """``text`` for places that render an HTML subset (Plotly titles and hover labels)."""
    return html.escape(str(text), quote=True)
