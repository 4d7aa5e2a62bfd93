"""Inline SVG for the site: mastery bars, sparklines, history charts, the prerequisite graph.

Pure functions of plain data returning `Markup`. Every piece of text is escaped here;
colours come from CSS classes (`lv0`..`lv5`), never from inline styles, so the pages
work under a content security policy without 'unsafe-inline'.
"""

from __future__ import annotations

from markupsafe import Markup, escape


def level(mastery: float, observed: bool = True, mastered: bool = False) -> int:
    """A colour bucket: 0 untouched, 1..4 by mastery, 5 mastered."""
    if mastered:
        return 5
    if not observed:
        return 0
    if mastery < 0.4:
        return 1
    if mastery < 0.6:
        return 2
    if mastery < 0.8:
        return 3
    return 4


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if x % 1 else str(int(x))


def bar(mastery: float, lv: int, threshold: float = 0.8, label: str = "") -> Markup:
    """A horizontal mastery bar with a tick at the mastery threshold."""
    w = max(0.0, min(1.0, mastery)) * 100
    t = threshold * 100
    return Markup(
        f'<svg class="bar" viewBox="0 0 100 8" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label or f"mastery {mastery:.2f}")}">'
        f'<rect class="track" x="0" y="0" width="100" height="8" rx="2"/>'
        f'<rect class="fill lv{lv}" x="0" y="0" width="{_f(w)}" height="8" rx="2"/>'
        f'<line class="tick" x1="{_f(t)}" x2="{_f(t)}" y1="0" y2="8"/></svg>')


def sparkline(values: list[float], threshold: float = 0.8, width: int = 120,
              height: int = 28, label: str = "") -> Markup:
    """Mastery after each observation, 0..1 bottom to top, with the threshold dashed."""
    pad = 3
    ih = height - 2 * pad

    def y(v: float) -> float:
        return pad + (1 - max(0.0, min(1.0, v))) * ih

    parts = [f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(label or "mastery history")}">',
             f'<line class="bar-line" x1="0" x2="{width}" y1="{_f(y(threshold))}" '
             f'y2="{_f(y(threshold))}"/>']
    if not values:
        parts.append(f'<line class="empty" x1="0" x2="{width}" y1="{_f(y(0))}" y2="{_f(y(0))}"/>')
    elif len(values) == 1:
        parts.append(f'<circle class="pt" cx="{width / 2:.1f}" cy="{y(values[0]):.1f}" r="2.5"/>')
    else:
        step = (width - 2 * pad) / (len(values) - 1)
        pts = " ".join(f"{pad + i * step:.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(f'<polyline class="line" points="{pts}"/>')
        parts.append(f'<circle class="pt" cx="{pad + (len(values) - 1) * step:.1f}" '
                     f'cy="{y(values[-1]):.1f}" r="2.5"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def history_chart(history: list[dict], threshold: float = 0.8, width: int = 680,
                  height: int = 220) -> Markup:
    """Mastery (line), observation quality (dots) and the skill estimate's credible
    interval (band, with its mean dashed) per observation, with the threshold."""
    left, right, top, bottom = 36, 12, 10, 28
    iw, ih = width - left - right, height - top - bottom

    def y(v: float) -> float:
        return top + (1 - v) * ih

    n = len(history)

    def x(i: int) -> float:
        return left + (iw / 2 if n == 1 else i * iw / max(n - 1, 1))

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="mastery history: {n} observations">']
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(v):.1f}" '
                   f'y2="{y(v):.1f}"/><text class="axis" x="{left - 6}" y="{y(v) + 4:.1f}" '
                   f'text-anchor="end">{v:g}</text>')
    out.append(f'<line class="bar-line" x1="{left}" x2="{width - right}" y1="{y(threshold):.1f}" '
               f'y2="{y(threshold):.1f}"/><text class="axis bar-label" x="{width - right}" '
               f'y="{y(threshold) - 4:.1f}" text-anchor="end">mastery bar {threshold:g}</text>')
    band = [h for h in history if h.get("skill_low") is not None]
    if n and len(band) == n:
        upper = [f"{x(i):.1f},{y(h['skill_high']):.1f}" for i, h in enumerate(history)]
        lower = [f"{x(i):.1f},{y(h['skill_low']):.1f}" for i, h in enumerate(history)]
        if n == 1:  # a band needs width: a short vertical bar
            out.append(f'<line class="band-bar" x1="{x(0):.1f}" x2="{x(0):.1f}" '
                       f'y1="{y(history[0]["skill_high"]):.1f}" y2="{y(history[0]["skill_low"]):.1f}"/>')
        else:
            out.append(f'<polygon class="band" points="{" ".join(upper + lower[::-1])}">'
                       "<title>skill estimate: credible interval</title></polygon>")
            out.append('<polyline class="skill" points="'
                       + " ".join(f"{x(i):.1f},{y(h['skill']):.1f}" for i, h in enumerate(history))
                       + '"/>')
    if n:
        if n > 1:
            pts = " ".join(f"{x(i):.1f},{y(h['mastery']):.1f}" for i, h in enumerate(history))
            out.append(f'<polyline class="line" points="{pts}"/>')
        for i, h in enumerate(history):
            skill = (f", skill {h['skill']:.2f} [{h['skill_low']:.2f}, {h['skill_high']:.2f}]"
                     if h.get("skill_low") is not None else "")
            tip = escape(f"{h['ts'][:16].replace('T', ' ')} ({h['event']}): quality "
                         f"{h['quality']:g}, mastery {h['mastery']:.3f}{skill}")
            out.append(f'<circle class="q" cx="{x(i):.1f}" cy="{y(h["quality"]):.1f}" r="3.5">'
                       f'<title>{tip}</title></circle>')
            out.append(f'<circle class="pt" cx="{x(i):.1f}" cy="{y(h["mastery"]):.1f}" r="2.5">'
                       f'<title>{tip}</title></circle>')
        out.append(f'<text class="axis" x="{left}" y="{height - 8}">'
                   f'{escape(history[0]["ts"][:10])}</text>')
        if n > 1:
            out.append(f'<text class="axis" x="{width - right}" y="{height - 8}" '
                       f'text-anchor="end">{escape(history[-1]["ts"][:10])}</text>')
    else:
        out.append(f'<text class="axis" x="{left + iw / 2:.0f}" y="{top + ih / 2:.0f}" '
                   'text-anchor="middle">no observations yet</text>')
    out.append("</svg>")
    return Markup("".join(out))


