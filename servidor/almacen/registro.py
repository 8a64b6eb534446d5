"""Reading the change log for a peer: what it lacks, in bounded batches.

The cursor is the peer's version vector, not a position in the log: for
every origin where we hold more than the peer has, take the next changes by
``seq`` through the primary key, then merge the origins by ``(hlc, origen)``
and keep the first ``limite``. Each origin's part of a batch is therefore a
gap-free continuation of what the peer has, whatever order changes reached
this node in (local writes, merges from a third node), and a page costs one
index range scan per origin however long the log is.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from sync.cambios import Cambio


def cambios_para(
    conn: Connection,
    lo_que_tiene: Mapping[str, int],
    lo_que_tengo: Mapping[str, int],
    limite: int,
    sin_origen: str | None = None,
) -> list[Cambio]:
    c = m.cambios.c
    por_origen: list[list[Cambio]] = []
    for origen, mio in sorted(lo_que_tengo.items()):
        suyo = lo_que_tiene.get(origen, 0)
        if mio <= suyo or origen == sin_origen:
            continue
        filas = conn.execute(select(m.cambios).where(c.origen == origen, c.seq > suyo).order_by(c.seq).limit(limite))
        por_origen.append([Cambio.desde_fila(f) for f in filas])
    fusion = heapq.merge(*por_origen, key=lambda x: x.sello)
    return [x for _, x in zip(range(limite), fusion, strict=False)]


def pendientes(lo_que_tiene: Mapping[str, int], lo_que_tengo: Mapping[str, int]) -> int:
    """How many of our changes the peer has not acknowledged."""
    return sum(max(0, s - lo_que_tiene.get(o, 0)) for o, s in lo_que_tengo.items())
