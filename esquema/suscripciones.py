"""Subscriptions: live orders, stock and peers, over the GraphQL websocket.

Each resolver registers with the node's broadcast (``servidor.eventos``)
before it yields anything, and renews the connection's loaders before each
event: a websocket's context lives as long as the connection, so cached rows
would otherwise go stale between events.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from enum import Enum

import strawberry

from esquema.contexto import Contexto
from esquema.permisos import Lectura
from esquema.tipos import Par, Pedido, Producto

Info = strawberry.Info[Contexto, None]


@strawberry.enum(description="What happened to an order.")
class TipoEvento(Enum):
    CREADO = "CREADO"
    ACTUALIZADO = "ACTUALIZADO"
    ELIMINADO = "ELIMINADO"


@strawberry.type(description="An order was created, updated or deleted, here or on a peer.")
class EventoPedido:
    tipo: TipoEvento
    pedido: Pedido


@strawberry.type(name="Subscription")
class Suscripcion:
    @strawberry.subscription(
        permission_classes=[Lectura],
        description="Every change of an order, once per commit, local or merged from a peer.",
    )
    async def pedido_cambiado(self, info: Info) -> AsyncGenerator[EventoPedido, None]:
        async with info.context.difusion.suscribir("pedidos") as suscriptor:
            async for evento in suscriptor:
                info.context.cargadores.olvidar()
                yield EventoPedido(tipo=TipoEvento(evento.tipo), pedido=Pedido.desde(evento.datos))

    @strawberry.subscription(
        permission_classes=[Lectura],
        description="A product whose stock (or another field) changed; optionally only one.",
    )
    async def stock_cambiado(
        self, info: Info, producto_id: strawberry.ID | None = None
    ) -> AsyncGenerator[Producto, None]:
        async with info.context.difusion.suscribir("stock", producto_id) as suscriptor:
            async for evento in suscriptor:
                yield Producto.desde(evento.datos)

    @strawberry.subscription(
        permission_classes=[Lectura],
        description="Peers' health: now, then whenever a link goes up or down or lag changes.",
    )
    async def nodos_cambiados(self, info: Info) -> AsyncGenerator[list[Par], None]:
        async with info.context.difusion.suscribir("nodos") as suscriptor:
            yield [Par.desde(f) for f in await info.context.pares.salud()]
            async for evento in suscriptor:
                yield [Par.desde(f) for f in evento.datos]
