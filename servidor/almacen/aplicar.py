"""``apply``: the one path by which changes reach the database.

Given a batch of changes that are new to this node (the caller has dropped
duplicates and kept each origin gap-free), inside one open transaction:

1. append them to the change log;
2. last-writer-wins fields: keep, per field, the batch's best write, compare
   it with the stored winner in ``sellos`` and, where it wins, write the stamp
   and the column of the materialized row (``items`` become ``pedido_items``);
   the order is :func:`sync.reglas.orden` (a cancellation beats any other
   ``estado``, then the stamp decides);
3. stock entries: ``max`` of the stored entry and the batch's values, for
   units (``contadores_stock``) and for rights transferred (``cesiones_stock``);
4. concurrent ``estado`` writes (same base, different write) become rows of
   ``conflictos``, one per pair, ordered as the merge orders them, so every
   node records the same clashes whatever the arrival order;
5. move ``productos.stock`` by the change of its counters; recompute it in
   full (counters plus cancelled units, and each node's ``devueltas``) only
   for products created in the batch or in the items of an order whose
   cancellation may have changed.

Everything is set-based: a batch costs a handful of statements per table,
not per change, and no statement scans a table whose size grows with the
log (stamps are looked up by their key's prefix ``(entidad, clave)``).
"""

from __future__ import annotations

import functools
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from sync import reglas
from sync.cambios import Cambio, codificar

TABLAS = {"cliente": m.clientes, "producto": m.productos, "pedido": m.pedidos}
TROZO = 500


def _insertar_tuplas(conn: Connection, tabla: Any, filas: list[tuple[Any, ...]]) -> None:
    """Bulk insert of plain values in column order, straight to the driver.

    For the log and the stamps, whose columns are strings and integers: it
    skips SQLAlchemy's per-row parameter processing, which costs more than
    SQLite's insert itself on a merge batch.
    """
    conn.exec_driver_sql(_sql_insercion(tabla, conn.dialect), filas)


@functools.cache
def _sql_insercion(tabla: Any, dialecto: Any) -> str:
    """The INSERT of ``tabla`` in ``dialecto``'s paramstyle, compiled once per process."""
    return str(insert(tabla).compile(dialect=dialecto))


def trozos(valores: Sequence[Any], n: int = TROZO) -> Iterable[Sequence[Any]]:
    for i in range(0, len(valores), n):
        yield valores[i : i + n]


def aplicar(conn: Connection, lote: Sequence[Cambio]) -> None:
    if not lote:
        return
    _insertar_tuplas(
        conn,
        m.cambios,
        [(c.origen, c.seq, c.hlc, c.entidad, c.clave, c.campo, codificar(c.valor), c.base) for c in lote],
    )
    # Products whose stock is recomputed from scratch: created in this batch, or holding
    # items of an order that is or was cancelled (its units may have moved). Every other
    # product the batch touched moves by the change of its counters alone.
    completos: set[str] = set()
    _aplicar_lww(conn, [c for c in lote if c.entidad != "stock"], completos)
    deltas = _aplicar_contadores(conn, [c for c in lote if c.entidad == "stock" and c.campo != "cedidas"])
    _aplicar_cesiones(conn, [c for c in lote if c.entidad == "stock" and c.campo == "cedidas"])
    _registrar_conflictos(conn, [c for c in lote if c.campo == "estado" and c.base])
    recalcular_stock(conn, sorted(completos))
    resto = [{"_p": pid, "_d": d} for pid, d in sorted(deltas.items()) if d and pid not in completos]
    if resto:
        p = m.productos
        conn.execute(update(p).where(p.c.id == bindparam("_p")).values(stock=p.c.stock + bindparam("_d")), resto)


def _productos_de_cancelados(conn: Connection, pedidos: set[str]) -> set[str]:
    """Products in the items of those of ``pedidos`` that are cancelled now."""
    it, pe = m.pedido_items, m.pedidos
    productos: set[str] = set()
    for parte in trozos(sorted(pedidos)):
        cancelados = select(pe.c.id).where(pe.c.id.in_(parte), pe.c.estado == "cancelado")
        filas = conn.execute(select(it.c.producto_id).where(it.c.pedido_id.in_(cancelados)).distinct())
        productos.update(filas.scalars())
    return productos


