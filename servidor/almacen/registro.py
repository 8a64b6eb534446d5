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
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from servidor.almacen.crudo import crudo
from sync import protocolo as p
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


def lote_para(
    conn: Connection,
    lo_que_tiene: Mapping[str, int],
    lo_que_tengo: Mapping[str, int],
    limite: int,
    sin_origen: str | None = None,
) -> p.Lote:
    """What :func:`cambios_para` reads, as a batch ready to send.

    A peer link sends changes it never looks into, so their JSON is built
    from the stored columns: ``valor`` is stored as JSON already and goes
    out as it is, never decoded and encoded again.
    """
    sql = crudo(conn)
    por_origen: list[list[Any]] = []
    for origen, mio in sorted(lo_que_tengo.items()):
        suyo = lo_que_tiene.get(origen, 0)
        if mio <= suyo or origen == sin_origen:
            continue
        por_origen.append(
            sql.filas(
                "SELECT hlc, origen, seq, entidad, clave, campo, valor, base FROM cambios"
                " WHERE origen = ? AND seq > ? ORDER BY seq LIMIT ?",
                (origen, suyo, limite),
            )
        )
    filas = [f for _, f in zip(range(limite), heapq.merge(*por_origen, key=lambda f: (f[0], f[1])), strict=False)]
    e = encode_basestring
    return p.cortar(
        [(f[1], f[2]) for f in filas],
        [
            f'{{"origen":{e(o)},"seq":{s},"hlc":{h},"entidad":{e(en)},"clave":{e(k)},"campo":{e(c)},'
            f'"valor":{v},"base":{"null" if b is None else e(b)}}}'
            for h, o, s, en, k, c, v, b in filas
        ],
    )


def pendientes(lo_que_tiene: Mapping[str, int], lo_que_tengo: Mapping[str, int]) -> int:
    """How many of our changes the peer has not acknowledged."""
    return sum(max(0, s - lo_que_tiene.get(o, 0)) for o, s in lo_que_tengo.items())
