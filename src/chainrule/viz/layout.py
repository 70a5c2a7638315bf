"""A layered (Sugiyama-style) layout for DAGs drawn top to bottom; no Graphviz needed.

Steps: ranks by longest path to the output (each edge spans two ranks so its label gets a rank
of its own; every node sits just above its first consumer), a dummy node on every rank an edge
crosses,
barycenter ordering sweeps that keep the order with the fewest crossings, then x positions by
isotonic regression (each node pulled to its neighbours' mean, boxes never overlapping).
Every step is linear in the number of layout points (boxes plus one point per rank an edge
crosses) per sweep; past FULL_EFFORT points the sweeps are fewer, and past MAX_POINTS the layout
is refused (DrawingTooLarge) before anything is allocated for it.
Pure Python and NumPy; knows boxes and edges, nothing about tensors.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

NODE_GAP = 24.0  # horizontal space between boxes
RANK_GAP = 14.0  # vertical space between ranks
DUMMY_WIDTH = 10.0
MARGIN = 12.0
SWEEPS = 16
# Boxes plus edge bends a layout accepts. A 1,000-statement program whose input feeds every
# statement needs millions (each such edge bends on every rank it crosses): refused in
# milliseconds; 50,000 points lay out in about a second (2 cores, busy) and 30 MB.
MAX_POINTS = 50_000
# Up to this many points every graph gets SWEEPS sweeps (all pictures in the docs and tests);
# above, the sweeps shrink so that points x sweeps stays about constant (at least 2).
FULL_EFFORT = 2_000
SETTLED = 1e-3  # x sweeps stop once a pair of them moves no box by more than this (points)


class DrawingTooLarge(ValueError):
    """The graph needs more layout points than the limit; the message gives both counts."""


@dataclass
class Box:
    """A placed rectangle: centre (x, y), width, height."""

    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    h: float = 0.0


@dataclass
class Route:
    """An edge's path (polyline through its dummies) and where its label box sits."""

    points: list[tuple[float, float]] = field(default_factory=list)
    label: Box | None = None

    def beziers(self) -> list[tuple[tuple[float, float], ...]]:
        """Cubic segments (p0, c1, c2, p1) with vertical tangents at every point."""
        segs: list[tuple[tuple[float, float], ...]] = []
        for (x0, y0), (x1, y1) in zip(self.points, self.points[1:]):
            dy = (y1 - y0) / 2
            segs.append(((x0, y0), (x0, y0 + dy), (x1, y1 - dy), (x1, y1)))
        return segs


@dataclass
class Layout:
    boxes: list[Box]
    routes: list[Route]
    width: float
    height: float


