"""REST compatibility routes under ``/api``, thin over the domain operations.

Every handler reads the body or the query, calls one :class:`Dominio`
operation and shapes the answer; none issues SQL or checks a rule itself.
Failures are raised, never answered here: :func:`manejadores` turns them into
``{"error": {"codigo", "mensaje", "detalle"}}`` with the status of the error
class, the same codes GraphQL exposes.

The routes (the role each needs is in :func:`rutas`; ``servidor.acceso``
says what a role may do, ``servidor.openapi`` describes them all)::

    POST   /api/clientes                  201 cliente       GET  /api/clientes           [cliente]
    GET    /api/clientes/{id}             cliente           PUT  /api/clientes/{id}      cliente
    DELETE /api/clientes/{id}             204
    POST   /api/productos                 201 producto      GET  /api/productos          [producto]
    GET    /api/productos/{id}            producto          PUT  /api/productos/{id}     producto
    POST   /api/productos/{id}/stock      {"cantidad": ±n} -> producto
    POST   /api/pedidos                   201 pedido        GET  /api/pedidos?estado=&cliente_id=
    GET    /api/pedidos/{id}              pedido            DELETE /api/pedidos/{id}     204
    PUT    /api/pedidos/{id}/estado       {"estado": "..."} -> pedido
    GET    /api/conflictos                [conflicto]
    GET    /api/health                    node, database, clock; 503 when the database does not answer or write
    GET    /api/health/ping               {"pong": true, "nodo": id}
    GET    /api/openapi.json              the OpenAPI description of these routes

Lists are pages: ``?limite=`` (1-500, default 100) items after skipping
``?desde=`` (default 0), in a stable order (oldest first). When a page is
full, a ``Link: <...>; rel="next"`` header names the next one; a short page
is the last.

``POST`` to ``/api/clientes``, ``/api/productos``, ``/api/pedidos`` and
``/api/productos/{id}/stock`` take an ``Idempotency-Key`` header: a retry
with the same key and body, on any node, answers the first result with
``Idempotent-Replayed: true`` and writes nothing; the same key with another
body is ``422 IDEMPOTENCIA_CONFLICTO`` (``servidor.dominio.idempotencia``).

Bodies are passed to the domain as decoded, whatever their JSON type, so
that "must be a JSON object" is said in one place. Money renders as a
decimal string (``"12.50"``), never a float.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ExceptionHandler

from servidor import openapi
from servidor.acceso import Rol, exigir, identificar
from servidor.almacen import salud
from servidor.dominio import Dominio, idempotencia
from servidor.dominio import validacion as v
from servidor.errores import EntradaInvalida, ErrorPedidos, Validacion

log = logging.getLogger(__name__)
Manejador = Callable[[Request], Awaitable[Response]]
# Per method, the role it needs (None: open to anyone) and its handler.
Metodos = dict[str, tuple[Rol | None, Manejador]]
Recurso = tuple[str, Metodos]
LECTURA, OPERADOR, ADMIN = Rol.LECTURA, Rol.OPERADOR, Rol.ADMIN

PREFIJO = "/api"
# A health probe that hangs is worse than one that says "degradado".
LIMITE_SALUD_S = 5.0
_DIGITOS = re.compile(r"[0-9]+")


class RespuestaJSON(JSONResponse):
    """Compact UTF-8 JSON in which ``Decimal`` money renders as ``"12.50"``."""

    def render(self, content: Any) -> bytes:
        texto = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_a_json)
        return texto.encode("utf-8")


def _a_json(valor: Any) -> Any:
    if isinstance(valor, Decimal):
        return format(valor, "f")
    raise TypeError(f"{type(valor).__name__} is not JSON serializable")


# --- reading requests, shaping answers --------------------------------------


async def _cuerpo(request: Request) -> Any:
    """The decoded JSON body: any JSON value, its shape is the domain's to judge.

    Its strings must be Unicode text: JSON may escape a lone surrogate
    (``"\\ud800"``), which is refused with ``VALIDACION`` here rather than
    failing wherever it is first encoded.
    """
    crudo = await request.body()
    try:
        datos = json.loads(crudo)
    except json.JSONDecodeError as e:
        detalle = {"linea": e.lineno, "columna": e.colno}
        raise EntradaInvalida(f"request body is not valid JSON: {e.msg}", detalle) from None
    # Bad UTF-8, integers past Python's digit limit, nesting past the recursion limit.
    except (ValueError, RecursionError):
        raise EntradaInvalida("request body is not valid JSON", {}) from None
    return v.unicode_valido(datos)


def _campo(datos: Any, campo: str) -> Any:
    """The value of a one-field body such as ``{"estado": "confirmado"}``."""
    objeto = v.objeto(datos, {campo}, "body")
    v.requeridos(objeto, (campo,))
    return objeto[campo]


def _dominio(request: Request) -> Dominio:
    dominio: Dominio = request.app.state.dominio
    return dominio


def _creado(coleccion: str, entidad: dict[str, Any]) -> Response:
    cabeceras = {"Location": f"{PREFIJO}/{coleccion}/{entidad['id']}", **_repetida(entidad)}
    return RespuestaJSON(entidad, status_code=201, headers=cabeceras)


def _clave(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, checked (see ``servidor.dominio.idempotencia``)."""
    return idempotencia.clave(request.headers.get(idempotencia.CABECERA))


