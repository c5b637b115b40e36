"""The identifier graph of one record: a deterministic radial layout (pure, no database).

The record is at the centre; its identifiers sit on an inner ring; the records they correlate
with — and, for hits the viewer may not see, one node per authority holding them — sit on an
outer ring. Edges run from the centre to each identifier ("own") and from an identifier to
each place it correlates with, styled by strength (``match``, ``weak``, ``mismatch``) or
``withheld``.

Layout rules, chosen so the picture is stable between two views of the same data:

* identifiers keep their given order, evenly spread clockwise from the top;
* an outer node wants the circular mean of the angles of the identifiers linking to it; the
  wanted angles are swept in order and pushed apart to the minimum spacing, and if the sweep
  cannot close the circle the nodes are spread evenly in the same order instead;
* ring radii grow with the number of nodes so that no two circles on a ring overlap;
* at most :data:`MAX_IDENTIFIERS` identifiers (those with links first) and
  :data:`MAX_OUTER` outer nodes (the most linked, then the strongest) are drawn; the graph
  says how many there were.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

MAX_IDENTIFIERS: Final = 60
MAX_OUTER: Final = 100
CENTRE_R: Final = 18.0
NODE_R: Final = 9.0
GAP: Final = 10.0  # at least this much free space between two circles on a ring
INNER_MIN: Final = 130.0
RING_STEP: Final = 150.0
MARGIN: Final = 170.0  # room for the labels outside the outer ring
LABEL_MAX: Final = 28
_STRENGTH_RANK: Final = {"match": 0, "weak": 1, "mismatch": 2}
_TOP: Final = -math.pi / 2


@dataclass(frozen=True)
class Link:
    """One place an identifier also appears: a record the viewer may open, or an authority."""

    target: str  # key of the outer node: "request:<id>", "set:<id>", "authority:<id>"
    label: str  # the record's label, or the authority's name when withheld
    url: str | None
    withheld: bool = False
    strength: str = "match"  # match | weak | mismatch
    relation: str = "same"  # same | related | network | prefix ("" when withheld)


@dataclass(frozen=True)
class Item:
    """One identifier of the centre record, with where else it appears."""

    key: str
    kind: str
    label: str
    suppressed: bool = False  # on a warning list or over the correlation limit
    links: tuple[Link, ...] = ()


@dataclass(frozen=True)
class Node:
    key: str
    role: str  # centre | identifier | record | withheld
    label: str
    url: str | None
    x: float
    y: float
    r: float
    label_x: float
    label_y: float
    anchor: str  # SVG text-anchor of the label: start | middle | end
    kind: str = ""  # the identifier type, for identifier nodes
    suppressed: bool = False

    @property
    def short(self) -> str:
        """The label cut to fit the drawing (the full one goes in the node's <title>)."""
        return self.label if len(self.label) <= LABEL_MAX else self.label[: LABEL_MAX - 1] + "…"


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    strength: str  # own | match | weak | mismatch | withheld
    relation: str
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    size: float  # the drawing is size x size, the centre at (size/2, size/2)
    identifiers_total: int
    outer_total: int

    @property
    def identifiers_shown(self) -> int:
        return sum(1 for n in self.nodes if n.role == "identifier")

    @property
    def outer_shown(self) -> int:
        return sum(1 for n in self.nodes if n.role in ("record", "withheld"))

    @property
    def capped(self) -> bool:
        return (
            self.identifiers_shown < self.identifiers_total or self.outer_shown < self.outer_total
        )

    def node(self, key: str) -> Node:
        for n in self.nodes:
            if n.key == key:
                return n
        raise KeyError(key)

    def nodes_by_role(self, role: str) -> list[Node]:
        return [n for n in self.nodes if n.role == role]

    @property
    def links(self) -> list[Edge]:
        """The edges between an identifier and another record or authority (not "own")."""
        return [e for e in self.edges if e.strength != "own"]


def ring_radius(count: int, node_r: float = NODE_R, gap: float = GAP) -> float:
    """The smallest radius on which ``count`` evenly spread circles do not touch."""
    if count < 2:
        return 0.0
    chord = 2 * node_r + gap
    return chord / (2 * math.sin(math.pi / count))


def _r(value: float) -> float:
    return round(value, 1)


def _normalise(angle: float) -> float:
    """An angle in [-pi/2, 3pi/2): clockwise from the top of the drawing."""
    return (angle - _TOP) % (2 * math.pi) + _TOP


def _circular_mean(angles: Sequence[float]) -> float:
    s = sum(math.sin(a) for a in angles)
    c = sum(math.cos(a) for a in angles)
    if abs(s) < 1e-9 and abs(c) < 1e-9:
        return _normalise(angles[0])
    return _normalise(math.atan2(s, c))


def spread(wanted: Sequence[float], min_step: float) -> list[float]:
    """Angles as close to ``wanted`` (sorted ascending) as possible, ``min_step`` apart.

    A forward sweep pushes each angle past its predecessor; when the last one comes closer
    than ``min_step`` to the first one around the circle, the angles are spread evenly in
    the same order instead, starting from the first wanted angle.
    """
    count = len(wanted)
    if count == 0:
        return []
    if count * min_step > 2 * math.pi:
        raise ValueError("the ring is too small for these nodes")
    placed = [wanted[0]]
    for angle in wanted[1:]:
        placed.append(max(angle, placed[-1] + min_step))
    if count > 1 and placed[-1] - placed[0] > 2 * math.pi - min_step:
        step = 2 * math.pi / count
        placed = [wanted[0] + i * step for i in range(count)]
    return placed


def _label_at(cx: float, cy: float, radius: float, angle: float) -> tuple[float, float, str]:
    lx = cx + radius * math.cos(angle)
    ly = cy + radius * math.sin(angle) + 4
    cos = math.cos(angle)
    anchor = "start" if cos > 0.2 else "end" if cos < -0.2 else "middle"
    if anchor == "middle":
        ly += 8 if math.sin(angle) > 0 else -4
    return _r(lx), _r(ly), anchor


def _choose_items(items: Sequence[Item], limit: int) -> list[Item]:
    if len(items) <= limit:
        return list(items)
    order = sorted(range(len(items)), key=lambda i: (0 if items[i].links else 1, i))
    keep = sorted(order[:limit])
    return [items[i] for i in keep]


@dataclass
class _Outer:
    key: str
    label: str
    url: str | None
    withheld: bool
    links: int = 0
    best: int = 3


def _outer_nodes(items: Iterable[Item]) -> dict[str, _Outer]:
    found: dict[str, _Outer] = {}
    for item in items:
        for link in item.links:
            outer = found.get(link.target)
            if outer is None:
                outer = found[link.target] = _Outer(
                    link.target, link.label, link.url, link.withheld
                )
            outer.links += 1
            rank = 1 if link.withheld else _STRENGTH_RANK.get(link.strength, 2)
            outer.best = min(outer.best, rank)
    return found


def layout(
    centre_key: str,
    centre_label: str,
    centre_url: str | None,
    items: Sequence[Item],
    *,
    max_identifiers: int = MAX_IDENTIFIERS,
    max_outer: int = MAX_OUTER,
) -> Graph:
    """Place the centre record, its identifiers and what they correlate with."""
    every_outer = _outer_nodes(items)
    chosen = _choose_items(items, max_identifiers)
    candidates = _outer_nodes(chosen)
    ranked = sorted(candidates.values(), key=lambda o: (-o.links, o.best, o.key))
    kept = {o.key: o for o in ranked[:max_outer]}

    n_inner, n_outer = len(chosen), len(kept)
    r1 = max(INNER_MIN, ring_radius(n_inner) + NODE_R)
    r2 = max(r1 + RING_STEP, ring_radius(n_outer) * 1.25) if n_outer else r1
    size = _r(2 * (r2 + MARGIN))
    cx = cy = size / 2

    nodes: list[Node] = [
        Node(
            centre_key,
            "centre",
            centre_label,
            centre_url,
            _r(cx),
            _r(cy),
            CENTRE_R,
            _r(cx),
            _r(cy + CENTRE_R + 16),
            "middle",
        )
    ]
    edges: list[Edge] = []
    angles: dict[str, float] = {}
    for i, item in enumerate(chosen):
        angle = _TOP + 2 * math.pi * i / n_inner
        angles[item.key] = angle
        x, y = cx + r1 * math.cos(angle), cy + r1 * math.sin(angle)
        lx, ly, anchor = _label_at(cx, cy, r1 + NODE_R + 6, angle)
        if anchor == "middle":  # at the top or bottom: beside the node, clear of the edges
            lx, ly, anchor = _r(x + NODE_R + 4), _r(y + 4), "start"
        nodes.append(
            Node(
                item.key,
                "identifier",
                item.label,
                None,
                _r(x),
                _r(y),
                NODE_R,
                lx,
                ly,
                anchor,
                kind=item.kind,
                suppressed=item.suppressed,
            )
        )
        edges.append(Edge(centre_key, item.key, "own", "", _r(cx), _r(cy), _r(x), _r(y)))

    wanted: list[tuple[float, str]] = []
    for key in kept:
        linked = [angles[item.key] for item in chosen if any(k.target == key for k in item.links)]
        wanted.append((_circular_mean(linked), key))
    wanted.sort()
    if wanted:
        chord = 2 * NODE_R + GAP
        min_step = 2 * math.asin(min(1.0, chord / (2 * r2)))
        placed = spread([a for a, _ in wanted], min_step)
    else:
        placed = []
    positions: dict[str, tuple[float, float]] = {}
    for angle, (_, key) in zip(placed, wanted, strict=True):
        outer = kept[key]
        x, y = cx + r2 * math.cos(angle), cy + r2 * math.sin(angle)
        positions[key] = (_r(x), _r(y))
        lx, ly, anchor = _label_at(cx, cy, r2 + NODE_R + 6, angle)
        nodes.append(
            Node(
                key,
                "withheld" if outer.withheld else "record",
                outer.label,
                outer.url,
                _r(x),
                _r(y),
                NODE_R,
                lx,
                ly,
                anchor,
            )
        )
    by_key = {n.key: n for n in nodes}
    for item in chosen:
        source = by_key[item.key]
        for link in item.links:
            if link.target not in positions:
                continue
            x2, y2 = positions[link.target]
            edges.append(
                Edge(
                    item.key,
                    link.target,
                    "withheld" if link.withheld else link.strength,
                    "" if link.withheld else link.relation,
                    source.x,
                    source.y,
                    x2,
                    y2,
                )
            )
    return Graph(tuple(nodes), tuple(edges), size, len(items), len(every_outer))
