"""``apply``: the one path by which changes reach the database.

Given a batch of changes that are new to this node (the caller has dropped
duplicates and kept each origin gap-free), inside one open transaction:

1. append them to the change log;
2. last-writer-wins fields: keep, per field, the batch's best write, compare
   it with the stored winner in ``sellos`` and, where it wins, write the stamp
   and the column of the materialized row (``items`` become ``pedido_items``);
   the order is :func:`sync.reglas.orden` (ranked registers such as
   ``estado`` by progress first, then the stamp); an order's ``eliminado``
   column is derived from its ``estado`` and ``eliminado_en``;
3. movements: every creation's units (an order's ``items``, a keyed
   adjustment's ``movimiento``) become rows of ``movimientos`` under the node
   that wrote them, winning creation or not;
4. stock entries: ``max`` of the stored entry and the batch's values, for
   units (``contadores_stock``) and for rights transferred (``cesiones_stock``);
5. credits: for every entity whose movements or credit-deciding fields
   (creation, ``estado``, ``devuelto``, ``firme``) the batch touched, what its
   movements are worth (:func:`sync.reglas.abono`) before and after the batch;
   the difference moves ``devueltas``, ``stock``, ``por_devolver`` and
   ``por_confirmar``. Whatever order the fields of an entity arrive in, the
   credit is a function of the state once they are all here;
6. ``estado`` and ``huella`` writes are kept in ``escrituras``; every
   concurrent pair (:func:`sync.reglas.concurrentes` for ``estado``,
   different requests for ``huella``) becomes a row of ``conflictos``,
   ordered as the merge orders them, so every node lists the same clashes
   whatever the arrival order;
7. products created in the batch get their stock computed in full.

Everything is set-based: a batch costs a handful of statements per table,
not per change, and no statement scans a table whose size grows with the
log. Every order and every merge comes this way, so its statements go
straight to the driver (``crudo``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.engine import Connection

from servidor.almacen.crudo import Crudo, crudo, dinero
from servidor.almacen.modelos import TABLAS
from sync import reglas
from sync.cambios import Cambio, codificar

# Columns whose values the driver must get converted (see ``crudo``); the vocabulary of
# ``sync.cambios`` names every other field, and only those reach the SQL below.
DINERO = {"precio", "total"}
BOOLEANOS = {"eliminado", "devuelto"}
# Fields that decide what an entity's movements are worth (see sync.reglas.abono).
ABONAN = {"pedido": {"creado_en", "estado", "devuelto", "items"}, "ajuste": {"creado_en", "firme", "movimiento"}}
# Fields whose every write is kept, to find concurrent pairs.
ESCRITAS = {"estado", "huella"}

Abonos = tuple[dict[tuple[str, str], int], dict[str, int], dict[str, int]]


def aplicar(conn: Connection, lote: Sequence[Cambio], sql: Crudo | None = None) -> None:
    if not lote:
        return
    sql = sql or crudo(conn)
    sql.muchas(
        "INSERT INTO cambios (origen, seq, hlc, entidad, clave, campo, valor, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.origen, c.seq, c.hlc, c.entidad, c.clave, c.campo, codificar(c.valor), c.base) for c in lote],
    )
    lww: list[Cambio] = []
    contadores: list[Cambio] = []
    cesiones: list[Cambio] = []
    tocadas: dict[str, set[str]] = defaultdict(set)
    for c in lote:
        if c.entidad == "stock":
            (cesiones if c.campo == "cedidas" else contadores).append(c)
            continue
        lww.append(c)
        if c.campo in ABONAN.get(c.entidad, ()):
            tocadas[c.entidad].add(c.clave)
    antes = _abonos(sql, entidades=tocadas) if tocadas else None
    altas = _aplicar_lww(sql, lww)
    _guardar_movimientos(sql, lww)
    deltas = _aplicar_contadores(sql, contadores)
    _aplicar_cesiones(sql, cesiones)
    _registrar_conflictos(sql, [c for c in lww if c.campo in ESCRITAS])
    if antes is not None:
        _mover_abonos(sql, antes, _abonos(sql, entidades=tocadas), deltas, altas)
    if altas:
        recalcular_stock(conn, sorted(altas))
    sql.muchas(
        "UPDATE productos SET stock = stock + ? WHERE id = ?",
        [(d, pid) for pid, d in sorted(deltas.items()) if d and pid not in altas],
    )


def _aplicar_lww(sql: Crudo, lote: Sequence[Cambio]) -> set[str]:
    """Apply LWW writes; answer the products whose rows this batch created."""
    mejores: dict[tuple[str, str, str], tuple[reglas.Orden, Cambio]] = {}
    for c in lote:
        k = (c.entidad, c.clave, c.campo)
        orden = reglas.orden(c.entidad, c.campo, c.valor, c.sello)
        actual = mejores.get(k)
        if actual is None or orden > actual[0]:
            mejores[k] = (orden, c)
    if not mejores:
        return set()

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
    # A ranked register's stored winner ranks by its value, which the row holds.
    rankeados = {k[1] for k in mejores if (k[0], k[2]) in reglas.POR_RANGO and k in guardados}
    if rankeados:
        for pid, estado, eliminado_en in sql.en(
            "SELECT id, estado, eliminado_en FROM pedidos WHERE id IN {en}", rankeados
        ):
            for campo, valor in (("estado", estado), ("eliminado_en", eliminado_en)):
                k = ("pedido", pid, campo)
                if k in guardados and valor is not None:
                    _, hlc, origen = guardados[k]
                    guardados[k] = reglas.orden("pedido", campo, valor, (hlc, origen))

    ganadores = [c for k, (orden, c) in mejores.items() if reglas.gana(orden, guardados.get(k))]
    if not ganadores:
        return set()
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
    ocultables: set[str] = set()
    for c in ganadores:
        if c.entidad == "pedido" and c.campo == "items":
            items[c.clave] = c.valor
            continue
        if c.entidad == "pedido" and c.campo in ("estado", "eliminado_en"):
            ocultables.add(c.clave)
        if c.entidad == "ajuste" and c.campo == "movimiento":
            filas_nuevas[(c.entidad, c.clave)].update(
                producto_id=c.valor["producto_id"], cantidad=c.valor["cantidad"]
            )
            continue
        filas_nuevas[(c.entidad, c.clave)][c.campo] = c.valor
    altas_pedidos: set[str] = set()
    altas_productos: set[str] = set()
    for entidad, tabla in TABLAS.items():
        cambios_fila = {k[1]: v for k, v in filas_nuevas.items() if k[0] == entidad}
        if entidad == "pedido":
            cambios_fila.update({pid: {} for pid in items if pid not in cambios_fila})
        altas = _escribir_filas(sql, tabla, cambios_fila)
        if entidad == "producto":
            altas_productos = altas
        elif entidad == "pedido":
            altas_pedidos = altas
    _escribir_items(sql, items, nuevos=altas_pedidos)
    if ocultables:
        _ocultar(sql, ocultables)
    return altas_productos


def _ocultar(sql: Crudo, pedidos: Iterable[str]) -> None:
    """Derive ``pedidos.eliminado`` from ``estado`` and ``eliminado_en`` (see ``sync.reglas.oculto``)."""
    filas = sql.en("SELECT id, estado, eliminado_en, eliminado FROM pedidos WHERE id IN {en}", pedidos)
    sql.muchas(
        "UPDATE pedidos SET eliminado = ? WHERE id = ?",
        [
            (int(o), pid)
            for pid, estado, eliminado_en, eliminado in filas
            if (o := reglas.oculto(estado, eliminado_en)) != bool(eliminado)
        ],
    )


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


# --- movements and what they are worth ---------------------------------------------


def _guardar_movimientos(sql: Crudo, lote: Sequence[Cambio]) -> None:
    """Record the units each creation moved, under the node that wrote it (its first write wins)."""
    movidos: dict[tuple[str, str, str], dict[str, int]] = {}
    for c in lote:
        if c.entidad == "pedido" and c.campo == "items":
            unidades: dict[str, int] = defaultdict(int)
            for item in c.valor:
                unidades[item["producto_id"]] -= item["cantidad"]
        elif c.entidad == "ajuste" and c.campo == "movimiento":
            unidades = {c.valor["producto_id"]: c.valor["cantidad"]}
        else:
            continue
        movidos.setdefault((c.entidad, c.clave, c.origen), dict(unidades))
    if not movidos:
        return
    existentes: set[tuple[str, str, str]] = set()
    for entidad in {k[0] for k in movidos}:
        claves = {k[1] for k in movidos if k[0] == entidad}
        existentes.update(
            (entidad, clave, nodo)
            for clave, nodo in sql.en(
                "SELECT DISTINCT clave, nodo FROM movimientos WHERE entidad = ? AND clave IN {en}", claves, entidad
            )
        )
    sql.muchas(
        "INSERT INTO movimientos (entidad, clave, nodo, producto_id, unidades) VALUES (?, ?, ?, ?, ?)",
        [
            (entidad, clave, nodo, pid, n)
            for (entidad, clave, nodo), unidades in sorted(movidos.items())
            if (entidad, clave, nodo) not in existentes
            for pid, n in sorted(unidades.items())
            if n
        ],
    )


_MOVIMIENTOS = {
    "pedido": (
        "SELECT mv.clave, mv.nodo, mv.producto_id, mv.unidades, s.origen, e.estado, e.devuelto, NULL"
        " FROM movimientos mv"
        " LEFT JOIN sellos s ON s.entidad = 'pedido' AND s.clave = mv.clave AND s.campo = 'creado_en'"
        " LEFT JOIN pedidos e ON e.id = mv.clave"
        " WHERE mv.entidad = 'pedido' AND mv.{columna} IN {{en}}"
    ),
    "ajuste": (
        "SELECT mv.clave, mv.nodo, mv.producto_id, mv.unidades, s.origen, NULL, 0, e.firme"
        " FROM movimientos mv"
        " LEFT JOIN sellos s ON s.entidad = 'ajuste' AND s.clave = mv.clave AND s.campo = 'creado_en'"
        " LEFT JOIN ajustes e ON e.id = mv.clave"
        " WHERE mv.entidad = 'ajuste' AND mv.{columna} IN {{en}}"
    ),
}


def _abonos(
    sql: Crudo, entidades: dict[str, set[str]] | None = None, productos: Sequence[str] | None = None
) -> Abonos:
    """What the movements of some entities (or of some products) are worth now.

    Answers the units credited per (product, node), and per product the units
    awaiting a settled cancellation (``por_devolver``) or a settled keyed
    adjustment (``por_confirmar``).
    """
    abonadas: dict[tuple[str, str], int] = defaultdict(int)
    por_devolver: dict[str, int] = defaultdict(int)
    por_confirmar: dict[str, int] = defaultdict(int)
    for entidad, texto in _MOVIMIENTOS.items():
        if productos is not None:
            filas = sql.en(texto.format(columna="producto_id"), productos)
        elif entidades and entidades.get(entidad):
            filas = sql.en(texto.format(columna="clave"), entidades[entidad])
        else:
            continue
        for _, nodo, pid, unidades, ganador, estado, devuelto, firme in filas:
            abono, devolver, confirmar = reglas.abono(unidades, nodo, ganador, estado, bool(devuelto), firme)
            if abono:
                abonadas[(pid, nodo)] += abono
            por_devolver[pid] += devolver
            por_confirmar[pid] += confirmar
    return abonadas, por_devolver, por_confirmar


def _mover_abonos(sql: Crudo, antes: Abonos, despues: Abonos, deltas: dict[str, int], altas: set[str]) -> None:
    """Move ``devueltas`` and the products' figures by what the batch changed in credits."""
    abonos = {
        k: d for k in set(antes[0]) | set(despues[0]) if (d := despues[0].get(k, 0) - antes[0].get(k, 0))
    }
    if abonos:
        _contadores_para(sql, abonos)
        sql.muchas(
            "UPDATE contadores_stock SET devueltas = devueltas + ? WHERE producto_id = ? AND nodo = ?",
            [(d, pid, nodo) for (pid, nodo), d in sorted(abonos.items())],
        )
        for (pid, _), d in abonos.items():
            deltas[pid] = deltas.get(pid, 0) + d
    apartes = []
    for pid in sorted((set(antes[1]) | set(despues[1]) | set(antes[2]) | set(despues[2])) - altas):
        devolver = despues[1].get(pid, 0) - antes[1].get(pid, 0)
        confirmar = despues[2].get(pid, 0) - antes[2].get(pid, 0)
        if devolver or confirmar:
            apartes.append((devolver, confirmar, pid))
    sql.muchas(
        "UPDATE productos SET por_devolver = por_devolver + ?, por_confirmar = por_confirmar + ? WHERE id = ?",
        apartes,
    )


