"""Queries: thin resolvers over the domain's reads.

Each resolver takes its arguments, calls one ``Dominio`` read and shapes the
dicts into output types. Lists are pages, as over REST: ``limite`` (1-500,
default 100) items after skipping ``desde``, oldest first. Reads of one entity by id answer ``null`` with a
``NO_ENCONTRADO`` error for unknown or deleted ids, so that the other fields
of the same document still get their data.
"""

from __future__ import annotations

import time
from typing import Annotated

import strawberry

from esquema.contexto import Contexto
from esquema.permisos import Lectura
from esquema.tipos import Cliente, Conflicto, EstadoPedido, Nodo, Par, Pedido, PosicionVector, Producto
from servidor.dominio import validacion as v

Info = strawberry.Info[Contexto, None]
Limite = Annotated[int, strawberry.argument(description=f"Items in the page, 1-{v.MAX_PAGINA}.")]
Desde = Annotated[int, strawberry.argument(description="Items of the list to skip before the page.")]


@strawberry.type(name="Query")  # GraphQL's conventional root names, which client tools expect
class Consulta:
    @strawberry.field(permission_classes=[Lectura])
    async def clientes(self, info: Info, limite: Limite = v.PAGINA_POR_DEFECTO, desde: Desde = 0) -> list[Cliente]:
        return [Cliente.desde(f) for f in await info.context.dominio.listar_clientes(v.pagina(limite, desde))]

    @strawberry.field(permission_classes=[Lectura])
    async def cliente(self, info: Info, id: strawberry.ID) -> Cliente | None:
        return Cliente.desde(await info.context.dominio.obtener_cliente(id))

    @strawberry.field(permission_classes=[Lectura])
    async def productos(self, info: Info, limite: Limite = v.PAGINA_POR_DEFECTO, desde: Desde = 0) -> list[Producto]:
        return [Producto.desde(f) for f in await info.context.dominio.listar_productos(v.pagina(limite, desde))]

    @strawberry.field(permission_classes=[Lectura])
    async def producto(self, info: Info, id: strawberry.ID) -> Producto | None:
        return Producto.desde(await info.context.dominio.obtener_producto(id))

    @strawberry.field(
        permission_classes=[Lectura],
        description="Orders, oldest first; optionally only those in one estado or of one client.",
    )
    async def pedidos(
        self,
        info: Info,
        estado: EstadoPedido | None = None,
        cliente_id: strawberry.ID | None = None,
        limite: Limite = v.PAGINA_POR_DEFECTO,
        desde: Desde = 0,
    ) -> list[Pedido]:
        filas = await info.context.dominio.listar_pedidos(
            estado=None if estado is None else estado.value, cliente_id=cliente_id, pagina=v.pagina(limite, desde)
        )
        return [Pedido.desde(f) for f in filas]

    @strawberry.field(permission_classes=[Lectura])
    async def pedido(self, info: Info, id: strawberry.ID) -> Pedido | None:
        return Pedido.desde(await info.context.dominio.obtener_pedido(id))

    @strawberry.field(permission_classes=[Lectura])
    def nodo(self, info: Info) -> Nodo:
        ctx = info.context
        return Nodo(
            id=ctx.nodo_id,
            hlc=str(ctx.almacen.reloj.ultimo),
            base_de_datos=ctx.almacen.motores.dialecto,
            vector=[PosicionVector(origen=o, seq=s) for o, s in sorted(ctx.almacen.vector.items())],
            uptime_s=round(time.monotonic() - ctx.inicio, 3),
        )

    @strawberry.field(
        permission_classes=[Lectura],
        description="Every peer of this node: link up or not, last contact, pending changes, lag.",
    )
    async def nodos(self, info: Info) -> list[Par]:
        return [Par.desde(f) for f in await info.context.pares.salud()]

    @strawberry.field(
        permission_classes=[Lectura],
        description="Concurrent estado changes and which one won, the same list on every node.",
    )
    async def conflictos(self, info: Info, limite: Limite = v.PAGINA_POR_DEFECTO, desde: Desde = 0) -> list[Conflicto]:
        return [Conflicto.desde(f) for f in await info.context.dominio.conflictos(v.pagina(limite, desde))]
