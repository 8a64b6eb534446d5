"""Errors a client can be told about, each with a stable code.

The hierarchy::

    ErrorPedidos                    any expected failure (code, message, detail)
    ├── EntradaInvalida       400   JSON_INVALIDO: the body is not JSON
    ├── NoEncontrado          404   NO_ENCONTRADO: unknown or deleted id
    ├── Validacion            422   VALIDACION: wrong type, missing or bad field
    ├── Conflicto             409   (abstract) the request is valid but the state refuses it
    │   ├── StockInsuficiente       STOCK_INSUFICIENTE
    │   └── TransicionInvalida      TRANSICION_INVALIDA
    ├── CuerpoDemasiadoGrande 413   CUERPO_DEMASIADO_GRANDE
    └── SuscriptorLento       429   SUSCRIPTOR_LENTO: a subscriber fell too far behind

Every one of them is *definite*: the request changed nothing. REST answers
``{"error": {"codigo", "mensaje", "detalle"}}`` with the status above;
GraphQL puts the code in ``extensions.codigo``. Anything else is an internal
error, logged and masked.
"""

from __future__ import annotations

from typing import Any


class ErrorPedidos(Exception):
    codigo = "ERROR"
    estado_http = 400

    def __init__(self, mensaje: str, detalle: dict[str, Any] | None = None) -> None:
        super().__init__(mensaje)
        self.mensaje = mensaje
        self.detalle = detalle or {}

    def como_json(self) -> dict[str, Any]:
        return {"error": {"codigo": self.codigo, "mensaje": self.mensaje, "detalle": self.detalle}}


class EntradaInvalida(ErrorPedidos):
    codigo = "JSON_INVALIDO"
    estado_http = 400


class NoEncontrado(ErrorPedidos):
    codigo = "NO_ENCONTRADO"
    estado_http = 404

    def __init__(self, entidad: str, id: str) -> None:
        super().__init__(f"{entidad} {id!r} no existe", {"entidad": entidad, "id": id})


class Validacion(ErrorPedidos):
    codigo = "VALIDACION"
    estado_http = 422


class Conflicto(ErrorPedidos):
    estado_http = 409


class StockInsuficiente(Conflicto):
    codigo = "STOCK_INSUFICIENTE"


class TransicionInvalida(Conflicto):
    codigo = "TRANSICION_INVALIDA"


class CuerpoDemasiadoGrande(ErrorPedidos):
    codigo = "CUERPO_DEMASIADO_GRANDE"
    estado_http = 413


class SuscriptorLento(ErrorPedidos):
    codigo = "SUSCRIPTOR_LENTO"
    estado_http = 429
