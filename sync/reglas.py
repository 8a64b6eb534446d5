"""CRDT merge rules, as pure functions of values.

Tie-break order of a last-writer-wins register: the higher HLC stamp wins;
on equal stamps the higher origin id wins. Stamps of one origin never repeat
(its clock only moves forward), so ``(hlc, origen)`` is a total order over
all writes, and every node picks the same winner from the same set of
writes, in whatever order they arrive. Comparing origin ids as plain strings
is arbitrary but fixed, which is all a tie-break needs.

Stock entries are grow-only counters owned by their origin: the value of a
change is the entry's new total, so merging takes ``max`` and duplicates or
reordering change nothing.

Stock of a product is a pure function of converged state (computed in SQL by
``servidor.almacen.aplicar.recalcular_stock``)::

    stock = Σ entradas − Σ salidas + Σ units of cancelled orders

so that whichever way an order's ``estado`` settles, its units are counted
exactly once.
"""

from __future__ import annotations

Sello = tuple[int, str]


def gana(nuevo: Sello, actual: Sello | None) -> bool:
    """True when a write stamped ``nuevo`` replaces one stamped ``actual``."""
    return actual is None or nuevo > actual


def fusionar_contador(actual: int | None, nuevo: int) -> int:
    return nuevo if actual is None else max(actual, nuevo)


def sello_texto(sello: Sello) -> str:
    return f"{sello[0]}:{sello[1]}"
