"""The checker: a verdict on a run from its history and the nodes' photos.

Pure: :func:`verificar` takes what the run recorded (:class:`Entrada`) and
answers an :class:`Informe`; nothing here touches a node. The invariants of
``docs/DESIGN.md``, as checked after the faults stop and the cluster heals:

- ``convergencia``: the cluster settled within the deadline, and every node
  holds the same digest and version vector.
- ``pedidos`` (Jepsen's set-full): every creation answered ok is on every
  node (else *lost*); no order shows twice in a node's list, nor more copies
  of one signature (node, client, items) than creations could have made
  (*duplicated*); an order no operation could have made is a violation.
  Creations of uncertain outcome found in the state are *recovered*, those
  found nowhere are *never read*: both are allowed. An order is hidden as
  deleted only if a deletion of it was answered ok or left uncertain.
- ``stock`` (Maelstrom's pn-counter): per product, the converged stock lies
  in the range the restocks allow — all ok ones, any subset of the uncertain
  ones — minus the units of the orders in the state that are not cancelled;
  and it is never negative, neither converged nor in any answer during the run.
- ``estado``: each order has the same ``estado`` on every node, a value some
  write of the log gave it; every clash — two writes of one order's
  ``estado`` made from the same base, neither having seen the other — is
  recorded in ``conflictos`` on every node, and every recorded clash is such
  a pair. Which write wins is the merge rule's business, not the checker's.
- ``registro``: replaying a node's change log into a fresh store gives the
  node's digest (the log and the tables agree).
- ``reloj``: a node ahead by less than ``max_clock_drift_ms`` is never
  refused; one further ahead is refused (``DERIVA_RELOJ``) while it is.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.reglas import sello_texto
from tests.caos.carga import FALLIDA, OK, Operacion, resumen
from tests.caos.foto import Foto

Firma = tuple[str, str, tuple[tuple[str, int], ...]]


@dataclass(frozen=True)
class Violacion:
    invariante: str
    detalle: str

    def __str__(self) -> str:
        return f"[{self.invariante}] {self.detalle}"


@dataclass
class Entrada:
    """Everything the verdict needs from a run."""

    historia: Sequence[Operacion]
    fotos: Sequence[Foto]
    stock_inicial: dict[str, int]
    convergencia_s: float | None  # None: no convergence within the deadline
    reloj: str | None = None  # "leve", "lejano" or None: the clock fault of the run
    rechazos_deriva: int = 0  # DERIVA_RELOJ refusals the nodes logged
    mensajes: int = 0  # websocket messages between nodes


@dataclass
class Informe:
    operaciones: dict[str, Counter[str]]
    reconocidos: int = 0
    perdidos: int = 0
    duplicados: int = 0
    nunca_leidos: int = 0
    recuperados: int = 0
    choques: int = 0
    convergencia_s: float | None = None
    mensajes_por_op: float = 0.0
    violaciones: list[Violacion] = field(default_factory=list)

    @property
    def valido(self) -> bool:
        return not self.violaciones

    def violar(self, invariante: str, detalle: str) -> None:
        self.violaciones.append(Violacion(invariante, detalle))

    def tabla(self) -> str:
        """The run's figures as a plain-text table."""
        filas = [f"{'operation':<22}{'invoked':>8}{'ok':>7}{'failed':>8}{'unknown':>9}"]
        total: Counter[str] = Counter()
        for tipo, c in self.operaciones.items():
            total.update(c)
            filas.append(_fila(tipo, c))
        filas.append(_fila("total", total))
        conv = f"{self.convergencia_s:.2f} s after heal" if self.convergencia_s is not None else "NOT CONVERGED"
        filas += [
            f"orders acknowledged {self.reconocidos}: lost {self.perdidos}, duplicated {self.duplicados}, "
            f"never read {self.nunca_leidos} (uncertain), recovered {self.recuperados} (uncertain)",
            f"estado clashes {self.choques}",
            f"convergence {conv}; messages per operation {self.mensajes_por_op:.1f}",
            f"invariant violations {len(self.violaciones)}",
            *(f"  {v}" for v in self.violaciones[:20]),
        ]
        if len(self.violaciones) > 20:
            filas.append(f"  … and {len(self.violaciones) - 20} more")
        return "\n".join(filas)


