"""Small SVG pictures, drawn server-side (no JavaScript, no CDN): sparklines and the
prerequisite graph coloured by mastery. Every label is escaped."""

from __future__ import annotations

from html import escape

from ..curriculum import Curriculum


def colour(m: float, mastered: bool) -> str:
    if mastered:
        return "#2e9d5b"
    if m <= 0:
        return "#d9dde3"
    # red (low) -> amber -> yellow-green (close to the bar)
    stops = [(0.0, (214, 69, 65)), (0.5, (235, 160, 52)), (0.8, (176, 196, 66))]
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if m <= b:
            t = (m - a) / (b - a)
            r, g, bl = (round(x + (y - x) * t) for x, y in zip(ca, cb))
            return f"#{r:02x}{g:02x}{bl:02x}"
    return "#b0c442"


def sparkline(values: list[float], width: int = 120, height: int = 24, bar: float = 0.8) -> str:
    if not values:
        return (f'<svg class="spark" width="{width}" height="{height}" role="img" '
                'aria-label="no history"></svg>')
    n = len(values)
    xs = [2 + (width - 4) * (i / max(n - 1, 1)) for i in range(n)]
    ys = [height - 2 - (height - 4) * v for v in values]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    yb = height - 2 - (height - 4) * bar
    return (f'<svg class="spark" width="{width}" height="{height}" role="img" '
            f'aria-label="mastery history, last {values[-1]:.2f}">'
            f'<line x1="0" x2="{width}" y1="{yb:.1f}" y2="{yb:.1f}" class="bar"/>'
            f'<polyline points="{pts}" fill="none"/>'
            f'<circle cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}" r="2.2"/></svg>')


def prereq_graph(cur: Curriculum, concepts: dict[str, dict], href: str = "concepts/") -> str:
    """Concepts as boxes, one column per module, one row per concept; arrows from
    prerequisites; each box coloured by mastery and linking to its concept page."""
    col_w, row_h, box_w, box_h = 170, 34, 150, 24
    pos = {}
    for ci, m in enumerate(cur.modules):
        for ri, cid in enumerate(m.concepts):
            pos[cid] = (10 + ci * col_w, 40 + ri * row_h)
    width = 20 + len(cur.modules) * col_w
    height = 60 + max(len(m.concepts) for m in cur.modules) * row_h
    parts = [f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="prerequisite graph">',
             '<defs><marker id="arr" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" '
             'markerHeight="6" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z"/></marker></defs>']
    for ci, m in enumerate(cur.modules):
        parts.append(f'<text class="mod" x="{10 + ci * col_w}" y="20">{escape(m.title[:24])}</text>')
    for cid, c in cur.concepts.items():
        x2, y2 = pos[cid]
        for p in c.prerequisites:
            x1, y1 = pos[p]
            if x1 == x2:  # same module: a curve on the left side of the column
                ya, yb = y1 + box_h / 2, y2 + box_h / 2
                parts.append(f'<path class="edge" d="M{x1},{ya} C{x1 - 18},{ya} {x2 - 18},{yb} '
                             f'{x2},{yb}" marker-end="url(#arr)"/>')
            else:
                parts.append(f'<line class="edge" x1="{x1 + box_w}" y1="{y1 + box_h / 2}" '
                             f'x2="{x2}" y2="{y2 + box_h / 2}" marker-end="url(#arr)"/>')
    for cid, c in cur.concepts.items():
        x, y = pos[cid]
        st = concepts[cid]
        fill = colour(st["mastery"], st["mastered"])
        parts.append(f'<a href="{href}{escape(cid)}.html"><g class="node">'
                     f'<title>{escape(c.title)}: mastery {st["mastery"]:.2f}</title>'
                     f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="5" fill="{fill}"/>'
                     f'<text x="{x + 6}" y="{y + 16}">{escape(c.title[:22])}</text></g></a>')
    parts.append("</svg>")
    return "".join(parts)