def _repetida(entidad: dict[str, Any]) -> dict[str, str]:
    """``Idempotent-Replayed: true`` when the answer is an earlier creation's, written again nowhere."""
    return {idempotencia.CABECERA_REPETIDA: "true"} if isinstance(entidad, idempotencia.Repeticion) else {}


def _vacio() -> Response:
    return Response(status_code=204)


def _pagina(request: Request) -> v.Pagina:
    """``?limite=&desde=``, checked by the domain's rules; anything else in the query is refused.

    Only ASCII digits: ``int()`` alone would also read ``5_0``, ``+50``,
    digits of other scripts and surrounding spaces.
    """
    valores: dict[str, Any] = {}
    for campo in ("limite", "desde"):
        texto = request.query_params.get(campo)
        if texto is None:
            continue
        if not _DIGITOS.fullmatch(texto):
            raise Validacion(f"{campo!r} must be a whole number in digits 0-9", {"campo": campo})
        # More digits than any page has: the domain refuses it for its range (int() stops at 4,300 digits).
        valores[campo] = int(texto) if len(texto) < 20 else 10**20
    return v.pagina(**valores)


def _lista(request: Request, filas: list[Any], pagina: v.Pagina) -> Response:
    """A page of a list; when it is full, ``Link`` names the next one."""
    cabeceras = {}
    if len(filas) == pagina.limite:
        siguiente = request.url.include_query_params(limite=pagina.limite, desde=pagina.siguiente.desde)
        cabeceras["Link"] = f'<{siguiente.path}?{siguiente.query}>; rel="next"'
    return RespuestaJSON(filas, headers=cabeceras)


# --- clientes ------------------------------------------------------------------


async def crear_cliente(request: Request) -> Response:
    datos = await _cuerpo(request)
    return _creado("clientes", await _dominio(request).crear_cliente(datos, _clave(request)))


async def listar_clientes(request: Request) -> Response:
    pagina = _pagina(request)
    return _lista(request, await _dominio(request).listar_clientes(pagina), pagina)


async def obtener_cliente(request: Request) -> Response:
    return RespuestaJSON(await _dominio(request).obtener_cliente(request.path_params["id"]))


async def actualizar_cliente(request: Request) -> Response:
    datos = await _cuerpo(request)
    return RespuestaJSON(await _dominio(request).actualizar_cliente(request.path_params["id"], datos))


async def eliminar_cliente(request: Request) -> Response:
    await _dominio(request).eliminar_cliente(request.path_params["id"])
    return _vacio()


# --- productos -----------------------------------------------------------------


async def crear_producto(request: Request) -> Response:
    datos = await _cuerpo(request)
    return _creado("productos", await _dominio(request).crear_producto(datos, _clave(request)))


async def listar_productos(request: Request) -> Response:
    pagina = _pagina(request)
    return _lista(request, await _dominio(request).listar_productos(pagina), pagina)


async def obtener_producto(request: Request) -> Response:
    return RespuestaJSON(await _dominio(request).obtener_producto(request.path_params["id"]))


async def actualizar_producto(request: Request) -> Response:
    datos = await _cuerpo(request)
    return RespuestaJSON(await _dominio(request).actualizar_producto(request.path_params["id"], datos))


async def ajustar_stock(request: Request) -> Response:
    cantidad = _campo(await _cuerpo(request), "cantidad")
    producto = await _dominio(request).ajustar_stock(request.path_params["id"], cantidad, _clave(request))
    return RespuestaJSON(producto, headers=_repetida(producto))


