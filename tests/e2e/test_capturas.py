"""Every page, captured with data in it; and the README's screenshot.

The captures go to ``tests/e2e/capturas/`` (ignored by git) on every run.
The README's picture, ``docs/captura-pedidos.png``, is committed: the test
checks it is there and small, and draws it again only when asked with
``PEDIDOS_CAPTURA_README=1`` (it would differ on every run: ids, times).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from playwright.async_api import expect

from tests.e2e.conftest import AbrirPagina
from tests.e2e.pagina import aviso, esperar_en, ir, sembrar, vista
from tests.procesos import RAIZ, FabricaClusters

CAPTURA_README = RAIZ / "docs" / "captura-pedidos.png"
MAXIMO_README = 200 * 1024


async def test_every_page_shows_its_data_and_is_captured(
    clusters: FabricaClusters, abrir: AbrirPagina, capturas: Path
) -> None:
    c = await clusters(2)
    uno, dos = c["nodo1"], c["nodo2"]
    clientes = [
        await sembrar(uno, "/api/clientes", {"nombre": n, "email": e, "telefono": t})
        for n, e, t in [
            ("Ana Pérez", "ana@example.com", "+34 600 000 001"),
            ("Luis Gómez", "luis@example.com", "+34 600 000 002"),
        ]
    ]
    productos = [
        await sembrar(uno, "/api/productos", {"nombre": n, "descripcion": d, "precio": p, "stock": s})
        for n, d, p, s in [("Taza", "Cerámica, 300 ml", "4.50", 40), ("Tetera", "Hierro, 1 l", "32.00", 6)]
    ]
    await esperar_en([dos], f"/api/productos/{productos[-1]['id']}")
    pedidos = []
    for nodo, cliente, lineas in [
        (uno, 0, [(0, 2)]),
        (dos, 1, [(0, 4), (1, 1)]),
        (uno, 1, [(1, 1)]),
        (dos, 0, [(0, 6)]),
    ]:
        items = [{"producto_id": productos[p]["id"], "cantidad": n} for p, n in lineas]
        pedidos.append(await sembrar(nodo, "/api/pedidos", {"cliente_id": clientes[cliente]["id"], "items": items}))
    cambios = [["confirmado", "enviado"], ["confirmado"], ["cancelado"], []]
    async with uno.cliente() as http:
        for pedido, estados in zip(pedidos, cambios, strict=True):
            await esperar_en([uno], f"/api/pedidos/{pedido['id']}")
            for estado in estados:
                r = await http.put(f"/api/pedidos/{pedido['id']}/estado", json={"estado": estado})
                assert r.status_code == 200, r.text

    pagina = await abrir(uno, "pedidos")
    tabla = vista(pagina, "pedidos").get_by_role("table", name="Pedidos")
    await expect(tabla.locator("tbody tr")).to_have_count(4)
    await expect(tabla.locator("td.estado")).to_have_text(["pendiente", "cancelado", "confirmado", "enviado"])
    await pagina.screenshot(path=capturas / "pedidos.png")
    if os.environ.get("PEDIDOS_CAPTURA_README") == "1":
        CAPTURA_README.parent.mkdir(exist_ok=True)
        await pagina.set_viewport_size({"width": 1200, "height": 660})
        await pagina.screenshot(path=CAPTURA_README)
        await pagina.set_viewport_size({"width": 1280, "height": 800})

    await ir(pagina, "productos")
    await expect(vista(pagina, "productos").locator("td.stock")).to_have_text(["28", "5"])
    await pagina.screenshot(path=capturas / "productos-con-datos.png")

    await ir(pagina, "clientes")
    await expect(vista(pagina, "clientes").locator("tbody tr")).to_have_count(2)
    await pagina.screenshot(path=capturas / "clientes-con-datos.png")

    seccion = await ir(pagina, "nodos")
    await expect(seccion.locator("dl.nodo")).to_contain_text("nodo1")
    await expect(seccion.locator("dl.nodo")).to_contain_text("sqlite")
    par = seccion.get_by_role("table", name="Pares").locator("tbody tr")
    await expect(par.locator("td").nth(0)).to_have_text("nodo2")
    await expect(par.locator("td").nth(1)).to_have_text(dos.url)
    await expect(par.locator("td").nth(2)).to_have_text("sí")
    await expect(seccion.get_by_role("link", name="Abrir GraphiQL")).to_have_attribute("href", f"{uno.url}/graphql")
    await seccion.get_by_role("button", name="Replicar ahora").click()
    await expect(aviso(pagina, "nodos")).to_have_text(
        re.compile(r"Replicación desde nodo1: nodo2: \d+ cambios recibidos, \d+ aplicados\.")
    )
    await pagina.screenshot(path=capturas / "nodos.png")

    seccion = await ir(pagina, "conflictos")
    await expect(seccion.get_by_role("table", name="Conflictos")).to_contain_text("No hay conflictos.")
    await pagina.screenshot(path=capturas / "conflictos-vacia.png")


def test_the_readme_screenshot_is_committed_and_small() -> None:
    assert CAPTURA_README.exists(), f"{CAPTURA_README} is missing: PEDIDOS_CAPTURA_README=1 make test draws it"
    tamano = CAPTURA_README.stat().st_size
    assert tamano < MAXIMO_README, f"{CAPTURA_README} is {tamano} bytes; keep it under {MAXIMO_README}"
    assert CAPTURA_README.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
