"""CRDT merge rules, as pure functions of values.

Tie-break order of a last-writer-wins register: the higher HLC stamp wins;
on equal stamps the higher origin id wins. Stamps of one origin never repeat
(its clock only moves forward), so ``(hlc, origen)`` is a total order over
all writes, and every node picks the same winner from the same set of
writes, in whatever order they arrive. Comparing origin ids as plain strings
is arbitrary but fixed, which is all a tie-break needs.

One register ranks its values before its stamps: ``pedido.estado``, where
**cancellation wins**. A ``cancelado`` write beats every write that is not a
cancellation, whatever the stamps; among cancellations, or among the other
states, the stamp decides. Locally ``cancelado`` is final, so a node's own
writes never meet this rule; it decides only between concurrent writes (a
cancellation on one node, a shipping on another). It is what makes the
bounded counter below safe: units of a cancelled order go back to stock and
may be sold again at once, which is only sound if the order can never come
back to life. ``(rango, hlc, origen)`` is still a total order, so merging
stays commutative, associative and idempotent.

Stock is a bounded counter (escrow; Balegas et al., SRDS 2015). Per product,
each node owns grow-only entries: units it added (``entradas``), units it
sold (``salidas``) and, per other node, rights it transferred to it
(``cedidas``). A change carries the entry's new total, so merging takes
``max`` and duplicates or reordering change nothing. From converged state::

    stock            = Σ entradas − Σ salidas + Σ units of cancelled orders
    derechos(nodo)   = entradas(nodo) − salidas(nodo) + devueltas(nodo)
                       + Σ cedidas(* → nodo) − Σ cedidas(nodo → *)
    Σ derechos       = stock

where ``devueltas(nodo)`` are the units of the cancelled orders that
``nodo`` sold (their ``nodo_origen``). A node sells, removes or transfers
units only out of its own ``derechos`` as it sees them. Its view of its own
rights can only be lower than the truth (its own entries are exact; what
others transferred to it and its cancelled orders only grow, since
cancellation wins), so no node ever spends a unit twice and stock is never
negative, on any node, under any partition. The SQL of these sums lives in
``servidor.almacen.aplicar`` and ``servidor.almacen.consultas``.
"""

from __future__ import annotations

from typing import TypeVar

Sello = tuple[int, str]
Orden = tuple[int, int, str]
T = TypeVar("T", Sello, Orden)

ABSORBENTES = {("pedido", "estado"): "cancelado"}


def gana(nuevo: T, actual: T | None) -> bool:
    """True when a write ordered ``nuevo`` (a stamp, or an :func:`orden`) replaces ``actual``."""
    return actual is None or nuevo > actual


def orden(entidad: str, campo: str, valor: object, sello: Sello) -> Orden:
    """Merge order of a write to a register: its rank, then its stamp."""
    rango = 1 if ABSORBENTES.get((entidad, campo)) == valor else 0
    return (rango, sello[0], sello[1])


def fusionar_contador(actual: int | None, nuevo: int) -> int:
    return nuevo if actual is None else max(actual, nuevo)


def sello_texto(sello: Sello) -> str:
    return f"{sello[0]}:{sello[1]}"
