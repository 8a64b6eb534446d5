"""Stock is never oversold: three real nodes, a product of 10 units, random partitions.

Each schedule spreads a product's 10 units over the nodes, then runs one to
three phases; in each, the cluster is cut into a random shape (one node
isolated, or one pair cut apart with the third node bridging them) and a
client on every node keeps ordering — and now and then cancelling one of its
orders — until its node refuses even one unit. Throughout, a watcher reads
every node's stock. After heal, the nodes must agree; no node may ever have
shown negative stock; the units of orders that stand must be at most 10 and
equal to what left stock; every node's rights must be non-negative and add
up to the stock; and, the cluster healthy again, one order for everything
left must succeed on any node.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.bd import BACKENDS
from tests.procesos import Cluster, FabricaClusters, ProcesoNodo, esperar
from tests.proxy import Proxies, cluster_con_proxies

UNIDADES = 10
PLAZO = 20.0
SEMILLAS = {"sqlite": range(20), "mariadb": range(100, 105)}
NODOS = ("nodo1", "nodo2", "nodo3")


@dataclass
class Registro:
    """What one schedule did and saw."""

    semilla: int
    fases: list[str] = field(default_factory=list)
    pedidos: dict[str, tuple[str, int]] = field(default_factory=dict)  # id -> (node, units)
    cancelados: set[str] = field(default_factory=set)
    rechazos: list[dict[str, Any]] = field(default_factory=list)
    minimos: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"seed {self.semilla}, phases {self.fases}"


async def _json(http: httpx.AsyncClient, metodo: str, ruta: str, **kw: Any) -> tuple[int, Any]:
    r = await http.request(metodo, ruta, **kw)
    return r.status_code, r.json() if r.content else None


def _partir(proxies: Proxies, azar: random.Random) -> str:
    """Cut the cluster into a random shape; answer its name."""
    for p in proxies.values():
        p.restaurar()
    a, b, c = azar.sample(NODOS, 3)
    if azar.random() < 0.5:
        cortes, forma = [(a, b), (a, c)], f"{a} isolated"
    else:
        cortes, forma = [(a, b)], f"{a} and {b} apart, {c} bridging"
    for x, y in cortes:
        proxies[(x, y)].cortar()
        proxies[(y, x)].cortar()
    return forma


async def _vender(nodo: ProcesoNodo, cliente: str, producto: str, azar: random.Random, r: Registro) -> None:
    """Order until even one unit is refused; now and then cancel one of this node's orders."""
    async with nodo.cliente() as http:
        cantidad = azar.randint(1, 3)
        while True:
            items = [{"producto_id": producto, "cantidad": cantidad}]
            estado, cuerpo = await _json(http, "POST", "/api/pedidos", json={"cliente_id": cliente, "items": items})
            if estado == 201:
                r.pedidos[cuerpo["id"]] = (nodo.id, cantidad)
                cantidad = azar.randint(1, 3)
            else:
                assert estado == 409 and cuerpo["error"]["codigo"] == "STOCK_INSUFICIENTE", (r, estado, cuerpo)
                r.rechazos.append(cuerpo["error"]["detalle"])
                if cantidad == 1:
                    return
                cantidad = 1
            propios = [p for p, (n, _) in r.pedidos.items() if n == nodo.id and p not in r.cancelados]
            if propios and azar.random() < 0.15:
                pid = azar.choice(propios)
                estado, cuerpo = await _json(http, "PUT", f"/api/pedidos/{pid}/estado", json={"estado": "cancelado"})
                assert estado == 200, (r, cuerpo)
                r.cancelados.add(pid)


async def _vigilar(c: Cluster, producto: str, r: Registro, parar: asyncio.Event) -> None:
    """Read every node's stock and rights until told to stop; keep the lowest values seen."""
    clientes = {n.id: n.cliente() for n in c}
    try:
        while not parar.is_set():
            for nodo_id, http in clientes.items():
                estado, p = await _json(http, "GET", f"/api/productos/{producto}")
                if estado == 200:
                    for clave, valor in [("stock", p["stock"]), *p["derechos"].items()]:
                        r.minimos[f"{nodo_id}:{clave}"] = min(r.minimos.get(f"{nodo_id}:{clave}", valor), valor)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(parar.wait(), 0.02)
    finally:
        for http in clientes.values():
            await http.aclose()


