"""Order state and exactly-once creation across a partition, on real node processes.

Each directed link goes through its own TCP proxy (``tests/proxy.py``);
nodo3 is cut off from the others while the two sides act on the same
orders, then the links come back and every node must tell the same story:
nothing went back, nothing shipped was returned, every clash is listed, and
an order retried with its idempotency key exists once.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import pytest

from servidor.dominio.ids import id_de_clave
from tests.bd import BACKENDS
from tests.integration.test_sync_cluster import PLAZO, catalogo, obtener, pedir
from tests.procesos import Cluster, FabricaClusters, ProcesoNodo, esperar
from tests.proxy import Proxies, cluster_con_proxies


def aislar(proxies: Proxies, nodo: str, cortado: bool = True) -> None:
    for (a, b), p in proxies.items():
        if nodo in (a, b):
            p.cortar() if cortado else p.restaurar()


async def mover(nodo: ProcesoNodo, pedido: str, *estados: str) -> None:
    async with nodo.cliente() as http:
        for estado in estados:
            r = await http.put(f"/api/pedidos/{pedido}/estado", json={"estado": estado})
            assert r.status_code == 200, r.text


async def en_todos(c: Cluster, ruta: str) -> None:
    for nodo in c:
        await esperar(functools.partial(obtener, nodo, ruta), PLAZO, que=f"{ruta} reaches {nodo.id}")


async def la_misma_historia(c: Cluster, producto: str) -> list[Any]:
    """Wait until every node answers the same orders, conflicts and product, with nothing left apart."""

    async def vista(n: ProcesoNodo) -> Any:
        p = await obtener(n, f"/api/productos/{producto}")
        return (await obtener(n, "/api/pedidos"), await obtener(n, "/api/conflictos"), p)

    async def iguales() -> list[Any] | None:
        vistas = [await vista(n) for n in c]
        settled = all(v[2] is not None and v[2]["por_devolver"] == 0 for v in vistas)
        return vistas if settled and all(v == vistas[0] for v in vistas) else None

    vistas: list[Any] = await esperar(iguales, 2 * PLAZO, que="nodes converge", ignorar=(httpx.TransportError,))
    return vistas[0]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_across_a_partition_no_order_goes_back_and_no_shipped_unit_returns(
    clusters: FabricaClusters, proxies: Proxies, backend: str
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=3, backend=backend)
    uno, dos, tres = c["nodo1"], c["nodo2"], c["nodo3"]
    cliente, producto = await catalogo(uno, stock=30)
    entregado, enviado, borrado = [await pedir(uno, cliente, producto, 4) for _ in range(3)]
    for p in (entregado, enviado, borrado):
        await en_todos(c, f"/api/pedidos/{p['id']}")
    await mover(uno, enviado["id"], "confirmado")
    await mover(uno, borrado["id"], "confirmado")
    await esperar(lambda: confirmados(c, [enviado["id"], borrado["id"]]), PLAZO, que="confirmations reach every node")

    aislar(proxies, "nodo3")
    await mover(dos, entregado["id"], "confirmado", "enviado", "entregado")
    await mover(tres, entregado["id"], "confirmado")  # stale: nodo3 only saw pendiente
    await mover(dos, enviado["id"], "enviado")
    await mover(tres, enviado["id"], "cancelado")  # too late: the goods left from nodo2
    async with tres.cliente() as http:
        assert (await http.delete(f"/api/pedidos/{borrado['id']}")).status_code == 204
    await mover(dos, borrado["id"], "enviado")  # shipped while nodo3 deleted it
    aislar(proxies, "nodo3", cortado=False)

    pedidos, conflictos, prod = await la_misma_historia(c, producto)
    estados = {p["id"]: p["estado"] for p in pedidos}
    assert estados == {entregado["id"]: "entregado", enviado["id"]: "enviado", borrado["id"]: "enviado"}
    assert (prod["stock"], prod["por_devolver"]) == (30 - 12, 0)
    assert sum(prod["derechos"].values()) == prod["stock"]
    perdidos = {(x["pedido_id"], json.loads(x["valor_perdedor"])) for x in conflictos}
    assert (entregado["id"], "confirmado") in perdidos
    assert (enviado["id"], "cancelado") in perdidos
    assert (borrado["id"], "cancelado") in perdidos


async def confirmados(c: Cluster, ids: list[str]) -> bool:
    for nodo in c:
        for id in ids:
            p = await obtener(nodo, f"/api/pedidos/{id}")
            if p is None or p["estado"] != "confirmado":
                return False
    return True


async def crear_con_clave(nodo: ProcesoNodo, cuerpo: dict[str, Any], clave: str) -> httpx.Response:
    async with nodo.cliente() as http:
        return await http.post("/api/pedidos", json=cuerpo, headers={"Idempotency-Key": clave})


async def test_an_order_retried_on_another_node_with_its_key_is_taken_once_with_or_without_a_partition(
    clusters: FabricaClusters, proxies: Proxies
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=3)
    uno, dos, tres = c["nodo1"], c["nodo2"], c["nodo3"]
    cliente, producto = await catalogo(uno, stock=10)
    await en_todos(c, f"/api/productos/{producto}")
    for nodo in (dos, tres):  # each side of the partition holds units of its own to sell
        async with nodo.cliente() as http:
            assert (await http.post(f"/api/productos/{producto}/stock", json={"cantidad": 10})).status_code == 200
    cuerpo = {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 3}]}

    # The answer of nodo2 was lost; the client retries on nodo3, which has heard of the order.
    primera = await crear_con_clave(dos, cuerpo, "sin-particion")
    assert primera.status_code == 201, primera.text
    await en_todos(c, f"/api/pedidos/{primera.json()['id']}")
    otra = await crear_con_clave(tres, cuerpo, "sin-particion")
    assert (otra.status_code, otra.headers.get("idempotent-replayed")) == (201, "true")
    assert otra.json()["id"] == primera.json()["id"]

    # nodo3 is cut off: it has not heard of the first attempt and takes the order too.
    aislar(proxies, "nodo3")
    primera = await crear_con_clave(dos, cuerpo, "con-particion")
    otra = await crear_con_clave(tres, cuerpo, "con-particion")
    assert primera.status_code == otra.status_code == 201, (primera.text, otra.text)
    assert "idempotent-replayed" not in otra.headers
    # A client bug: one key, two different orders, on the two sides of the partition.
    for nodo, n in ((dos, 1), (tres, 2)):
        distinto = {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": n}]}
        assert (await crear_con_clave(nodo, distinto, "distinta")).status_code == 201
    aislar(proxies, "nodo3", cortado=False)

    pedidos, conflictos, prod = await la_misma_historia(c, producto)
    claves = ("sin-particion", "con-particion", "distinta")
    assert sorted(p["id"] for p in pedidos) == sorted(id_de_clave("pedido", k) for k in claves)
    [ganador] = [p for p in pedidos if p["id"] == id_de_clave("pedido", "distinta")]
    assert prod["stock"] == 30 - 3 - 3 - ganador["items"][0]["cantidad"]  # each order's units sold once
    assert sum(prod["derechos"].values()) == prod["stock"]
    # Same body: nothing to report. Different bodies: the merge kept one, and lists the clash.
    [choque] = [x for x in conflictos if x["campo"] == "huella"]
    assert choque["pedido_id"] == ganador["id"] and choque["entidad"] == "pedido"
    assert choque["ganador"].endswith(ganador["nodo_origen"])
