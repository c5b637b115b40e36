"""The identifier graph's layout: deterministic, no overlap on a ring, capped, linked right."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossborder.selectors import graph
from crossborder.selectors.graph import Item, Link, Node, layout


def record(n: int, strength: str = "match", relation: str = "same") -> Link:
    return Link(
        f"request:r{n}", f"REF-{n} — case {n}", f"/requests/r{n}", False, strength, relation
    )


def held(authority: int) -> Link:
    return Link(f"authority:{authority}", f"Authority {authority}", None, True, "", "")


def item(n: int, *links: Link, suppressed: bool = False) -> Item:
    return Item(f"identifier-{n}", "ip", f"103.27.12.{n}", suppressed, tuple(links))


def distance(a: Node, b: Node) -> float:
    return math.hypot(a.x - b.x, a.y - b.y)


def assert_no_overlap(nodes: list[Node]) -> None:
    for a, b in itertools.combinations(nodes, 2):
        assert distance(a, b) >= a.r + b.r, (a.key, b.key)


def radius(g: graph.Graph, node: Node) -> float:
    return math.hypot(node.x - g.size / 2, node.y - g.size / 2)


SCENE = [
    item(1, record(1), held(7)),
    item(2, record(1), record(2, "weak")),
    item(3, record(3, "mismatch")),
    item(4, suppressed=True),
    item(5, held(7), held(9)),
]


def test_the_centre_its_identifiers_and_what_they_link_to() -> None:
    g = layout("request:me", "VN-1 — my case", "/requests/me", SCENE)
    centre = g.node("request:me")
    assert (centre.role, centre.x, centre.y) == ("centre", g.size / 2, g.size / 2)
    assert [n.key for n in g.nodes_by_role("identifier")] == [i.key for i in SCENE]
    assert {n.key for n in g.nodes_by_role("record")} == {"request:r1", "request:r2", "request:r3"}
    assert {n.key for n in g.nodes_by_role("withheld")} == {"authority:7", "authority:9"}
    assert g.node("authority:7").label == "Authority 7"
    assert g.node("request:r1").url == "/requests/r1"
    own = [e for e in g.edges if e.strength == "own"]
    assert {e.target for e in own} == {i.key for i in SCENE}
    assert sorted((e.source, e.target, e.strength) for e in g.links) == [
        ("identifier-1", "authority:7", "withheld"),
        ("identifier-1", "request:r1", "match"),
        ("identifier-2", "request:r1", "match"),
        ("identifier-2", "request:r2", "weak"),
        ("identifier-3", "request:r3", "mismatch"),
        ("identifier-5", "authority:7", "withheld"),
        ("identifier-5", "authority:9", "withheld"),
    ]
    assert g.node("identifier-4").suppressed
    assert not g.capped
    # Each edge starts and ends on its nodes.
    for e in g.edges:
        source, target = g.node(e.source), g.node(e.target)
        assert (e.x1, e.y1, e.x2, e.y2) == (source.x, source.y, target.x, target.y)


def test_the_layout_is_deterministic() -> None:
    first = layout("set:s", "Set", None, SCENE)
    again = layout("set:s", "Set", None, list(SCENE))
    assert first == again


def test_identifiers_sit_on_one_ring_clockwise_from_the_top() -> None:
    g = layout("set:s", "Set", None, SCENE)
    inner = g.nodes_by_role("identifier")
    radii = {round(radius(g, n), 0) for n in inner}
    assert len(radii) == 1
    top = inner[0]
    assert top.x == g.size / 2
    assert top.y < g.size / 2
    assert inner[1].x > g.size / 2  # then clockwise (to the right)


def test_outer_nodes_are_further_out_and_near_their_identifiers() -> None:
    g = layout("set:s", "Set", None, SCENE)
    inner_r = radius(g, g.nodes_by_role("identifier")[0])
    for n in g.nodes_by_role("record") + g.nodes_by_role("withheld"):
        assert radius(g, n) > inner_r + 2 * graph.NODE_R
    # A record linked to one identifier only lies in that identifier's direction.
    lone, its_identifier = g.node("request:r3"), g.node("identifier-3")
    centre = g.size / 2
    angle_a = math.atan2(lone.y - centre, lone.x - centre)
    angle_b = math.atan2(its_identifier.y - centre, its_identifier.x - centre)
    assert abs(math.remainder(angle_a - angle_b, 2 * math.pi)) < 0.2


@pytest.mark.parametrize("count", [1, 2, 3, 10, 60])
def test_no_two_nodes_overlap(count: int) -> None:
    items = [item(i, record(i % 7), held(i % 3)) for i in range(count)]
    g = layout("set:s", "Set", None, items)
    assert_no_overlap(list(g.nodes))


def test_many_outer_nodes_wanting_one_spot_are_spread_without_overlap() -> None:
    # One identifier seen in 100 records: they all want the same angle.
    g = layout("set:s", "Set", None, [item(1, *(record(i) for i in range(100)))])
    outer = g.nodes_by_role("record")
    assert len(outer) == 100
    assert_no_overlap(outer)
    assert len({round(radius(g, n), 0) for n in outer}) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=0, max_value=150), max_size=6),
        min_size=0,
        max_size=70,
    )
)
def test_any_graph_is_drawn_without_overlap_inside_its_box(links: list[list[int]]) -> None:
    items = [item(i, *(record(t) for t in sorted(set(ts)))) for i, ts in enumerate(links)]
    g = layout("set:s", "Set", None, items)
    assert_no_overlap(list(g.nodes))
    for n in g.nodes:
        assert n.r <= n.x <= g.size - n.r
        assert n.r <= n.y <= g.size - n.r
    assert g.identifiers_shown <= graph.MAX_IDENTIFIERS
    assert g.outer_shown <= graph.MAX_OUTER
    assert g == layout("set:s", "Set", None, items)


def test_identifiers_are_capped_keeping_those_with_links() -> None:
    items = [item(i) for i in range(80)] + [item(100 + i, record(i)) for i in range(5)]
    g = layout("set:s", "Set", None, items, max_identifiers=60)
    shown = [n.key for n in g.nodes_by_role("identifier")]
    assert len(shown) == 60
    assert {f"identifier-{100 + i}" for i in range(5)} <= set(shown)
    assert shown == sorted(shown, key=lambda k: [i.key for i in items].index(k))  # given order
    assert (g.identifiers_total, g.identifiers_shown, g.capped) == (85, 60, True)


def test_outer_nodes_are_capped_keeping_the_most_linked_and_strongest() -> None:
    items = [
        item(1, *(record(i, "mismatch") for i in range(150))),
        item(2, record(200, "mismatch"), record(201, "match")),
        item(3, record(200, "mismatch")),
        item(4, held(5)),
    ]
    g = layout("set:s", "Set", None, items, max_outer=10)
    kept = {n.key for n in g.nodes_by_role("record") + g.nodes_by_role("withheld")}
    assert len(kept) == 10
    assert {"request:r200", "request:r201", "authority:5"} <= kept  # 2 links; match; withheld
    assert (g.outer_total, g.outer_shown, g.capped) == (153, 10, True)
    # No edge leads to a node that was not drawn.
    assert all(e.target in kept for e in g.links)


def test_the_default_caps() -> None:
    items = [item(i, record(i), record(1000 + i)) for i in range(70)]
    g = layout("set:s", "Set", None, items)
    assert g.identifiers_shown == graph.MAX_IDENTIFIERS == 60
    assert g.outer_shown == graph.MAX_OUTER == 100
    assert g.capped


def test_an_empty_record_is_only_its_centre() -> None:
    g = layout("set:s", "Set", None, [])
    assert [n.role for n in g.nodes] == ["centre"]
    assert g.edges == ()
    assert not g.capped


def test_labels_are_shortened_for_the_drawing_only() -> None:
    long = Link("request:x", "VN-A05-2026-000123 — " + "a very long title " * 5, None)
    g = layout("set:s", "Set", None, [item(1, long)])
    node = g.node("request:x")
    assert node.label == long.label
    assert len(node.short) == graph.LABEL_MAX
    assert node.short.endswith("…")


def test_labels_point_away_from_the_centre_and_clear_of_the_edges() -> None:
    g = layout("set:s", "Set", None, [item(i, record(i)) for i in range(4)])
    top, right, bottom, left = g.nodes_by_role("identifier")
    assert (right.anchor, left.anchor) == ("start", "end")
    assert right.label_x > right.x
    assert left.label_x < left.x
    # Above and below the centre the edges run vertically: those labels go beside the node.
    assert (top.anchor, bottom.anchor) == ("start", "start")
    assert top.label_x > top.x
    outer_top = g.node("request:r0")
    assert outer_top.anchor == "middle"
    assert outer_top.label_y < outer_top.y  # above it, outside the ring


def test_spread_keeps_wanted_angles_when_they_fit_and_spreads_evenly_otherwise() -> None:
    assert graph.spread([0.0, 1.0, 2.0], 0.5) == [0.0, 1.0, 2.0]
    assert graph.spread([0.0, 0.1, 0.2], 0.5) == [0.0, 0.5, 1.0]
    assert graph.spread([0.0] * 12, 0.5) == [i * 0.5 for i in range(12)]
    # The last one wants to sit just before the first, around the circle: no room, so even.
    crowded = graph.spread([0.0] * 6 + [6.0], 0.8)
    steps = [b - a for a, b in itertools.pairwise(crowded)]
    assert all(math.isclose(s, 2 * math.pi / 7) for s in steps)
    with pytest.raises(ValueError, match="too small"):
        graph.spread([0.0] * 20, 0.5)
