"""ASGI middleware that bounds what one client may send.

- :class:`LimiteCuerpo`: request bodies over a size limit get 413. It checks
  ``Content-Length`` up front and counts the bytes of chunked bodies as they
  arrive, so a client cannot stream past the limit either.
- :class:`LimiteMensajesWS`: a message over a size limit on the GraphQL
  websocket closes it with 1009 (message too big) before the application
  decodes it. GraphQL messages are small (a document, its variables); the
  peer link ``/sync`` has its own, larger bound (``sync.protocolo``), and
  every websocket is capped by the server's ``ws_max_size`` (``servidor.cli``).
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servidor.errores import CuerpoDemasiadoGrande

MAX_CUERPO = 1024 * 1024
MAX_MENSAJE_WS = 64 * 1024
MENSAJE_GRANDE = 1009  # RFC 6455: message too big


class LimiteCuerpo:
    def __init__(self, app: ASGIApp, maximo: int = MAX_CUERPO) -> None:
        self.app = app
        self.maximo = maximo

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for nombre, valor in scope.get("headers", []):
            if nombre == b"content-length":
                try:
                    largo = int(valor)
                except ValueError:
                    largo = 0
                if largo > self.maximo:
                    await self._rechazar(send)
                    return
        recibidos = 0
        respondido = False

        async def recibir() -> Message:
            nonlocal recibidos
            mensaje = await receive()
            if mensaje["type"] == "http.request":
                recibidos += len(mensaje.get("body", b""))
                if recibidos > self.maximo:
                    raise _Excedido
            return mensaje

        async def enviar(mensaje: Message) -> None:
            nonlocal respondido
            if mensaje["type"] == "http.response.start":
                respondido = True
            await send(mensaje)

        try:
            await self.app(scope, recibir, enviar)
        except _Excedido:
            if not respondido:
                await self._rechazar(send)

    async def _rechazar(self, send: Send) -> None:
        error = CuerpoDemasiadoGrande(f"request body exceeds {self.maximo} bytes", {"maximo": self.maximo})
        cuerpo = json.dumps(error.como_json()).encode()
        cabeceras: list[Any] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(cuerpo)).encode()),
        ]
        await send({"type": "http.response.start", "status": error.estado_http, "headers": cabeceras})
        await send({"type": "http.response.body", "body": cuerpo})


class _Excedido(Exception):
    pass


class LimiteMensajesWS:
    """Close a websocket on ``rutas`` whose client sends a message over ``maximo`` bytes."""

    def __init__(self, app: ASGIApp, maximo: int = MAX_MENSAJE_WS, rutas: tuple[str, ...] = ("/graphql",)) -> None:
        self.app = app
        self.maximo = maximo
        self.rutas = rutas

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope["path"] not in self.rutas:
            await self.app(scope, receive, send)
            return
        cerrado = False

        async def recibir() -> Message:
            nonlocal cerrado
            if cerrado:
                return {"type": "websocket.disconnect", "code": MENSAJE_GRANDE}
            mensaje = await receive()
            if mensaje["type"] == "websocket.receive" and _tamano(mensaje) > self.maximo:
                cerrado = True
                await send({"type": "websocket.close", "code": MENSAJE_GRANDE, "reason": "message too big"})
                return {"type": "websocket.disconnect", "code": MENSAJE_GRANDE}
            return mensaje

        async def enviar(mensaje: Message) -> None:
            if not cerrado:  # what the application still says after the close goes nowhere
                await send(mensaje)

        await self.app(scope, recibir, enviar)


def _tamano(mensaje: Message) -> int:
    texto = mensaje.get("text")
    if texto is not None:
        return len(texto.encode("utf-8", "surrogatepass"))
    return len(mensaje.get("bytes") or b"")