def calibration(series: dict[str, list[dict]], size: int = 320) -> Markup:
    """A reliability diagram: per bin, the mean predicted quality against the mean observed
    one, one polyline per series (name -> bins of `modelcheck.prequential`); the diagonal is
    perfect calibration. Point area grows with the bin's count."""
    pad = 36
    inner = size - 2 * pad

    def xy(pr: float, ob: float) -> tuple[float, float]:
        return pad + pr * inner, size - pad - ob * inner

    total = sum(b["n"] for bins in series.values() for b in bins) or 1
    out = [f'<svg class="chart calib" viewBox="0 0 {size} {size}" role="img" '
           'aria-label="calibration: predicted against observed quality">',
           f'<line class="grid" x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}"/>']
    for v in (0, 0.5, 1):
        x, y = xy(v, v)
        out.append(f'<text class="axis" x="{x:.1f}" y="{size - pad + 14}" '
                   f'text-anchor="middle">{v:g}</text><text class="axis" x="{pad - 6}" '
                   f'y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    out.append(f'<text class="axis" x="{size / 2:.0f}" y="{size - 6}" text-anchor="middle">'
               'predicted</text>')
    out.append(f'<text class="axis" x="10" y="{pad - 14}">observed</text>')
    for k, (name, bins) in enumerate(series.items()):
        pts = [(xy(b["predicted"], b["observed"]), b) for b in bins if b["n"]]
        if len(pts) > 1:
            out.append(f'<polyline class="cal s{k}" points="'
                       + " ".join(f"{x:.1f},{y:.1f}" for (x, y), _ in pts) + '"/>')
        for (x, y), b in pts:
            r = 2.5 + 6 * (b["n"] / total) ** 0.5
            tip = escape(f"{name}, bin {b['bin']}: predicted {b['predicted']:.2f}, observed "
                         f"{b['observed']:.2f}, n = {b['n']}")
            out.append(f'<circle class="cal-pt s{k}" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}">'
                       f"<title>{tip}</title></circle>")
    out.append("</svg>")
    return Markup("".join(out))


def activity(days: list[tuple[str, int]], cell: int = 12, gap: int = 3) -> Markup:
    """Events per day as a strip of squares, oldest first (a week per column)."""
    cols = (len(days) + 6) // 7
    w, h = cols * (cell + gap), 7 * (cell + gap)
    top = max((c for _, c in days), default=0) or 1
    out = [f'<svg class="activity" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
           f'aria-label="events per day">']
    for i, (day, count) in enumerate(days):
        k = 0 if count == 0 else 1 + min(3, int(3 * count / top))
        out.append(f'<rect class="a{k}" x="{(i // 7) * (cell + gap)}" y="{(i % 7) * (cell + gap)}" '
                   f'width="{cell}" height="{cell}" rx="2"><title>{escape(day)}: {count} '
                   f'event{"s" if count != 1 else ""}</title></rect>')
    out.append("</svg>")
    return Markup("".join(out))


# ---------------------------------------------------------------- the prerequisite graph

NODE_W, NODE_H, COL_GAP, ROW_GAP, PAD, HEAD = 146, 26, 22, 8, 8, 40