async def _vistas(c: Cluster, producto: str) -> list[tuple[Any, Any]]:
    vistas = []
    for n in c:
        async with n.cliente() as http:
            _, salud = await _json(http, "GET", "/api/health")
            _, p = await _json(http, "GET", f"/api/productos/{producto}")
            vistas.append((salud["vector"], p))
    return vistas


async def _convergidos(c: Cluster, producto: str) -> list[tuple[Any, Any]] | None:
    """Every node's view, once equal and with every cancellation settled (nothing ``por_devolver``)."""
    vistas = await _vistas(c, producto)
    asentado = all(p is not None and p["por_devolver"] == 0 for _, p in vistas)
    return vistas if asentado and all(v == vistas[0] for v in vistas) else None


async def _sembrar(c: Cluster, azar: random.Random) -> tuple[str, str]:
    """A client, and a product whose 10 units arrived at random nodes (so each holds some rights)."""
    reparto = sorted(azar.sample(range(UNIDADES + 1), 2))
    partes = [reparto[0], reparto[1] - reparto[0], UNIDADES - reparto[1]]
    unidades = dict(zip(azar.sample(NODOS, 3), partes, strict=True))
    primero = next(iter(unidades))
    async with c[primero].cliente() as http:
        _, cliente = await _json(http, "POST", "/api/clientes", json={"nombre": "Ana", "email": "ana@example.com"})
        datos = {"nombre": "Taza", "precio": "4.50", "stock": unidades[primero]}
        _, producto = await _json(http, "POST", "/api/productos", json=datos)
    for nodo_id, n in list(unidades.items())[1:]:
        async with c[nodo_id].cliente() as http:

            async def lo_tiene() -> bool:
                return (await http.get(f"/api/productos/{producto['id']}")).status_code == 200  # noqa: B023

            await esperar(lo_tiene, PLAZO, que=f"product reaches {nodo_id}")
            if n:
                estado, _ = await _json(http, "POST", f"/api/productos/{producto['id']}/stock", json={"cantidad": n})
                assert estado == 200
    await esperar(lambda: _convergidos(c, producto["id"]), PLAZO, que="catalogue converges")
    return cliente["id"], producto["id"]


async def _un_horario(c: Cluster, proxies: Proxies, semilla: int) -> Registro:
    azar = random.Random(semilla)
    r = Registro(semilla)
    cliente, producto = await _sembrar(c, azar)
    parar = asyncio.Event()
    vigia = asyncio.create_task(_vigilar(c, producto, r, parar))
    try:
        for _ in range(azar.randint(1, 3)):
            r.fases.append(_partir(proxies, azar))
            azares = {n: random.Random(azar.randrange(2**32)) for n in NODOS}
            async with asyncio.TaskGroup() as grupo:  # one seller failing stops the others
                for n in NODOS:
                    grupo.create_task(_vender(c[n], cliente, producto, azares[n], r))
    finally:
        for p in proxies.values():
            p.restaurar()
        try:
            vistas = await esperar(lambda: _convergidos(c, producto), PLAZO, que=f"nodes converge after heal ({r})")
        finally:
            parar.set()
            await vigia

    negativos = {k: v for k, v in r.minimos.items() if v < 0}
    assert not negativos, f"{r}: a node showed negative stock or rights: {negativos}"
    vendidas = sum(n for p, (_, n) in r.pedidos.items() if p not in r.cancelados)
    assert vendidas <= UNIDADES, f"{r}: {vendidas} units sold out of {UNIDADES}"
    producto_final = vistas[0][1]
    assert producto_final["stock"] == UNIDADES - vendidas, (r, producto_final)
    assert sum(producto_final["derechos"].values()) == producto_final["stock"], (r, producto_final)

    # Healthy again: whatever is left can be sold in one order, on any node.
    if producto_final["stock"]:
        nodo = c[azar.choice(NODOS)]
        async with nodo.cliente() as http:
            items = [{"producto_id": producto, "cantidad": producto_final["stock"]}]
            estado, cuerpo = await _json(http, "POST", "/api/pedidos", json={"cliente_id": cliente, "items": items})
        assert estado == 201, f"{r}: healthy cluster refused the last {producto_final['stock']} units: {cuerpo}"
    return r


@pytest.mark.parametrize("backend", BACKENDS)
async def test_no_partition_schedule_oversells_a_product_or_shows_negative_stock(
    clusters: FabricaClusters, proxies: Proxies, backend: str
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=3, backend=backend)
    registros = [await _un_horario(c, proxies, semilla) for semilla in SEMILLAS[backend]]
    # The schedules did sell under partition and were refused there, so the test saw both sides.
    assert sum(len(r.pedidos) for r in registros) > len(registros)
    motivos = {d["motivo"] for r in registros for d in r.rechazos}
    assert motivos == {"sin_derechos", "agotado"}, motivos


