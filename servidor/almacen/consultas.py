"""Reads of the materialized state, shaped as plain dicts.

An entity is visible once its creation has been applied (``creado_en`` is
set) and until it is deleted (tombstone). Batch readers (``*_por_ids``) serve
the GraphQL loaders, so that a list of orders with their clients and items
costs a fixed number of statements. Each reader is plain code on a
``Connection``, run through ``Almacen.leer`` (or inside a write, on
``tx.conn``).

List readers take an optional page (``limite`` rows after skipping
``desde``, in the list's order); without ``limite`` they read everything,
which only internal callers do: the APIs always ask for a page.
"""

from __future__ import annotations

import functools
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from servidor.almacen import modelos as m
from servidor.almacen.crudo import a_dinero, crudo, trozos

CAMPOS_CLIENTE = ("id", "nombre", "email", "telefono", "direccion", "creado_en")
CAMPOS_PRODUCTO = ("id", "nombre", "descripcion", "precio", "stock", "por_devolver", "por_confirmar", "creado_en")
CAMPOS_PEDIDO = ("id", "cliente_id", "estado", "total", "creado_en", "nodo_origen")
CAMPOS_ITEM = ("producto_id", "cantidad", "precio_unitario", "subtotal")


def _visibles(tabla: Any) -> Any:
    condicion = tabla.c.creado_en.is_not(None)
    if "eliminado" in tabla.c:
        condicion = condicion & (tabla.c.eliminado == False)  # noqa: E712
    return condicion


def _fila(fila: Any, campos: Sequence[str]) -> dict[str, Any]:
    return {k: getattr(fila, k) for k in campos}


@functools.cache
def _lector_por_ids(tabla: Any, campos: tuple[str, ...], eliminados: bool) -> tuple[str, Any]:
    """The ``SELECT`` of ``campos`` of the rows whose id is in a list, and the converter of each column."""
    condicion = "creado_en IS NOT NULL"
    if not eliminados and "eliminado" in tabla.c:
        condicion += " AND eliminado = 0"
    texto = f"SELECT {', '.join(campos)} FROM {tabla.name} WHERE id IN {{en}} AND {condicion}"
    return texto, tuple(a_dinero if isinstance(tabla.c[k].type, m.Dinero) else None for k in campos)


def _convertir(fila: Any, campos: Sequence[str], conversores: Sequence[Any]) -> dict[str, Any]:
    return {k: (v if f is None else f(v)) for k, v, f in zip(campos, fila, conversores, strict=True)}


def _por_ids(
    conn: Connection, tabla: Any, campos: tuple[str, ...], ids: Sequence[str], eliminados: bool = False
) -> dict[str, dict[str, Any]]:
    """Rows by id, straight through the driver (``crudo``): every write reads one back this way."""
    texto, conversores = _lector_por_ids(tabla, campos, eliminados)
    return {f[0]: _convertir(f, campos, conversores) for f in crudo(conn).en(texto, ids)}


def _pagina(consulta: Any, limite: int | None, desde: int) -> Any:
    return consulta if limite is None else consulta.limit(limite).offset(desde)


def clientes(conn: Connection, limite: int | None = None, desde: int = 0) -> list[dict[str, Any]]:
    t = m.clientes
    filas = conn.execute(_pagina(select(t).where(_visibles(t)).order_by(t.c.creado_en, t.c.id), limite, desde))
    return [_fila(f, CAMPOS_CLIENTE) for f in filas]