# --- pedidos -------------------------------------------------------------------


async def crear_pedido(request: Request) -> Response:
    datos = await _cuerpo(request)
    return _creado("pedidos", await _dominio(request).crear_pedido(datos, _clave(request)))


async def listar_pedidos(request: Request) -> Response:
    q, pagina = request.query_params, _pagina(request)
    filas = await _dominio(request).listar_pedidos(
        estado=q.get("estado"), cliente_id=q.get("cliente_id"), pagina=pagina
    )
    return _lista(request, filas, pagina)


async def obtener_pedido(request: Request) -> Response:
    return RespuestaJSON(await _dominio(request).obtener_pedido(request.path_params["id"]))


async def cambiar_estado(request: Request) -> Response:
    estado = _campo(await _cuerpo(request), "estado")
    return RespuestaJSON(await _dominio(request).cambiar_estado(request.path_params["id"], estado))


async def eliminar_pedido(request: Request) -> Response:
    await _dominio(request).eliminar_pedido(request.path_params["id"])
    return _vacio()


async def listar_conflictos(request: Request) -> Response:
    pagina = _pagina(request)
    return _lista(request, await _dominio(request).conflictos(pagina), pagina)


# --- health --------------------------------------------------------------------


async def salud_nodo(request: Request) -> Response:
    """200 with ``estado: ok`` when the database answers and stores, else 503 ``degradado`` and ``motivo``.

    A database that answers reads may still refuse every write (disk full):
    the store's last write failure counts until a write commits again.
    """
    almacen = request.app.state.almacen
    motivo: str | None = None
    try:
        async with asyncio.timeout(LIMITE_SALUD_S):
            await almacen.leer(salud.comprobar)
    except Exception:  # noqa: BLE001 - whatever keeps the database from answering, the verdict is the same
        log.warning("%s: health check failed", almacen.nodo_id, exc_info=True)
        motivo = "the database does not answer"
    else:
        if almacen.averia is not None:
            motivo = f"the database cannot write: {almacen.averia}"
    cuerpo = {
        "nodo": almacen.nodo_id,
        "estado": "ok" if motivo is None else "degradado",
        "base_de_datos": almacen.motores.dialecto,
        "hlc": almacen.reloj.ultimo,
        "vector": almacen.vector,
        "uptime_s": round(time.monotonic() - request.app.state.inicio, 3),
    }
    if motivo is not None:
        cuerpo["motivo"] = motivo
    return RespuestaJSON(cuerpo, status_code=200 if motivo is None else 503)


async def ping(request: Request) -> Response:
    return RespuestaJSON({"pong": True, "nodo": _dominio(request).nodo_id})


async def sin_ruta(request: Request) -> Response:
    raise HTTPException(status_code=404)


