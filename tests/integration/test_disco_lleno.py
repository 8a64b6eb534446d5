"""A node whose disk fills up: writes refused with a code, health degraded, both back by themselves.

The disk is filled through ``tests/caos/sabotaje.py`` (``disco_lleno``): the
node's commits fail as SQLite's do on a full disk while a marker file
exists. The real disk is never filled.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.caos.sabotaje import marca_disco_lleno, programa
from tests.procesos import PING, FabricaClusters, esperar


def cliente(n: int) -> dict[str, str]:
    return {"nombre": f"Cliente {n}", "email": f"cliente{n}@example.com"}


async def crear(http: httpx.AsyncClient, n: int) -> str:
    r = await http.post("/api/clientes", json=cliente(n))
    assert r.status_code == 201, r.text
    ident: str = r.json()["id"]
    return ident


async def ids(http: httpx.AsyncClient) -> set[str]:
    r = await http.get("/api/clientes", params={"limite": 500})
    assert r.status_code == 200, r.text
    return {c["id"] for c in r.json()}


async def test_a_full_disk_refuses_writes_with_503_and_degrades_health_until_a_write_commits_again(
    clusters: FabricaClusters,
) -> None:
    c = await clusters(2, arrancar=False)
    c["nodo1"].programa = programa("disco_lleno")
    await c.arrancar()
    marca = marca_disco_lleno(c.carpeta, "nodo1")
    async with c["nodo1"].cliente() as uno, c["nodo2"].cliente() as dos:
        confirmados = {await crear(uno, 1)}
        assert (await uno.get("/api/health")).json()["estado"] == "ok"

        marca.touch()
        r = await uno.post("/api/clientes", json=cliente(2))
        assert r.status_code == 503, r.text
        error: dict[str, Any] = r.json()["error"]
        assert error["codigo"] == "ALMACEN_NO_DISPONIBLE"
        assert error["detalle"] == {"motivo": "disk full"}
        graphql = await uno.post(
            "/graphql",
            json={
                "query": "mutation($d: ClienteEntrada!) { crearCliente(datos: $d) { id } }",
                "variables": {"d": cliente(3)},
            },
        )
        assert graphql.json()["errors"][0]["extensions"]["codigo"] == "ALMACEN_NO_DISPONIBLE"

        salud = await uno.get("/api/health")
        assert salud.status_code == 503
        assert salud.json()["estado"] == "degradado"
        assert salud.json()["motivo"] == "the database cannot write: disk full"
        # It still reads, and answers ping: only writes are refused.
        assert await ids(uno) == confirmados
        assert (await uno.get(PING)).status_code == 200
        # The other node takes writes meanwhile; nodo1 cannot merge them until its disk has room.
        confirmados.add(await crear(dos, 4))

        marca.unlink()
        confirmados.add(await crear(uno, 5))
        salud = await uno.get("/api/health")
        assert salud.status_code == 200, salud.text
        assert salud.json()["estado"] == "ok" and "motivo" not in salud.json()

        # Nothing acknowledged is lost, nothing refused was written, on either node.
        await esperar(lambda: _iguales(uno, dos, confirmados), 20.0, que="both nodes hold every acknowledged write")

    await c["nodo1"].matar()
    await c["nodo1"].arrancar()
    async with c["nodo1"].cliente() as uno:
        assert await ids(uno) == confirmados


async def _iguales(uno: httpx.AsyncClient, dos: httpx.AsyncClient, esperados: set[str]) -> bool:
    return await ids(uno) == esperados == await ids(dos)