def _contadores_para(
    sql: Crudo, claves: Iterable[tuple[str, str]], productos: Iterable[str] | None = None
) -> set[tuple[str, str]]:
    """Make sure each (product, node) of ``claves`` has a counter row to hold its credits.

    Answers the rows that were there already, of ``productos`` (default: the
    products of ``claves``).
    """
    claves = set(claves)
    existentes = {
        (pid, nodo)
        for pid, nodo in sql.en(
            "SELECT producto_id, nodo FROM contadores_stock WHERE producto_id IN {en}",
            {k[0] for k in claves} if productos is None else productos,
        )
    }
    sql.muchas(
        "INSERT INTO contadores_stock (producto_id, nodo, entradas, salidas, devueltas) VALUES (?, ?, 0, 0, 0)",
        sorted(claves - existentes),
    )
    return existentes


# --- stock entries -----------------------------------------------------------------


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


# --- concurrent writes ---------------------------------------------------------------


def _registrar_conflictos(sql: Crudo, lote: Sequence[Cambio]) -> None:
    """Keep every ``estado`` and ``huella`` write; record each concurrent pair in ``conflictos``.

    ``estado``: two writes neither of whose writers had applied the other.
    ``huella``: two creations of one id from different requests (a node that
    knows the id answers the first creation instead of writing a second one,
    so any two are concurrent). Each pair is found from whichever write
    arrives second, and ordered as the merge orders them.
    """
    if not lote:
        return
    sql.muchas(
        "INSERT INTO escrituras (entidad, clave, campo, origen, seq, hlc, valor, base) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(c.entidad, c.clave, c.campo, c.origen, c.seq, c.hlc, c.valor, c.base or "") for c in lote],
    )
    grupos: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in lote:
        grupos[(c.entidad, c.campo)].add(c.clave)
    hermanos: dict[tuple[str, str, str], list[tuple[str, int, int, str, str]]] = defaultdict(list)
    for (entidad, campo), claves in sorted(grupos.items()):
        for clave, origen, seq, hlc, valor, base in sql.en(
            "SELECT clave, origen, seq, hlc, valor, base FROM escrituras"
            " WHERE entidad = ? AND campo = ? AND clave IN {en}",
            claves,
            entidad,
            campo,
        ):
            hermanos[(entidad, clave, campo)].append((origen, seq, hlc, valor, base))
    pares: dict[tuple[str, str, str, str, str], tuple[Any, ...]] = {}
    for c in lote:
        este = (c.origen, c.seq, c.hlc, c.valor, c.base or "")
        for otro in hermanos[(c.entidad, c.clave, c.campo)]:
            if not _chocan(c.campo, este, otro):
                continue
            ganador, perdedor = sorted((este, otro), key=lambda w: _orden_escrita(c.entidad, c.campo, w))[::-1]
            sellos = reglas.sello_texto((ganador[2], ganador[0])), reglas.sello_texto((perdedor[2], perdedor[0]))
            clave = (c.entidad, c.clave, c.campo, *sellos)
            pares[clave] = (*clave, codificar(ganador[3]), codificar(perdedor[3]), perdedor[4])
    if not pares:
        return
    existentes = sql.en(
        "SELECT entidad, pedido_id, campo, ganador, perdedor FROM conflictos WHERE pedido_id IN {en}",
        {k[1] for k in pares},
    )
    for fila in existentes:
        pares.pop(tuple(fila), None)  # type: ignore[arg-type]
    sql.muchas(
        "INSERT INTO conflictos (entidad, pedido_id, campo, ganador, perdedor, valor_ganador, valor_perdedor, base) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        list(pares.values()),
    )


