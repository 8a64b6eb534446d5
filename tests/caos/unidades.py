"""The checker's ``stock`` and ``envio``: every unit accounted for, on every node.

Maelstrom's pn-counter, with the rules of ``sync.reglas`` (credits). Per
product, from the history and each node's photo:

- added: the catalogue's units; restocks sent without a key, all ok ones
  and any subset of the uncertain ones; keyed adjustments found in the
  photo, a removal at once and an addition once it is ``firme`` (until then
  its units are ``por_confirmar``);
- sold: the units of every order in the photo, once each (however many
  nodes took its key), except a cancelled one's: those are credited back
  once the cancellation is settled (``devuelto``) and shown ``por_devolver``
  until then;

so ``stock`` must lie in ``initial + added − sold`` (a range only as wide as
the uncertain unkeyed restocks), ``por_devolver`` and ``por_confirmar`` must
equal what waits, and no stock is ever negative, neither in a photo nor in
any answer during the run.

``envio``: goods that left cannot come back. An order that is ``enviado`` or
``entregado`` is never ``devuelto``, and a product whose stock is above what
its shipped orders (counted as sold) allow may have had their units credited.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING

from sync.reglas import ENVIADOS
from tests.caos.carga import FALLIDA, OK
from tests.caos.foto import Foto

if TYPE_CHECKING:
    from tests.caos.verificador import Entrada, Informe


def verificar_unidades(e: Entrada, inf: Informe) -> None:
    seguro: Counter[str] = Counter()
    arriba: Counter[str] = Counter()
    abajo: Counter[str] = Counter()
    for op in e.historia:
        if op.stock_visto is not None and op.stock_visto < 0:
            inf.violar("stock", f"{op.nodo} answered operation {op.n} with negative stock {op.stock_visto}")
        if op.tipo != "reponer" or op.clave is not None or op.resultado == FALLIDA:
            continue  # a keyed restock counts by its adjustment, found in the photo
        pid, n = op.datos["producto_id"], int(op.datos["cantidad"])
        if op.resultado == OK:
            seguro[pid] += n
        elif n > 0:
            arriba[pid] += n
        else:
            abajo[pid] += n
    for foto in e.fotos:
        _en_foto(e, inf, foto, seguro, arriba, abajo)


def _en_foto(
    e: Entrada, inf: Informe, foto: Foto, seguro: Counter[str], arriba: Counter[str], abajo: Counter[str]
) -> None:
    vendidos: Counter[str] = Counter()
    por_devolver: Counter[str] = Counter()
    enviados: dict[str, list[str]] = defaultdict(list)
    for id, p in sorted(foto.pedidos.items()):
        if not p["creado"]:
            continue
        if p["estado"] in ENVIADOS and p["devuelto"]:
            inf.violar("envio", f"{foto.nodo}: order {id} is {p['estado']!r}, yet its units were returned")
        for pid, cantidad in p["items"]:
            if p["estado"] != "cancelado" or not p["devuelto"]:
                vendidos[pid] += cantidad
            if p["estado"] == "cancelado" and not p["devuelto"]:
                por_devolver[pid] += cantidad
            if p["estado"] in ENVIADOS:
                enviados[pid].append(id)
    ajustados: Counter[str] = Counter()
    por_confirmar: Counter[str] = Counter()
    for a in foto.ajustes.values():
        if a["cantidad"] < 0 or a["firme"]:
            ajustados[a["producto_id"]] += a["cantidad"]
        else:
            por_confirmar[a["producto_id"]] += a["cantidad"]
    for pid in sorted(set(e.stock_inicial) | set(foto.stock)):
        stock = foto.stock.get(pid)
        if stock is None:
            inf.violar("stock", f"{foto.nodo}: product {pid} is missing")
            continue
        if stock < 0:
            inf.violar("stock", f"{foto.nodo}: product {pid} has negative stock {stock}")
        base = e.stock_inicial.get(pid, 0) + seguro[pid] + ajustados[pid] - vendidos[pid]
        minimo, maximo = base + abajo[pid], base + arriba[pid]
        if not minimo <= stock <= maximo:
            inf.violar(
                "stock",
                f"{foto.nodo}: product {pid} has {stock} units, allowed {minimo}..{maximo} "
                f"(initial {e.stock_inicial.get(pid, 0)}, added {seguro[pid] + ajustados[pid]}, sold {vendidos[pid]})",
            )
            if stock > maximo and enviados[pid]:
                inf.violar(
                    "envio",
                    f"{foto.nodo}: product {pid} has {stock - maximo} unit(s) more than allowed with its "
                    f"{len(enviados[pid])} shipped order(s) counted as sold, e.g. {enviados[pid][:3]}",
                )
        for nombre, visto, esperado in (
            ("por_devolver", foto.por_devolver.get(pid, 0), por_devolver[pid]),
            ("por_confirmar", foto.por_confirmar.get(pid, 0), por_confirmar[pid]),
        ):
            if visto != esperado:
                inf.violar("stock", f"{foto.nodo}: product {pid} has {nombre} {visto}, expected {esperado}")
