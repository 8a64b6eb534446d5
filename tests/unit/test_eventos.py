"""The broadcast of committed changes: events per commit, slow subscribers dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from servidor.almacen import Almacen
from servidor.dominio import Dominio
from servidor.errores import SuscriptorLento
from servidor.eventos import Difusion


class ParesQuietos:
    """No peers: nothing ever changes."""

    def al_cambiar(self, fn: Callable[[], None]) -> Callable[[], None]:
        return lambda: None

    async def salud(self) -> list[dict[str, Any]]:
        return []


@pytest.fixture
async def difusion(almacen: Almacen) -> AsyncIterator[Difusion]:
    d = Difusion(almacen, ParesQuietos(), maximo=8)  # type: ignore[arg-type]
    d.iniciar()
    try:
        yield d
    finally:
        await d.detener()


async def _catalogo(dominio: Dominio) -> tuple[str, str]:
    c = await dominio.crear_cliente({"nombre": "Ana", "email": "ana@example.com"})
    p = await dominio.crear_producto({"nombre": "Taza", "precio": "1.00", "stock": 100})
    return c["id"], p["id"]


async def test_an_order_creation_is_one_event_with_the_whole_order(dominio: Dominio, difusion: Difusion) -> None:
    cliente, producto = await _catalogo(dominio)
    async with difusion.suscribir("pedidos") as s:
        eventos = aiter(s)
        pedido = await dominio.crear_pedido(
            {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 2}]}
        )
        creado = await asyncio.wait_for(anext(eventos), 2)
        await dominio.eliminar_pedido(pedido["id"])
        eliminado = await asyncio.wait_for(anext(eventos), 2)
    assert (creado.tipo, creado.datos["id"], creado.datos["items"][0]["cantidad"]) == ("CREADO", pedido["id"], 2)
    assert (eliminado.tipo, eliminado.datos["estado"]) == ("ELIMINADO", "cancelado")


async def test_stock_events_follow_sales_and_cancellations(dominio: Dominio, difusion: Difusion) -> None:
    cliente, producto = await _catalogo(dominio)
    async with difusion.suscribir("stock", producto) as s:
        eventos = aiter(s)
        pedido = await dominio.crear_pedido(
            {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 5}]}
        )
        # An event carries the product as it is when the event is read, after its commit
        # (the product's own creation may still be on its way, with 100 units).
        await asyncio.wait_for(_hasta_stock(eventos, 95), 2)
        await dominio.cambiar_estado(pedido["id"], "cancelado")
        await asyncio.wait_for(_hasta_stock(eventos, 100), 2)


async def _hasta_stock(eventos: AsyncIterator[Any], stock: int) -> None:
    while (await anext(eventos)).datos["stock"] != stock:
        pass


async def test_a_subscriber_that_falls_behind_is_told_and_dropped_while_writes_go_on(
    dominio: Dominio, difusion: Difusion
) -> None:
    cliente, producto = await _catalogo(dominio)
    async with difusion.suscribir("pedidos") as lento, difusion.suscribir("pedidos") as atento:
        recibidos = []

        async def leer() -> None:
            async for evento in atento:
                recibidos.append(evento.datos["id"])

        lector = asyncio.create_task(leer())
        creados = []
        for _ in range(30):
            pedido = await dominio.crear_pedido(
                {"cliente_id": cliente, "items": [{"producto_id": producto, "cantidad": 1}]}
            )
            creados.append(pedido["id"])
            await asyncio.sleep(0)  # let the reader run, as a live connection would
        await asyncio.wait_for(_hasta(lambda: len(recibidos) == 30), 5)
        lector.cancel()
        assert lento.desbordado
        with pytest.raises(SuscriptorLento):
            async for _ in lento:
                pass
    assert recibidos == creados


async def _hasta(condicion: Callable[[], bool]) -> None:
    while not condicion():
        await asyncio.sleep(0.01)
