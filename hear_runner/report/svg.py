"""SVG primitives for the report: shapes, text, scales and ticks, as strings.

Inline SVG inside HTML5 needs no namespace declaration, so nothing here names
a URL: the page opens with no network. Every piece of text is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

# Okabe and Ito's palette: distinguishable with the common colour-vision deficiencies.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#d55e00",
    "#cc79a7",
    "#56b4e9",
    "#f0e442",
    "#000000",
)
FONT = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif"


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def text_width(text: str, size: float = 12.0) -> float:
    """A generous estimate of rendered width (no font metrics here)."""
    return len(text) * size * 0.6


def fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if math.isfinite(value) else str(value)


def _attrs(attrs: dict[str, object]) -> str:
    parts = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        if isinstance(value, float):
            value = f"{value:.2f}".rstrip("0").rstrip(".")
        parts.append(f'{name}="{escape(str(value))}"')
    return " ".join(parts)


class Svg:
    """An SVG element built piece by piece; :meth:`render` returns its markup."""

    def __init__(self, width: float, height: float, label: str, **attrs: object) -> None:
        self.width, self.height = width, height
        self.label = label
        self.attrs = attrs
        self.parts: list[str] = []

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def element(self, tag: str, tooltip: str | None = None, **attrs: object) -> None:
        inner = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        self.parts.append(f"<{tag} {_attrs(attrs)}>{inner}</{tag}>")

    def rect(
        self, x: float, y: float, w: float, h: float, tooltip: str | None = None, **attrs: object
    ) -> None:
        self.element("rect", tooltip, x=x, y=y, width=max(w, 0.0), height=max(h, 0.0), **attrs)

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: object) -> None:
        attrs.setdefault("stroke", "#444")
        self.element("line", None, x1=x1, y1=y1, x2=x2, y2=y2, **attrs)

    def circle(
        self, cx: float, cy: float, r: float, tooltip: str | None = None, **attrs: object
    ) -> None:
        self.element("circle", tooltip, cx=cx, cy=cy, r=r, **attrs)

    def polyline(self, points: Sequence[tuple[float, float]], **attrs: object) -> None:
        attrs.setdefault("fill", "none")
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.element("polyline", None, points=coords, **attrs)

    def text(
        self,
        x: float,
        y: float,
        content: str,
        size: float = 12.0,
        anchor: str = "start",
        tooltip: str | None = None,
        **attrs: object,
    ) -> None:
        inner = f"<title>{escape(tooltip)}</title>" if tooltip else ""
        attrs = {"font_size": size, "text_anchor": anchor, "fill": "#222", **attrs}
        self.parts.append(
            f"<text {_attrs({'x': x, 'y': y, **attrs})}>{inner}{escape(content)}</text>"
        )

    def render(self) -> str:
        attrs = _attrs(
            {
                "width": self.width,
                "height": self.height,
                "viewBox": f"0 0 {self.width:.0f} {self.height:.0f}",
                "role": "img",
                "aria_label": self.label,
                "style": FONT,
                **self.attrs,
            }
        )
        return f"<svg {attrs}><title>{escape(self.label)}</title>{''.join(self.parts)}</svg>"


class Linear:
    """Maps a value domain onto pixels."""

    def __init__(self, domain: tuple[float, float], pixels: tuple[float, float]) -> None:
        lo, hi = domain
        if hi <= lo:
            lo, hi = lo - 0.5, hi + 0.5
        self.domain, self.pixels = (lo, hi), pixels

    def __call__(self, value: float) -> float:
        (lo, hi), (a, b) = self.domain, self.pixels
        value = min(max(value, lo), hi)
        return a + (value - lo) / (hi - lo) * (b - a)

    def ticks(self, count: int = 5) -> list[float]:
        return nice_ticks(*self.domain, count)


class Log(Linear):
    """A base-10 logarithmic scale (positive values only)."""

    def __init__(self, domain: tuple[float, float], pixels: tuple[float, float]) -> None:
        lo, hi = domain
        lo = 10 ** math.floor(math.log10(lo))
        hi = 10 ** math.ceil(math.log10(hi))
        if hi <= lo:
            hi = lo * 10
        super().__init__((lo, hi), pixels)

    def __call__(self, value: float) -> float:
        (lo, hi), (a, b) = self.domain, self.pixels
        value = min(max(value, lo), hi)
        return a + (math.log10(value) - math.log10(lo)) / (math.log10(hi / lo)) * (b - a)

    def ticks(self, count: int = 5) -> list[float]:
        lo, hi = self.domain
        decades = range(round(math.log10(lo)), round(math.log10(hi)) + 1)
        steps = (1, 2, 5) if len(decades) <= 3 else (1,)
        return [m * 10.0**e for e in decades for m in steps if m * 10.0**e <= hi * (1 + 1e-9)]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        ticks.append(round(k * step, 12))
        k += 1
    return ticks


def tick_label(value: float) -> str:
    if value >= 1000 and math.log10(value).is_integer():
        return f"10^{round(math.log10(value))}" if value >= 1e5 else f"{value:,.0f}"
    return fmt(value) if abs(value) >= 0.01 or value == 0 else f"{value:.0e}"


def x_axis(svg: Svg, scale: Linear, y: float, top: float, title: str, grid: bool = True) -> None:
    """A horizontal axis at ``y`` with ticks, light grid lines up to ``top``, and a title."""
    a, b = scale.pixels
    svg.line(a, y, b, y, stroke="#666")
    for tick in scale.ticks():
        x = scale(tick)
        if grid:
            svg.line(x, top, x, y, stroke="#e4e4e4")
        svg.line(x, y, x, y + 4, stroke="#666")
        svg.text(x, y + 16, tick_label(tick), size=10, anchor="middle", fill="#555")
    svg.text((a + b) / 2, y + 32, title, size=11, anchor="middle", fill="#333")


def y_axis(svg: Svg, scale: Linear, x: float, right: float, title: str) -> None:
    """A vertical axis at ``x`` with ticks, grid lines across to ``right``, and a title."""
    a, b = scale.pixels
    svg.line(x, a, x, b, stroke="#666")
    for tick in scale.ticks():
        y = scale(tick)
        svg.line(x, y, right, y, stroke="#e4e4e4")
        svg.line(x - 4, y, x, y, stroke="#666")
        svg.text(x - 6, y + 3.5, tick_label(tick), size=10, anchor="end", fill="#555")
    mid = (a + b) / 2
    svg.text(
        x - 40,
        mid,
        title,
        size=11,
        anchor="middle",
        fill="#333",
        transform=f"rotate(-90 {x - 40:.1f} {mid:.1f})",
    )


def blend(low: str, high: str, t: float) -> str:
    """The colour ``t`` (0..1) of the way from ``low`` to ``high`` (#rrggbb)."""
    t = min(max(t, 0.0), 1.0)
    a = [int(low[i : i + 2], 16) for i in (1, 3, 5)]
    b = [int(high[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(a, b, strict=True))
