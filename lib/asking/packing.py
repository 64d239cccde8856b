"""Packing pieces into as few calls as fit: first-fit decreasing.

    bins = first_fit_decreasing([("a", 70), ("b", 50), ("c", 40), ("d", 30)], capacity=100)
    # [["a", "d"], ["b", "c"]]

First-fit decreasing (largest piece first, each into the first call with room) never uses
more than 11/9 of the minimum number of calls plus one (Dósa 2007), and in practice almost
always the minimum; it runs in O(n log n + n * calls), milliseconds for thousands of
documents. Ties keep the given order, so the same selection always packs the same way
(the same bytes before the question, so the server's prefix cache holds across questions).
No I/O here.
"""

from __future__ import annotations

from typing import Hashable, Sequence, TypeVar

Key = TypeVar("Key", bound=Hashable)

PACKING = "first-fit decreasing (largest first, each into the first call with room)"


def first_fit_decreasing(items: Sequence[tuple[Key, int]], capacity: int) -> list[list[Key]]:
    """Keys grouped into bins of at most `capacity` (sum of sizes); every size must fit alone."""
    order = sorted(range(len(items)), key=lambda i: -items[i][1])
    bins: list[list[Key]] = []
    free: list[int] = []
    for i in order:
        key, size = items[i]
        if size > capacity:
            raise ValueError(f"item {key!r} of size {size} exceeds the capacity {capacity}")
        for b, room in enumerate(free):
            if size <= room:
                bins[b].append(key)
                free[b] = room - size
                break
        else:
            bins.append([key])
            free.append(capacity - size)
    return bins


def lower_bound(sizes: Sequence[int], capacity: int) -> int:
    """No packing can use fewer bins than this."""
    return -(-sum(sizes) // capacity) if sizes else 0
