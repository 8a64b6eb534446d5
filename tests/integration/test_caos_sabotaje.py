"""The checker catches bugs: nodes broken on purpose, and the verdict they earn.

Each test breaks one thing from the test side — a node started through
``tests/caos/sabotaje.py``, or ``sync.reglas.gana`` patched while one store
merges — runs a short workload, heals, and asserts that the checker names
the invariant the sabotage breaks. A checker that passed these runs would be
blind to exactly the bugs the harness exists to find.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from servidor.almacen import Almacen
from servidor.dominio import Dominio
from sync import reglas
from sync.cambios import Cambio
from tests.caos.carga import OK, Carga, Catalogo, Operacion
from tests.caos.corrida import cerrar_y_verificar, esperar_convergencia, preparar_catalogo
from tests.caos.foto import fotografiar, reconstruir
from tests.caos.sabotaje import programa
from tests.caos.verificador import Entrada, Informe, verificar
from tests.procesos import Cluster, FabricaClusters

PLAZO_CORTO_S = 6.0  # a broken cluster never converges; no need to wait the full deadline


def desempate_invertido(nuevo: Any, actual: Any) -> bool:
    """``reglas.gana`` with the tie-break flipped: equal but for the origin, the lower origin id wins."""
    return actual is None or (*nuevo[:-1], actual[-1]) > (*actual[:-1], nuevo[-1])


def invariantes(informe: Informe) -> set[str]:
    return {v.invariante for v in informe.violaciones}


async def cluster_saboteado(clusters: FabricaClusters, sabotaje: str, saboteado: str) -> Cluster:
    c = await clusters(2, arrancar=False)
    c[saboteado].programa = programa(sabotaje)
    await c.arrancar()
    return c


async def carga_y_veredicto(c: Cluster, catalogo: Catalogo, carpeta: Path, en: str = "nodo1") -> Informe:
    """One second of the random workload on node ``en``, then heal and check."""
    carga = Carga({en: c[en].url}, catalogo, semilla=5, clientes=2)
    historia = await carga.ejecutar(1.0)
    convergencia = await esperar_convergencia(c, PLAZO_CORTO_S)
    informe = await cerrar_y_verificar(c, historia, catalogo, convergencia, carpeta, lecturas=carga.lecturas)
    print(informe.tabla())
    return informe


async def test_the_checker_finds_the_order_a_node_lost_by_dropping_a_change_it_merged(
    clusters: FabricaClusters, tmp_path: Path
) -> None:
    c = await cluster_saboteado(clusters, "perder_cambio", "nodo2")
    catalogo = await preparar_catalogo(c["nodo1"], c, 1000)
    informe = await carga_y_veredicto(c, catalogo, tmp_path)
    assert informe.perdidos >= 1
    assert {"convergencia", "pedidos"} <= invariantes(informe)
    assert any("missing on ['nodo2']" in v.detalle for v in informe.violaciones)


async def test_the_checker_finds_a_node_that_applies_merged_stock_changes_twice(
    clusters: FabricaClusters, tmp_path: Path
) -> None:
    c = await cluster_saboteado(clusters, "aplicar_dos_veces", "nodo2")
    catalogo = await preparar_catalogo(c["nodo1"], c, 1000)
    informe = await carga_y_veredicto(c, catalogo, tmp_path)
    assert {"convergencia", "registro", "stock"} <= invariantes(informe)
    assert all("nodo2" in v.detalle for v in informe.violaciones if v.invariante == "registro")


async def test_the_checker_finds_stock_that_went_negative(clusters: FabricaClusters, tmp_path: Path) -> None:
    c = await cluster_saboteado(clusters, "vender_sin_stock", "nodo1")
    catalogo = await preparar_catalogo(c["nodo1"], c, 5)
    producto = catalogo.productos[0]
    datos = {"cliente_id": catalogo.clientes[0], "items": [{"producto_id": producto, "cantidad": 8}]}
    op = Operacion(0, 0, "nodo1", "crear_pedido", datos, time.monotonic())
    async with c["nodo1"].cliente() as http:
        r = await http.post("/api/pedidos", json=datos)
    assert r.status_code == 201, f"the sabotage no longer lets a node sell beyond its stock: {r.text}"
    op.resultado, op.pedido_id, op.fin = OK, r.json()["id"], time.monotonic()

    convergencia = await esperar_convergencia(c)
    informe = await cerrar_y_verificar(c, [op], catalogo, convergencia, tmp_path)
    print(informe.tabla())
    assert invariantes(informe) == {"stock"}
    assert any(f"{producto} has negative stock -3" in v.detalle for v in informe.violaciones)


async def test_the_checker_finds_a_node_whose_lww_tie_break_is_flipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uno = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'uno.db'}", "nodo1")
    dos = await Almacen.abrir(f"sqlite+aiosqlite:///{tmp_path / 'dos.db'}", "nodo2")
    try:
        d = Dominio(uno)
        cliente = await d.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
        producto = await d.crear_producto({"nombre": "Taza", "precio": "4.50", "stock": 10})
        datos = {"cliente_id": cliente["id"], "items": [{"producto_id": producto["id"], "cantidad": 2}]}
        pedido = await d.crear_pedido(datos)
        await dos.fusionar(await uno.cambios_para(dos.vector, 1000))
        # Two nodes rename the client at the very same stamp: only the tie-break tells them apart. (An
        # order's estado would not do: concurrent estados merge by rank, and equal ranks are equal values.)
        hlc = uno.reloj.ultimo + 10
        choque = [
            Cambio("nodo8", 1, hlc, "cliente", cliente["id"], "nombre", "Ana de nodo8"),
            Cambio("nodo9", 1, hlc, "cliente", cliente["id"], "nombre", "Ana de nodo9"),
        ]
        for cambio in choque:
            await uno.fusionar([cambio])
        with monkeypatch.context() as m:
            m.setattr(reglas, "gana", desempate_invertido)
            for cambio in choque:
                await dos.fusionar([cambio])

        fotos = [await fotografiar(a) for a in (uno, dos)]
        for foto in fotos:
            foto.digest_reconstruido = await reconstruir(foto.cambios, tmp_path, foto.nodo)
    finally:
        await uno.cerrar()
        await dos.cerrar()
    op = Operacion(0, 0, "nodo1", "crear_pedido", datos, 0.0, 0.0, OK, pedido_id=pedido["id"])
    entrada = Entrada([op], fotos, {producto["id"]: 10}, convergencia_s=0.0, clientes_iniciales=[cliente["id"]])
    informe = verificar(entrada)
    print(informe.tabla())
    assert invariantes(informe) == {"convergencia", "registro"}
    assert [v.detalle[:6] for v in informe.violaciones if v.invariante == "registro"] == ["nodo2:"]
