"""The browser page (web/) against real node processes, in Debian's Chromium.

Each test starts its own cluster (SQLite) and opens the page of one or more
nodes, each in its own browser context, as separate people would. Live
updates are proven by a page that is never reloaded: it marks its window
(``window.sinRecargar``) before the change and still has the mark after.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.async_api import Page, Route, expect

from servidor.acceso import Rol
from tests.credenciales import TOKENS
from tests.e2e.conftest import AbrirPagina
from tests.e2e.pagina import (
    aviso,
    crear_cliente,
    crear_pedido,
    crear_producto,
    esperar_en,
    fila_de_pedido,
    ir,
    rellenar_pedido,
    sembrar,
    vista,
)
from tests.procesos import FabricaClusters, esperar
from tests.proxy import Proxies, cluster_con_proxies

PLAZO_FAILOVER_MS = 20_000


async def marcar_sin_recargar(pagina: Page) -> None:
    await pagina.evaluate("window.sinRecargar = true")


async def sigue_sin_recargar(pagina: Page) -> bool:
    return bool(await pagina.evaluate("window.sinRecargar === true"))


async def test_an_order_made_on_node1_appears_live_on_node2_without_reloading(
    clusters: FabricaClusters, abrir: AbrirPagina, capturas: Path
) -> None:
    c = await clusters(2)
    observadora = await abrir(c["nodo2"], "pedidos")
    await expect(observadora.locator("#conexion")).to_have_text("Conectado a nodo2")
    await expect(observadora.locator("#en-vivo")).to_have_text("En vivo")
    await expect(vista(observadora, "pedidos").get_by_role("table", name="Pedidos")).to_contain_text("No hay pedidos.")
    await marcar_sin_recargar(observadora)

    pagina = await abrir(c["nodo1"], "pedidos")
    await expect(pagina.locator("#conexion")).to_have_text("Conectado a nodo1")
    await crear_cliente(pagina, "Ana Pérez", "ana@example.com", "+34 600 000 000")
    await expect(vista(pagina, "clientes").get_by_role("table")).to_contain_text("ana@example.com")
    await pagina.screenshot(path=capturas / "clientes.png")
    await crear_producto(pagina, "Taza", "4.50", 10, "Cerámica, 300 ml")
    await expect(vista(pagina, "productos").get_by_role("table")).to_contain_text("Taza")
    await pagina.screenshot(path=capturas / "productos.png")
    await crear_pedido(pagina, "Ana Pérez", [("Taza", 3)], total="13.50")

    # Node 2's page shows the order, its product's stock and later its new estado, all by itself.
    fila = fila_de_pedido(observadora, "Ana Pérez", "3 × Taza", "13.50 €", "nodo1")
    await expect(fila).to_have_count(1)
    await expect(fila.locator("td.estado")).to_have_text("pendiente")
    await pagina.screenshot(path=capturas / "pedidos-nodo1.png")

    await fila_de_pedido(pagina, "Ana Pérez").get_by_role("button", name="Confirmar").click()
    await expect(fila.locator("td.estado")).to_have_text("confirmado")
    await ir(observadora, "productos")
    await expect(vista(observadora, "productos").get_by_role("row", name=re.compile("Taza"))).to_contain_text("7")
    await ir(observadora, "pedidos")
    await observadora.screenshot(path=capturas / "pedidos-nodo2.png")
    assert await sigue_sin_recargar(observadora), "node 2's page was reloaded"


async def test_when_its_node_stops_the_page_moves_to_a_live_node_says_so_and_keeps_taking_orders(
    clusters: FabricaClusters, abrir: AbrirPagina, capturas: Path
) -> None:
    c = await clusters(3)
    cliente = await sembrar(c["nodo1"], "/api/clientes", {"nombre": "Bea Ruiz", "email": "bea@example.com"})
    producto = await sembrar(c["nodo1"], "/api/productos", {"nombre": "Lámpara", "precio": "20.00", "stock": 0})
    await esperar_en([c["nodo2"], c["nodo3"]], f"/api/productos/{producto['id']}")
    # The units arrive at nodo2, so they are nodo2's to sell, with or without nodo1.
    async with c["nodo2"].cliente() as http:
        r = await http.post(f"/api/productos/{producto['id']}/stock", json={"cantidad": 5})
        assert r.status_code == 200, r.text
    async with c["nodo1"].cliente() as http:

        async def repuesto() -> bool:
            return bool((await http.get(f"/api/productos/{producto['id']}")).json()["stock"] == 5)

        await esperar(repuesto, 10, que="nodo1 sees the restock")

    pagina = await abrir(c["nodo1"], "pedidos")
    await expect(pagina.locator("#conexion")).to_have_text("Conectado a nodo1")
    formulario = await rellenar_pedido(pagina, "Bea Ruiz", [("Lámpara", 2)])
    await marcar_sin_recargar(pagina)

    await c["nodo1"].parar()

    await expect(pagina.locator("#conexion")).to_have_text(
        "Conectado a nodo2 (nodo1 no responde)", timeout=PLAZO_FAILOVER_MS
    )
    await expect(pagina.locator("#en-vivo")).to_have_text("En vivo")
    # What was typed is still there, and the order goes to the node the page moved to.
    await expect(formulario.get_by_label("Cliente")).to_have_value(cliente["id"])
    await expect(formulario.locator(".linea").get_by_label("Producto")).to_have_value(producto["id"])
    await expect(formulario.locator(".linea").get_by_label("Cantidad")).to_have_value("2")
    await formulario.get_by_role("button", name="Crear pedido").click()
    await expect(aviso(pagina, "pedidos")).to_have_text(re.compile(r"Pedido \S+ creado: total 40.00 €\."))
    await expect(fila_de_pedido(pagina, "Bea Ruiz", "2 × Lámpara", "nodo2")).to_have_count(1)
    await pagina.screenshot(path=capturas / "failover.png")
    assert await sigue_sin_recargar(pagina), "the page was reloaded"

    async with c["nodo3"].cliente() as http:
        r = await http.get("/api/productos/" + producto["id"])
    assert r.json()["stock"] in (3, 5), r.text  # 3 once replicated; never anything else


async def test_ordering_more_than_the_stock_shows_the_servers_stock_insuficiente_message(
    clusters: FabricaClusters, abrir: AbrirPagina, capturas: Path
) -> None:
    c = await clusters(2)
    await sembrar(c["nodo1"], "/api/clientes", {"nombre": "Carla Gil", "email": "carla@example.com"})
    await sembrar(c["nodo1"], "/api/productos", {"nombre": "Taza", "precio": "4.50", "stock": 2})

    pagina = await abrir(c["nodo1"], "pedidos")
    formulario = await rellenar_pedido(pagina, "Carla Gil", [("Taza", 5)])
    await formulario.get_by_role("button", name="Crear pedido").click()

    error = vista(pagina, "pedidos").get_by_role("alert")
    await expect(error).to_have_text(
        "Stock insuficiente: not enough stock of 'Taza': 5 asked, 2 left (STOCK_INSUFICIENTE)"
    )
    await expect(formulario.locator(".linea").get_by_label("Cantidad")).to_have_value("5")
    await expect(vista(pagina, "pedidos").get_by_role("table", name="Pedidos")).to_contain_text("No hay pedidos.")
    await pagina.screenshot(path=capturas / "error-stock.png")


async def test_each_order_offers_only_its_legal_estado_changes_and_can_be_filtered_and_deleted(
    clusters: FabricaClusters, abrir: AbrirPagina
) -> None:
    c = await clusters(2)
    cliente = await sembrar(c["nodo1"], "/api/clientes", {"nombre": "Dani Sanz", "email": "dani@example.com"})
    producto = await sembrar(c["nodo1"], "/api/productos", {"nombre": "Vaso", "precio": "2.00", "stock": 10})
    item = {"producto_id": producto["id"], "cantidad": 1}
    entregado = await sembrar(c["nodo1"], "/api/pedidos", {"cliente_id": cliente["id"], "items": [item]})
    cancelado = await sembrar(c["nodo1"], "/api/pedidos", {"cliente_id": cliente["id"], "items": [item]})

    pagina = await abrir(c["nodo1"], "pedidos")
    tabla = vista(pagina, "pedidos").get_by_role("table", name="Pedidos")
    fila = tabla.locator(f'tr[data-id="{entregado["id"]}"]')
    pasos = [
        ("pendiente", ["Confirmar", "Cancelar", "Eliminar"], "Confirmar"),
        ("confirmado", ["Enviar", "Cancelar", "Eliminar"], "Enviar"),
        ("enviado", ["Entregar", "Eliminar"], "Entregar"),
        ("entregado", ["Eliminar"], None),
    ]
    for estado, botones, siguiente in pasos:
        await expect(fila.locator("td.estado")).to_have_text(estado)
        await expect(fila.get_by_role("button")).to_have_text(botones)
        if siguiente:
            await fila.get_by_role("button", name=siguiente).click()

    otra = tabla.locator(f'tr[data-id="{cancelado["id"]}"]')
    await otra.get_by_role("button", name="Cancelar").click()
    await expect(otra.locator("td.estado")).to_have_text("cancelado")
    await expect(otra.get_by_role("button")).to_have_text(["Eliminar"])

    await vista(pagina, "pedidos").get_by_role("form", name="Filtros").get_by_label("Estado").select_option("ENTREGADO")
    await expect(tabla.locator("tbody tr")).to_have_count(1)
    await expect(fila).to_be_visible()
    await vista(pagina, "pedidos").get_by_role("form", name="Filtros").get_by_label("Estado").select_option("")
    await expect(tabla.locator("tbody tr")).to_have_count(2)

    # Deleting asks for a second click, not a dialog.
    await otra.get_by_role("button", name="Eliminar").click()
    await expect(otra.get_by_role("button", name="¿Seguro? Pulse otra vez")).to_be_visible()
    await otra.get_by_role("button", name="¿Seguro? Pulse otra vez").click()
    await expect(otra).to_have_count(0)
    await expect(aviso(pagina, "pedidos")).to_have_text(re.compile(r"Pedido \S+ eliminado\."))
    async with c["nodo1"].cliente() as http:
        assert (await http.get(f"/api/pedidos/{cancelado['id']}")).status_code == 404
        assert (await http.get(f"/api/productos/{producto['id']}")).json()["stock"] == 9


async def test_a_product_repriced_and_restocked_on_one_node_updates_live_on_another_without_losing_typing(
    clusters: FabricaClusters, abrir: AbrirPagina
) -> None:
    c = await clusters(2)
    producto = await sembrar(c["nodo1"], "/api/productos", {"nombre": "Jarra", "precio": "8.00", "stock": 4})
    await esperar_en([c["nodo2"]], f"/api/productos/{producto['id']}")

    observadora = await abrir(c["nodo2"], "productos")
    await expect(observadora.locator("#en-vivo")).to_have_text("En vivo")
    suya = vista(observadora, "productos").locator(f'tr[data-id="{producto["id"]}"]')
    await expect(suya.locator("td.stock")).to_have_text("4")
    await marcar_sin_recargar(observadora)

    pagina = await abrir(c["nodo1"], "productos")
    fila = vista(pagina, "productos").locator(f'tr[data-id="{producto["id"]}"]')
    await fila.get_by_label("Precio").fill("8.75")
    await fila.get_by_role("button", name="Guardar precio").click()
    await expect(aviso(pagina, "productos")).to_have_text("Precio de Jarra: 8.75 €.")
    await expect(suya.get_by_label("Precio")).to_have_value("8.75")

    # Someone on node 2 starts typing a price; a live update must not overwrite it.
    await suya.get_by_label("Precio").fill("9.10")
    await fila.get_by_label("Unidades").fill("6")
    await fila.get_by_role("button", name="Reponer").click()
    await expect(aviso(pagina, "productos")).to_have_text("Stock de Jarra: 10 unidades.")
    await expect(suya.locator("td.stock")).to_have_text("10")
    await expect(suya.get_by_label("Precio")).to_have_value("9.10")
    assert await sigue_sin_recargar(observadora), "node 2's page was reloaded"

    # Removing more units than there are is refused, in words.
    await fila.get_by_label("Unidades").fill("-50")
    await fila.get_by_role("button", name="Reponer").click()
    await expect(vista(pagina, "productos").get_by_role("alert")).to_have_text(
        "Stock insuficiente: cannot remove 50 units of 'Jarra': 10 in stock (STOCK_INSUFICIENTE)"
    )


async def test_clients_are_created_edited_and_deleted_from_the_page(
    clusters: FabricaClusters, abrir: AbrirPagina
) -> None:
    c = await clusters(2)
    pagina = await abrir(c["nodo1"], "clientes")
    await crear_cliente(pagina, "Elena Mora", "elena@example.com", "+34 611 111 111")
    seccion = vista(pagina, "clientes")
    fila = seccion.get_by_role("table", name="Clientes").locator("tbody tr", has_text="Elena Mora")
    await expect(fila).to_contain_text("+34 611 111 111")

    await fila.get_by_role("button", name="Editar").click()
    formulario = seccion.get_by_role("form", name="Cliente")
    await expect(formulario.get_by_label("Email")).to_have_value("elena@example.com")
    await formulario.get_by_label("Dirección").fill("Calle Mayor 1, Madrid")
    # The browser takes "elena@example" as an e-mail; the server does not, and the page says why.
    await formulario.get_by_label("Email").fill("elena@example")
    await formulario.get_by_role("button", name="Guardar cambios").click()
    await expect(seccion.get_by_role("alert")).to_have_text(
        "Datos no válidos: 'email' is not a valid address: "
        "The part after the @-sign is not valid. It should have a period. (VALIDACION)"
    )
    await formulario.get_by_label("Email").fill("elena.mora@example.com")
    await formulario.get_by_role("button", name="Guardar cambios").click()
    await expect(aviso(pagina, "clientes")).to_have_text("Cliente Elena Mora guardado.")
    await expect(fila).to_contain_text("elena.mora@example.com")
    await expect(fila).to_contain_text("Calle Mayor 1, Madrid")

    await fila.get_by_role("button", name="Eliminar").click()
    await fila.get_by_role("button", name="¿Seguro? Pulse otra vez").click()
    await expect(aviso(pagina, "clientes")).to_have_text("Cliente eliminado.")
    await expect(seccion.get_by_role("table", name="Clientes")).to_contain_text("No hay clientes.")


async def test_concurrent_estado_changes_made_on_two_cut_off_pages_are_listed_as_a_conflict_on_both(
    clusters: FabricaClusters, proxies: Proxies, abrir: AbrirPagina, capturas: Path
) -> None:
    c = await cluster_con_proxies(clusters, proxies, n=2)
    cliente = await sembrar(c["nodo1"], "/api/clientes", {"nombre": "Fran Vidal", "email": "fran@example.com"})
    producto = await sembrar(c["nodo1"], "/api/productos", {"nombre": "Plato", "precio": "6.00", "stock": 8})
    item = {"producto_id": producto["id"], "cantidad": 2}
    pedido = await sembrar(c["nodo1"], "/api/pedidos", {"cliente_id": cliente["id"], "items": [item]})
    await esperar_en([c["nodo2"]], f"/api/pedidos/{pedido['id']}")

    uno, dos = await abrir(c["nodo1"], "pedidos"), await abrir(c["nodo2"], "pedidos")
    filas = [vista(p, "pedidos").locator(f'tr[data-id="{pedido["id"]}"]') for p in (uno, dos)]
    for fila in filas:
        await expect(fila.locator("td.estado")).to_have_text("pendiente")
    for p in proxies.values():
        p.cortar()
    await filas[0].get_by_role("button", name="Confirmar").click()
    await expect(filas[0].locator("td.estado")).to_have_text("confirmado")
    await filas[1].get_by_role("button", name="Cancelar").click()
    await expect(filas[1].locator("td.estado")).to_have_text("cancelado")
    for p in proxies.values():
        p.restaurar()

    # The later write wins everywhere, and both pages list the clash once the nodes have merged.
    for pagina in (uno, dos):
        await expect(vista(pagina, "pedidos").locator(f'tr[data-id="{pedido["id"]}"] td.estado')).to_have_text(
            "cancelado", timeout=15_000
        )
        seccion = await ir(pagina, "conflictos")
        fila = seccion.get_by_role("table", name="Conflictos").locator("tbody tr")
        await expect(fila).to_have_count(1, timeout=15_000)
        await expect(fila.locator("td").nth(1)).to_have_text("estado")
        await expect(fila.locator("td").nth(2)).to_have_text("cancelado")
        await expect(fila.locator("td").nth(3)).to_have_text("confirmado")
    await dos.screenshot(path=capturas / "conflictos.png")


async def test_a_page_without_a_token_says_so_and_connects_once_one_is_typed_in(
    clusters: FabricaClusters, abrir: AbrirPagina
) -> None:
    c = await clusters(1)
    pagina = await abrir(c["nodo1"], "pedidos", token=None)
    await expect(pagina.locator("#conexion")).to_contain_text("Falta un token de acceso válido")
    acceso = pagina.get_by_role("form", name="Acceso")
    await acceso.get_by_label("Token de acceso").fill(TOKENS[Rol.LECTURA])
    await acceso.get_by_role("button", name="Usar token").click()
    await expect(pagina.locator("#conexion")).to_have_text("Conectado a nodo1")
    await expect(pagina.locator("#en-vivo")).to_have_text("En vivo")
    await expect(vista(pagina, "pedidos").get_by_role("table", name="Pedidos")).to_contain_text("No hay pedidos.")


async def test_an_order_whose_answer_was_lost_is_retried_on_the_next_node_with_its_key_and_taken_once(
    clusters: FabricaClusters, abrir: AbrirPagina
) -> None:
    c = await clusters(3)
    await sembrar(c["nodo1"], "/api/clientes", {"nombre": "Bea Ruiz", "email": "bea@example.com"})
    producto = await sembrar(c["nodo1"], "/api/productos", {"nombre": "Lámpara", "precio": "20.00", "stock": 5})
    await esperar_en([c["nodo2"], c["nodo3"]], f"/api/productos/{producto['id']}")
    pagina = await abrir(c["nodo1"], "pedidos")
    await expect(pagina.locator("#conexion")).to_have_text("Conectado a nodo1")

    # nodo1 takes the order, and its answer never reaches the page.
    enviadas: list[dict[str, object]] = []

    async def perder_la_respuesta(ruta: Route) -> None:
        cuerpo = ruta.request.post_data_json or {}
        if "crearPedido" in str(cuerpo.get("query", "")) and not enviadas:
            enviadas.append(cuerpo)
            await ruta.fetch()  # it reaches nodo1 and commits there
            await ruta.abort("connectionreset")
            return
        await ruta.continue_()

    await pagina.route(f"{c['nodo1'].url}/graphql", perder_la_respuesta)
    formulario = await rellenar_pedido(pagina, "Bea Ruiz", [("Lámpara", 2)])
    await formulario.get_by_role("button", name="Crear pedido").click()
    await expect(aviso(pagina, "pedidos")).to_have_text(
        re.compile(r"Pedido \S+ creado: total 40.00 €\."), timeout=PLAZO_FAILOVER_MS
    )
    assert enviadas and enviadas[0]["variables"]["clave"]  # type: ignore[index]

    async def uno_solo() -> bool:
        for nodo in c:
            async with nodo.cliente() as http:
                pedidos = (await http.get("/api/pedidos")).json()
                stock = (await http.get(f"/api/productos/{producto['id']}")).json()["stock"]
            if len(pedidos) != 1 or stock != 3:
                return False
        return True

    await esperar(uno_solo, 15, que="one order, sold once, on every node")
