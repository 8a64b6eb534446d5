"""The checker's ``idempotencia``: every create sent with a key made its entity at most once, by the key.

Creates carry an ``Idempotency-Key`` and the entity's id is a function of it
(``servidor.dominio.ids.id_de_clave``), so the checker knows each create's
id before any answer. On every node:

- the entity of a create that succeeded is there (orders: see ``pedidos``,
  which counts them), and its answer named the id the key gives;
- the entity of a create refused on every attempt, or refused by a healed
  cluster, is nowhere;
- a keyed restock's adjustment moves the units and product of its request,
  and a product created with units has exactly one adjustment of them;
- every client, product and adjustment is one the catalogue or a create
  could have made; no clash of fingerprints is listed (each key was sent
  with one request only), and no first sending of a key was answered as a
  replay, nor any sending refused as another request's.

That the units of a keyed order or restock count once is the business of
``unidades``, which counts them from the entities found here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from servidor.dominio.ids import id_de_clave
from tests.caos.carga import CREACIONES, FALLIDA, OK, Operacion
from tests.caos.foto import Foto

if TYPE_CHECKING:
    from tests.caos.verificador import Entrada, Informe

# A product created with units moves them in a keyed adjustment of its own (``crear_producto``).
STOCK_DE_PRODUCTO = "producto-stock"


def creaciones(e: Entrada) -> Iterator[tuple[Operacion, str, str]]:
    """Each create of the history sent with a key: (operation, entity kind, the id its key gives)."""
    for op in e.historia:
        if op.clave is not None and op.tipo in CREACIONES:
            entidad = CREACIONES[op.tipo]
            yield op, entidad, id_de_clave(entidad, op.clave)


def _presentes(foto: Foto, entidad: str) -> set[str]:
    if entidad == "pedido":
        return {pid for pid, p in foto.pedidos.items() if p["creado"]}
    return {"cliente": foto.clientes, "producto": set(foto.stock), "ajuste": set(foto.ajustes)}[entidad]


def verificar_claves(e: Entrada, inf: Informe) -> None:
    ops = list(creaciones(e))
    inf.con_clave = len(ops)
    inf.reenviadas = sum(len(op.intentos) > 1 for op, _, _ in ops)
    inf.repeticiones = sum(i.repetida for op, _, _ in ops for i in op.intentos)
    inf.tras_curar = sum(any(i.curado for i in op.intentos) for op, _, _ in ops)
    for op, _, id in ops:
        if op.respuesta_id is not None and op.respuesta_id != id:
            inf.violar("idempotencia", f"operation {op.n} (key {op.clave}) was answered {op.respuesta_id}, not {id}")
        if op.intentos and op.intentos[0].repetida:
            inf.violar("idempotencia", f"the first sending of key {op.clave} was answered as a replay")
        if any("IDEMPOTENCIA_CONFLICTO" in i.detalle for i in op.intentos):
            inf.violar("idempotencia", f"key {op.clave}, always sent with one request, was refused as another's")
    for foto in e.fotos:
        _en_foto(e, inf, foto, ops)


def _en_foto(e: Entrada, inf: Informe, foto: Foto, ops: list[tuple[Operacion, str, str]]) -> None:
    posibles: dict[str, set[str]] = {"cliente": set(), "producto": set(e.stock_inicial), "ajuste": set()}
    for op, entidad, id in ops:
        presente = id in _presentes(foto, entidad)
        if op.resultado != FALLIDA:
            posibles.setdefault(entidad, set()).add(id)
        if op.resultado == OK and not presente and entidad != "pedido":
            inf.violar("idempotencia", f"{foto.nodo}: {entidad} {id} of acknowledged key {op.clave} is missing")
        if op.resultado == FALLIDA and presente:
            inf.violar("idempotencia", f"{foto.nodo}: {entidad} {id} exists, but every create of key {op.clave} failed")
        if entidad == "ajuste" and presente:
            _ajuste(inf, foto, id, op.datos["producto_id"], int(op.datos["cantidad"]), op.clave)
        if entidad == "producto":
            assert op.clave is not None
            ajuste, unidades = id_de_clave(STOCK_DE_PRODUCTO, op.clave), int(op.datos.get("stock") or 0)
            if unidades and op.resultado != FALLIDA:
                posibles["ajuste"].add(ajuste)
            if presente and unidades:
                _ajuste(inf, foto, ajuste, id, unidades, op.clave)
            elif ajuste in foto.ajustes:
                como = "was created without units" if presente else "does not exist"
                inf.violar("idempotencia", f"{foto.nodo}: product {id} {como}, yet adjustment {ajuste} adds to it")
    for entidad, hay in (("cliente", foto.clientes), ("producto", set(foto.stock)), ("ajuste", set(foto.ajustes))):
        if entidad == "cliente" and e.clientes_iniciales is None:
            continue
        explicables = posibles[entidad] | (set(e.clientes_iniciales or ()) if entidad == "cliente" else set())
        for id in sorted(hay - explicables)[:10]:
            inf.violar("idempotencia", f"{foto.nodo}: {entidad} {id} is one no operation could have made")
    huellas = [c for c in foto.conflictos if c.get("campo") == "huella"]
    if huellas:
        ids = sorted({c["pedido_id"] for c in huellas})[:3]
        inf.violar("idempotencia", f"{foto.nodo}: {len(huellas)} fingerprint clash(es) listed, e.g. {ids}")


def _ajuste(inf: Informe, foto: Foto, id: str, producto: str, cantidad: int, clave: str | None) -> None:
    ajuste = foto.ajustes.get(id)
    if ajuste is None:
        inf.violar("idempotencia", f"{foto.nodo}: the adjustment {id} of key {clave} is missing")
    elif (ajuste["producto_id"], ajuste["cantidad"]) != (producto, cantidad):
        inf.violar(
            "idempotencia",
            f"{foto.nodo}: adjustment {id} of key {clave} moves {ajuste['cantidad']} of {ajuste['producto_id']}, "
            f"asked {cantidad} of {producto}",
        )