async def test_an_order_bigger_than_any_one_nodes_share_succeeds_on_a_healthy_cluster(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(3)
    azar = random.Random(1)
    cliente, producto = await _sembrar(c, azar)
    [(_, vista)] = {str(v): v for v in await _vistas(c, producto)}.values()
    assert vista["derechos"] and max(vista["derechos"].values()) < UNIDADES, vista
    async with c["nodo2"].cliente() as http:
        items = [{"producto_id": producto, "cantidad": UNIDADES}]
        estado, pedido = await _json(http, "POST", "/api/pedidos", json={"cliente_id": cliente, "items": items})
    assert estado == 201, pedido
    vistas = await esperar(lambda: _convergidos(c, producto), PLAZO, que="nodes converge")
    assert vistas[0][1]["stock"] == 0
    assert all(n == 0 for n in vistas[0][1]["derechos"].values())


def _espera_de_derechos(c: Cluster, ms: int) -> None:
    """Give the cluster's settings ``rights_wait_ms = ms`` (before its nodes start)."""
    texto = c.config.read_text(encoding="utf-8")
    c.config.write_text(texto.replace("[cluster]\n", f"[cluster]\nrights_wait_ms = {ms}\n", 1), encoding="utf-8")


async def _enlazados(c: Cluster) -> bool:
    for n in c:
        async with n.cliente() as http:
            _, pares = await _json(http, "GET", "/api/health/nodos")
        if not all(p["activo"] for p in pares):
            return False
    return True


async def _pedir_uno(http: httpx.AsyncClient, cliente: str, producto: str) -> tuple[int, Any]:
    items = [{"producto_id": producto, "cantidad": 1}]
    return await _json(http, "POST", "/api/pedidos", json={"cliente_id": cliente, "items": items})


async def _vender_a_la_vez(
    http: dict[str, httpx.AsyncClient], destinos: list[str], concurrentes: int, cliente: str, producto: str
) -> list[tuple[str, Any]]:
    """One single-unit order per destination, ``concurrentes`` in flight at a time; answer the refusals."""
    cola = list(reversed(destinos))
    rechazos: list[tuple[str, Any]] = []

    async def vendedor() -> None:
        while cola:
            nodo = cola.pop()
            estado, cuerpo = await _pedir_uno(http[nodo], cliente, producto)
            if estado != 201:
                rechazos.append((nodo, cuerpo))

    await asyncio.gather(*(vendedor() for _ in range(concurrentes)))
    return rechazos


async def test_a_healthy_cluster_sells_every_unit_to_concurrent_orders_on_every_node_then_says_agotado(
    clusters: FabricaClusters,
) -> None:
    """Units in flight between peers (granted to a third node, about to be sold) never cause a refusal."""
    unidades, concurrentes, rondas = 30, 12, 4
    c = await clusters(3, arrancar=False)
    _espera_de_derechos(c, 5000)
    await c.arrancar()
    await esperar(lambda: _enlazados(c), PLAZO, que="every link up")
    http = {n.id: n.cliente(timeout=30.0) for n in c}
    try:
        _, cliente = await _json(http["nodo1"], "POST", "/api/clientes", json={"nombre": "Ana", "email": "a@b.es"})
        for ronda in range(rondas):
            datos = {"nombre": f"Taza {ronda}", "precio": "4.50", "stock": unidades}
            estado, producto = await _json(http["nodo1"], "POST", "/api/productos", json=datos)
            assert estado == 201, producto
            pid = producto["id"]
            await esperar(lambda: _convergidos(c, pid), PLAZO, que="product on every node")  # noqa: B023

            destinos = [NODOS[i % len(NODOS)] for i in range(unidades)]
            rechazos = await _vender_a_la_vez(http, destinos, concurrentes, cliente["id"], pid)
            assert not rechazos, f"round {ronda}: a healthy cluster with units refused: {rechazos}"

            estado, cuerpo = await _pedir_uno(http[NODOS[ronda % len(NODOS)]], cliente["id"], pid)
            assert estado == 409 and cuerpo["error"]["codigo"] == "STOCK_INSUFICIENTE", cuerpo
            assert cuerpo["error"]["detalle"]["motivo"] == "agotado", cuerpo
    finally:
        for h in http.values():
            await h.aclose()
