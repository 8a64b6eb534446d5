"""The OpenAPI 3.0 description of the REST routes, served at ``/api/openapi.json``.

:func:`describir` builds it from the route table of ``servidor.rest`` (paths,
methods and the role each needs), so a route cannot be added without being
described: an operation missing here is a ``KeyError`` when the app is
built, and ``tests/integration/test_openapi.py`` checks both ways that the
app's routes and the document agree, then lets Schemathesis check that the
answers match the schemas below.

Security is declared the OpenAPI way: a ``bearer`` scheme required by every
operation except those open to anyone (``security: []``); ``x-rol`` names
the least role an operation needs (``servidor.acceso``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from servidor.acceso import Rol
from servidor.dominio import validacion as v
from sync.cambios import ESTADOS

Esquema = dict[str, Any]


def _ref(nombre: str) -> Esquema:
    return {"$ref": f"#/components/schemas/{nombre}"}


def _objeto(propiedades: Esquema, requeridos: Sequence[str] | None = None, cerrado: bool = True) -> Esquema:
    return {
        "type": "object",
        "properties": propiedades,
        "required": list(propiedades if requeridos is None else requeridos),
        "additionalProperties": not cerrado,
    }


def _nulo(esquema: Esquema) -> Esquema:
    return {**esquema, "nullable": True}


TEXTO = {"type": "string"}
ENTERO = {"type": "integer"}
DINERO = {"type": "string", "pattern": r"^[0-9]+\.[0-9]{2}$", "example": "4.50"}
DINERO_ENTRADA = {"oneOf": [{"type": "string", "example": "4.50"}, {"type": "number", "minimum": 0}]}
ID = {"type": "string", "maxLength": 64}


def _esquemas() -> dict[str, Esquema]:
    nombre = {"type": "string", "minLength": 1, "maxLength": v.MAX_NOMBRE}
    cliente_campos = {
        "nombre": nombre,
        "email": {"type": "string", "format": "email", "maxLength": v.MAX_EMAIL},
        "telefono": _nulo({"type": "string", "maxLength": v.MAX_TELEFONO}),
        "direccion": _nulo({"type": "string", "maxLength": v.MAX_TEXTO_LARGO}),
    }
    producto_campos = {
        "nombre": nombre,
        "descripcion": _nulo({"type": "string", "maxLength": v.MAX_TEXTO_LARGO}),
        "precio": DINERO_ENTRADA,
        "stock": {"type": "integer", "minimum": 0, "maximum": v.MAX_STOCK},
    }
    item = _objeto({"producto_id": ID, "cantidad": ENTERO, "precio_unitario": DINERO, "subtotal": DINERO})
    return {
        "Error": _objeto(
            {
                "error": _objeto(
                    {"codigo": TEXTO, "mensaje": TEXTO, "detalle": {"type": "object", "additionalProperties": True}}
                )
            }
        ),
        "Cliente": _objeto({"id": ID, **cliente_campos, "creado_en": TEXTO}),
        "ClienteNuevo": _objeto(cliente_campos, ["nombre", "email"]),
        "ClienteCambios": _objeto(cliente_campos, []),
        "Producto": _objeto(
            {
                "id": ID,
                "nombre": TEXTO,
                "descripcion": _nulo(TEXTO),
                "precio": DINERO,
                "stock": ENTERO,
                "por_devolver": ENTERO,
                "por_confirmar": ENTERO,
                "creado_en": TEXTO,
                "derechos": {"type": "object", "additionalProperties": ENTERO},
            }
        ),
        "ProductoNuevo": _objeto(producto_campos, ["nombre", "precio"]),
        "ProductoCambios": _objeto(producto_campos, []),
        "AjusteStock": _objeto({"cantidad": ENTERO}),
        "Pedido": _objeto(
            {
                "id": ID,
                "cliente_id": ID,
                "estado": {"type": "string", "enum": list(ESTADOS)},
                "total": DINERO,
                "creado_en": TEXTO,
                "nodo_origen": TEXTO,
                "items": {"type": "array", "items": item},
            }
        ),
        "PedidoNuevo": _objeto(
            {
                "cliente_id": ID,
                "items": {
                    "type": "array",
                    "minItems": 1,
                    "items": _objeto({"producto_id": ID, "cantidad": {"type": "integer", "minimum": 1}}),
                },
            }
        ),
        "CambioEstado": _objeto({"estado": {"type": "string", "enum": list(ESTADOS)}}),
        "Conflicto": _objeto(
            {
                k: TEXTO
                for k in (
                    "entidad",
                    "pedido_id",
                    "campo",
                    "ganador",
                    "perdedor",
                    "valor_ganador",
                    "valor_perdedor",
                    "base",
                )
            }
        ),
        "Salud": _objeto(
            {
                "nodo": TEXTO,
                "estado": {"type": "string", "enum": ["ok", "degradado"]},
                "base_de_datos": TEXTO,
                "hlc": ENTERO,
                "vector": {"type": "object", "additionalProperties": ENTERO},
                "uptime_s": {"type": "number"},
                "motivo": TEXTO,
            },
            ["nodo", "estado", "base_de_datos", "hlc", "vector", "uptime_s"],
        ),
        "Digest": _objeto(
            {"nodo": TEXTO, "digest": TEXTO, "vector": {"type": "object", "additionalProperties": ENTERO}}
        ),
        "Pong": _objeto({"pong": {"type": "boolean"}, "nodo": TEXTO}),
        "Par": _objeto(
            {
                "id": TEXTO,
                "url": TEXTO,
                "activo": {"type": "boolean"},
                "ultimo_contacto": _nulo(TEXTO),
                "pendientes": ENTERO,
                "lag_ms": ENTERO,
                "ultimo_error": _nulo(TEXTO),
            }
        ),
        "Pendientes": _objeto(
            {
                "nodo": TEXTO,
                "pendientes": ENTERO,
                "acuse_conocido": {"type": "boolean"},
                "primero": _nulo({"type": "object", "additionalProperties": True}),
            }
        ),
        "Replicacion": _objeto(
            {
                "nodo": TEXTO,
                "pares": {
                    "type": "array",
                    "items": _objeto(
                        {
                            "nodo": TEXTO,
                            "ok": {"type": "boolean"},
                            "recibidos": ENTERO,
                            "aplicados": ENTERO,
                            "error": TEXTO,
                        },
                        ["nodo", "ok"],
                    ),
                },
            }
        ),
    }


def _cuerpo(esquema: str) -> Esquema:
    return {"required": True, "content": {"application/json": {"schema": _ref(esquema)}}}


def _json(descripcion: str, esquema: Esquema, cabeceras: Esquema | None = None) -> Esquema:
    respuesta: Esquema = {"description": descripcion, "content": {"application/json": {"schema": esquema}}}
    if cabeceras:
        respuesta["headers"] = cabeceras
    return respuesta


def _lista(esquema: str) -> Esquema:
    siguiente = {"Link": {"description": 'The next page, when this one is full: <...>; rel="next"', "schema": TEXTO}}
    return _json("a page of the list", {"type": "array", "items": _ref(esquema)}, siguiente)


VACIO = {"description": "done; no body"}
CREADO = "created, or created earlier with the same key"
PAGINA = [
    {
        "name": "limite",
        "in": "query",
        "schema": {"type": "integer", "minimum": 1, "maximum": v.MAX_PAGINA, "default": v.PAGINA_POR_DEFECTO},
    },
    {"name": "desde", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": v.MAX_DESDE, "default": 0}},
]
ESTADO = {"name": "estado", "in": "query", "schema": {"type": "string", "enum": list(ESTADOS)}}
CLAVE = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A retry with the same key and body, on any node and at any later time, answers the first "
    "result (with Idempotent-Replayed: true) and writes nothing; the same key with another body is 422 "
    "IDEMPOTENCIA_CONFLICTO. A key lives as long as the entity it created.",
    "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_.:-]{1,64}$"},
}
REPETIDA = {
    "Idempotent-Replayed": {
        "description": "true when this answers an earlier request with the same Idempotency-Key",
        "schema": {"type": "string", "enum": ["true"]},
    }
}
CLIENTE_ID = {"name": "cliente_id", "in": "query", "schema": ID}

# (path below the prefix, method) -> what the operation takes and answers (its 2xx), and which errors it may give.
_OPERACIONES: Mapping[tuple[str, str], tuple[str, Esquema, tuple[int, ...]]] = MappingProxyType(
    {
        ("/clientes", "GET"): (
            "List clientes",
            {"parameters": PAGINA, "responses": {"200": _lista("Cliente")}},
            (422,),
        ),
        ("/clientes", "POST"): (
            "Create a cliente",
            {
                "parameters": [CLAVE],
                "requestBody": _cuerpo("ClienteNuevo"),
                "responses": {"201": _json(CREADO, _ref("Cliente"), REPETIDA)},
            },
            (400, 413, 422),
        ),
        ("/clientes/{id}", "GET"): (
            "Get a cliente",
            {"responses": {"200": _json("the cliente", _ref("Cliente"))}},
            (404,),
        ),
        ("/clientes/{id}", "PUT"): (
            "Change fields of a cliente",
            {"requestBody": _cuerpo("ClienteCambios"), "responses": {"200": _json("the cliente", _ref("Cliente"))}},
            (400, 404, 413, 422),
        ),
        ("/clientes/{id}", "DELETE"): ("Delete a cliente", {"responses": {"204": VACIO}}, (404,)),
        ("/productos", "GET"): (
            "List productos",
            {"parameters": PAGINA, "responses": {"200": _lista("Producto")}},
            (422,),
        ),
        ("/productos", "POST"): (
            "Create a producto",
            {
                "parameters": [CLAVE],
                "requestBody": _cuerpo("ProductoNuevo"),
                "responses": {"201": _json(CREADO, _ref("Producto"), REPETIDA)},
            },
            (400, 413, 422),
        ),
        ("/productos/{id}", "GET"): (
            "Get a producto",
            {"responses": {"200": _json("the producto", _ref("Producto"))}},
            (404,),
        ),
        ("/productos/{id}", "PUT"): (
            "Change fields of a producto; stock becomes an adjustment",
            {"requestBody": _cuerpo("ProductoCambios"), "responses": {"200": _json("the producto", _ref("Producto"))}},
            (400, 404, 409, 413, 422),
        ),
        ("/productos/{id}/stock", "POST"): (
            "Add or remove units",
            {
                "parameters": [CLAVE],
                "requestBody": _cuerpo("AjusteStock"),
                "responses": {"200": _json("the producto", _ref("Producto"), REPETIDA)},
            },
            (400, 404, 409, 413, 422),
        ),
        ("/pedidos", "GET"): (
            "List pedidos, optionally of one estado or cliente",
            {"parameters": [ESTADO, CLIENTE_ID, *PAGINA], "responses": {"200": _lista("Pedido")}},
            (422,),
        ),
        ("/pedidos", "POST"): (
            "Create a pedido",
            {
                "parameters": [CLAVE],
                "requestBody": _cuerpo("PedidoNuevo"),
                "responses": {"201": _json(CREADO, _ref("Pedido"), REPETIDA)},
            },
            (400, 404, 409, 413, 422),
        ),
        ("/pedidos/{id}", "GET"): ("Get a pedido", {"responses": {"200": _json("the pedido", _ref("Pedido"))}}, (404,)),
        ("/pedidos/{id}", "DELETE"): (
            "Delete a pedido, cancelling it first if pending or confirmed",
            {"responses": {"204": VACIO}},
            (404, 409),
        ),
        ("/pedidos/{id}/estado", "PUT"): (
            "Move a pedido to another estado",
            {"requestBody": _cuerpo("CambioEstado"), "responses": {"200": _json("the pedido", _ref("Pedido"))}},
            (400, 404, 409, 413, 422),
        ),
        ("/conflictos", "GET"): (
            "Concurrent estado changes, and keyed creations from different requests, and which won",
            {"parameters": PAGINA, "responses": {"200": _lista("Conflicto")}},
            (422,),
        ),
        ("/health", "GET"): (
            "This node's health",
            {
                "responses": {
                    "200": _json("the node answers", _ref("Salud")),
                    "503": _json("the database does not answer, or cannot write (motivo)", _ref("Salud")),
                }
            },
            (),
        ),
        ("/health/ping", "GET"): (
            "Liveness, for supervisors",
            {"responses": {"200": _json("alive", _ref("Pong"))}},
            (),
        ),
        ("/health/nodos", "GET"): (
            "Each peer's link and lag",
            {"responses": {"200": _json("peers", {"type": "array", "items": _ref("Par")})}},
            (),
        ),
        ("/replicacion/logs/pendientes", "GET"): (
            "Per peer, changes it has not acknowledged",
            {"responses": {"200": _json("per peer", {"type": "array", "items": _ref("Pendientes")})}},
            (),
        ),
        ("/replicacion/replicar", "POST"): (
            "Pull from every peer now",
            {"responses": {"200": _json("per peer, what it gave", _ref("Replicacion"))}},
            (),
        ),
        ("/replicacion/digest", "GET"): (
            "Digest of this node's replicated state, with its version vector",
            {"responses": {"200": _json("equal on converged nodes", _ref("Digest"))}},
            (),
        ),
        ("/openapi.json", "GET"): (
            "This document",
            {"responses": {"200": _json("OpenAPI 3.0", {"type": "object"})}},
            (),
        ),
    }
)

_ERRORES: Mapping[int, str] = MappingProxyType(
    {
        400: "the body is not JSON",
        401: "no bearer token, or not a valid one",
        403: "the token's role may not do this",
        404: "unknown or deleted id",
        409: "the state refuses it (stock, transition)",
        413: "body over 1 MiB",
        422: "wrong type, missing, unknown or bad field or parameter; an idempotency key reused with another body",
        503: "ALMACEN_NO_DISPONIBLE: the database cannot write (disk full, I/O error); nothing was written",
    }
)


SIN_DESCRIBIR = "not described"


def _operacion(ruta: str, metodo: str, rol: Rol | None) -> Esquema:
    # A route added without a description here still shows, marked, and the test of this document fails.
    resumen, operacion, errores = _OPERACIONES.get(
        (ruta, metodo), (SIN_DESCRIBIR, {"responses": {"default": {"description": SIN_DESCRIBIR}}}, ())
    )
    respuestas = dict(operacion["responses"])
    if rol is not None:
        errores = (*errores, 401, 403)
    if rol is Rol.OPERADOR:  # the operations that write: the store may be unable to
        errores = (*errores, 503)
    for codigo in sorted(errores):
        respuestas[str(codigo)] = _json(_ERRORES[codigo], _ref("Error"))
    descrita: Esquema = {
        "summary": resumen,
        "operationId": f"{metodo.lower()}{ruta.replace('/', '_').replace('{', '').replace('}', '').replace('.', '_')}",
        **operacion,
        "responses": respuestas,
    }
    if "{id}" in ruta:
        descrita["parameters"] = [
            {"name": "id", "in": "path", "required": True, "schema": ID},
            *operacion.get("parameters", []),
        ]
    if rol is None:
        descrita["security"] = []
    else:
        descrita["x-rol"] = rol.nombre
    return descrita


def describir(prefijo: str, recursos: Sequence[tuple[str, dict[str, Rol | None]]]) -> Esquema:
    """The OpenAPI document of ``recursos`` (path below ``prefijo``, and per method the role it needs)."""
    caminos: Esquema = {}
    for ruta, metodos in recursos:
        caminos[prefijo + ruta] = {m.lower(): _operacion(ruta, m, rol) for m, rol in metodos.items()}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "pedidos REST",
            "version": "1",
            "description": "Orders, products and clients of one node of a pedidos cluster. "
            "Lists are pages (limite, desde). Send 'Authorization: Bearer <token>'.",
        },
        "paths": caminos,
        "components": {
            "schemas": _esquemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