def _aplicar_lww(conn: Connection, lote: Sequence[Cambio], completos: set[str]) -> None:
    """Apply LWW writes; add to ``completos`` the products whose stock must be recomputed."""
    mejores: dict[tuple[str, str, str], Cambio] = {}
    for c in lote:
        k = (c.entidad, c.clave, c.campo)
        actual = mejores.get(k)
        if actual is None or _orden(c) > _orden(actual):
            mejores[k] = c
    if not mejores:
        return

    guardados: dict[tuple[str, str, str], reglas.Orden] = {}
    # By (entidad, clave): the primary key's prefix, so an index range, never a scan of sellos.
    por_entidad: dict[str, set[str]] = defaultdict(set)
    for entidad, clave, _ in mejores:
        por_entidad[entidad].add(clave)
    s = m.sellos.c
    for entidad, claves in sorted(por_entidad.items()):
        for parte in trozos(sorted(claves)):
            filas = conn.execute(
                select(s.clave, s.campo, s.hlc, s.origen).where(s.entidad == entidad, s.clave.in_(parte))
            )
            for f in filas:
                guardados[(entidad, f.clave, f.campo)] = (0, f.hlc, f.origen)
    # A stored estado that is a cancellation outranks every later stamp that is not.
    con_estado = sorted(k[1] for k in mejores if k[0] == "pedido" and k[2] == "estado" and k in guardados)
    for parte in trozos(con_estado):
        pe = m.pedidos.c
        for pid in conn.execute(select(pe.id).where(pe.id.in_(parte), pe.estado == "cancelado")).scalars():
            _, hlc, origen = guardados[("pedido", pid, "estado")]
            guardados[("pedido", pid, "estado")] = reglas.orden("pedido", "estado", "cancelado", (hlc, origen))

    ganadores = [c for k, c in mejores.items() if reglas.gana(_orden(c), guardados.get(k))]
    if not ganadores:
        return
    nuevos = [c for c in ganadores if (c.entidad, c.clave, c.campo) not in guardados]
    viejos = [c for c in ganadores if (c.entidad, c.clave, c.campo) in guardados]
    if nuevos:
        _insertar_tuplas(conn, m.sellos, [(c.entidad, c.clave, c.campo, c.hlc, c.origen) for c in nuevos])
    if viejos:
        s = m.sellos.c
        conn.execute(
            update(m.sellos)
            .where(and_(s.entidad == bindparam("_e"), s.clave == bindparam("_k"), s.campo == bindparam("_c")))
            .values(hlc=bindparam("_h"), origen=bindparam("_o")),
            [{"_e": c.entidad, "_k": c.clave, "_c": c.campo, "_h": c.hlc, "_o": c.origen} for c in viejos],
        )

    filas_nuevas: dict[tuple[str, str], dict[str, Any]] = defaultdict(dict)
    items: dict[str, list[dict[str, Any]]] = {}
    pedidos_con_estado: set[str] = set()
    for c in ganadores:
        if c.entidad == "pedido" and c.campo == "items":
            items[c.clave] = c.valor
            pedidos_con_estado.add(c.clave)
            continue
        if c.entidad == "pedido" and c.campo == "estado":
            pedidos_con_estado.add(c.clave)
        filas_nuevas[(c.entidad, c.clave)][c.campo] = c.valor
    # Units move only where an order is, or was, cancelled. Only an order that had an
    # estado before this batch can have been cancelled; it can be cancelled after it if
    # the batch says so, or if it was and now gets its items.
    previos = {pid for pid in pedidos_con_estado if ("pedido", pid, "estado") in guardados}
    ahora = {c.clave for c in ganadores if c.entidad == "pedido" and c.campo == "estado" and c.valor == "cancelado"}
    if previos:
        completos.update(_productos_de_cancelados(conn, previos))  # before
    altas_pedidos: set[str] = set()
    for entidad, tabla in TABLAS.items():
        cambios_fila = {k[1]: v for k, v in filas_nuevas.items() if k[0] == entidad}
        cambios_fila.update({pid: {} for pid in items if entidad == "pedido" and pid not in cambios_fila})
        altas = _escribir_filas(conn, tabla, cambios_fila)
        if entidad == "producto":
            completos.update(altas)
        elif entidad == "pedido":
            altas_pedidos = altas
    _escribir_items(conn, items, nuevos=altas_pedidos)
    despues = ahora | (previos & set(items))
    if despues:
        completos.update(_productos_de_cancelados(conn, despues))  # after


def _orden(c: Cambio) -> reglas.Orden:
    return reglas.orden(c.entidad, c.campo, c.valor, c.sello)


