"""Nodes sync over websockets: failover, relay through a third node, SIGKILL.

Real node processes on loopback; links cut with a TCP proxy per directed
link (``tests/proxy.py``).
"""

from __future__ import annotations

import signal
from typing import Any

import httpx
import pytest

from tests.bd import BACKENDS
from tests.procesos import FabricaClusters, ProcesoNodo, esperar
from tests.proxy import Proxies, cluster_con_proxies

PLAZO = 15.0


async def catalogo(nodo: ProcesoNodo, stock: int = 10) -> tuple[str, str]:
    async with nodo.cliente() as http:
        c = await http.post("/api/clientes", json={"nombre": "Ana", "email": "ana@example.com"})
        p = await http.post("/api/productos", json={"nombre": "Taza", "precio": "4.50", "stock": stock})
        assert c.status_code == 201 and p.status_code == 201, (c.text, p.text)
        return c.json()["id"], p.json()["id"]


async def pedir(nodo: ProcesoNodo, cliente: str, producto: str, cantidad: int = 1) -> dict[str, Any]:
    async with nodo.cliente() as http:
        r = await http.post(
            "/api/pedidos", json={"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": cantidad}]}
        )
        assert r.status_code == 201, r.text
        return dict(r.json())


async def obtener(nodo: ProcesoNodo, ruta: str) -> Any:
    async with nodo.cliente() as http:
        r = await http.get(ruta)
        return r.json() if r.status_code == 200 else None


async def _derechos_si(nodo: ProcesoNodo, producto: str, condicion: Any) -> dict[str, int] | None:
    p = await obtener(nodo, f"/api/productos/{producto}")
    return p["derechos"] if p is not None and condicion(p["derechos"]) else None


async def iguales(nodos: list[ProcesoNodo]) -> bool:
    """Every node answers the same vector, orders and products."""
    vistas = []
    for n in nodos:
        salud = await obtener(n, "/api/health")
        vistas.append((salud["vector"], await obtener(n, "/api/pedidos"), await obtener(n, "/api/productos")))
    return all(v == vistas[0] for v in vistas[1:])


async def esperar_convergencia(nodos: list[ProcesoNodo], plazo: float = PLAZO) -> None:
    await esperar(lambda: iguales(nodos), plazo, que="nodes converge", ignorar=(httpx.TransportError, TypeError))


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_stopped_node_catches_up_with_orders_taken_while_it_was_away(
    clusters: FabricaClusters, backend: str
) -> None:
    c = await clusters(2, backend=backend)
    uno, dos = c["nodo1"], c["nodo2"]
    cliente, producto = await catalogo(uno)
    await esperar(lambda: obtener(dos, f"/api/productos/{producto}"), PLAZO, que="catalogue reaches nodo2")
    # nodo1 holds every unit: nodo2 is granted what this order needs, then tops up to its share.
    primero = await pedir(dos, cliente, producto, 2)
    derechos = await esperar(
        lambda: _derechos_si(dos, producto, lambda d: d.get("nodo2", 0) >= 3), PLAZO, que="nodo2 tops up"
    )
    assert sum(derechos.values()) == 8, derechos  # what moved between them, and no more

    await uno.parar()
    segundo = await pedir(dos, cliente, producto, 3)
    await uno.arrancar()

    await esperar_convergencia([uno, dos])
    for nodo in (uno, dos):
        ids = {p["id"] for p in await obtener(nodo, "/api/pedidos")}
        assert ids == {primero["id"], segundo["id"]}
        assert (await obtener(nodo, f"/api/productos/{producto}"))["stock"] == 5


async def test_writes_on_two_nodes_that_cannot_see_each_other_relay_through_a_third(
    clusters: FabricaClusters, proxies: Proxies
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=3)
    proxies[("nodo1", "nodo3")].cortar()
    proxies[("nodo3", "nodo1")].cortar()
    cliente, producto = await catalogo(c["nodo1"], stock=20)
    del1 = await pedir(c["nodo1"], cliente, producto, 1)
    await esperar(lambda: obtener(c["nodo3"], f"/api/productos/{producto}"), PLAZO, que="catalogue reaches nodo3")
    # nodo3 cannot reach nodo1, which holds the units: rights come from nodo2, which it can.
    async with c["nodo2"].cliente() as http:
        assert (await http.post(f"/api/productos/{producto}/stock", json={"cantidad": 5})).status_code == 200
    del3 = await pedir(c["nodo3"], cliente, producto, 2)

    await esperar_convergencia(list(c))
    for nodo in c:
        assert {p["id"] for p in await obtener(nodo, "/api/pedidos")} == {del1["id"], del3["id"]}
    salud1 = {p["id"]: p for p in await obtener(c["nodo1"], "/api/health/nodos")}
    assert salud1["nodo2"]["activo"] and not salud1["nodo3"]["activo"]