def _fila(nombre: str, c: Counter[str]) -> str:
    invocadas = sum(c.values())
    inciertas = c["incierta"] + c["invocada"]
    return f"{nombre:<22}{invocadas:>8}{c['ok']:>7}{c['fallida']:>8}{inciertas:>9}"


def verificar(e: Entrada) -> Informe:
    inf = Informe(operaciones=resumen(e.historia), convergencia_s=e.convergencia_s)
    inf.mensajes_por_op = e.mensajes / len(e.historia) if e.historia else 0.0
    if not e.fotos:
        inf.violar("convergencia", "no node could be read")
        return inf
    _convergencia(e, inf)
    _pedidos(e, inf)
    _stock(e, inf)
    _estado(e, inf)
    _registro(e, inf)
    _reloj(e, inf)
    return inf


def _convergencia(e: Entrada, inf: Informe) -> None:
    if e.convergencia_s is None:
        inf.violar("convergencia", "the nodes did not settle on one digest within the deadline")
    digests = {f.nodo: f.digest[:12] for f in e.fotos}
    if len(set(digests.values())) > 1:
        inf.violar("convergencia", f"digests differ: {digests}")
    vectores = {f.nodo: f.vector for f in e.fotos}
    if len({tuple(sorted(v.items())) for v in vectores.values()}) > 1:
        inf.violar("convergencia", f"version vectors differ: {vectores}")


def _pedidos(e: Entrada, inf: Informe) -> None:
    creaciones = [op for op in e.historia if op.tipo == "crear_pedido"]
    reconocidos = {op.pedido_id: op for op in creaciones if op.resultado == OK and op.pedido_id}
    inf.reconocidos = len(reconocidos)
    borrados = {op.pedido_id for op in e.historia if op.tipo == "eliminar_pedido" and op.resultado != FALLIDA}
    inciertas: Counter[Firma] = Counter(op.firma() for op in creaciones if op.resultado not in (OK, FALLIDA))
    por_firma_ok = Counter(op.firma() for op in reconocidos.values())
    perdidos: set[str] = set()
    recuperados = duplicados = 0
    for foto in e.fotos:
        repetidos = [i for i, n in Counter(foto.lectura_api).items() if n > 1]
        if repetidos:
            duplicados += len(repetidos)
            inf.violar("pedidos", f"{foto.nodo} lists {len(repetidos)} order(s) more than once: {repetidos[:3]}")
        creados = {pid: p for pid, p in foto.pedidos.items() if p["creado"]}
        perdidos |= set(reconocidos) - set(creados)
        sobrantes: Counter[Firma] = Counter(_firma(p) for pid, p in creados.items() if pid not in reconocidos)
        recuperados_aqui = 0
        for firma, n in sobrantes.items():
            explicables = inciertas[firma]
            recuperados_aqui += min(n, explicables)
            if n > explicables:
                exceso = n - explicables
                if por_firma_ok[firma]:
                    duplicados += exceso
                    inf.violar("pedidos", f"{foto.nodo}: {exceso} extra cop(ies) of an acknowledged order {firma}")
                else:
                    inf.violar("pedidos", f"{foto.nodo}: {exceso} order(s) no operation could have made: {firma}")
        recuperados = max(recuperados, recuperados_aqui)
        for pid, p in creados.items():
            if p["eliminado"] and pid not in borrados:
                inf.violar("pedidos", f"{foto.nodo}: order {pid} is deleted, but no deletion of it may have happened")
    for pid in sorted(perdidos):
        faltan = [f.nodo for f in e.fotos if not f.pedidos.get(pid, {}).get("creado")]
        inf.violar("pedidos", f"acknowledged order {pid} (by {reconocidos[pid].nodo}) missing on {faltan}")
    inf.perdidos = len(perdidos)
    inf.duplicados = duplicados
    inf.recuperados = recuperados
    inf.nunca_leidos = sum(inciertas.values()) - recuperados


def _firma(p: dict[str, Any]) -> Firma:
    return (p["nodo_origen"], p["cliente_id"], tuple(sorted(p["items"])))


