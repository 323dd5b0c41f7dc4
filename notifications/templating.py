"""The one Jinja2 environment for message templates: HTML autoescaped (titles are user text)."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

#: Characters WeCom markdown gives a meaning to, and the full-width forms user text shows instead
#: (a title with "[", "*" or "<font" must not break the message or restyle it).
MARKDOWN_SAFE = str.maketrans({
    "[": "【", "]": "】", "(": "（", ")": "）", "*": "＊", "_": "＿", "`": "｀", "#": "＃",
    "<": "＜", ">": "＞", "~": "～", "|": "｜", "\\": "＼", "\n": " ", "\r": " "})


def markdown_text(value: object) -> str:
    """User text made inert in WeCom markdown: what it says, never how it is laid out."""
    return str(value).translate(MARKDOWN_SAFE)


TEMPLATES = Environment(
    loader=PackageLoader("notifications", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
TEMPLATES.filters["md"] = markdown_text