def _escribir_filas(conn: Connection, tabla: Any, filas: dict[str, dict[str, Any]]) -> set[str]:
    """Insert or update rows; answer the ids inserted."""
    if not filas:
        return set()
    existentes: set[str] = set()
    ids = sorted(filas)
    for parte in trozos(ids):
        existentes.update((conn.execute(select(tabla.c.id).where(tabla.c.id.in_(parte)))).scalars())
    por_forma: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    altas: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for id_, valores in filas.items():
        forma = tuple(sorted(valores))
        if id_ in existentes:
            if valores:
                por_forma[forma].append({"_id": id_, **{f"v_{k}": v for k, v in valores.items()}})
        else:
            altas[forma].append({"id": id_, **valores})
    for lote in altas.values():
        conn.execute(insert(tabla), lote)
    for forma, lote in por_forma.items():
        conn.execute(
            update(tabla).where(tabla.c.id == bindparam("_id")).values({k: bindparam(f"v_{k}") for k in forma}),
            lote,
        )
    return set(filas) - existentes


def _escribir_items(conn: Connection, items: dict[str, list[dict[str, Any]]], nuevos: set[str]) -> None:
    """Replace the lines of orders; an order whose row is new in this batch has none yet."""
    if not items:
        return
    for parte in trozos(sorted(set(items) - nuevos)):
        conn.execute(delete(m.pedido_items).where(m.pedido_items.c.pedido_id.in_(parte)))
    conn.execute(
        insert(m.pedido_items),
        [
            {"pedido_id": pid, "linea": n, **item}
            for pid, lineas in items.items()
            for n, item in enumerate(lineas, start=1)
        ],
    )


def _aplicar_contadores(conn: Connection, lote: Sequence[Cambio]) -> dict[str, int]:
    """Stock entries are grow-only per origin: keep the max of every value seen.

    Answers, per product, how much ``entradas - salidas`` moved.
    """
    maximos: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for c in lote:
        entrada = maximos[(c.clave, c.origen)]
        entrada[c.campo] = reglas.fusionar_contador(entrada.get(c.campo), c.valor)
    if not maximos:
        return {}
    guardados: dict[tuple[str, str], dict[str, int]] = {}
    productos = sorted({k[0] for k in maximos})
    deltas: dict[str, int] = defaultdict(int)
    for parte in trozos(productos):
        filas = conn.execute(select(m.contadores_stock).where(m.contadores_stock.c.producto_id.in_(parte)))
        for f in filas:
            guardados[(f.producto_id, f.nodo)] = {"entradas": f.entradas, "salidas": f.salidas}
    altas, cambios = [], []
    for (pid, nodo), valores in maximos.items():
        previo = guardados.get((pid, nodo))
        if previo is None:
            entrada = {"entradas": 0, "salidas": 0, **valores}
            altas.append({"producto_id": pid, "nodo": nodo, **entrada})
            deltas[pid] += entrada["entradas"] - entrada["salidas"]
            continue
        fusion = {k: reglas.fusionar_contador(previo[k], v) for k, v in valores.items()}
        fusion = {**previo, **fusion}
        if fusion != previo:
            deltas[pid] += (fusion["entradas"] - previo["entradas"]) - (fusion["salidas"] - previo["salidas"])
            cambios.append({"_p": pid, "_n": nodo, "_e": fusion["entradas"], "_s": fusion["salidas"]})
    if altas:
        conn.execute(insert(m.contadores_stock), altas)
    if cambios:
        t = m.contadores_stock.c
        conn.execute(
            update(m.contadores_stock)
            .where(and_(t.producto_id == bindparam("_p"), t.nodo == bindparam("_n")))
            .values(entradas=bindparam("_e"), salidas=bindparam("_s")),
            cambios,
        )
    return deltas


def _aplicar_cesiones(conn: Connection, lote: Sequence[Cambio]) -> None:
    """Rights transferred are grow-only per (product, origin, destination): keep the max."""
    maximos: dict[tuple[str, str, str], int] = {}
    for c in lote:
        k = (c.clave, c.origen, c.valor["destino"])
        maximos[k] = reglas.fusionar_contador(maximos.get(k), c.valor["unidades"])
    if not maximos:
        return
    t = m.cesiones_stock.c
    guardados: dict[tuple[str, str, str], int] = {}
    for parte in trozos(sorted({k[0] for k in maximos})):
        filas = conn.execute(select(m.cesiones_stock).where(t.producto_id.in_(parte)))
        guardados.update({(f.producto_id, f.origen, f.destino): f.unidades for f in filas})
    altas = [
        {"producto_id": p, "origen": o, "destino": d, "unidades": n}
        for (p, o, d), n in maximos.items()
        if (p, o, d) not in guardados
    ]
    cambios = [
        {"_p": p, "_o": o, "_d": d, "_n": n}
        for (p, o, d), n in maximos.items()
        if (p, o, d) in guardados and n > guardados[(p, o, d)]
    ]
    if altas:
        conn.execute(insert(m.cesiones_stock), altas)
    if cambios:
        conn.execute(
            update(m.cesiones_stock)
            .where(and_(t.producto_id == bindparam("_p"), t.origen == bindparam("_o"), t.destino == bindparam("_d")))
            .values(unidades=bindparam("_n")),
            cambios,
        )


