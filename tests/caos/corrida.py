"""One run: start a cluster behind proxies, load it while the nemesis plays, heal, check.

:func:`correr` is the whole run of a :class:`~tests.caos.nemesis.Plan`;
its steps are public so that the tests that break the system on purpose can
compose their own runs:

1. :func:`arrancar` — a cluster whose every directed link has a proxy, each
   node started with its clock offset, if the plan gives it one;
2. :func:`preparar_catalogo` — clients and products, created on one node and
   waited for on all;
3. the workload (``carga``, with its watcher) and the nemesis, together, for
   the plan's duration;
4. ``Nemesis.curar`` and :func:`esperar_convergencia` — the time from heal to
   equal digests and vectors on every node, with nothing left to settle;
   then the creates still uncertain are sent again (``Carga.resolver``) and
   the cluster awaited once more;
5. :func:`cerrar_y_verificar` — read every node's list of orders, stop the
   nodes, photograph their databases, rebuild each from its change log, and
   ask the checker for its verdict.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from servidor.dominio.validacion import MAX_PAGINA
from tests.caos.carga import Carga, Catalogo, Operacion
from tests.caos.foto import Foto, fotografiar_base, reconstruir
from tests.caos.nemesis import Nemesis, Plan
from tests.caos.verificador import Entrada, Informe, verificar
from tests.caos.vigia import Lectura
from tests.procesos import Cluster, ProcesoNodo, esperar
from tests.proxy import Proxies, abrir_proxies

PLAZO_CONVERGENCIA_S = 30.0
PLAZO_RECHAZO_S = 10.0
DERIVA = "DERIVA_RELOJ"

CrearCluster = Callable[[int], Awaitable[Cluster]]


@dataclass
class Resultado:
    plan: Plan
    informe: Informe

    def texto(self) -> str:
        partes = [self.plan.describir(), self.informe.tabla()]
        if not self.informe.valido:
            partes.append(f"FAILED; replay with: {self.plan.repeticion()}")
        return "\n".join(partes)


async def arrancar(crear: CrearCluster, proxies: Proxies, plan: Plan) -> Cluster:
    c = await crear(plan.nodos)
    await abrir_proxies(c, proxies, plan.semilla)
    for nodo, ms in plan.desfases.items():
        c[nodo].entorno["PEDIDOS_CLOCK_OFFSET_MS"] = str(ms)
    await c.arrancar()
    return c


async def digest(nodo: ProcesoNodo) -> tuple[str, Any]:
    async with nodo.cliente(timeout=5.0) as http:
        r = await http.get("/api/replicacion/digest")
        r.raise_for_status()
        cuerpo = r.json()
        return cuerpo["digest"], sorted(cuerpo["vector"].items())


async def iguales(cluster: Cluster) -> bool:
    vistas = [await digest(n) for n in cluster]
    return all(v == vistas[0] for v in vistas[1:])


async def asentado(nodo: ProcesoNodo) -> bool:
    """Whether ``nodo`` holds no units apart: every cancellation and keyed restock is settled."""
    async with nodo.cliente(timeout=5.0) as http:
        desde = 0
        while True:
            r = await http.get("/api/productos", params={"limite": MAX_PAGINA, "desde": desde})
            r.raise_for_status()
            if any(p["por_devolver"] or p["por_confirmar"] for p in r.json()):
                return False
            if len(r.json()) < MAX_PAGINA:
                return True
            desde += MAX_PAGINA


async def quieto(cluster: Cluster) -> bool:
    """Equal digests and vectors, and nothing left to settle (a settle is a write still to come)."""
    return await iguales(cluster) and all([await asentado(n) for n in cluster]) and await iguales(cluster)


async def esperar_convergencia(cluster: Cluster, plazo: float = PLAZO_CONVERGENCIA_S) -> float | None:
    """Seconds until every node answers the same digest and vector, all settled; None past ``plazo``."""
    inicio = time.monotonic()
    try:
        await esperar(lambda: quieto(cluster), plazo, 0.1, "equal digests", ignorar=(httpx.HTTPError,))
    except TimeoutError:
        return None
    return time.monotonic() - inicio


async def preparar_catalogo(nodo: ProcesoNodo, cluster: Cluster, stock: int, clientes: int = 5) -> Catalogo:
    """Create clients and three products on ``nodo``; return once every node holds them."""
    cat = Catalogo([], {})
    async with nodo.cliente() as http:
        for i in range(clientes):
            r = await http.post("/api/clientes", json={"nombre": f"Cliente {i}", "email": f"c{i}@example.com"})
            assert r.status_code == 201, r.text
            cat.clientes.append(r.json()["id"])
        for nombre in ("Taza", "Plato", "Vaso"):
            r = await http.post("/api/productos", json={"nombre": nombre, "precio": "4.50", "stock": stock})
            assert r.status_code == 201, r.text
            cat.stock_inicial[r.json()["id"]] = stock
    if await esperar_convergencia(cluster) is None:
        raise AssertionError("the catalogue did not reach every node")
    return cat


def rechazos_deriva(cluster: Cluster) -> int:
    return sum(n.registro().count(DERIVA) for n in cluster)


async def provocar_rechazo(cluster: Cluster, adelantado: str, catalogo: Catalogo) -> None:
    """A write on the node far ahead, and the wait until a peer refuses it (a clear, logged error)."""
    async with cluster[adelantado].cliente() as http:
        r = await http.put(f"/api/clientes/{catalogo.clientes[0]}", json={"nombre": "Desde el futuro"})
        assert r.status_code == 200, r.text
    await esperar(lambda: rechazos_deriva(cluster) > 0, PLAZO_RECHAZO_S, que=f"a peer refuses {adelantado}'s stamps")


async def leer_listas(cluster: Cluster) -> dict[str, list[str]]:
    """Each node's ``GET /api/pedidos`` ids, as listed page after page (a repeat would be a duplicate)."""
    listas: dict[str, list[str]] = {}
    for nodo in cluster:
        ids = listas[nodo.id] = []
        async with nodo.cliente() as http:
            while True:
                r = await http.get("/api/pedidos", params={"limite": MAX_PAGINA, "desde": len(ids)})
                r.raise_for_status()
                ids += [p["id"] for p in r.json()]
                if len(r.json()) < MAX_PAGINA:
                    break
    return listas