def rutas(extra: Iterable[Recurso] = ()) -> list[BaseRoute]:
    """The REST routes, mounted under ``/api``; ``extra`` adds other modules' resources.

    One mount, so that a miss under ``/api/`` is answered by its own router
    (a JSON 404 or 405) and never falls through to the web app's files; the
    mount does not cover ``/api`` itself, which gets a route of its own. A
    route added to the app *after* these, under ``/api/``, would never be
    reached: pass it here as ``(path below /api, {method: handler})``.
    """
    recursos = recursos_rest(extra)
    return [
        Route(PREFIJO, sin_ruta, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
        Mount(PREFIJO, routes=[_recurso(ruta, metodos) for ruta, metodos in recursos]),
    ]


def recursos_rest(extra: Iterable[Recurso] = ()) -> list[Recurso]:
    """Every REST resource: its path below ``/api`` and, per method, the role it needs."""
    recursos: list[Recurso] = [
        ("/clientes", {"GET": (LECTURA, listar_clientes), "POST": (OPERADOR, crear_cliente)}),
        (
            "/clientes/{id}",
            {
                "GET": (LECTURA, obtener_cliente),
                "PUT": (OPERADOR, actualizar_cliente),
                "DELETE": (OPERADOR, eliminar_cliente),
            },
        ),
        ("/productos", {"GET": (LECTURA, listar_productos), "POST": (OPERADOR, crear_producto)}),
        ("/productos/{id}", {"GET": (LECTURA, obtener_producto), "PUT": (OPERADOR, actualizar_producto)}),
        ("/productos/{id}/stock", {"POST": (OPERADOR, ajustar_stock)}),
        ("/pedidos", {"GET": (LECTURA, listar_pedidos), "POST": (OPERADOR, crear_pedido)}),
        ("/pedidos/{id}", {"GET": (LECTURA, obtener_pedido), "DELETE": (OPERADOR, eliminar_pedido)}),
        ("/pedidos/{id}/estado", {"PUT": (OPERADOR, cambiar_estado)}),
        ("/conflictos", {"GET": (LECTURA, listar_conflictos)}),
        ("/health", {"GET": (LECTURA, salud_nodo)}),
        ("/health/ping", {"GET": (None, ping)}),
        *extra,
    ]
    recursos.append(("/openapi.json", {"GET": (None, _servir_openapi(recursos))}))
    repetidas = sorted({r for r, _ in recursos if [x for x, _ in recursos].count(r) > 1})
    if repetidas:
        raise ValueError(f"REST paths declared twice: {', '.join(repetidas)}")
    return recursos


def _servir_openapi(recursos: list[Recurso]) -> Manejador:
    """The handler of ``/openapi.json``, which describes ``recursos`` and itself."""
    roles = [(ruta, {m: rol for m, (rol, _) in metodos.items()}) for ruta, metodos in recursos]
    documento = openapi.describir(PREFIJO, [*roles, ("/openapi.json", {"GET": None})])

    async def servir(request: Request) -> Response:
        return RespuestaJSON(documento)

    return servir


def _recurso(ruta: str, metodos: Metodos) -> Route:
    """One route per path, so that a 405 names every method the path allows (``Allow``).

    The caller's token is checked before the handler runs, so a refused
    request reads nothing and learns nothing of the ids it names.
    """

    async def despachar(request: Request) -> Response:
        rol, manejador = metodos["GET" if request.method == "HEAD" else request.method]
        if rol is not None:
            tokens = request.app.state.ajustes.cluster.tokens
            exigir(identificar(tokens, request.headers.get("authorization")), rol)
        return await manejador(request)

    return Route(ruta, despachar, methods=list(metodos))


# --- errors --------------------------------------------------------------------


def manejadores() -> dict[Any, ExceptionHandler]:
    """Exception handlers for ``Starlette(exception_handlers=...)``."""
    return {ErrorPedidos: _error_pedidos, HTTPException: _error_http, Exception: _error_interno}


def _nodo(request: Request) -> str:
    dominio = getattr(request.app.state, "dominio", None)
    return dominio.nodo_id if dominio is not None else "?"


def _error(codigo: str, mensaje: str, detalle: dict[str, Any], status_code: int, **kw: Any) -> Response:
    return RespuestaJSON({"error": {"codigo": codigo, "mensaje": mensaje, "detalle": detalle}}, status_code, **kw)


async def _error_pedidos(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ErrorPedidos)
    log.info("%s: %s %s -> %d %s", _nodo(request), request.method, request.url.path, exc.estado_http, exc.codigo)
    return RespuestaJSON(exc.como_json(), status_code=exc.estado_http, headers=dict(exc.cabeceras))


async def _error_http(request: Request, exc: Exception) -> Response:
    """Route misses under ``/api`` in the error shape; elsewhere Starlette's plain answer."""
    assert isinstance(exc, HTTPException)
    ruta = request.url.path
    if ruta != PREFIJO and not ruta.startswith(PREFIJO + "/"):
        if exc.status_code in (204, 304):
            return Response(status_code=exc.status_code, headers=exc.headers)
        return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 404:
        return _error("NO_ENCONTRADO", f"no route {ruta}", {"ruta": ruta}, 404)
    if exc.status_code == 405:
        permitidos = [m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()]
        mensaje = f"method {request.method} not allowed on {ruta}"
        detalle = {"metodo": request.method, "permitidos": permitidos}
        return _error("METODO_NO_PERMITIDO", mensaje, detalle, 405, headers=exc.headers)
    return _error("ERROR_HTTP", exc.detail, {}, exc.status_code, headers=exc.headers)


async def _error_interno(request: Request, exc: Exception) -> Response:
    # The client learns nothing of the cause: messages of the driver can carry SQL and data.
    log.error("%s: internal error on %s %s", _nodo(request), request.method, request.url.path, exc_info=exc)
    return _error("ERROR_INTERNO", "internal error", {}, 500)
