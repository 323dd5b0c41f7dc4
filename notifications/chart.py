"""The digest's progress chart: a PNG drawn with matplotlib (Agg), and its text fallback.

Chinese labels need a CJK font. One is looked for through matplotlib's font manager (Noto Sans
CJK, Source Han Sans, WenQuanYi, SimHei, ...). When none is installed the chart is drawn with
numbers and ASCII labels only, never with glyphs the font lacks (they would show as boxes), and
a log line says so once per process.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

log = logging.getLogger("rectiflow.chart")

#: Font family names tried in order; the first installed one is used.
CJK_FAMILIES = (
    "Noto Sans CJK SC", "Noto Sans SC", "Noto Serif CJK SC", "Source Han Sans SC",
    "Source Han Sans CN", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei",
    "Microsoft YaHei", "PingFang SC", "Heiti SC", "Sarasa Gothic SC", "AR PL UMing CN",
)

_lock = threading.Lock()


@dataclass(frozen=True)
class Bar:
    """One row of the chart: a label and its measures split by result."""

    label: str
    finished: int
    long_term: int
    open: int
    overdue: int

    @property
    def total(self) -> int:
        return self.finished + self.long_term + self.open + self.overdue


@dataclass(frozen=True)
class Chart:
    png: bytes
    cjk: bool          # drawn with Chinese labels
    alt: str           # one-line description for the HTML alt text


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """The path of an installed CJK font, or None."""
    from matplotlib import font_manager

    by_name = {f.name: f.fname for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in by_name:
            return by_name[family]
    for entry in font_manager.fontManager.ttflist:
        lowered = entry.name.lower()
        if any(word in lowered for word in ("cjk", "han sans", "wenquanyi", "hei", "ming")):
            return entry.fname
    # matplotlib's font list is cached on first use: fonts installed since are found on disk
    for path in sorted(font_manager.findSystemFonts(), key=lambda p: ("regular" not in p.lower(), p)):
        lowered = path.lower()
        if any(word in lowered for word in ("notosanscjk", "notoserifcjk", "wqy", "sourcehan")):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue
            return path
    log.warning("no CJK font found by matplotlib: the progress chart is drawn with ASCII "
                "labels only (install fonts-noto-cjk or fonts-wqy-microhei for Chinese labels)")
    return None


SEGMENTS = (("finished", "已完成", "done", "#2e7d32"), ("long_term", "长期坚持", "long-term", "#66bb6a"),
            ("open", "推进中", "open", "#90a4ae"), ("overdue", "逾期", "overdue", "#c62828"))


def text_bars(bars: Sequence[Bar], width: int = 20) -> list[str]:
    """The chart as text lines, for the plain-text part and for readers without images."""
    lines = []
    for bar in bars:
        done = bar.finished + bar.long_term
        filled = round(width * done / bar.total) if bar.total else 0
        share = f"{done * 100 / bar.total:.0f}%" if bar.total else "—"
        lines.append(f"{'█' * filled}{'░' * (width - filled)} {share:>4} "
                     f"{done}/{bar.total} {bar.label}")
    return lines


#: The chart is drawn for a phone: shown at most ``WIDTH_PX`` CSS pixels wide (a 390 px
#: screen less the mail's margins), drawn at twice that for sharp text, with each row's label
#: on its own line above its bar so a long 方面 keeps the bar's full width. At 360 px the
#: labels are ``FONT_PT`` points at ``DPI`` scaled by WIDTH_PX / (WIDTH_IN * DPI): 14 px.
WIDTH_PX = 360
WIDTH_IN = 3.6
DPI = 200
FONT_PT = 10
ROW_IN = 0.52
#: The longest label drawn in full, leaving room for the figures on the same line.
LABEL_CHARS = 13


def progress_chart(bars: Sequence[Bar], title: str = "整改进展") -> Chart:
    """A horizontal stacked bar per row (e.g. per 方面): done, long-term, open, overdue; the
    row's label above its bar, its figures at the bar's end."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import font_manager
    from matplotlib.figure import Figure

    font_path = find_cjk_font()
    cjk = font_path is not None
    prop = font_manager.FontProperties(fname=font_path, size=FONT_PT) if font_path else None
    small = font_manager.FontProperties(fname=font_path, size=FONT_PT - 1) if font_path else None
    shown = list(bars)[:15]
    labels = [b.label if cjk else f"#{i + 1}" for i, b in enumerate(shown)]
    labels = [label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"
              for label in labels]
    height = 1.25 + ROW_IN * max(len(shown), 1)
    peak = max([b.total for b in shown] + [1])
    with _lock:  # matplotlib's font cache is not thread-safe
        figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI)
        axes = figure.add_axes((0.03, 0.6 / height, 0.94, 1 - 1.05 / height))
        left = [0] * len(shown)
        for key, zh, en, colour in SEGMENTS:
            values = [getattr(b, key) for b in shown]
            axes.barh([i + 0.18 for i in range(len(shown))], values, left=left, color=colour,
                      label=zh if cjk else en, height=0.36)
            left = [a + v for a, v in zip(left, values, strict=True)]
        for i, (b, label) in enumerate(zip(shown, labels, strict=True)):
            done = b.finished + b.long_term
            share = f"{done * 100 / b.total:.0f}%" if b.total else "-"
            axes.text(0, i - 0.1, label, va="bottom", ha="left", fontproperties=prop,
                      fontsize=FONT_PT)
            figures = f"{done}/{b.total} {share}" + (f"  逾期 {b.overdue}" if b.overdue and cjk
                                                      else f"  late {b.overdue}" if b.overdue
                                                      else "")
            axes.text(peak * 1.0, i - 0.1, figures, va="bottom", ha="right",
                      fontproperties=prop, fontsize=FONT_PT,
                      color="#c62828" if b.overdue else "#202124")
        axes.set_ylim(len(shown) - 0.5, -0.75)
        axes.set_xlim(0, peak)
        axes.axis("off")
        legend = figure.legend(loc="lower center", ncol=4, fontsize=FONT_PT - 1, frameon=False,
                               prop=small, handlelength=1, columnspacing=1,
                               bbox_to_anchor=(0.5, 0.0))
        if small is not None:
            for text in legend.get_texts():
                text.set_fontproperties(small)
        figure.suptitle(title if cjk else "Progress", fontproperties=prop, fontsize=FONT_PT + 1,
                        x=0.03, ha="left", y=1 - 0.12 / height, va="top")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    alt = "；".join(f"{b.label} {b.finished + b.long_term}/{b.total}" for b in shown)
    return Chart(buffer.getvalue(), cjk, f"{title}：{alt}")


def legend_note(chart: Chart, bars: Sequence[Bar]) -> list[str]:
    """When the chart has ASCII labels: which number is which row, in Chinese, beside it."""
    if chart.cjk:
        return []
    return [f"#{i + 1} {b.label}" for i, b in enumerate(bars[:15])]
