"""Input types of the mutations, and their conversion to the domain's dicts.

The domain validates dicts with snake_case keys and refuses unknown fields
(``servidor.dominio.validacion``); it tells "not sent" from "sent as null"
by the presence of the key. So the inputs keep that difference too: an
optional field defaults to ``UNSET``, and :func:`a_dict` passes on only the
fields the client actually set.

- In a partial update (``ClienteCambios``, ``ProductoCambios``) a field left
  out is not touched; ``telefono: null``, ``direccion: null`` or
  ``descripcion: null`` clears it; ``nombre: null`` is refused by the
  domain with ``VALIDACION``, like any other bad value.
- GraphQL already checked the types; the domain checks everything else
  (lengths, e-mail syntax, money with two decimals, ranges), so there is one
  set of rules for REST and GraphQL.
- ``Decimal`` (money) is read by the domain's rule for money text
  (:data:`DECIMAL`, in place of Strawberry's, which is ``Decimal(str(v))``
  and so takes ``"4_50"`` for 450); the domain then checks its range.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import strawberry
from strawberry import UNSET
from strawberry.types.scalar import ScalarDefinition

from servidor.dominio import validacion as v


def _leer_decimal(valor: object) -> Decimal:
    d = v.decimal(valor)
    if d is None:
        raise ValueError(f"Decimal cannot represent {valor!r}: write it as a number or a string such as '4.50'")
    return d


DECIMAL = ScalarDefinition(
    name="Decimal",
    description='Decimal (fixed-point): a number, or a string such as "4.50"',
    specified_by_url=None,
    serialize=str,
    parse_value=_leer_decimal,
    parse_literal=None,
    origin=Decimal,
)


@strawberry.input
class ClienteEntrada:
    nombre: str
    email: str
    telefono: str | None = UNSET
    direccion: str | None = UNSET


@strawberry.input(description="Fields to change; those left out keep their value, null clears optional text.")
class ClienteCambios:
    nombre: str | None = UNSET
    email: str | None = UNSET
    telefono: str | None = UNSET
    direccion: str | None = UNSET


@strawberry.input
class ProductoEntrada:
    nombre: str
    precio: Decimal
    descripcion: str | None = UNSET
    stock: int | None = UNSET


@strawberry.input(description="Fields to change; those left out keep their value, null clears the description.")
class ProductoCambios:
    nombre: str | None = UNSET
    descripcion: str | None = UNSET
    precio: Decimal | None = UNSET
    stock: int | None = strawberry.field(
        default=UNSET, description="New absolute stock; becomes an adjustment by the difference."
    )


@strawberry.input
class ItemEntrada:
    producto_id: strawberry.ID
    cantidad: int


@strawberry.input
class PedidoEntrada:
    cliente_id: strawberry.ID
    items: list[ItemEntrada]


def a_dict(entrada: Any) -> dict[str, Any]:
    """The fields the client set, snake_case, nested inputs converted too."""
    return {
        campo.name: _valor(getattr(entrada, campo.name))
        for campo in dataclasses.fields(entrada)
        if getattr(entrada, campo.name) is not UNSET
    }


def _valor(valor: Any) -> Any:
    if isinstance(valor, list):
        return [_valor(v) for v in valor]
    if dataclasses.is_dataclass(valor) and not isinstance(valor, type):
        return a_dict(valor)
    return valor
