"""Output types of the schema, built from the plain dicts the domain answers.

Each type has a ``desde(fila)`` constructor that takes the dict shaped by
``servidor.almacen.consultas`` (snake_case keys). Related entities are not
embedded: ``Pedido.cliente`` and ``ItemPedido.producto`` are resolved through
the per-request loaders of the context, so a list of orders costs the same
number of statements whatever its length.

Money is ``Decimal`` (serialized as a string, so no float rounding on the
way out); ``estado`` is the ``EstadoPedido`` enum, whose GraphQL names are
upper case and whose values are the domain's lower-case words.
"""

from __future__ import annotations

import json
from decimal import Decimal
from enum import Enum
from typing import Any

import strawberry

from esquema.contexto import Contexto


@strawberry.enum(description="Where an order is in its life.")
class EstadoPedido(Enum):
    PENDIENTE = "pendiente"
    CONFIRMADO = "confirmado"
    ENVIADO = "enviado"
    ENTREGADO = "entregado"
    CANCELADO = "cancelado"


@strawberry.type
class Cliente:
    id: strawberry.ID
    nombre: str
    email: str
    telefono: str | None
    direccion: str | None
    creado_en: str

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> Cliente:
        return cls(
            id=strawberry.ID(fila["id"]),
            nombre=fila["nombre"],
            email=fila["email"],
            telefono=fila["telefono"],
            direccion=fila["direccion"],
            creado_en=fila["creado_en"],
        )


@strawberry.type(description="Rights of one node to sell units of a product (escrow).")
class DerechoNodo:
    nodo: str
    unidades: int


@strawberry.type
class Producto:
    id: strawberry.ID
    nombre: str
    descripcion: str | None
    precio: Decimal
    stock: int = strawberry.field(description="Units in stock across the cluster, as this node knows them.")
    por_devolver: int = strawberry.field(
        description="Units of cancelled orders that return to stock once every node has the cancellation."
    )
    por_confirmar: int = strawberry.field(
        description="Units added with an idempotency key that count once every node has the addition."
    )
    creado_en: str

    @strawberry.field(
        description="Units each node holds rights to sell; they add up to stock. A node sells only from its own."
    )
    async def derechos(self, info: strawberry.Info[Contexto, None]) -> list[DerechoNodo]:
        por_nodo = await info.context.cargadores.derechos.load(str(self.id))
        return [DerechoNodo(nodo=n, unidades=u) for n, u in sorted(por_nodo.items())]

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> Producto:
        return cls(
            id=strawberry.ID(fila["id"]),
            nombre=fila["nombre"],
            descripcion=fila["descripcion"],
            precio=fila["precio"],
            stock=fila["stock"],
            por_devolver=fila["por_devolver"],
            por_confirmar=fila["por_confirmar"],
            creado_en=fila["creado_en"],
        )


@strawberry.type
class ItemPedido:
    producto_id: strawberry.ID
    cantidad: int
    precio_unitario: Decimal
    subtotal: Decimal

    @strawberry.field(description="The product as it is now; null once deleted.")
    async def producto(self, info: strawberry.Info[Contexto, None]) -> Producto | None:
        fila = await info.context.cargadores.productos.load(self.producto_id)
        return None if fila is None else Producto.desde(fila)

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> ItemPedido:
        return cls(
            producto_id=strawberry.ID(fila["producto_id"]),
            cantidad=fila["cantidad"],
            precio_unitario=fila["precio_unitario"],
            subtotal=fila["subtotal"],
        )


@strawberry.type
class Pedido:
    id: strawberry.ID
    cliente_id: strawberry.ID
    items: list[ItemPedido]
    estado: EstadoPedido
    total: Decimal
    creado_en: str
    nodo_origen: str

    @strawberry.field(description="The client as it is now; null once deleted.")
    async def cliente(self, info: strawberry.Info[Contexto, None]) -> Cliente | None:
        fila = await info.context.cargadores.clientes.load(self.cliente_id)
        return None if fila is None else Cliente.desde(fila)

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> Pedido:
        return cls(
            id=strawberry.ID(fila["id"]),
            cliente_id=strawberry.ID(fila["cliente_id"]),
            items=[ItemPedido.desde(i) for i in fila.get("items", [])],
            estado=EstadoPedido(fila["estado"]),
            total=fila["total"],
            creado_en=fila["creado_en"],
            nodo_origen=fila["nodo_origen"],
        )


@strawberry.type(
    description="Two concurrent writes: of an order's estado (neither writer had seen the other; the more advanced "
    "state won), or creations of one id from two different requests with one idempotency key (campo 'huella')."
)
class Conflicto:
    entidad: str = strawberry.field(description="pedido, or the kind of entity a keyed creation made.")
    pedido_id: strawberry.ID = strawberry.field(description="The id of the order (or entity).")
    campo: str
    ganador: str = strawberry.field(description="Stamp of the winning write, as 'hlc:origen'.")
    perdedor: str = strawberry.field(description="Stamp of the losing write, as 'hlc:origen'.")
    valor_ganador: str
    valor_perdedor: str
    base: str = strawberry.field(
        description="What the losing writer had seen of the order's estado writes, as 'origen:seq,...'."
    )

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> Conflicto:
        return cls(
            entidad=fila["entidad"],
            pedido_id=strawberry.ID(fila["pedido_id"]),
            campo=fila["campo"],
            ganador=fila["ganador"],
            perdedor=fila["perdedor"],
            valor_ganador=_valor(fila["valor_ganador"]),
            valor_perdedor=_valor(fila["valor_perdedor"]),
            base=fila["base"],
        )


def _valor(codificado: str) -> str:
    """The log stores values as JSON; a string reads better without its quotes."""
    valor = json.loads(codificado)
    return valor if isinstance(valor, str) else codificado


@strawberry.type(description="Highest contiguous seq applied from one origin.")
class PosicionVector:
    origen: str
    seq: int


@strawberry.type(description="The node answering the request.")
class Nodo:
    id: str
    hlc: str = strawberry.field(description="Last clock stamp issued, a 64-bit integer as a string.")
    base_de_datos: str
    vector: list[PosicionVector]
    uptime_s: float


@strawberry.type(description="A peer of the answering node, as that node sees it.")
class Par:
    id: str
    url: str
    activo: bool = strawberry.field(description="A link with the peer is up and it spoke within a few seconds.")
    ultimo_contacto: str | None
    pendientes: int = strawberry.field(description="Changes this node has that the peer has not acknowledged.")
    lag_ms: int = strawberry.field(description="Age of the oldest change the peer has not acknowledged.")
    ultimo_error: str | None

    @classmethod
    def desde(cls, fila: dict[str, Any]) -> Par:
        campos = ("id", "url", "activo", "ultimo_contacto", "pendientes", "lag_ms", "ultimo_error")
        return cls(**{k: fila[k] for k in campos})
