"""What the checker reads of a node once the run is over: a :class:`Foto`.

A photo is taken from the node's own database, with the node stopped, so
that it shows what the node would serve and also what the API hides:
deleted orders, their ``estado`` and the ``estado`` the delete saw
(``eliminado_en``; the ``eliminado`` column is derived from the two),
whether a cancellation's units were returned (``devuelto``), keyed stock
adjustments and whether they are settled (``firme``), the units each product
holds apart (``por_devolver``, ``por_confirmar``), and the change log.
:func:`reconstruir` replays a change log into a fresh store through
``Almacen.fusionar``, the one path by which a peer's changes are applied: if
the log and the tables of a node agree, the fresh store ends with the node's
digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from servidor.almacen import Almacen, consultas
from servidor.almacen import modelos as m
from sync.cambios import Cambio

LOTE_RECONSTRUCCION = 500
# The rebuild must accept every stamp in the log, also those of a node whose clock ran ahead.
SIN_LIMITE_DERIVA_MS = 10**12


@dataclass
class Foto:
    """A node's replicated state as the checker needs it."""

    nodo: str
    digest: str
    vector: dict[str, int]
    # id → {estado, eliminado_en, eliminado, visible, creado, devuelto, cliente_id, nodo_origen,
    #       items: [(producto_id, cantidad)]}; ``eliminado`` is the derived column as stored
    pedidos: dict[str, dict[str, Any]]
    stock: dict[str, int]  # created products' stock
    conflictos: list[dict[str, Any]]
    cambios: list[Cambio]
    digest_reconstruido: str | None = None
    lectura_api: list[str] | None = None  # ids of GET /api/pedidos, in order, as read (None: not read)
    por_devolver: dict[str, int] = field(default_factory=dict)
    por_confirmar: dict[str, int] = field(default_factory=dict)
    clientes: set[str] = field(default_factory=set)  # created clients, deleted or not
    ajustes: dict[str, dict[str, Any]] = field(default_factory=dict)  # created: id → {producto_id, cantidad, firme}


def _pedidos(conn: Connection) -> dict[str, dict[str, Any]]:
    t = m.pedidos
    pedidos = {
        f.id: {
            "estado": f.estado,
            "eliminado_en": f.eliminado_en,
            "eliminado": bool(f.eliminado),
            "visible": f.creado_en is not None and not f.eliminado,
            "creado": f.creado_en is not None,
            "devuelto": bool(f.devuelto),
            "cliente_id": f.cliente_id,
            "nodo_origen": f.nodo_origen,
            "items": [],
        }
        for f in conn.execute(select(t).order_by(t.c.id))
    }
    for pid, items in consultas.items_por_pedidos(conn, list(pedidos)).items():
        pedidos[pid]["items"] = [(i["producto_id"], int(i["cantidad"])) for i in items]
    return pedidos


def _productos(conn: Connection) -> dict[str, tuple[int, int, int]]:
    """Created products: id → (stock, por_devolver, por_confirmar)."""
    t = m.productos
    consulta = select(t.c.id, t.c.stock, t.c.por_devolver, t.c.por_confirmar).where(t.c.creado_en.is_not(None))
    return {f.id: (int(f.stock), int(f.por_devolver), int(f.por_confirmar)) for f in conn.execute(consulta)}


def _clientes(conn: Connection) -> set[str]:
    t = m.clientes
    return {f.id for f in conn.execute(select(t.c.id).where(t.c.creado_en.is_not(None)))}


def _ajustes(conn: Connection) -> dict[str, dict[str, Any]]:
    t = m.ajustes
    return {
        f.id: {"producto_id": f.producto_id, "cantidad": int(f.cantidad), "firme": bool(f.firme)}
        for f in conn.execute(select(t).where(t.c.creado_en.is_not(None)).order_by(t.c.id))
    }


def _cambios(conn: Connection) -> list[Cambio]:
    c = m.cambios.c
    return [Cambio.desde_fila(f) for f in conn.execute(select(m.cambios).order_by(c.origen, c.seq))]


async def fotografiar(almacen: Almacen) -> Foto:
    """Read a photo from an open store."""
    productos = await almacen.leer(_productos)
    return Foto(
        nodo=almacen.nodo_id,
        digest=await almacen.leer(consultas.digest),
        vector=almacen.vector,
        pedidos=await almacen.leer(_pedidos),
        stock={pid: p[0] for pid, p in productos.items()},
        por_devolver={pid: p[1] for pid, p in productos.items()},
        por_confirmar={pid: p[2] for pid, p in productos.items()},
        conflictos=await almacen.leer(consultas.conflictos),
        cambios=await almacen.leer(_cambios),
        clientes=await almacen.leer(_clientes),
        ajustes=await almacen.leer(_ajustes),
    )


async def fotografiar_base(url: str, nodo_id: str) -> Foto:
    """Open a stopped node's database, read its photo, close it."""
    almacen = await Almacen.abrir(url, nodo_id, max_deriva_ms=SIN_LIMITE_DERIVA_MS)
    try:
        return await fotografiar(almacen)
    finally:
        await almacen.cerrar()


async def reconstruir(cambios: Sequence[Cambio], carpeta: Path, nombre: str) -> str:
    """The digest of a fresh store fed ``cambios`` (a whole log), in stamp order, in batches.

    Stamps of one origin grow with its ``seq``, so batches in stamp order keep
    each origin gap-free, as ``fusionar`` requires.
    """
    ruta = carpeta / f"reconstruccion-{nombre}.db"
    ruta.unlink(missing_ok=True)
    almacen = await Almacen.abrir(f"sqlite+aiosqlite:///{ruta}", "reconstruccion", SIN_LIMITE_DERIVA_MS)
    try:
        ordenados = sorted(cambios, key=lambda c: c.sello)
        for i in range(0, len(ordenados), LOTE_RECONSTRUCCION):
            await almacen.fusionar(ordenados[i : i + LOTE_RECONSTRUCCION])
        return await almacen.leer(consultas.digest)
    finally:
        await almacen.cerrar()
