"""How errors leave the schema: coded, masked, logged.

Three kinds of error reach a GraphQL answer:

- A domain error (``servidor.errores.ErrorPedidos``) raised by a resolver:
  the request was refused and nothing was written. Its message is meant for
  the client, and :class:`CodigosDeError` puts its stable code and detail in
  ``extensions`` — ``{"codigo": "STOCK_INSUFICIENTE", "detalle": {...}}`` —
  the same code REST answers with. Logged at INFO, without a traceback.
- A request error found before anything runs: syntax, unknown fields, wrong
  argument or variable types, the depth/token/alias limits. Its message
  says what is wrong with the document and is safe to show; it gets
  ``codigo: "VALIDACION"``, since it is the GraphQL face of "wrong type,
  missing or bad field". Logged at DEBUG.
- Anything else raised while resolving a field is a bug or an outage. Its
  message may name tables, paths or SQL, so ``MaskErrors`` (with
  :func:`debe_ocultarse`) replaces it with "Unexpected error."; the full
  error is logged at ERROR with its traceback, before masking.

Beside our ``codigo``, every coded error carries the conventional
``extensions.code`` that generic GraphQL clients and tools read to tell a
refused request from a failed server: ``BAD_USER_INPUT`` for a domain
refusal, ``UNAUTHENTICATED`` / ``FORBIDDEN`` for access,
``GRAPHQL_VALIDATION_FAILED`` for a refused document.

On the websocket, errors the protocol itself sends (an operation past the
limit of a connection) get ``VALIDACION`` there (``esquema.vista``).

Errors cached by ``ValidationCache`` are shared by every request that sends
the same document, so they are never changed in place: coding one builds a
new ``GraphQLError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import ExecutionResult

from servidor.errores import ErrorPedidos, NoAutenticado, Prohibido, Validacion

log = logging.getLogger(__name__)


def error_de_dominio(error: GraphQLError) -> ErrorPedidos | None:
    original = error.original_error
    return original if isinstance(original, ErrorPedidos) else None


def debe_ocultarse(error: GraphQLError) -> bool:
    """Mask what was raised while resolving, unless it is a domain error."""
    original = error.original_error
    if original is None or isinstance(original, (ErrorPedidos, GraphQLError)):
        return False
    return error.path is not None


def _clase(dominio: ErrorPedidos | None) -> str:
    if dominio is None:
        return "GRAPHQL_VALIDATION_FAILED"
    if isinstance(dominio, NoAutenticado):
        return "UNAUTHENTICATED"
    if isinstance(dominio, Prohibido):
        return "FORBIDDEN"
    return "BAD_USER_INPUT"


def _con_codigo(
    error: GraphQLError, codigo: str, detalle: dict[str, Any] | None = None, dominio: ErrorPedidos | None = None
) -> GraphQLError:
    extensiones: dict[str, Any] = {**(error.extensions or {}), "codigo": codigo, "code": _clase(dominio)}
    if detalle is not None:
        extensiones["detalle"] = detalle
    return GraphQLError(
        error.message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=extensiones,
    )


def codificar(error: GraphQLError) -> GraphQLError:
    """The error with ``extensions.codigo`` (and ``detalle``) where it has one."""
    dominio = error_de_dominio(error)
    if dominio is not None:
        return _con_codigo(error, dominio.codigo, dominio.detalle, dominio)
    if error.path is None and not debe_ocultarse(error):
        return _con_codigo(error, Validacion.codigo)
    return error


class CodigosDeError(SchemaExtension):
    """Give every domain and request error its code, before the client sees it.

    Over HTTP the operation has one result, coded once the operation is
    done. Over the websocket (``Schema.stream``: subscriptions, and queries
    and mutations sent there) each result is sent as it comes, so each is
    coded as it passes, and the operation's end has nothing left to do.
    """

    def __init__(self) -> None:
        self._por_resultado = False

    def on_operation(self) -> Iterator[None]:
        self._por_resultado = False
        yield
        if not self._por_resultado:
            # graphql-core's result after execution, Strawberry's after a refused document.
            _codificar_resultado(self.execution_context.result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        self._por_resultado = True
        _codificar_resultado(result)
        yield


def _codificar_resultado(resultado: Any) -> None:
    if isinstance(resultado, (GraphQLExecutionResult, ExecutionResult)) and resultado.errors:
        resultado.errors = [codificar(e) for e in resultado.errors]


class EsquemaPedidos(strawberry.Schema):
    """The schema, logging each error once by kind (see the module docstring)."""

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        nodo = getattr(getattr(execution_context, "context", None), "nodo_id", "?")
        for error in errors:
            dominio = error_de_dominio(error)
            if dominio is not None:
                log.info("%s: graphql refused %s: %s", nodo, dominio.codigo, dominio.mensaje)
            elif debe_ocultarse(error):
                log.error(
                    "%s: graphql internal error at %s: %s", nodo, error.path, error, exc_info=error.original_error
                )
            else:
                log.debug("%s: graphql invalid request: %s", nodo, error.message)
