"""ASGI middleware that refuses request bodies over a size limit with 413.

It checks ``Content-Length`` up front and counts the bytes of chunked
bodies as they arrive, so a client cannot stream past the limit either.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from servidor.errores import CuerpoDemasiadoGrande

MAX_CUERPO = 1024 * 1024


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
