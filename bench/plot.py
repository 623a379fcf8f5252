"""A small SVG of bench.fleet's sweep: restart time and reconciliation CPU against the number of
groups, with the bars of SPEC §9. No plotting library: a few lines and labels written by hand.

    python -m bench.plot results.json [--out docs/bench-fleet.svg]
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path
from typing import Any

W, H = 360, 240  # one panel
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 36
COLOURS = {"bot": "#1f6feb", "seed": "#d1242f", "sqlite": "#2da44e", "ready": "#8c959f", "bar": "#9a6700",
           "bare": "#8250df"}


def _nice_top(value: float) -> float:
    for step in (1, 2, 5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100, 150, 200, 250, 300, 400, 500, 1000):
        if value <= step:
            return float(step)
    return float(value)


def panel(x0: int, title: str, xs: list[int], series: list[tuple[str, str, list[float]]], bar: float,
          unit: str) -> list[str]:
    """One chart: lines of (label, colour, values) over xs, a dashed line at the bar."""
    top = _nice_top(max([bar, *(v for _, _, vals in series for v in vals)]) * 1.1)
    x_max = max(xs)
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM

    def px(x: float) -> float:
        return x0 + LEFT + pw * x / x_max

    def py(y: float) -> float:
        return TOP + ph * (1 - y / top)

    out = [f'<text x="{x0 + W / 2}" y="16" text-anchor="middle" font-weight="bold">{escape(title)}</text>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(x_max)}" y2="{py(0)}" stroke="#57606a"/>',
           f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(0)}" y2="{py(top)}" stroke="#57606a"/>']
    for i in range(5):
        y = top * i / 4
        out.append(f'<text x="{px(0) - 4}" y="{py(y) + 4}" text-anchor="end">{y:g}</text>')
    for x in xs:
        out.append(f'<text x="{px(x)}" y="{py(0) + 14}" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{x0 + LEFT + pw / 2}" y="{H - 6}" text-anchor="middle">groups</text>')
    out.append(f'<text x="{x0 + 10}" y="{TOP + ph / 2}" transform="rotate(-90 {x0 + 10} {TOP + ph / 2})" '
               f'text-anchor="middle">{escape(unit)}</text>')
    out.append(f'<line x1="{px(0)}" y1="{py(bar)}" x2="{px(x_max)}" y2="{py(bar)}" stroke="{COLOURS["bar"]}" '
               f'stroke-dasharray="4 3"/>')
    out.append(f'<text x="{px(x_max * 0.55)}" y="{py(bar) - 4}" text-anchor="middle" fill="{COLOURS["bar"]}">bar {bar:g}</text>')
    for n, (label, colour, values) in enumerate(series):
        points = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in zip(xs, values))
        out.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"/>')
        out += [f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3" fill="{colour}"/>' for x, v in zip(xs, values)]
        out.append(f'<text x="{px(0) + 6}" y="{TOP + 12 + 13 * n}" fill="{colour}">{escape(label)}</text>')
    return out


def floor(rows: list[dict[str, Any]], key: str, label: str) -> list[tuple[str, str, list[float]]]:
    """bench.bare's line, where the sweep measured it."""
    return [(label, COLOURS["bare"], [r[key] for r in rows])] if all(key in r for r in rows) else []


def svg(result: dict[str, Any]) -> str:
    rows = sorted(result["summary"], key=lambda r: r["groups"])
    xs = [r["groups"] for r in rows]
    parts = panel(0, "Restart", xs, [
        ("every group ran its first cycle", COLOURS["bot"], [r["restart_all_groups_first_cycle_s"] for r in rows]),
        ("every group loaded", COLOURS["ready"], [r["restart_all_groups_ready_s"] for r in rows]),
        *floor(rows, "bare_start_s", "bare actors started (the floor)"),
    ], 10, "seconds")
    parts += panel(W, "Reconciliation CPU", xs, [
        ("bot", COLOURS["bot"], [r["bot_cpu_percent_of_core"] for r in rows]),
        ("seed", COLOURS["seed"], [r["seed_cpu_percent_of_core"] for r in rows]),
        ("SQLite", COLOURS["sqlite"], [r["sqlite_cpu_percent_of_core"] for r in rows]),
        *floor(rows, "bare_cpu_percent_of_core", "bare actors (the floor)"),
    ], 5, "% of one core")
    caption = f"bench.fleet, {result['date']}, {result['machine']}; medians of {rows[0]['runs']} run(s)"
    body = "\n".join(parts)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * W}" height="{H + 18}" '
            f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
            f'{body}\n<text x="{W}" y="{H + 12}" text-anchor="middle" fill="#57606a">{escape(caption)}</text>\n</svg>\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="the JSON file bench.fleet --out wrote")
    parser.add_argument("--out", default="docs/bench-fleet.svg")
    args = parser.parse_args()
    Path(args.out).write_text(svg(json.loads(Path(args.results).read_text())))
    print(args.out)


if __name__ == "__main__":
    main()
