"""The synthetic unit tree: shape, names, sizes and each unit's neighbourhood of likely targets."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


def build_tree(n_units: int, rng: np.random.Generator) -> tuple[IntArray, IntArray]:
    """Parent index (−1 for a root) and level per unit, numbered in depth-first order."""
    n0 = max(1, min(n_units, round(n_units**0.45 / 1.5)))
    rest = n_units - n0
    n1 = rest if rest < 4 else max(min(rest, n0), round(rest * 0.3))
    n2 = rest - n1
    level = np.concatenate([np.zeros(n0), np.ones(n1), np.full(n2, 2)]).astype(np.int32)
    parent = np.full(n_units, -1, dtype=np.int32)
    # departments: every directorate gets one first, the rest by lognormal popularity
    if n1:
        pop0 = rng.lognormal(0.0, 0.5, n0)
        dept_parent = rng.choice(n0, size=n1, p=pop0 / pop0.sum())
        dept_parent[: min(n0, n1)] = np.arange(min(n0, n1))
        parent[n0 : n0 + n1] = dept_parent
    # sections: some departments have none (they are leaves)
    if n2:
        pop1 = rng.lognormal(0.0, 0.8, n1) * (rng.random(n1) < 0.75)
        if pop1.sum() == 0:
            pop1[:] = 1.0
        parent[n0 + n1 :] = n0 + rng.choice(n1, size=n2, p=pop1 / pop1.sum())
    # renumber depth-first so that external ids follow the hierarchy
    children: list[list[int]] = [[] for _ in range(n_units)]
    for u in range(n_units):
        if parent[u] >= 0:
            children[int(parent[u])].append(u)
    order: list[int] = []
    stack = list(range(n0))[::-1]
    while stack:
        u = stack.pop()
        order.append(u)
        stack.extend(children[u][::-1])
    new_index = np.empty(n_units, dtype=np.int32)
    new_index[np.array(order)] = np.arange(n_units, dtype=np.int32)
    new_parent = np.full(n_units, -1, dtype=np.int32)
    for old, new in enumerate(new_index):
        if parent[old] >= 0:
            new_parent[new] = new_index[parent[old]]
    return new_parent, level[np.array(order)]


def unit_names(parent: IntArray, level: IntArray) -> list[str]:
    labels: list[str] = []
    counters: dict[int, int] = {}
    for u in range(len(parent)):
        p = int(parent[u])
        counters[p] = counters.get(p, 0) + 1
        labels.append(str(counters[p]) if p < 0 else f"{labels[p]}.{counters[p]}")
    kinds = ("Directorate", "Department", "Section")
    return [f"{kinds[min(int(level[u]), 2)]} {labels[u]}" for u in range(len(parent))]


def unit_sizes(
    n_respondents: int,
    has_children: npt.NDArray[np.bool_],
    tiny_unit_share: float,
    rng: np.random.Generator,
) -> IntArray:
    """Respondents per unit: lognormal, internal nodes with few direct staff, some tiny units."""
    n_units = len(has_children)
    weights = rng.lognormal(0.0, 0.8, n_units) * np.where(has_children, 0.25, 1.0)
    tiny = rng.random(n_units) < tiny_unit_share
    if n_units >= 5 and not tiny.any():
        tiny[rng.integers(n_units)] = True
    if tiny.all():
        tiny[:] = False
    sizes = np.zeros(n_units, dtype=np.int64)
    sizes[tiny] = rng.integers(1, 5, size=int(tiny.sum()))
    if sizes.sum() > n_respondents:  # a very small organisation: shrink the tiny units
        sizes[:] = 0
        tiny[:] = False
    rest = n_respondents - int(sizes.sum())
    share = weights * ~tiny
    raw = share / share.sum() * rest
    base = np.floor(raw).astype(np.int64)
    short = rest - int(base.sum())
    if short:
        base[np.argsort(-(raw - base), kind="stable")[:short]] += 1
    total: npt.NDArray[np.int32] = (sizes + base).astype(np.int32)
    return total


def neighbourhood(parent: IntArray, rng: np.random.Generator) -> list[tuple[IntArray, FloatArray]]:
    """Per unit, the units its people work with and how likely each is named as a target.

    Nearby units in the tree are preferred (siblings most, then parent and children, then the
    wider family); each unit also has a few "partners" elsewhere. Pairs outside both
    neighbourhoods are never rated, so the network has holes.
    """
    n_units = len(parent)
    children: list[list[int]] = [[] for _ in range(n_units)]
    for u in range(n_units):
        if parent[u] >= 0:
            children[int(parent[u])].append(u)
    roots = [u for u in range(n_units) if parent[u] < 0]
    n_partners = min(3, max(0, n_units - 1))
    out: list[tuple[IntArray, FloatArray]] = []
    for u in range(n_units):
        weight: dict[int, float] = {}

        def add(units: list[int], w: float, weight: dict[int, float] = weight, u: int = u) -> None:
            for v in units:
                if v != u and weight.get(v, 0.0) < w:
                    weight[v] = w

        p = int(parent[u])
        siblings = roots if p < 0 else children[p]
        add(siblings, 6.0)
        add(children[u], 5.0)
        if p >= 0:
            add([p], 5.0)
            gp = int(parent[p])
            add([c for s in (roots if gp < 0 else children[gp]) for c in children[s]], 1.5)
            add(roots if gp < 0 else children[gp], 2.0)  # uncles
            if gp >= 0:
                add([gp], 2.0)
        add([g for c in children[u] for g in children[c]], 2.0)
        add([c for s in siblings for c in children[s]], 2.0)  # nephews
        if n_partners:
            add([int(x) for x in rng.choice(n_units, size=n_partners, replace=False)], 2.5)
        units = np.array(sorted(weight), dtype=np.int32)
        out.append((units, np.array([weight[int(v)] for v in units], dtype=np.float64)))
    return out
