"""Small server-side SVG charts (bars and lines) for the measures page: no chart library, no
script, nothing fetched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final
from xml.sax.saxutils import escape

# One colour per series, in order (the stylesheet's palette).
PALETTE: Final = ("#1f6feb", "#d29922", "#8250df", "#2da44e", "#cf222e", "#57606a")


def _number(value: float) -> str:
    return f"{value:g}" if value == int(value) else f"{value:.1f}"


def bar_chart(
    title: str, bars: Sequence[tuple[str, float | None]], *, unit: str = "", maximum: float = 0
) -> str:
    """Horizontal bars, one per (label, value); a None value is drawn as "no value"."""
    label_w, bar_w, row_h = 260, 300, 24
    width, height = label_w + bar_w + 90, 30 + row_h * max(1, len(bars))
    top = max([maximum, *(v for _, v in bars if v is not None)]) or 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart bars" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text class="chart-title" x="0" y="16">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(bars):
        y = 26 + i * row_h
        out.append(f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end">{escape(label)}</text>')
        if value is None:
            out.append(f'<text x="{label_w}" y="{y + 15}" class="none">no value yet</text>')
            continue
        length = round(bar_w * value / top)
        colour = PALETTE[i % len(PALETTE)]
        out.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{length}" height="{row_h - 8}" '
            f'fill="{colour}"/><text x="{label_w + length + 6}" y="{y + 15}">'
            f"{_number(value)}{escape(unit)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def line_chart(title: str, series: Sequence[tuple[str, Sequence[float]]], *, unit: str = "") -> str:
    """Lines over equally spaced samples (oldest first), one per (name, values), with a legend."""
    width, height, left, right, top, bottom = 680, 220, 48, 200, 28, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    samples = max((len(values) for _, values in series), default=0)
    peak = max((v for _, values in series for v in values), default=0.0) or 1.0
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart lines" role="img" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}"><title>{escape(title)}</title>',
        f'<text class="chart-title" x="0" y="16">{escape(title)}</text>',
        f'<line class="axis" x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" '
        f'y2="{top + plot_h}"/><line class="axis" x1="{left}" y1="{top}" x2="{left}" '
        f'y2="{top + plot_h}"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">'
        f"{_number(peak)}{escape(unit)}</text>",
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    if samples < 2:
        out.append(
            f'<text class="none" x="{left + 10}" y="{top + plot_h // 2}">'
            "collecting samples: the line appears after the next refresh</text>"
        )
    for i, (name, values) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        step = plot_w / max(1, samples - 1)
        points = " ".join(
            f"{left + step * j:.1f},{top + plot_h - plot_h * v / peak:.1f}"
            for j, v in enumerate(values)
        )
        if len(values) >= 2:
            out.append(f'<polyline fill="none" stroke="{colour}" points="{points}"/>')
        last = _number(values[-1]) if values else "-"
        y = top + 14 + 18 * i
        out.append(
            f'<rect x="{left + plot_w + 12}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 28}" y="{y}">{escape(name)}: {last}{escape(unit)}</text>'
        )
    out.append("</svg>")
    return "".join(out)