async def cerrar_y_verificar(
    cluster: Cluster,
    historia: Sequence[Operacion],
    catalogo: Catalogo,
    convergencia_s: float | None,
    carpeta: Path,
    reloj: str | None = None,
    mensajes: int = 0,
    lecturas: Sequence[Lectura] = (),
) -> Informe:
    """Read lists, stop the nodes, photograph and rebuild each database, and check."""
    listas = await leer_listas(cluster)
    await cluster.parar()
    fotos: list[Foto] = []
    for nodo in cluster:
        foto = await fotografiar_base(nodo.database, nodo.id)
        foto.lectura_api = listas[nodo.id]
        foto.digest_reconstruido = await reconstruir(foto.cambios, carpeta, nodo.id)
        fotos.append(foto)
    entrada = Entrada(
        historia=historia,
        fotos=fotos,
        stock_inicial=catalogo.stock_inicial,
        convergencia_s=convergencia_s,
        reloj=reloj,
        rechazos_deriva=rechazos_deriva(cluster),
        mensajes=mensajes,
        lecturas=lecturas,
        clientes_iniciales=catalogo.clientes,
    )
    return verificar(entrada)


async def correr(plan: Plan, crear: CrearCluster, proxies: Proxies, carpeta: Path) -> Resultado:
    """The whole run of ``plan``; the nodes are stopped when it returns."""
    c = await arrancar(crear, proxies, plan)
    nemesis = Nemesis(plan, c, proxies)
    try:
        normales = [n for n in c.nodos if n not in plan.desfases]
        catalogo = await preparar_catalogo(c[normales[0]], c, plan.stock_inicial)
        if plan.reloj == "lejano":
            await provocar_rechazo(c, next(iter(plan.desfases)), catalogo)
        carga = Carga({n.id: n.url for n in c}, catalogo, plan.semilla, plan.clientes)
        mensajes_antes = sum(p.mensajes for p in proxies.values())
        jugada = asyncio.create_task(nemesis.ejecutar())
        try:
            historia = await carga.ejecutar(plan.duracion)
            await jugada
        finally:
            if not jugada.done():
                jugada.cancel()
                await asyncio.gather(jugada, return_exceptions=True)
            await nemesis.curar()
        plazo = PLAZO_CONVERGENCIA_S + max(plan.desfases.values(), default=0) / 1000
        convergencia = await esperar_convergencia(c, plazo)
        if convergencia is not None and await carga.resolver() and await esperar_convergencia(c, plazo) is None:
            convergencia = None  # what the creates sent again wrote did not reach every node
        mensajes = sum(p.mensajes for p in proxies.values()) - mensajes_antes
        informe = await cerrar_y_verificar(
            c, historia, catalogo, convergencia, carpeta, plan.reloj, mensajes, carga.lecturas
        )
    finally:
        nemesis.reanudar()  # a run cut short must not leave a node stopped by SIGSTOP
    return Resultado(plan, informe)
