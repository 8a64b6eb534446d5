"""What a person does on the page, as a few functions; and data seeded through REST.

The functions use what a person sees — labels, button names, the texts the
page shows — and wait with Playwright's expectations, never with sleeps.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.procesos import ProcesoNodo, esperar


def vista(pagina: Page, nombre: str) -> Locator:
    return pagina.locator(f"#vista-{nombre}")


def aviso(pagina: Page, nombre: str) -> Locator:
    return vista(pagina, nombre).locator(".aviso")


async def ir(pagina: Page, nombre: str) -> Locator:
    """Follow the menu link to a view; the view once shown."""
    await pagina.get_by_role("navigation").get_by_role("link", name=nombre.capitalize()).click()
    seccion = vista(pagina, nombre)
    await expect(seccion).to_be_visible()
    return seccion


async def elegir(select: Locator, texto: str) -> None:
    """Choose the option of ``select`` whose text contains ``texto``, once it is there."""
    opcion = select.locator("option", has_text=texto)
    await expect(opcion).to_have_count(1)
    valor = await opcion.get_attribute("value")
    assert valor
    await select.select_option(valor)


async def crear_cliente(pagina: Page, nombre: str, email: str, telefono: str = "") -> None:
    seccion = await ir(pagina, "clientes")
    formulario = seccion.get_by_role("form", name="Cliente")
    await formulario.get_by_label("Nombre").fill(nombre)
    await formulario.get_by_label("Email").fill(email)
    await formulario.get_by_label("Teléfono").fill(telefono)
    await formulario.get_by_role("button", name="Crear cliente").click()
    await expect(aviso(pagina, "clientes")).to_have_text(f"Cliente {nombre} creado.")


async def crear_producto(pagina: Page, nombre: str, precio: str, stock: int, descripcion: str = "") -> None:
    seccion = await ir(pagina, "productos")
    formulario = seccion.get_by_role("form", name="Producto")
    await formulario.get_by_label("Nombre").fill(nombre)
    await formulario.get_by_label("Descripción").fill(descripcion)
    await formulario.get_by_label("Precio").fill(precio)
    await formulario.get_by_label("Stock inicial").fill(str(stock))
    await formulario.get_by_role("button", name="Crear producto").click()
    await expect(aviso(pagina, "productos")).to_have_text(f"Producto {nombre} creado.")


async def rellenar_pedido(pagina: Page, cliente: str, lineas: list[tuple[str, int]]) -> Locator:
    """Fill the new-order form (without sending it); the form."""
    seccion = await ir(pagina, "pedidos")
    formulario = seccion.get_by_role("form", name="Nuevo pedido")
    await elegir(formulario.get_by_label("Cliente"), cliente)
    for i, (producto, cantidad) in enumerate(lineas):
        if i > 0:
            await formulario.get_by_role("button", name="Añadir producto").click()
        linea = formulario.locator(".linea").nth(i)
        await elegir(linea.get_by_label("Producto"), producto)
        await linea.get_by_label("Cantidad").fill(str(cantidad))
    return formulario


async def crear_pedido(pagina: Page, cliente: str, lineas: list[tuple[str, int]], total: str) -> None:
    formulario = await rellenar_pedido(pagina, cliente, lineas)
    await formulario.get_by_role("button", name="Crear pedido").click()
    await expect(aviso(pagina, "pedidos")).to_have_text(re.compile(rf"Pedido \S+ creado: total {re.escape(total)} €\."))


def fila_de_pedido(pagina: Page, *textos: str) -> Locator:
    """The row of the orders table that contains every one of ``textos``."""
    filas = vista(pagina, "pedidos").get_by_role("table", name="Pedidos").locator("tbody tr")
    for texto in textos:
        filas = filas.filter(has_text=texto)
    return filas


# --- data seeded through REST, for tests about something else ----------------------


async def sembrar(nodo: ProcesoNodo, ruta: str, datos: dict[str, Any]) -> dict[str, Any]:
    async with nodo.cliente() as http:
        r = await http.post(ruta, json=datos)
        assert r.status_code == 201, r.text
        creado: dict[str, Any] = r.json()
        return creado


async def esperar_en(nodos: list[ProcesoNodo], ruta: str) -> None:
    """Wait until every one of ``nodos`` has the entity at ``ruta`` (replication takes milliseconds)."""
    for nodo in nodos:
        async with nodo.cliente() as http:

            async def la_tiene() -> bool:
                return (await http.get(ruta)).status_code == 200  # noqa: B023 - awaited at once

            await esperar(la_tiene, 10, que=f"{nodo.id} has {ruta}")