Escrita = tuple[str, int, int, str, str]  # origen, seq, hlc, valor, base


def _chocan(campo: str, a: Escrita, b: Escrita) -> bool:
    if (a[0], a[1]) == (b[0], b[1]):
        return False
    if campo == "huella":
        return a[3] != b[3]
    return reglas.concurrentes((a[0], a[1], reglas.contexto(a[4])), (b[0], b[1], reglas.contexto(b[4])))


def _orden_escrita(entidad: str, campo: str, w: Escrita) -> reglas.Orden:
    return reglas.orden(entidad, campo, w[3], (w[2], w[0]))


# --- full recomputation ----------------------------------------------------------------


def recalcular_stock(conn: Connection, productos: Sequence[str]) -> None:
    """Each node's ``devueltas``, then stock = Σ (entradas − salidas + devueltas) (see sync.reglas).

    From scratch, for products whose row this batch created (counter entries
    and credits may have arrived before the row) and for checks that the
    incremental figures are right.
    """
    sql = crudo(conn)
    abonadas, por_devolver, por_confirmar = _abonos(sql, productos=productos)
    existentes = _contadores_para(sql, abonadas, productos)
    sql.muchas(
        "UPDATE contadores_stock SET devueltas = ? WHERE producto_id = ? AND nodo = ?",
        [(abonadas.get(k, 0), *k) for k in sorted(existentes | set(abonadas))],
    )
    sumas = {
        pid: int(n)
        for pid, n in sql.en(
            "SELECT producto_id, SUM(entradas - salidas + devueltas) FROM contadores_stock"
            " WHERE producto_id IN {en} GROUP BY producto_id",
            productos,
        )
    }
    sql.muchas(
        "UPDATE productos SET stock = ?, por_devolver = ?, por_confirmar = ? WHERE id = ?",
        [(sumas.get(pid, 0), por_devolver.get(pid, 0), por_confirmar.get(pid, 0), pid) for pid in productos],
    )

