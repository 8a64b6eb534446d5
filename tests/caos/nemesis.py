"""Faults: a schedule drawn from a seed (:func:`generar`), and the nemesis that plays it.

A :class:`Plan` is everything a run needs to be replayed: the seed, the
number of nodes, how long the faults last and the list of :class:`Falta`,
each switched on at ``inicio`` and off at ``fin`` (seconds after the
workload starts). The same arguments to :func:`generar` give the same plan.

Kinds of fault:

- partitions, through the proxy of every directed link (``tests/proxy.py``):
  ``aislar`` (one node cut from all), ``mitades`` (two halves), ``puente``
  (two sides that only one node, the bridge, sees both of), ``anillo``
  (nodes in a ring, each seeing only its two neighbours: every node sees a
  different majority; needs four nodes or more);
- links: ``latencia``, ``perdida`` (loss: retransmission stalls and resets),
  ``lento`` (low bandwidth), ``colgar`` (connections that go silent), on
  every link of one node, one direction of one pair, or every link;
- processes: ``matar`` (SIGKILL, restarted at ``fin``), ``pausar``
  (SIGSTOP, SIGCONT at ``fin``); never two at once on one node;
- clocks, for the whole run: ``reloj_leve`` (one node ahead by less than
  ``max_clock_drift_ms``: it must converge as if nothing were wrong) and
  ``reloj_lejano`` (ahead by more: its changes are refused until the others'
  clocks catch up with their stamps).

While faults overlap, each link takes the worst of what applies to it.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.procesos import Cluster
from tests.proxy import Proxies

PARTICIONES = ("aislar", "mitades", "puente", "anillo")
ENLACES = ("latencia", "perdida", "lento", "colgar")
PROCESOS = ("matar", "pausar")
RELOJES = ("reloj_leve", "reloj_lejano")
TIPOS = PARTICIONES + ENLACES + PROCESOS + RELOJES
MAX_DERIVA_MS = 500
ARRANQUE_S = 1.5  # a killed node's restart, kept clear of the next fault on it

Enlace = tuple[str, str]


@dataclass(frozen=True)
class Falta:
    tipo: str
    inicio: float
    fin: float
    nodos: tuple[str, ...] = ()  # the node killed, paused or ahead; the isolated one; the bridge
    enlaces: tuple[Enlace, ...] = ()  # directed links cut or degraded
    valor: float = 0.0  # latency s, loss chance, bytes/s, ms ahead
    detalle: str = ""

    def __str__(self) -> str:
        cuando = f"{'whole run':>17}" if self.tipo in RELOJES else f"{self.inicio:6.2f}–{self.fin:6.2f} s"
        return f"{cuando}  {self.tipo:<13} {self.detalle}"


@dataclass(frozen=True)
class Plan:
    semilla: int
    nodos: int
    duracion: float
    faltas: tuple[Falta, ...]
    tipos: tuple[str, ...] = ()  # the kinds asked for (the rest were drawn)
    backend: str = "sqlite"
    clientes: int = 4
    max_deriva_ms: int = MAX_DERIVA_MS

    @property
    def stock_inicial(self) -> int:
        """Units of each product at the start: fewer than the run asks for.

        So products sell out, and nodes cut off from the rights they need are
        refused, while the checker holds every answer and the converged state
        to "never negative" (stock is an escrow; see ``sync.reglas``).
        """
        return 20 + int(5 * self.duracion)

    @property
    def ids(self) -> list[str]:
        return [f"nodo{i}" for i in range(1, self.nodos + 1)]

    @property
    def desfases(self) -> dict[str, int]:
        return {f.nodos[0]: int(f.valor) for f in self.faltas if f.tipo in RELOJES}

    @property
    def reloj(self) -> str | None:
        tipos = [f.tipo for f in self.faltas if f.tipo in RELOJES]
        return tipos[0].removeprefix("reloj_") if tipos else None

    def describir(self) -> str:
        cabecera = (
            f"seed {self.semilla}, {self.nodos} nodes on {self.backend}, "
            f"{self.duracion:g} s of faults, {self.clientes} clients"
        )
        return "\n".join([cabecera, *(f"  {f}" for f in self.faltas)])

    def repeticion(self) -> str:
        """The command that replays this plan (the same schedule; timing differs run to run)."""
        tipos = f" --faltas {','.join(self.tipos)}" if self.tipos else ""
        return (
            f"python -m tests.caos --semilla {self.semilla} --duracion {self.duracion:g} "
            f"--nodos {self.nodos} --backend {self.backend}{tipos}"
        )


def generar(
    semilla: int, duracion: float, tipos: Sequence[str] = (), nodos: int | None = None, backend: str = "sqlite"
) -> Plan:
    """A plan with a fault of each kind in ``tipos`` plus about one more every four seconds, drawn at random."""
    desconocidos = set(tipos) - set(TIPOS)
    assert not desconocidos, f"unknown fault kinds: {sorted(desconocidos)}"
    azar = random.Random(semilla)
    # Drawn even when ``nodos`` is given, so that the replay command (which gives it) replays the same plan.
    sorteados = 4 if "anillo" in tipos else azar.choice((3, 3, 4))
    n = nodos or sorteados
    assert n >= 3, "partitions of the shapes here need three nodes or more"
    ids = [f"nodo{i}" for i in range(1, n + 1)]
    posibles = [t for t in PARTICIONES + ENLACES + PROCESOS if t != "anillo" or n >= 4]
    elegidos = list(tipos) + [azar.choice(posibles) for _ in range(max(1, int(duracion / 4)))]
    if not any(t in RELOJES for t in elegidos) and duracion > 30 and azar.random() < 0.5:
        elegidos.append(azar.choice(RELOJES))
    faltas: list[Falta] = []
    for tipo in elegidos:
        falta = _falta(tipo, azar, ids, duracion, faltas)
        if falta is not None:
            faltas.append(falta)
    faltas.sort(key=lambda f: (f.inicio, f.tipo))
    return Plan(semilla, n, duracion, tuple(faltas), tuple(tipos), backend)


def _ventana(azar: random.Random, duracion: float) -> tuple[float, float]:
    """When a fault is on: about half of a short run; one to eight seconds of a long one."""
    if duracion > 10:
        largo = min(azar.uniform(0.3, 0.7) * duracion, azar.uniform(1.0, 8.0))
    else:
        largo = azar.uniform(0.35, 0.65) * duracion
    inicio = azar.uniform(0, duracion - largo)
    return round(inicio, 2), round(inicio + largo, 2)


def _todos(ids: Sequence[str]) -> tuple[Enlace, ...]:
    return tuple((a, b) for a in ids for b in ids if a != b)


def _entre(lado: Sequence[str], otro: Sequence[str]) -> tuple[Enlace, ...]:
    return tuple(e for a in lado for b in otro for e in ((a, b), (b, a)))


def _falta(tipo: str, azar: random.Random, ids: list[str], duracion: float, previas: list[Falta]) -> Falta | None:
    inicio, fin = _ventana(azar, duracion)
    if tipo in RELOJES:
        if any(f.tipo in RELOJES for f in previas):
            return None
        nodo = azar.choice(ids)
        ms = azar.randint(100, 300) if tipo == "reloj_leve" else azar.randint(1500, 2500)
        return Falta(tipo, 0.0, duracion, (nodo,), valor=ms, detalle=f"{nodo} +{ms} ms")
    if tipo in PROCESOS:
        libres = [
            n
            for n in ids
            if not any(
                f.tipo in PROCESOS and n in f.nodos and inicio < f.fin + ARRANQUE_S and f.inicio < fin + ARRANQUE_S
                for f in previas
            )
        ]
        if not libres:
            return None
        nodo = azar.choice(libres)
        return Falta(tipo, inicio, fin, (nodo,), detalle=nodo)
    mezcla = ids[:]
    azar.shuffle(mezcla)
    if tipo == "aislar":
        x, resto = mezcla[0], mezcla[1:]
        return Falta(tipo, inicio, fin, (x,), _entre([x], resto), detalle=f"{x} | {' '.join(sorted(resto))}")
    if tipo == "mitades":
        a, b = sorted(mezcla[: len(ids) // 2]), sorted(mezcla[len(ids) // 2 :])
        return Falta(tipo, inicio, fin, (), _entre(a, b), detalle=f"{' '.join(a)} | {' '.join(b)}")
    if tipo == "puente":
        puente, resto = mezcla[0], mezcla[1:]
        corte = azar.randint(1, len(resto) - 1)
        a, b = sorted(resto[:corte]), sorted(resto[corte:])
        detalle = f"{' '.join(a)} | {' '.join(b)}, bridge {puente}"
        return Falta(tipo, inicio, fin, (puente,), _entre(a, b), detalle=detalle)
    if tipo == "anillo":
        vecinos = {frozenset((mezcla[i], mezcla[(i + 1) % len(mezcla)])) for i in range(len(mezcla))}
        cortes = tuple(e for e in _todos(ids) if frozenset(e) not in vecinos)
        return Falta(tipo, inicio, fin, (), cortes, detalle="ring " + " – ".join(mezcla))
    # Link faults: every link of one node, one direction of one pair, or every link.
    forma = azar.choice(("nodo", "sentido", "todos"))
    if forma == "nodo":
        x = mezcla[0]
        enlaces, donde = _entre([x], mezcla[1:]), f"links of {x}"
    elif forma == "sentido":
        enlaces, donde = ((mezcla[0], mezcla[1]),), f"{mezcla[0]} → {mezcla[1]}"
    else:
        enlaces, donde = _todos(ids), "every link"
    valor = {
        "latencia": round(azar.uniform(0.02, 0.3), 3),
        "perdida": round(azar.uniform(0.05, 0.3), 2),
        "lento": float(azar.choice((2_000, 8_000, 32_000))),
        "colgar": 0.0,
    }[tipo]
    unidad = {"latencia": " s", "perdida": " loss", "lento": " B/s", "colgar": ""}[tipo]
    detalle = f"{donde}" + (f", {valor:g}{unidad}" if valor else "")
    return Falta(tipo, inicio, fin, (), enlaces, valor, detalle)


@dataclass
class Nemesis:
    """Plays a plan's faults on a running cluster and its proxies; :meth:`curar` undoes them all."""

    plan: Plan
    cluster: Cluster
    proxies: Proxies
    activas: list[Falta] = field(default_factory=list)
    _arranques: list[asyncio.Task[None]] = field(default_factory=list)

    async def ejecutar(self) -> None:
        """Switch each fault on and off at its time, counted from now."""
        bucle = asyncio.get_running_loop()
        t0 = bucle.time()
        eventos = sorted(
            [(f.inicio, 1, f) for f in self.plan.faltas if f.tipo not in RELOJES]
            + [(f.fin, 0, f) for f in self.plan.faltas if f.tipo not in RELOJES],
            key=lambda e: (e[0], e[1]),
        )
        for cuando, encender, falta in eventos:
            if (falta_s := t0 + cuando - bucle.time()) > 0:
                await asyncio.sleep(falta_s)  # the schedule's own clock
            if encender:
                await self._encender(falta)
            else:
                await self._apagar(falta)

    async def curar(self) -> None:
        """Every link clean, every paused node resumed, every killed node running again."""
        for falta in list(self.activas):
            await self._apagar(falta)
        self.reanudar()
        await asyncio.gather(*self._arranques)
        self._arranques.clear()
        await asyncio.gather(*(n.arrancar() for n in self.cluster if not n.vivo))

    def reanudar(self) -> None:
        """SIGCONT to every node: none is left stopped, whatever happened."""
        for nodo in self.cluster:
            nodo.enviar(signal.SIGCONT)

    async def _encender(self, falta: Falta) -> None:
        self.activas.append(falta)
        if falta.tipo == "matar":
            nodo = self.cluster[falta.nodos[0]]
            nodo.enviar(signal.SIGKILL)
            await nodo.esperar_salida()
        elif falta.tipo == "pausar":
            self.cluster[falta.nodos[0]].enviar(signal.SIGSTOP)
        else:
            self._enlaces()

    async def _apagar(self, falta: Falta) -> None:
        if falta not in self.activas:
            return
        self.activas.remove(falta)
        if falta.tipo == "matar":
            nodo = self.cluster[falta.nodos[0]]
            if not nodo.vivo:
                self._arranques.append(asyncio.create_task(nodo.arrancar()))
        elif falta.tipo == "pausar":
            self.cluster[falta.nodos[0]].enviar(signal.SIGCONT)
        else:
            self._enlaces()

    def _enlaces(self) -> None:
        """Give every proxy the worst of the active faults that cover its link."""
        for enlace, proxy in self.proxies.items():
            sobre = [f for f in self.activas if enlace in f.enlaces]
            cortado = any(f.tipo in PARTICIONES for f in sobre)
            valores = {t: [f.valor for f in sobre if f.tipo == t] for t in ENLACES}
            proxy.configurar(
                retraso_s=max(valores["latencia"], default=0.0),
                perdida=max(valores["perdida"], default=0.0),
                lento=min(valores["lento"], default=None),
                colgado=any(f.tipo == "colgar" for f in sobre),
            )
            if cortado and not proxy.cortado:
                proxy.cortar()
            elif not cortado and proxy.cortado:
                proxy.restaurar()
