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
log (stamps are looked up by their key's prefix ``(entidad, clave)``). Every
order and every merge comes this way, so its statements go straight to the
driver (``crudo``); only the full recomputation of stock, which is rare,
goes through Core.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from servidor.almacen.crudo import Crudo, crudo, dinero, trozos
from sync import reglas
from sync.cambios import Cambio, codificar

TABLAS = {"cliente": "clientes", "producto": "productos", "pedido": "pedidos"}
# Columns whose values the driver must get converted (see ``crudo``); the vocabulary of
# ``sync.cambios`` names every other field, and only those reach the SQL below.
DINERO = {"precio", "total"}
BOOLEANOS = {"eliminado"}
TROZO = 500


def aplicar(conn: Connection, lote: Sequence[Cambio], sql: Crudo | None = None) -> None:
    if not lote:
        return
    sql = sql or crudo(conn)
    sql.muchas(
        "INSERT INTO cambios (origen, seq, hlc, entidad, clave, campo, valor, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.origen, c.seq, c.hlc, c.entidad, c.clave, c.campo, codificar(c.valor), c.base) for c in lote],
    )
    # Products whose stock is recomputed from scratch: created in this batch, or holding
    # items of an order that is or was cancelled (its units may have moved). Every other
    # product the batch touched moves by the change of its counters alone.
    completos: set[str] = set()
    lww, contadores, cesiones, estados = [], [], [], []
    for c in lote:
        if c.entidad != "stock":
            lww.append(c)
            if c.campo == "estado" and c.base:
                estados.append(c)
        elif c.campo == "cedidas":
            cesiones.append(c)
        else:
            contadores.append(c)
    _aplicar_lww(sql, lww, completos)
    deltas = _aplicar_contadores(sql, contadores)
    _aplicar_cesiones(sql, cesiones)
    _registrar_conflictos(sql, estados)
    if completos:
        recalcular_stock(conn, sorted(completos))
    sql.muchas(
        "UPDATE productos SET stock = stock + ? WHERE id = ?",
        [(d, pid) for pid, d in sorted(deltas.items()) if d and pid not in completos],
    )


def _productos_de_cancelados(sql: Crudo, pedidos: set[str]) -> set[str]:
    """Products in the items of those of ``pedidos`` that are cancelled now."""
    filas = sql.en(
        "SELECT DISTINCT producto_id FROM pedido_items WHERE pedido_id IN "
        "(SELECT id FROM pedidos WHERE estado = ? AND id IN {en})",
        pedidos,
        "cancelado",
    )
    return {f[0] for f in filas}


def _aplicar_lww(sql: Crudo, lote: Sequence[Cambio], completos: set[str]) -> None:
    """Apply LWW writes; add to ``completos`` the products whose stock must be recomputed."""
    mejores: dict[tuple[str, str, str], tuple[reglas.Orden, Cambio]] = {}
    for c in lote:
        k = (c.entidad, c.clave, c.campo)
        orden = _orden(c)
        actual = mejores.get(k)
        if actual is None or orden > actual[0]:
            mejores[k] = (orden, c)
    if not mejores:
        return

    guardados: dict[tuple[str, str, str], reglas.Orden] = {}
    # By (entidad, clave): the primary key's prefix, so an index range, never a scan of sellos.
    por_entidad: dict[str, set[str]] = defaultdict(set)
    for entidad, clave, _ in mejores:
        por_entidad[entidad].add(clave)
    for entidad, claves in sorted(por_entidad.items()):
        filas = sql.en(
            "SELECT clave, campo, hlc, origen FROM sellos WHERE entidad = ? AND clave IN {en}", claves, entidad
        )
        for clave, campo, hlc, origen in filas:
            guardados[(entidad, clave, campo)] = (0, hlc, origen)
    # A stored estado that is a cancellation outranks every later stamp that is not.
    con_estado = [k[1] for k in mejores if k[0] == "pedido" and k[2] == "estado" and k in guardados]
    if con_estado:
        for (pid,) in sql.en("SELECT id FROM pedidos WHERE estado = ? AND id IN {en}", con_estado, "cancelado"):
            _, hlc, origen = guardados[("pedido", pid, "estado")]
            guardados[("pedido", pid, "estado")] = reglas.orden("pedido", "estado", "cancelado", (hlc, origen))

    ganadores = [c for k, (orden, c) in mejores.items() if reglas.gana(orden, guardados.get(k))]
    if not ganadores:
        return
    nuevos = [c for c in ganadores if (c.entidad, c.clave, c.campo) not in guardados]
    viejos = [c for c in ganadores if (c.entidad, c.clave, c.campo) in guardados]
    sql.muchas(
        "INSERT INTO sellos (entidad, clave, campo, hlc, origen) VALUES (?, ?, ?, ?, ?)",
        [(c.entidad, c.clave, c.campo, c.hlc, c.origen) for c in nuevos],
    )
    sql.muchas(
        "UPDATE sellos SET hlc = ?, origen = ? WHERE entidad = ? AND clave = ? AND campo = ?",
        [(c.hlc, c.origen, c.entidad, c.clave, c.campo) for c in viejos],
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
        completos.update(_productos_de_cancelados(sql, previos))  # before
    altas_pedidos: set[str] = set()
    for entidad, tabla in TABLAS.items():
        cambios_fila = {k[1]: v for k, v in filas_nuevas.items() if k[0] == entidad}
        if entidad == "pedido":
            cambios_fila.update({pid: {} for pid in items if pid not in cambios_fila})
        altas = _escribir_filas(sql, tabla, cambios_fila)
        if entidad == "producto":
            completos.update(altas)
        elif entidad == "pedido":
            altas_pedidos = altas
    _escribir_items(sql, items, nuevos=altas_pedidos)
    despues = ahora | (previos & set(items))
    if despues:
        completos.update(_productos_de_cancelados(sql, despues))  # after


def _orden(c: Cambio) -> reglas.Orden:
    return reglas.orden(c.entidad, c.campo, c.valor, c.sello)


def _columna(campo: str, valor: Any) -> Any:
    if campo in DINERO:
        return dinero(valor)
    if campo in BOOLEANOS:
        return int(bool(valor))
    return valor


def _escribir_filas(sql: Crudo, tabla: str, filas: dict[str, dict[str, Any]]) -> set[str]:
    """Insert or update rows of ``tabla`` (fields named by the vocabulary); answer the ids inserted."""
    if not filas:
        return set()
    existentes = {f[0] for f in sql.en(f"SELECT id FROM {tabla} WHERE id IN {{en}}", filas)}
    por_forma: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
    altas: dict[tuple[str, ...], list[tuple[Any, ...]]] = defaultdict(list)
    for id_, valores in filas.items():
        forma = tuple(sorted(valores))
        fila = tuple(_columna(k, valores[k]) for k in forma)
        if id_ in existentes:
            if valores:
                por_forma[forma].append((*fila, id_))
        else:
            altas[forma].append((id_, *fila))
    for forma, lote in altas.items():
        columnas = ", ".join(("id", *forma))
        marcas = ", ".join("?" * (len(forma) + 1))
        sql.muchas(f"INSERT INTO {tabla} ({columnas}) VALUES ({marcas})", lote)
    for forma, lote in por_forma.items():
        asignaciones = ", ".join(f"{k} = ?" for k in forma)
        sql.muchas(f"UPDATE {tabla} SET {asignaciones} WHERE id = ?", lote)
    return set(filas) - existentes


def _escribir_items(sql: Crudo, items: dict[str, list[dict[str, Any]]], nuevos: set[str]) -> None:
    """Replace the lines of orders; an order whose row is new in this batch has none yet."""
    if not items:
        return
    viejos = set(items) - nuevos
    if viejos:
        sql.en_sin_filas("DELETE FROM pedido_items WHERE pedido_id IN {en}", viejos)
    sql.muchas(
        "INSERT INTO pedido_items (pedido_id, linea, producto_id, cantidad, precio_unitario, subtotal) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (pid, n, i["producto_id"], i["cantidad"], dinero(i["precio_unitario"]), dinero(i["subtotal"]))
            for pid, lineas in items.items()
            for n, i in enumerate(lineas, start=1)
        ],
    )


def _aplicar_contadores(sql: Crudo, lote: Sequence[Cambio]) -> dict[str, int]:
    """Stock entries are grow-only per origin: keep the max of every value seen.

    Answers, per product, how much ``entradas - salidas`` moved.
    """
    maximos: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for c in lote:
        entrada = maximos[(c.clave, c.origen)]
        entrada[c.campo] = reglas.fusionar_contador(entrada.get(c.campo), c.valor)
    if not maximos:
        return {}
    guardados = {
        (pid, nodo): {"entradas": e, "salidas": s}
        for pid, nodo, e, s in sql.en(
            "SELECT producto_id, nodo, entradas, salidas FROM contadores_stock WHERE producto_id IN {en}",
            {k[0] for k in maximos},
        )
    }
    deltas: dict[str, int] = defaultdict(int)
    altas, cambios = [], []
    for (pid, nodo), valores in maximos.items():
        previo = guardados.get((pid, nodo))
        if previo is None:
            entrada = {"entradas": 0, "salidas": 0, **valores}
            altas.append((pid, nodo, entrada["entradas"], entrada["salidas"]))
            deltas[pid] += entrada["entradas"] - entrada["salidas"]
            continue
        fusion = {k: reglas.fusionar_contador(previo[k], v) for k, v in valores.items()}
        fusion = {**previo, **fusion}
        if fusion != previo:
            deltas[pid] += (fusion["entradas"] - previo["entradas"]) - (fusion["salidas"] - previo["salidas"])
            cambios.append((fusion["entradas"], fusion["salidas"], pid, nodo))
    sql.muchas(
        "INSERT INTO contadores_stock (producto_id, nodo, entradas, salidas, devueltas) VALUES (?, ?, ?, ?, 0)", altas
    )
    sql.muchas("UPDATE contadores_stock SET entradas = ?, salidas = ? WHERE producto_id = ? AND nodo = ?", cambios)
    return deltas


def _aplicar_cesiones(sql: Crudo, lote: Sequence[Cambio]) -> None:
    """Rights transferred are grow-only per (product, origin, destination): keep the max."""
    maximos: dict[tuple[str, str, str], int] = {}
    for c in lote:
        k = (c.clave, c.origen, c.valor["destino"])
        maximos[k] = reglas.fusionar_contador(maximos.get(k), c.valor["unidades"])
    if not maximos:
        return
    guardados = {
        (p, o, d): n
        for p, o, d, n in sql.en(
            "SELECT producto_id, origen, destino, unidades FROM cesiones_stock WHERE producto_id IN {en}",
            {k[0] for k in maximos},
        )
    }
    sql.muchas(
        "INSERT INTO cesiones_stock (producto_id, origen, destino, unidades) VALUES (?, ?, ?, ?)",
        [(p, o, d, n) for (p, o, d), n in maximos.items() if (p, o, d) not in guardados],
    )
    sql.muchas(
        "UPDATE cesiones_stock SET unidades = ? WHERE producto_id = ? AND origen = ? AND destino = ?",
        [(n, p, o, d) for (p, o, d), n in maximos.items() if (p, o, d) in guardados and n > guardados[(p, o, d)]],
    )


def _registrar_conflictos(sql: Crudo, lote: Sequence[Cambio]) -> None:
    """Record every pair of ``estado`` writes that share a base (neither saw the other)."""
    if not lote:
        return
    pares: dict[tuple[str, str, str], tuple[Any, ...]] = {}
    for cambio in lote:
        hermanos = sql.filas(
            "SELECT origen, hlc, valor FROM cambios WHERE entidad = ? AND clave = ? AND campo = ? AND base = ?",
            (cambio.entidad, cambio.clave, cambio.campo, cambio.base),
        )
        for origen, hlc, valor in hermanos:
            if (hlc, origen) == cambio.sello:
                continue
            a = (_orden(cambio), cambio.sello, codificar(cambio.valor))
            orden_h = reglas.orden(cambio.entidad, cambio.campo, json.loads(valor), (hlc, origen))
            b = (orden_h, (hlc, origen), valor)
            ganador, perdedor = (a, b) if a[0] > b[0] else (b, a)
            clave = (cambio.clave, reglas.sello_texto(ganador[1]), reglas.sello_texto(perdedor[1]))
            pares[clave] = (*clave, cambio.campo, ganador[2], perdedor[2], cambio.base)
    if not pares:
        return
    existentes = sql.en(
        "SELECT pedido_id, ganador, perdedor FROM conflictos WHERE pedido_id IN {en}", {k[0] for k in pares}
    )
    for fila in existentes:
        pares.pop(tuple(fila), None)  # type: ignore[arg-type]
    sql.muchas(
        "INSERT INTO conflictos (pedido_id, ganador, perdedor, campo, valor_ganador, valor_perdedor, base) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        list(pares.values()),
    )


def recalcular_stock(conn: Connection, productos: Sequence[str]) -> None:
    """Each node's ``devueltas``, then stock = Σ (entradas − salidas + devueltas) (see sync.reglas)."""
    p, cs, it, pe = m.productos, m.contadores_stock, m.pedido_items, m.pedidos
    for parte in trozos(productos, TROZO):
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