def _stock(e: Entrada, inf: Informe) -> None:
    seguro: Counter[str] = Counter()
    arriba: Counter[str] = Counter()
    abajo: Counter[str] = Counter()
    for op in e.historia:
        if op.stock_visto is not None and op.stock_visto < 0:
            inf.violar("stock", f"{op.nodo} answered operation {op.n} with negative stock {op.stock_visto}")
        if op.tipo != "reponer" or op.resultado == FALLIDA:
            continue
        pid, n = op.datos["producto_id"], int(op.datos["cantidad"])
        if op.resultado == OK:
            seguro[pid] += n
        elif n > 0:
            arriba[pid] += n
        else:
            abajo[pid] += n
    for foto in e.fotos:
        vendidos: Counter[str] = Counter()
        for p in foto.pedidos.values():
            if p["creado"] and p["estado"] != "cancelado":
                for pid, cantidad in p["items"]:
                    vendidos[pid] += cantidad
        for pid, inicial in e.stock_inicial.items():
            stock = foto.stock.get(pid)
            if stock is None:
                inf.violar("stock", f"{foto.nodo}: product {pid} is missing")
                continue
            if stock < 0:
                inf.violar("stock", f"{foto.nodo}: product {pid} has negative stock {stock}")
            base = inicial + seguro[pid] - vendidos[pid]
            minimo, maximo = base + abajo[pid], base + arriba[pid]
            if not minimo <= stock <= maximo:
                inf.violar("stock", f"{foto.nodo}: product {pid} has {stock} units, allowed {minimo}..{maximo}")


def _estado(e: Entrada, inf: Informe) -> None:
    ids = sorted({pid for f in e.fotos for pid, p in f.pedidos.items() if p["creado"]})
    for pid in ids:
        estados = {f.nodo: f.pedidos.get(pid, {}).get("estado") for f in e.fotos}
        if len(set(estados.values())) > 1:
            inf.violar("estado", f"order {pid} has different estado on different nodes: {estados}")
    for foto in e.fotos:
        escrituras: dict[str, list[Any]] = defaultdict(list)
        for c in foto.cambios:
            if c.entidad == "pedido" and c.campo == "estado":
                escrituras[c.clave].append(c)
        for pid, p in foto.pedidos.items():
            if p["creado"] and p["estado"] not in {c.valor for c in escrituras[pid]}:
                inf.violar("estado", f"{foto.nodo}: order {pid} is {p['estado']!r}, a value no write gave it")
        esperados: set[tuple[str, frozenset[str]]] = set()
        for pid, lista in escrituras.items():
            por_base: dict[str, list[str]] = defaultdict(list)
            for c in lista:
                if c.base is not None:
                    por_base[c.base].append(sello_texto(c.sello))
            for hermanos in por_base.values():
                for i, a in enumerate(hermanos):
                    for b in hermanos[i + 1 :]:
                        esperados.add((pid, frozenset((a, b))))
        registrados = {(c["pedido_id"], frozenset((c["ganador"], c["perdedor"]))) for c in foto.conflictos}
        inf.choques = max(inf.choques, len(esperados))
        for pid, par in sorted(esperados - registrados, key=str)[:10]:
            inf.violar("estado", f"{foto.nodo}: clash on order {pid} between {sorted(par)} not recorded")
        for pid, par in sorted(registrados - esperados, key=str)[:10]:
            inf.violar("estado", f"{foto.nodo}: recorded clash on order {pid} {sorted(par)} is no concurrent pair")


def _registro(e: Entrada, inf: Informe) -> None:
    for foto in e.fotos:
        if foto.digest_reconstruido is not None and foto.digest_reconstruido != foto.digest:
            inf.violar(
                "registro",
                f"{foto.nodo}: its change log rebuilds to {foto.digest_reconstruido[:12]}, "
                f"its tables hold {foto.digest[:12]}",
            )


def _reloj(e: Entrada, inf: Informe) -> None:
    if e.reloj == "leve" and e.rechazos_deriva:
        inf.violar("reloj", f"a node ahead by less than the allowed drift was refused {e.rechazos_deriva} time(s)")
    if e.reloj == "lejano" and not e.rechazos_deriva:
        inf.violar("reloj", "a node ahead by more than the allowed drift was never refused")