def clientes_por_ids(conn: Connection, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    return _por_ids(conn, m.clientes, CAMPOS_CLIENTE, ids)


def cliente(conn: Connection, id: str) -> dict[str, Any] | None:
    return (clientes_por_ids(conn, [id])).get(id)


def productos(conn: Connection, limite: int | None = None, desde: int = 0) -> list[dict[str, Any]]:
    t = m.productos
    filas = conn.execute(_pagina(select(t).where(_visibles(t)).order_by(t.c.creado_en, t.c.id), limite, desde))
    lista = [_fila(f, CAMPOS_PRODUCTO) for f in filas]
    return _con_derechos(conn, lista, todos=limite is None)


def productos_por_ids(conn: Connection, ids: Sequence[str], con_derechos: bool = True) -> dict[str, dict[str, Any]]:
    encontrados = _por_ids(conn, m.productos, CAMPOS_PRODUCTO, ids)
    if con_derechos:
        _con_derechos(conn, list(encontrados.values()))
    return encontrados


def _con_derechos(conn: Connection, productos: list[dict[str, Any]], todos: bool = False) -> list[dict[str, Any]]:
    """Add to each product its ``derechos``: units each node may sell, by node id."""
    por_producto = derechos(conn, None if todos else [p["id"] for p in productos])
    for p in productos:
        p["derechos"] = por_producto.get(p["id"], {})
    return productos


# A node's rights to each product (see ``derechos``): its counter entry, plus what others
# transferred to it, minus what it transferred.
_PROPIOS = (
    "SELECT p.id,"
    " COALESCE((SELECT cs.entradas - cs.salidas + cs.devueltas FROM contadores_stock cs"
    " WHERE cs.producto_id = p.id AND cs.nodo = ?), 0)"
    " + COALESCE((SELECT SUM(ce.unidades) FROM cesiones_stock ce WHERE ce.producto_id = p.id AND ce.destino = ?), 0)"
    " - COALESCE((SELECT SUM(ce.unidades) FROM cesiones_stock ce WHERE ce.producto_id = p.id AND ce.origen = ?), 0)"
    " FROM productos p WHERE p.id IN {en}"
)


def derechos_propios(conn: Connection, productos: Sequence[str], nodo: str) -> dict[str, int]:
    """``nodo``'s rights to each of ``productos``, in one statement (a sale's check; see :func:`derechos`)."""
    return {pid: int(n) for pid, n in crudo(conn).en(_PROPIOS, productos, nodo, nodo, nodo)}


def derechos(conn: Connection, productos: Sequence[str] | None) -> dict[str, dict[str, int]]:
    """Per product, each node's rights to its units (``None``: every product).

    ``entradas − salidas + devueltas`` of the node's counter entry, plus the
    rights others transferred to it, minus those it transferred (see
    ``sync.reglas``). They add up to the product's stock.
    """
    cs, ce = m.contadores_stock.c, m.cesiones_stock.c
    suma: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    partes: Iterable[Sequence[str] | None] = (
        [None] if productos is None else trozos(sorted(set(productos)))
    )
    for parte in partes:
        propias = select(cs.producto_id, cs.nodo, cs.entradas - cs.salidas + cs.devueltas)
        cedidas = select(ce.producto_id, ce.origen, ce.destino, ce.unidades)
        if parte is not None:
            propias = propias.where(cs.producto_id.in_(parte))
            cedidas = cedidas.where(ce.producto_id.in_(parte))
        for pid, nodo, unidades in conn.execute(propias):
            suma[pid][nodo] += int(unidades)
        for pid, origen, destino, unidades in conn.execute(cedidas):
            suma[pid][origen] -= unidades
            suma[pid][destino] += unidades
    return {pid: dict(sorted(por_nodo.items())) for pid, por_nodo in suma.items()}


def producto(conn: Connection, id: str) -> dict[str, Any] | None:
    return (productos_por_ids(conn, [id])).get(id)


def items_por_pedidos(conn: Connection, ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    filas = crudo(conn).en(
        "SELECT pedido_id, producto_id, cantidad, precio_unitario, subtotal FROM pedido_items"
        " WHERE pedido_id IN {en} ORDER BY pedido_id, linea",
        ids,
    )
    for pedido_id, producto_id, cantidad, precio, subtotal in filas:
        items[pedido_id].append(
            {
                "producto_id": producto_id,
                "cantidad": cantidad,
                "precio_unitario": a_dinero(precio),
                "subtotal": a_dinero(subtotal),
            }
        )
    return items


def pedidos(
    conn: Connection,
    estado: str | None = None,
    cliente_id: str | None = None,
    con_items: bool = True,
    limite: int | None = None,
    desde: int = 0,
) -> list[dict[str, Any]]:
    t = m.pedidos
    consulta = select(t).where(_visibles(t))
    if estado is not None:
        consulta = consulta.where(t.c.estado == estado)
    if cliente_id is not None:
        consulta = consulta.where(t.c.cliente_id == cliente_id)
    consulta = _pagina(consulta.order_by(t.c.creado_en, t.c.id), limite, desde)
    lista = [_fila(f, CAMPOS_PEDIDO) for f in conn.execute(consulta)]
    if con_items and lista:
        items = _items_de_todos(conn, consulta)
        for p in lista:
            p["items"] = items.get(p["id"], [])
    return lista


def _items_de_todos(conn: Connection, consulta: Any) -> dict[str, list[dict[str, Any]]]:
    """Items of every order a list selected, in one statement."""
    # Through a derived table: MariaDB refuses LIMIT directly inside IN (...).
    seleccion = consulta.subquery()
    ids = select(seleccion.c.id).scalar_subquery()
    t = m.pedido_items
    items: dict[str, list[dict[str, Any]]] = defaultdict(list)
    filas = conn.execute(select(t).where(t.c.pedido_id.in_(ids)).order_by(t.c.pedido_id, t.c.linea))
    for f in filas:
        items[f.pedido_id].append(_fila(f, CAMPOS_ITEM))
    return items


def pedidos_por_ids(conn: Connection, ids: Sequence[str], eliminados: bool = False) -> dict[str, dict[str, Any]]:
    """Orders by id with their items; ``eliminados`` includes deleted ones (for audits)."""
    encontrados = _por_ids(conn, m.pedidos, CAMPOS_PEDIDO, ids, eliminados)
    items = items_por_pedidos(conn, list(encontrados))
    for id_, p in encontrados.items():
        p["items"] = items.get(id_, [])
    return encontrados


def pedido(conn: Connection, id: str) -> dict[str, Any] | None:
    return (pedidos_por_ids(conn, [id])).get(id)


def conflictos(conn: Connection, limite: int | None = None, desde: int = 0) -> list[dict[str, Any]]:
    t = m.conflictos
    orden = (t.c.pedido_id, t.c.entidad, t.c.campo, t.c.ganador, t.c.perdedor)
    filas = conn.execute(_pagina(select(t).order_by(*orden), limite, desde))
    return [dict(f._mapping) for f in filas]


def huella(conn: Connection, entidad: str, id: str) -> str | None:
    """The request fingerprint of the keyed creation of entity ``id`` here, deleted or not.

    None when no creation of it is here, or only part of one: a keyed
    creation always writes its fingerprint, so a row without one is a
    creation whose changes have not all arrived yet.
    """
    filas = crudo(conn).filas(
        f"SELECT huella FROM {m.TABLAS[entidad]} WHERE id = ? AND creado_en IS NOT NULL", (id,)
    )
    return str(filas[0][0]) if filas and filas[0][0] is not None else None


def ajuste(conn: Connection, id: str) -> dict[str, Any] | None:
    filas = crudo(conn).filas(
        "SELECT id, producto_id, cantidad, firme FROM ajustes WHERE id = ? AND creado_en IS NOT NULL", (id,)
    )
    if not filas:
        return None
    id_, producto_id, cantidad, firme = filas[0]
    return {"id": id_, "producto_id": producto_id, "cantidad": cantidad, "firme": firme}


def por_asentar(conn: Connection) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """Entities whose units wait until every node has them (see ``sync.reglas``), with the writes to wait for.

    Cancelled orders not yet ``devuelto``, with their cancellations; keyed
    adjustments that add units and are not yet ``firme``, with their
    creations (see :func:`ganador` for which one counts).
    """
    sql = crudo(conn)
    esperan: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    pedidos = [f[0] for f in sql.filas("SELECT id FROM pedidos WHERE estado = 'cancelado' AND devuelto = 0")]
    for clave, origen, seq in sql.en(
        "SELECT clave, origen, seq FROM escrituras"
        " WHERE entidad = 'pedido' AND campo = 'estado' AND valor = 'cancelado' AND clave IN {en}",
        pedidos,
    ):
        esperan[("pedido", clave)].append((origen, int(seq)))
    ajustes = [f[0] for f in sql.filas("SELECT id FROM ajustes WHERE firme IS NULL AND cantidad > 0")]
    for clave, origen, seq in sql.en(
        "SELECT clave, origen, seq FROM escrituras WHERE entidad = 'ajuste' AND campo = 'huella' AND clave IN {en}",
        ajustes,
    ):
        esperan[("ajuste", clave)].append((origen, int(seq)))
    return dict(esperan)


def ganador(conn: Connection, entidad: str, id: str) -> str | None:
    """The node whose creation of ``entidad`` ``id`` won here (the origin of its creation's stamp)."""
    filas = crudo(conn).filas(
        "SELECT origen FROM sellos WHERE entidad = ? AND clave = ? AND campo = 'creado_en'", (entidad, id)
    )
    return str(filas[0][0]) if filas else None


def cuenta_cambios(conn: Connection) -> int:
    return int((conn.execute(select(func.count()).select_from(m.cambios))).scalar_one())


def cambios_de(conn: Connection, origen: str) -> list[Any]:
    c = m.cambios.c
    return list(conn.execute(select(m.cambios).where(c.origen == origen).order_by(c.seq)))


# Tables that make up the replicated state, with their sort keys. ``sellos``
# is included: equal rows with different winning stamps are not converged.
_ESTADO = (
    (m.clientes, ("id",)),
    (m.productos, ("id",)),
    (m.pedidos, ("id",)),
    (m.pedido_items, ("pedido_id", "linea")),
    (m.contadores_stock, ("producto_id", "nodo")),
    (m.cesiones_stock, ("producto_id", "origen", "destino")),
    (m.sellos, ("entidad", "clave", "campo")),
    (m.ajustes, ("id",)),
    (m.movimientos, ("entidad", "clave", "nodo", "producto_id")),
    (m.conflictos, ("entidad", "pedido_id", "campo", "ganador", "perdedor")),
)


def digest(conn: Connection) -> str:
    """Canonical digest of the replicated state: equal on converged nodes."""
    h = hashlib.sha256()
    for tabla, orden in _ESTADO:
        h.update(tabla.name.encode())
        filas = conn.execute(select(tabla).order_by(*(tabla.c[k] for k in orden)))
        for f in filas:
            h.update(repr(tuple(_canonico(v) for v in f)).encode())
    return h.hexdigest()


def _canonico(v: Any) -> Any:
    # Backends return money, booleans and integers in different Python types.
    if isinstance(v, bool):
        return int(v)
    return str(v) if v is not None else None