async def test_a_node_killed_right_after_acknowledging_writes_loses_none_and_applies_none_twice(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(3)
    uno = c["nodo1"]
    cliente, producto = await catalogo(uno, stock=100)
    pedidos = [await pedir(uno, cliente, producto, 1) for _ in range(10)]
    uno.enviar(signal.SIGKILL)
    await uno.esperar_salida()
    # Whatever reached the others before the kill is there; the rest waits for nodo1.
    await uno.arrancar()
    await esperar_convergencia(list(c))
    for nodo in c:
        ids = [p["id"] for p in await obtener(nodo, "/api/pedidos")]
        assert sorted(ids) == sorted(p["id"] for p in pedidos)
        assert (await obtener(nodo, f"/api/productos/{producto}"))["stock"] == 90
        salud = await obtener(nodo, "/api/health")
        assert salud["vector"]["nodo1"] == (await obtener(uno, "/api/health"))["vector"]["nodo1"]


async def test_concurrent_estado_changes_on_partitioned_nodes_settle_on_one_winner_and_record_the_clash(
    clusters: FabricaClusters, proxies: Proxies
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=2)
    uno, dos = c["nodo1"], c["nodo2"]
    cliente, producto = await catalogo(uno)
    pedido = await pedir(uno, cliente, producto, 4)
    await esperar(lambda: obtener(dos, f"/api/pedidos/{pedido['id']}"), PLAZO, que="order reaches nodo2")
    for p in proxies.values():
        p.cortar()
    async with uno.cliente() as h1, dos.cliente() as h2:
        r1 = await h1.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": "confirmado"})
        r2 = await h2.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": "cancelado"})
        assert r1.status_code == 200 and r2.status_code == 200
    for p in proxies.values():
        p.restaurar()
    await esperar_convergencia([uno, dos])
    estados = {(await obtener(n, f"/api/pedidos/{pedido['id']}"))["estado"] for n in (uno, dos)}
    assert estados == {"cancelado"}  # the later write carries the higher stamp
    for nodo in (uno, dos):
        conflictos = await obtener(nodo, "/api/conflictos")
        assert [x["pedido_id"] for x in conflictos] == [pedido["id"]]
        assert (await obtener(nodo, f"/api/productos/{producto}"))["stock"] == 10


async def test_replicate_now_pulls_from_every_reachable_peer_and_says_why_not_for_the_rest(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(3)
    await c["nodo3"].parar()
    await catalogo(c["nodo2"])
    async with c["nodo1"].cliente() as http:
        r = await http.post("/api/replicacion/replicar")
        pendientes = await http.get("/api/replicacion/logs/pendientes")
    assert r.status_code == 200, r.text
    por_par = {x["nodo"]: x for x in r.json()["pares"]}
    assert por_par["nodo2"]["ok"] is True
    assert por_par["nodo3"]["ok"] is False and por_par["nodo3"]["error"]
    assert (await obtener(c["nodo1"], "/api/health"))["vector"].get("nodo2", 0) > 0
    assert {x["nodo"] for x in pendientes.json()} == {"nodo2", "nodo3"}


async def test_graphql_nodos_tells_the_same_facts_as_the_health_route(clusters: FabricaClusters) -> None:
    c = await clusters(2)
    uno = c["nodo1"]

    async def ambos_activos() -> bool:
        return all(p["activo"] for p in await obtener(uno, "/api/health/nodos"))

    await esperar(ambos_activos, PLAZO, que="nodo1 sees nodo2 up")
    async with uno.cliente() as http:
        r = await http.post(
            "/graphql", json={"query": "{ nodo { id vector { origen seq } } nodos { id url activo pendientes lagMs } }"}
        )
    datos = r.json()["data"]
    assert datos["nodo"]["id"] == "nodo1"
    assert datos["nodos"] == [{"id": "nodo2", "url": c["nodo2"].url, "activo": True, "pendientes": 0, "lagMs": 0}]


async def test_converged_nodes_answer_the_same_digest_and_a_write_differs_until_it_is_replicated(
    clusters: FabricaClusters, proxies: Proxies
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=2)
    uno, dos = c["nodo1"], c["nodo2"]

    async def digests() -> list[Any]:
        return [await obtener(n, "/api/replicacion/digest") for n in (uno, dos)]

    async def iguales_digest() -> bool:
        a, b = await digests()
        return bool(a["digest"] == b["digest"] and a["vector"] == b["vector"])

    await catalogo(uno)
    await esperar(iguales_digest, PLAZO, que="equal digests")
    a, b = await digests()
    assert (a["nodo"], b["nodo"]) == ("nodo1", "nodo2") and len(a["digest"]) == 64

    for p in proxies.values():
        p.cortar()
    await catalogo(dos)
    a, b = await digests()
    assert a["digest"] != b["digest"]
    for p in proxies.values():
        p.restaurar()
    await esperar(iguales_digest, PLAZO, que="equal digests after heal")
