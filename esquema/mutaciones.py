"""Mutations: thin resolvers over the domain's writes.

Each resolver turns its input into the domain's dict (only the fields the
client set, see ``esquema.entradas``), calls one ``Dominio`` operation and
shapes the answer. The operation validates and either writes everything or
raises a coded error having written nothing; the error reaches the client
with its code (see ``esquema.errores``). After a write the request's loaders
are emptied, so a later field of the same document never reads a client or
product as it was before the write.
"""

from __future__ import annotations

from typing import Annotated

import strawberry

from esquema.contexto import Contexto
from esquema.entradas import (
    ClienteCambios,
    ClienteEntrada,
    PedidoEntrada,
    ProductoCambios,
    ProductoEntrada,
    a_dict,
)
from esquema.permisos import Operador
from esquema.tipos import Cliente, EstadoPedido, Pedido, Producto
from servidor.dominio import idempotencia

Info = strawberry.Info[Contexto, None]
# The same key with the same input, on any node and at any later time, answers the
# first result and writes nothing (servidor.dominio.idempotencia).
Clave = Annotated[
    str | None,
    strawberry.argument(
        description="Idempotency key (1-64 of A-Z a-z 0-9 _ . : -): a retry with the same key and input, "
        "on any node, answers the first result instead of writing again."
    ),
]


@strawberry.type(name="Mutation")
class Mutacion:
    @strawberry.mutation(permission_classes=[Operador])
    async def crear_cliente(self, info: Info, datos: ClienteEntrada, clave_idempotencia: Clave = None) -> Cliente:
        clave = idempotencia.clave(clave_idempotencia)
        fila = await info.context.dominio.crear_cliente(a_dict(datos), clave)
        return Cliente.desde(fila)

    @strawberry.mutation(permission_classes=[Operador])
    async def actualizar_cliente(self, info: Info, id: strawberry.ID, datos: ClienteCambios) -> Cliente:
        fila = await info.context.dominio.actualizar_cliente(id, a_dict(datos))
        info.context.cargadores.olvidar()
        return Cliente.desde(fila)

    @strawberry.mutation(permission_classes=[Operador], description="Delete a client; its orders stay. Answers true.")
    async def eliminar_cliente(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.dominio.eliminar_cliente(id)
        info.context.cargadores.olvidar()
        return True

    @strawberry.mutation(permission_classes=[Operador])
    async def crear_producto(self, info: Info, datos: ProductoEntrada, clave_idempotencia: Clave = None) -> Producto:
        clave = idempotencia.clave(clave_idempotencia)
        fila = await info.context.dominio.crear_producto(a_dict(datos), clave)
        return Producto.desde(fila)

    @strawberry.mutation(permission_classes=[Operador])
    async def actualizar_producto(self, info: Info, id: strawberry.ID, datos: ProductoCambios) -> Producto:
        fila = await info.context.dominio.actualizar_producto(id, a_dict(datos))
        info.context.cargadores.olvidar()
        return Producto.desde(fila)

    @strawberry.mutation(
        permission_classes=[Operador], description="Add (positive) or remove (negative) units of a product."
    )
    async def ajustar_stock(
        self, info: Info, producto_id: strawberry.ID, cantidad: int, clave_idempotencia: Clave = None
    ) -> Producto:
        clave = idempotencia.clave(clave_idempotencia)
        fila = await info.context.dominio.ajustar_stock(producto_id, cantidad, clave)
        info.context.cargadores.olvidar()
        return Producto.desde(fila)

    @strawberry.mutation(permission_classes=[Operador])
    async def crear_pedido(self, info: Info, datos: PedidoEntrada, clave_idempotencia: Clave = None) -> Pedido:
        clave = idempotencia.clave(clave_idempotencia)
        fila = await info.context.dominio.crear_pedido(a_dict(datos), clave)
        info.context.cargadores.olvidar()  # stock of its products changed
        return Pedido.desde(fila)

    @strawberry.mutation(permission_classes=[Operador])
    async def cambiar_estado_pedido(self, info: Info, id: strawberry.ID, estado: EstadoPedido) -> Pedido:
        fila = await info.context.dominio.cambiar_estado(id, estado.value)
        info.context.cargadores.olvidar()  # a cancelled order returns its units
        return Pedido.desde(fila)

    @strawberry.mutation(
        permission_classes=[Operador],
        description="Delete an order, cancelling it first if it is pending or confirmed (a shipped order "
        "cannot be deleted until delivered). Answers true.",
    )
    async def eliminar_pedido(self, info: Info, id: strawberry.ID) -> bool:
        await info.context.dominio.eliminar_pedido(id)
        info.context.cargadores.olvidar()
        return True