def layout(
    sizes: list[tuple[float, float]],
    edges: list[tuple[int, int]],
    labels: list[tuple[float, float] | None] | None = None,
    *,
    max_points: int | None = None,
) -> Layout:
    """Place boxes of `sizes` (w, h) for `edges` (u, v), u drawn above v.

    `labels[k]` is the (w, h) of edge k's label or None. Returns centres, edge routes from the
    bottom of u to the top of v, and the drawing's size.

    Raises
    ------
    DrawingTooLarge
        If the boxes plus the ranks the edges cross exceed `max_points` (default: the
        module's MAX_POINTS, read at each call, so a program may raise it), counted from the
        ranks alone, in time linear in the edges, before any layout memory is allocated.
    """
    n = len(sizes)
    labels = labels or [None] * len(edges)
    rank = _ranks(n, edges)
    points = n + sum(max(rank[v] - rank[u] - 1, 0) for u, v in edges)
    max_points = MAX_POINTS if max_points is None else max_points
    if points > max_points:
        raise DrawingTooLarge(
            f"graph too large to lay out: {n} boxes and {len(edges)} edges need {points} "
            f"layout points (limit {max_points}); save it as .dot for Graphviz, or draw a "
            "smaller part"
        )
    sweeps = SWEEPS if points <= FULL_EFFORT else max(2, SWEEPS * FULL_EFFORT // points)
    # layered graph: real nodes 0..n-1, then dummies; chains[k] = the vertices of edge k
    vsize = [(float(w), float(h)) for w, h in sizes]
    vrank = list(rank)
    chains: list[list[int]] = []
    for k, (u, v) in enumerate(edges):
        chain = [u]
        for r in range(rank[u] + 1, rank[v]):
            lab = labels[k] if r == rank[v] - 1 else None
            vsize.append((lab[0] + DUMMY_WIDTH, lab[1]) if lab else (DUMMY_WIDTH, 0.0))
            vrank.append(r)
            chain.append(len(vsize) - 1)
        chains.append([*chain, v])
    layers = _order(vrank, chains, sweeps)
    xs = _xcoords(layers, vsize, chains, sweeps)
    ys, height = _ycoords(layers, vsize)
    return _finish(n, layers, vsize, xs, ys, height, chains, labels)


def _ranks(n: int, edges: list[tuple[int, int]]) -> list[int]:
    """Longest path to the sinks, two ranks per edge: every node sits just above its nearest
    consumer, so a parameter used late is drawn where it is used, not at the top."""
    succs: list[list[int]] = [[] for _ in range(n)]
    outdeg = [0] * n
    preds: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        succs[u].append(v)
        preds[v].append(u)
        outdeg[u] += 1
    depth = [0] * n  # distance to the farthest sink, in ranks
    queue = [i for i in range(n) if outdeg[i] == 0]
    while queue:
        v = queue.pop()
        for u in preds[v]:
            depth[u] = max(depth[u], depth[v] + 2)
            outdeg[u] -= 1
            if outdeg[u] == 0:
                queue.append(u)
    top = max(depth, default=0)
    return [top - d for d in depth]


def _order(vrank: list[int], chains: list[list[int]], sweeps: int) -> list[list[int]]:
    """Vertices per rank, ordered by barycenter sweeps; the order with fewest crossings wins."""
    nr = max(vrank) + 1 if vrank else 0
    up: dict[int, list[int]] = {}
    down: dict[int, list[int]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            down.setdefault(a, []).append(b)
            up.setdefault(b, []).append(a)
    layers: list[list[int]] = [[] for _ in range(nr)]
    for v in _dfs_order(len(vrank), down, up):
        layers[vrank[v]].append(v)
    best, best_cross = [list(layer) for layer in layers], _crossings(layers, down)
    before: list[list[list[int]]] = []  # the orders after the last two sweeps
    for sweep in range(sweeps):
        rng = range(1, nr) if sweep % 2 == 0 else range(nr - 2, -1, -1)
        nbrs = up if sweep % 2 == 0 else down
        for r in rng:
            if len(layers[r]) < 2:  # nothing to reorder
                continue
            adj = layers[r - 1] if sweep % 2 == 0 else layers[r + 1]
            pos = {v: i for i, v in enumerate(adj)}
            cur = {v: i for i, v in enumerate(layers[r])}
            layers[r].sort(key=lambda v: _barycenter(v, nbrs, pos, cur))
        if len(before) == 2 and layers == before[0]:
            break  # a fixed point of a down and an up sweep: every later sweep repeats these
        cross = _crossings(layers, down)
        if cross < best_cross:
            best, best_cross = [list(layer) for layer in layers], cross
        before = [*before[-1:], [list(layer) for layer in layers]]
    return best


def _dfs_order(nv: int, down: dict[int, list[int]], up: dict[int, list[int]]) -> list[int]:
    """Vertices in depth-first order from the sources: related vertices start out adjacent."""
    seen: set[int] = set()
    out: list[int] = []
    for s in [v for v in range(nv) if v not in up] + list(range(nv)):
        stack = [s]
        while stack:
            v = stack.pop()
            if v in seen:
                continue
            seen.add(v)
            out.append(v)
            stack.extend(reversed(down.get(v, [])))
    return out


def _barycenter(
    v: int, nbrs: dict[int, list[int]], pos: dict[int, int], cur: dict[int, int]
) -> float:
    ps = [pos[u] for u in nbrs.get(v, []) if u in pos]
    # a vertex without neighbours there keeps its place (scaled to the other layer's range)
    return sum(ps) / len(ps) if ps else cur[v] * (len(pos) / max(len(cur), 1))


def _crossings(layers: list[list[int]], down: dict[int, list[int]]) -> int:
    """Edge crossings between consecutive ranks: with the edges sorted by (rank, upper
    position, lower position), a crossing is an inversion of the lower positions. Offsetting
    each rank's lower positions by the width of the ranks before keeps ranks apart, so one
    count serves every rank."""
    lower: list[int] = []
    offset = 0
    for r in range(len(layers) - 1):
        pos = {v: offset + i for i, v in enumerate(layers[r + 1])}
        for v in layers[r]:  # upper positions ascending; lower ones sorted within each vertex
            lower += sorted(pos[w] for w in down.get(v, ()) if w in pos)
        offset += len(layers[r + 1])
    return _inversions(np.array(lower, dtype=np.int64)) if len(lower) > 1 else 0


def _inversions(b: np.ndarray) -> int:
    """Pairs i < j with b[i] > b[j], by a bottom-up merge sort, one vectorised pass per level:
    values are offset by their block's index so one searchsorted serves every block at once."""
    n = len(b)
    b = np.unique(b, return_inverse=True)[1].ravel().astype(np.int64)  # values in [0, n)
    idx = np.arange(n)
    total, width = 0, 1
    while width < n:
        block = idx // (2 * width)
        key = b + block * n  # each half-block is sorted (previous level): keys sorted per half
        right = (idx // width) % 2 == 1
        left_keys = key[~right]  # all left halves, in block order: one sorted array
        upto = np.searchsorted(left_keys, (block[right] + 1) * n)  # end of the same left half
        total += int(np.sum(upto - np.searchsorted(left_keys, key[right], side="right")))
        b = np.sort(key) - block * n  # merge every pair of halves at once
        width *= 2
    return total


def _xcoords(
    layers: list[list[int]],
    vsize: list[tuple[float, float]],
    chains: list[list[int]],
    sweeps: int,
) -> list[float]:
    """Each vertex pulled toward the mean x of its neighbours, in sweeps down and up; the order
    is kept and boxes stay NODE_GAP apart (weighted isotonic regression per rank)."""
    x = [0.0] * len(vsize)
    for layer in layers:
        pos = 0.0
        for v in layer:
            x[v] = pos + vsize[v][0] / 2
            pos += vsize[v][0] + NODE_GAP
    nbr: dict[int, list[tuple[int, float]]] = {}
    for chain in chains:
        for a, b in itertools.pairwise(chain):
            w = 2.0 if len(chain) > 3 else 1.0  # long edges pull harder: keep them straight
            nbr.setdefault(a, []).append((b, w))
            nbr.setdefault(b, []).append((a, w))
    order = list(range(len(layers)))
    last: list[float] = []
    for sweep in range(2 * sweeps):
        if sweep % 2 == 0:
            last = list(x)
        for r in order if sweep % 2 == 0 else order[::-1]:
            _place_rank(layers[r], vsize, x, nbr)
        if sweep % 2 == 1 and max(map(abs, map(float.__sub__, x, last)), default=0) < SETTLED:
            break  # a down and an up sweep moved nothing by more than SETTLED: converged
    return x


def _place_rank(
    layer: list[int],
    vsize: list[tuple[float, float]],
    x: list[float],
    nbr: dict[int, list[tuple[int, float]]],
) -> None:
    if len(layer) == 1:  # most ranks of a long program: the box goes to its neighbours' mean
        ns = nbr.get(layer[0])
        if ns:
            x[layer[0]] = sum(x[u] * w for u, w in ns) / sum(w for _, w in ns)
        return
    if not layer:
        return
    want, weight = [], []
    for v in layer:
        ns = nbr.get(v, [])
        tot = sum(w for _, w in ns)
        want.append(sum(x[u] * w for u, w in ns) / tot if tot else x[v])
        weight.append(tot if tot else 0.1)
    offs = [0.0]
    for a, b in itertools.pairwise(layer):
        offs.append(offs[-1] + (vsize[a][0] + vsize[b][0]) / 2 + NODE_GAP)
    fitted = _isotonic([d - o for d, o in zip(want, offs)], weight)
    for v, y, o in zip(layer, fitted, offs):
        x[v] = y + o


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return [m for m, _, c in blocks for _ in range(int(c))]


def _ycoords(
    layers: list[list[int]], vsize: list[tuple[float, float]]
) -> tuple[list[float], float]:
    ys = [0.0] * len(vsize)
    top = MARGIN
    for layer in layers:
        h = max((vsize[v][1] for v in layer), default=0.0)
        for v in layer:
            ys[v] = top + h / 2
        top += h + RANK_GAP
    return ys, top - RANK_GAP + MARGIN


def _finish(
    n: int,
    layers: list[list[int]],
    vsize: list[tuple[float, float]],
    xs: list[float],
    ys: list[float],
    height: float,
    chains: list[list[int]],
    labels: list[tuple[float, float] | None],
) -> Layout:
    left = min((xs[v] - vsize[v][0] / 2 for layer in layers for v in layer), default=0.0)
    shift = MARGIN - left
    xs = [x + shift for x in xs]
    width = max((xs[v] + vsize[v][0] / 2 for layer in layers for v in layer), default=0.0) + MARGIN
    boxes = [Box(xs[i], ys[i], vsize[i][0], vsize[i][1]) for i in range(n)]
    routes = []
    for k, chain in enumerate(chains):
        pts = []
        label = None
        for v in chain[1:-1]:
            if labels[k] is not None and v == chain[-2]:  # the label sits just above the target
                lw = vsize[v][0] - DUMMY_WIDTH
                lx = xs[v] - vsize[v][0] / 2 + DUMMY_WIDTH / 2
                pts.append((lx, ys[v]))
                label = Box(lx + DUMMY_WIDTH / 2 + lw / 2, ys[v], lw, vsize[v][1])
            else:
                pts.append((xs[v], ys[v]))
        routes.append(Route(pts, label))
    _attach_ports(boxes, chains, routes)
    return Layout(boxes, routes, width, height)


def _attach_ports(boxes: list[Box], chains: list[list[int]], routes: list[Route]) -> None:
    """Start each route on its source's bottom edge and end it on its target's top edge,
    spreading several edges across the side in the order of where they go."""
    outs: dict[int, list[int]] = {}
    ins: dict[int, list[int]] = {}
    for k, chain in enumerate(chains):
        outs.setdefault(chain[0], []).append(k)
        ins.setdefault(chain[-1], []).append(k)
    starts: dict[int, tuple[float, float]] = {}
    ends: dict[int, tuple[float, float]] = {}
    for table, side, result in ((outs, 1, starts), (ins, -1, ends)):
        for v, ks in table.items():
            b = boxes[v]
            aim = {k: _aim(routes[k], boxes, chains[k], side) for k in ks}
            ks = sorted(ks, key=lambda k: aim[k])
            span = min(b.w * 0.6, 18.0 * (len(ks) - 1))
            for i, k in enumerate(ks):
                dx = 0.0 if len(ks) == 1 else -span / 2 + span * i / (len(ks) - 1)
                result[k] = (b.x + dx, b.y + side * b.h / 2)
    for k, route in enumerate(routes):
        route.points = [starts[k], *route.points, ends[k]]


def _aim(route: Route, boxes: list[Box], chain: list[int], side: int) -> float:
    if route.points:
        return route.points[0][0] if side == 1 else route.points[-1][0]
    return boxes[chain[-1]].x if side == 1 else boxes[chain[0]].x
