"""The checker's ``estado`` and ``retroceso``: an order's life only moves forward, and every clash is listed.

``estado`` is a max-register over ``pendiente < confirmado < cancelado <
enviado < entregado`` (``sync.reglas``). From the nodes' photos:

- each order has the same ``estado`` on every node, and it is the most
  advanced value any write of the node's log gave it;
- two ``estado`` writes of one order are *concurrent* when neither writer
  had seen the other (:func:`sync.reglas.concurrentes` on each write's
  ``(origen, seq, contexto(base))``); every concurrent pair is a row of
  ``conflictos``, every ``estado`` row of ``conflictos`` is such a pair, and
  the rows are the same on every node. Which of a pair is named the winner
  is the merge rule's business.

From the readings (``Lectura``: answers to the workload and the watcher's
reads), ``retroceso``: no node ever showed an order less advanced than it
had shown it before. A reading counts as *after* another only when it was
sent once the other had been answered; overlapping reads are not ordered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sync import reglas
from sync.cambios import Cambio
from tests.caos.foto import Foto
from tests.caos.vigia import Lectura

if TYPE_CHECKING:
    from tests.caos.verificador import Entrada, Informe

Par = tuple[str, frozenset[str]]  # order id, the two writes' stamps


def verificar_estados(e: Entrada, inf: Informe) -> None:
    ids = sorted({pid for f in e.fotos for pid, p in f.pedidos.items() if p["creado"]})
    for pid in ids:
        estados = {f.nodo: f.pedidos.get(pid, {}).get("estado") for f in e.fotos}
        if len(set(estados.values())) > 1:
            inf.violar("estado", f"order {pid} has different estado on different nodes: {estados}")
    filas = {f.nodo: sorted(tuple(sorted(c.items())) for c in f.conflictos) for f in e.fotos}
    if len({tuple(v) for v in filas.values()}) > 1:
        inf.violar("estado", f"conflictos differ between nodes: { ({n: len(v) for n, v in filas.items()}) } rows")
    for foto in e.fotos:
        escrituras: dict[str, list[Cambio]] = defaultdict(list)
        for c in foto.cambios:
            if c.entidad == "pedido" and c.campo == "estado":
                escrituras[c.clave].append(c)
        _valores(inf, foto, escrituras)
        _choques(inf, foto, escrituras)
    _retrocesos(e, inf)


def _valores(inf: Informe, foto: Foto, escrituras: dict[str, list[Cambio]]) -> None:
    for pid, p in foto.pedidos.items():
        if not p["creado"]:
            continue
        valores = {c.valor for c in escrituras[pid]}
        if p["estado"] not in valores:
            inf.violar("estado", f"{foto.nodo}: order {pid} is {p['estado']!r}, a value no write gave it")
            continue
        mayor = max(valores, key=lambda v: reglas.RANGO.get(v, -1))
        if reglas.RANGO.get(mayor, -1) > reglas.RANGO.get(p["estado"], -1):
            inf.violar("estado", f"{foto.nodo}: order {pid} is {p['estado']!r}, yet a write gave it {mayor!r}")


def _choques(inf: Informe, foto: Foto, escrituras: dict[str, list[Cambio]]) -> None:
    esperados: set[Par] = set()
    for pid, lista in escrituras.items():
        try:
            causas = [(c.origen, c.seq, reglas.contexto(c.base)) for c in lista]
        except ValueError as error:
            inf.violar("estado", f"{foto.nodo}: an estado write of order {pid} has an unreadable base: {error}")
            continue
        for i, a in enumerate(causas):
            for j in range(i + 1, len(causas)):
                if reglas.concurrentes(a, causas[j]):
                    esperados.add((pid, frozenset((_sello(lista[i]), _sello(lista[j])))))
    registrados = {_par(c) for c in foto.conflictos if c.get("campo", "estado") == "estado"}
    inf.choques = max(inf.choques, len(esperados))
    for pid, par in sorted(esperados - registrados, key=str)[:10]:
        inf.violar("estado", f"{foto.nodo}: clash on order {pid} between {sorted(par)} not recorded")
    for pid, par in sorted(registrados - esperados, key=str)[:10]:
        inf.violar("estado", f"{foto.nodo}: recorded clash on order {pid} {sorted(par)} is no concurrent pair")


def _sello(c: Cambio) -> str:
    return reglas.sello_texto(c.sello)


def _par(fila: dict[str, Any]) -> Par:
    return fila["pedido_id"], frozenset((fila["ganador"], fila["perdedor"]))


def _retrocesos(e: Entrada, inf: Informe) -> None:
    inf.lecturas = len(e.lecturas)
    if not e.lecturas:
        return
    t0 = min(lec.inicio for lec in e.lecturas)
    por_orden: dict[tuple[str, str], list[Lectura]] = defaultdict(list)
    for lec in e.lecturas:
        por_orden[(lec.nodo, lec.pedido_id)].append(lec)
    for (nodo, pid), lecturas in sorted(por_orden.items()):
        for antes, despues in _hacia_atras(lecturas):
            inf.retrocesos += 1
            if inf.retrocesos <= 10:
                inf.violar(
                    "retroceso",
                    f"{nodo} showed order {pid} as {despues.estado!r} at {despues.inicio - t0:.3f} s, "
                    f"after showing it {antes.estado!r} at {antes.fin - t0:.3f} s",
                )


def _hacia_atras(lecturas: Sequence[Lectura]) -> list[tuple[Lectura, Lectura]]:
    """Each reading that ranks below the most advanced one answered before it was sent, with that one."""
    por_fin = sorted(lecturas, key=lambda lec: lec.fin)
    hallados: list[tuple[Lectura, Lectura]] = []
    mejor: Lectura | None = None
    j = 0
    for lec in sorted(lecturas, key=lambda lec: lec.inicio):
        while j < len(por_fin) and por_fin[j].fin < lec.inicio:
            if mejor is None or _rango(por_fin[j]) > _rango(mejor):
                mejor = por_fin[j]
            j += 1
        if mejor is not None and _rango(lec) < _rango(mejor):
            hallados.append((mejor, lec))
    return hallados


def _rango(lec: Lectura) -> int:
    return reglas.RANGO.get(lec.estado, -1)