def layout(concepts: list[dict]) -> dict[str, tuple[float, float]]:
    """One column per module (in module order); inside a column, concepts ordered by their
    prerequisite depth within the module, then by curriculum order. Prerequisites in
    earlier modules sit in columns to the left, prerequisites in the same module above."""
    by_id = {c["id"]: c for c in concepts}
    cols = {m: i for i, m in enumerate(sorted({c["module_order"] for c in concepts}))}
    depth: dict[str, int] = {}

    def d(cid: str) -> int:
        if cid not in depth:
            depth[cid] = 0  # the curriculum is acyclic (validated); this guards recursion
            mo = by_id[cid]["module_order"]
            depth[cid] = 1 + max((d(p) for p in by_id[cid]["prerequisites"]
                                  if p in by_id and by_id[p]["module_order"] == mo), default=-1)
        return depth[cid]

    columns: dict[int, list[tuple[int, int, str]]] = {}
    for i, c in enumerate(concepts):
        columns.setdefault(cols[c["module_order"]], []).append((d(c["id"]), i, c["id"]))
    xy = {}
    for ci, items in columns.items():
        for row, (_, _, cid) in enumerate(sorted(items)):
            xy[cid] = (PAD + ci * (NODE_W + COL_GAP), HEAD + row * (NODE_H + ROW_GAP))
    return xy


def _short(s: str, n: int = 21) -> str:
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def graph(concepts: list[dict], href: str = "concepts/") -> Markup:
    """The prerequisite graph. `concepts`: id, title, module_title, module_order,
    prerequisites, mastery, level, mastered, stale, gap, current (in the current module)."""
    if not concepts:
        return Markup("")
    xy = layout(concepts)
    by_id = {c["id"]: c for c in concepts}
    w = max(x for x, _ in xy.values()) + NODE_W + PAD + COL_GAP
    h = max(y for _, y in xy.values()) + NODE_H + PAD
    out = [f'<svg class="graph" viewBox="0 0 {w:.0f} {h:.0f}" role="img" '
           f'aria-label="prerequisite graph of {len(concepts)} concepts">', '<g class="heads">']
    seen_cols = {}
    for c in concepts:
        x = xy[c["id"]][0]
        if x not in seen_cols:
            seen_cols[x] = c
            cls = "mhead current" if c.get("current") else "mhead"
            out.append(f'<text class="{cls}" x="{x + 2:.0f}" y="{HEAD - 14}">'
                       f'<title>{escape(c["module_title"])}</title>{c["module_order"]}. '
                       f'{escape(_short(c["module_title"], 20))}</text>')
    out.append('</g><g class="edges">')
    for c in concepts:
        x2, y2 = xy[c["id"]]
        y2m = y2 + NODE_H / 2
        for p in c["prerequisites"]:
            if p not in xy:
                continue
            x1, y1 = xy[p]
            y1m = y1 + NODE_H / 2
            cls = "edge ok" if by_id[p]["mastered"] else "edge"
            if x1 == x2:  # same module: a loop on the right-hand side of the column
                k = NODE_W + min(COL_GAP - 4, 6 + 2 * abs(y2 - y1) / (NODE_H + ROW_GAP))
                d = (f"M{x1 + NODE_W:.0f},{y1m:.0f} C{x1 + k:.0f},{y1m:.0f} "
                     f"{x2 + k:.0f},{y2m:.0f} {x2 + NODE_W:.0f},{y2m:.0f}")
            else:
                a, b = (x1 + NODE_W, x2) if x1 < x2 else (x1, x2 + NODE_W)
                mx = (a + b) / 2
                d = f"M{a:.0f},{y1m:.0f} C{mx:.0f},{y1m:.0f} {mx:.0f},{y2m:.0f} {b:.0f},{y2m:.0f}"
            out.append(f'<path class="{cls}" d="{d}"><title>{escape(p)} → '
                       f'{escape(c["id"])}</title></path>')
    out.append('</g><g class="nodes">')
    for c in concepts:
        x, y = xy[c["id"]]
        cls = ["node", f"lv{c['level']}"]
        for flag in ("stale", "gap", "current"):
            if c.get(flag):
                cls.append(flag)
        tip = (f"{c['title']} ({c['id']}), module {c['module_title']}: mastery "
               f"{c['mastery']:.2f}" + (", mastered" if c["mastered"] else "")
               + (", stale" if c.get("stale") else "")
               + (", prerequisite gap" if c.get("gap") else ""))
        label = _short(c["title"]) + (" ✓" if c["mastered"] else "")
        out.append(
            f'<a href="{escape(href + c["id"])}.html" class="{" ".join(cls)}" '
            f'data-concept="{escape(c["id"])}"><title>{escape(tip)}</title>'
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{NODE_W}" height="{NODE_H}" rx="5"/>'
            f'<rect class="mfill" x="{x:.0f}" y="{y + NODE_H - 4:.0f}" '
            f'width="{NODE_W * max(0.0, min(1.0, c["mastery"])):.0f}" height="4" rx="1"/>'
            f'<text x="{x + 7:.0f}" y="{y + NODE_H / 2 + 3:.0f}">{escape(label)}</text></a>')
    out.append("</g></svg>")
    return Markup("".join(out))