def _registrar_conflictos(conn: Connection, lote: Sequence[Cambio]) -> None:
    """Record every pair of ``estado`` writes that share a base (neither saw the other)."""
    if not lote:
        return
    c = m.cambios.c
    pares: dict[tuple[str, str, str], dict[str, Any]] = {}
    for cambio in lote:
        hermanos = conn.execute(
            select(c.origen, c.hlc, c.valor).where(
                c.entidad == cambio.entidad,
                c.clave == cambio.clave,
                c.campo == cambio.campo,
                c.base == cambio.base,
            )
        )
        for h in hermanos:
            if (h.hlc, h.origen) == cambio.sello:
                continue
            a = (_orden(cambio), cambio.sello, codificar(cambio.valor))
            orden_h = reglas.orden(cambio.entidad, cambio.campo, json.loads(h.valor), (h.hlc, h.origen))
            b = (orden_h, (h.hlc, h.origen), h.valor)
            ganador, perdedor = (a, b) if a[0] > b[0] else (b, a)
            clave = (cambio.clave, reglas.sello_texto(ganador[1]), reglas.sello_texto(perdedor[1]))
            pares[clave] = {
                "pedido_id": clave[0],
                "ganador": clave[1],
                "perdedor": clave[2],
                "campo": cambio.campo,
                "valor_ganador": ganador[2],
                "valor_perdedor": perdedor[2],
                "base": cambio.base,
            }
    if not pares:
        return
    t = m.conflictos.c
    existentes = conn.execute(
        select(t.pedido_id, t.ganador, t.perdedor).where(t.pedido_id.in_(sorted({k[0] for k in pares})))
    )
    for fila in existentes:
        pares.pop((fila.pedido_id, fila.ganador, fila.perdedor), None)
    if pares:
        conn.execute(insert(m.conflictos), list(pares.values()))


def recalcular_stock(conn: Connection, productos: Sequence[str]) -> None:
    """Each node's ``devueltas``, then stock = Σ (entradas − salidas + devueltas) (see sync.reglas)."""
    p, cs, it, pe = m.productos, m.contadores_stock, m.pedido_items, m.pedidos
    for parte in trozos(productos):
        # Cancelled units go back to the node that sold them: it needs a counter row to hold them.
        vendedores = conn.execute(
            select(it.c.producto_id, pe.c.nodo_origen)
            .select_from(it.join(pe, pe.c.id == it.c.pedido_id))
            .where(it.c.producto_id.in_(parte), pe.c.estado == "cancelado", pe.c.nodo_origen.is_not(None))
            .distinct()
        )
        existentes = {
            (f.producto_id, f.nodo)
            for f in conn.execute(select(cs.c.producto_id, cs.c.nodo).where(cs.c.producto_id.in_(parte)))
        }
        faltan = [{"producto_id": pid, "nodo": n} for pid, n in vendedores if (pid, n) not in existentes]
        if faltan:
            conn.execute(insert(cs), faltan)
        devueltas = (
            select(func.coalesce(func.sum(it.c.cantidad), 0))
            .select_from(it.join(pe, pe.c.id == it.c.pedido_id))
            .where(it.c.producto_id == cs.c.producto_id, pe.c.estado == "cancelado", pe.c.nodo_origen == cs.c.nodo)
            .scalar_subquery()
        )
        conn.execute(update(cs).where(cs.c.producto_id.in_(parte)).values(devueltas=devueltas))
        contadores = (
            select(func.coalesce(func.sum(cs.c.entradas - cs.c.salidas + cs.c.devueltas), 0))
            .where(cs.c.producto_id == p.c.id)
            .scalar_subquery()
        )
        conn.execute(update(p).where(p.c.id.in_(parte)).values(stock=contadores))
