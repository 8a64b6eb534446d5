"""The checker: a verdict on a run from its history and the nodes' photos.

Pure: :func:`verificar` takes what the run recorded (:class:`Entrada`) and
answers an :class:`Informe`; nothing here touches a node. The invariants of
``docs/DESIGN.md``, as checked after the faults stop and the cluster heals:

- ``convergencia``: the cluster settled within the deadline, and every node
  holds the same digest and version vector.
- ``pedidos`` (Jepsen's set-full): every creation answered ok is on every
  node (else *lost*); no order shows twice in a node's list, nor more copies
  of one unkeyed creation's signature (node, client, items) than creations
  could have made (*duplicated*); an order no operation could have made is a
  violation. Creations of uncertain outcome found in the state are
  *recovered*, those found nowhere are *never read*: both are allowed. An
  order is deleted (``eliminado_en``) only if a deletion of it was answered
  ok or left uncertain; it is hidden exactly when ``sync.reglas.oculto``
  says, and a node lists exactly the orders it does not hide.
- ``idempotencia``: creates sent with a key (``claves``).
- ``stock`` and ``envio``: units (``unidades``).
- ``estado`` and ``retroceso``: the order's life (``estados``).
- ``registro``: replaying a node's change log into a fresh store gives the
  node's digest (the log and the tables agree).
- ``reloj``: a node ahead by less than ``max_clock_drift_ms`` is never
  refused; one further ahead is refused (``DERIVA_RELOJ``) while it is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from servidor.dominio.ids import id_de_clave
from sync import reglas
from tests.caos.carga import FALLIDA, OK, Operacion, resumen
from tests.caos.claves import verificar_claves
from tests.caos.estados import verificar_estados
from tests.caos.foto import Foto
from tests.caos.unidades import verificar_unidades
from tests.caos.vigia import Lectura

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
    lecturas: Sequence[Lectura] = ()  # every estado an answer or the watcher showed
    clientes_iniciales: Sequence[str] | None = None  # the catalogue's clients (None: do not check clients)


@dataclass
class Informe:
    operaciones: dict[str, Counter[str]]
    reconocidos: int = 0
    perdidos: int = 0
    duplicados: int = 0
    nunca_leidos: int = 0
    recuperados: int = 0
    choques: int = 0
    con_clave: int = 0  # creates sent with a key
    reenviadas: int = 0  # of those, sent more than once
    repeticiones: int = 0  # answers that were replays of an earlier creation
    tras_curar: int = 0  # creates still uncertain when the cluster healed, sent again then
    lecturas: int = 0
    retrocesos: int = 0
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
            f"keyed creates {self.con_clave}: sent again {self.reenviadas}, replays answered {self.repeticiones}, "
            f"sent again after heal {self.tras_curar}",
            f"estado clashes {self.choques}; estado readings {self.lecturas}, going back {self.retrocesos}",
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
    verificar_claves(e, inf)
    verificar_unidades(e, inf)
    verificar_estados(e, inf)
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
    reconocidos = {pid: op for op in creaciones if op.resultado == OK and (pid := _id(op))}
    inf.reconocidos = len(reconocidos)
    borrados = {op.pedido_id for op in e.historia if op.tipo == "eliminar_pedido" and op.resultado != FALLIDA}
    # Keyed creations are known by their id; the others by their signature.
    con_clave = {pid for op in creaciones if op.clave is not None and (pid := _id(op))}
    inciertas_con_clave = {_id(op) for op in creaciones if op.clave is not None and op.resultado not in (OK, FALLIDA)}
    sin_clave = [op for op in creaciones if op.clave is None]
    inciertas: Counter[Firma] = Counter(op.firma() for op in sin_clave if op.resultado not in (OK, FALLIDA))
    por_firma_ok = Counter(op.firma() for op in sin_clave if op.resultado == OK)
    perdidos: set[str] = set()
    recuperados = duplicados = 0
    for foto in e.fotos:
        repetidos = [i for i, n in Counter(foto.lectura_api or ()).items() if n > 1]
        if repetidos:
            duplicados += len(repetidos)
            inf.violar("pedidos", f"{foto.nodo} lists {len(repetidos)} order(s) more than once: {repetidos[:3]}")
        creados = {pid: p for pid, p in foto.pedidos.items() if p["creado"]}
        perdidos |= set(reconocidos) - set(creados)
        sobrantes = [pid for pid in creados if pid not in reconocidos]
        recuperados_aqui = sum(pid in inciertas_con_clave for pid in sobrantes)
        # A keyed order every creation of which was refused is ``idempotencia``'s to report.
        firmas: Counter[Firma] = Counter(_firma(creados[pid]) for pid in sobrantes if pid not in con_clave)
        for firma, n in firmas.items():
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
        _borrados(inf, foto, creados, borrados)
    for pid in sorted(perdidos):
        faltan = [f.nodo for f in e.fotos if not f.pedidos.get(pid, {}).get("creado")]
        inf.violar("pedidos", f"acknowledged order {pid} (by {reconocidos[pid].nodo}) missing on {faltan}")
    inf.perdidos = len(perdidos)
    inf.duplicados = duplicados
    inf.recuperados = recuperados
    inf.nunca_leidos = len(inciertas_con_clave) + sum(inciertas.values()) - recuperados


def _id(op: Operacion) -> str | None:
    """The order a creation made: the one its key names, or the one its answer showed."""
    return id_de_clave("pedido", op.clave) if op.clave is not None else op.pedido_id


def _firma(p: dict[str, Any]) -> Firma:
    return (p["nodo_origen"], p["cliente_id"], tuple(sorted(p["items"])))


def _borrados(inf: Informe, foto: Foto, creados: dict[str, dict[str, Any]], borrados: set[str | None]) -> None:
    """Deleted only by a deletion; hidden exactly as ``sync.reglas.oculto`` says; listed exactly when not hidden."""
    for pid, p in creados.items():
        if p.get("eliminado_en") is not None and pid not in borrados:
            inf.violar("pedidos", f"{foto.nodo}: order {pid} is deleted, but no deletion of it may have happened")
        oculto = reglas.oculto(p["estado"], p.get("eliminado_en"))
        if p["eliminado"] != oculto:
            inf.violar(
                "pedidos",
                f"{foto.nodo}: order {pid} in estado {p['estado']!r}, deleted in {p.get('eliminado_en')!r}, "
                f"is {'hidden' if p['eliminado'] else 'shown'}",
            )
    if foto.lectura_api is None:
        return
    visibles = {pid for pid, p in creados.items() if not p["eliminado"]}
    listados = set(foto.lectura_api)
    if listados != visibles:
        ocultos, faltan = sorted(listados - visibles)[:3], sorted(visibles - listados)[:3]
        inf.violar("pedidos", f"{foto.nodo} lists hidden or unknown orders {ocultos}, omits visible ones {faltan}")


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
