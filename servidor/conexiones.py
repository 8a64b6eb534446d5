"""The bounds uvicorn does not put on a connection: head size, head time, connections per node.

uvicorn (with httptools, the parser it picks when installed) reads a request
head of any size, waits for it without end, and its ``limit_concurrency``
answers a plain-text 503 only to a connection that has sent a complete head,
so idle connections are never counted out: 21,000 of them took every
descriptor of a node. :func:`protocolo_http` gives uvicorn an HTTP protocol,
its httptools one with three bounds (``servidor.ajustes``: ``[cluster]``
``max_header_bytes``, ``header_timeout_ms``, ``max_connections``):

- **head size.** A request head (request line and headers) over
  ``max_cabecera`` bytes is answered 431 ``CABECERAS_DEMASIADO_GRANDES``
  once that many bytes of it have arrived, never read in full: bytes are
  counted per read, so the node holds at most that much and one read (256
  KiB) of it. What the client goes on sending is read and dropped for
  :data:`DESCARTE_S` so that it reads the answer rather than a reset, then
  the connection is closed.
- **head time.** A connection must send a complete request head within
  ``plazo_cabecera_s`` of opening, or of its previous answer; else it is
  closed (a slow or silent client holds a descriptor for that long at most).
  Bodies are not timed here: the head named their size, the body limit
  bounds it, and the connection count bounds how many are in flight.
- **connections.** A connection opened while the node already holds
  ``max_conexiones`` others (HTTP and websocket) is answered 503
  ``SOBRECARGA``, with ``Retry-After``, to its first request — a websocket
  upgrade too — and closed. One opened while the node holds twice that many
  is closed at once, unanswered: a flood cannot take every descriptor, and
  the node's own files, its peers and ping keep theirs.

The answers carry the error shape of every other refusal
(``servidor.errores``), written here because no application runs for them.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import time
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from servidor.errores import CabecerasDemasiadoGrandes, ErrorPedidos, Sobrecarga

log = logging.getLogger(__name__)

# How long a refused head's connection is read (and what it sends dropped) before it is closed.
DESCARTE_S = 1.0
# A warning per kind of refusal at most this often, with how many there were: a flood is one line.
INTERVALO_AVISOS_S = 10.0


class _CabeceraExcedida(Exception):
    pass


class _Avisos:
    """Warnings about refused connections, rate-limited, for every connection of one server."""

    def __init__(self, nodo_id: str) -> None:
        self.nodo_id = nodo_id
        self._ultimo: dict[str, float] = {}
        self._cuenta: dict[str, int] = {}

    def __call__(self, que: str) -> None:
        self._cuenta[que] = self._cuenta.get(que, 0) + 1
        ahora = time.monotonic()
        if ahora - self._ultimo.get(que, -INTERVALO_AVISOS_S) >= INTERVALO_AVISOS_S:
            log.warning("%s: %s (%d since this was last logged)", self.nodo_id, que, self._cuenta[que])
            self._ultimo[que] = ahora
            self._cuenta[que] = 0


def respuesta(error: ErrorPedidos) -> bytes:
    """A whole HTTP/1.1 answer carrying ``error``, that closes the connection."""
    cuerpo = json.dumps(error.como_json()).encode()
    estado = http.HTTPStatus(error.estado_http)
    cabeceras = [
        f"HTTP/1.1 {estado.value} {estado.phrase}",
        "content-type: application/json",
        f"content-length: {len(cuerpo)}",
        "connection: close",
        *(f"{k}: {v}" for k, v in error.cabeceras),
    ]
    return ("\r\n".join(cabeceras) + "\r\n\r\n").encode() + cuerpo


def protocolo_http(
    nodo_id: str, max_conexiones: int, max_cabecera: int, plazo_cabecera_s: float
) -> type[HttpToolsProtocol]:
    """The protocol class to pass as uvicorn's ``http``, with these bounds."""
    avisos = _Avisos(nodo_id)
    sobrecarga = Sobrecarga(
        f"this node holds too many connections (at most {max_conexiones}); try again shortly",
        {"maximo": max_conexiones},
    )
    excedida = CabecerasDemasiadoGrandes(f"request head exceeds {max_cabecera} bytes", {"maximo": max_cabecera})

    async def responder_sobrecarga(scope: Any, receive: Any, send: Any) -> None:
        cuerpo = json.dumps(sobrecarga.como_json()).encode()
        cabeceras = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(cuerpo)).encode()),
            (b"connection", b"close"),
            *((k.lower().encode(), v.encode()) for k, v in sobrecarga.cabeceras),
        ]
        await send({"type": "http.response.start", "status": sobrecarga.estado_http, "headers": cabeceras})
        await send({"type": "http.response.body", "body": cuerpo})

    class ProtocoloAcotado(HttpToolsProtocol):
        _esperando = True  # waiting for a request head: since the start, or since the last body ended
        _recibidos = 0  # bytes read while waiting for this head
        _sobrante = False  # opened past max_conexiones: its request is answered 503
        _descartando = False  # answered 431: what arrives is dropped until the connection closes
        _plazo: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            abiertas = len(self.connections)
            if abiertas > 2 * max_conexiones:
                avisos(f"connection closed unanswered, {abiertas - 1} already open")
                transport.abort()
                return
            self._sobrante = abiertas > max_conexiones
            self._armar_plazo()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancelar_plazo()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            # uvicorn's, but for the head's bounds: a refused head is a 431, not a 400.
            if self._descartando:
                return
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                elif not self._sobrante:  # the 503 is on its way: the upgrade is refused, not unsupported
                    self._unsupported_upgrade_warning()
            except httptools.HttpParserError as e:
                if isinstance(e.__context__, _CabeceraExcedida):
                    self._rechazar_cabecera()
                    return
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
            if self._esperando and not self.transport.is_closing():
                # The head may have begun part way through this read: counted whole, an upper bound.
                self._recibidos += len(data)
                if self._recibidos > max_cabecera:
                    self._rechazar_cabecera()

        def on_headers_complete(self) -> None:
            self._esperando = False
            self._cancelar_plazo()
            # A head that arrived whole in one read was never counted above.
            if len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers) > max_cabecera:
                raise _CabeceraExcedida
            if self._sobrante:
                avisos(f"request answered 503, more than {max_conexiones} connections open")
                self.app = responder_sobrecarga
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._esperando, self._recibidos = True, 0

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._armar_plazo()

        def _should_upgrade(self) -> bool:
            return not self._sobrante and super()._should_upgrade()

        def _armar_plazo(self) -> None:
            """Start the clock for the next head, unless a request is still being answered."""
            self._cancelar_plazo()
            en_curso = self.cycle is not None and not self.cycle.response_complete
            if self._esperando and not en_curso and not self.transport.is_closing():
                self._plazo = self.loop.call_later(plazo_cabecera_s, self._plazo_vencido)

        def _cancelar_plazo(self) -> None:
            if self._plazo is not None:
                self._plazo.cancel()
                self._plazo = None

        def _plazo_vencido(self) -> None:
            self._plazo = None
            if self._esperando and not self.transport.is_closing():
                avisos(f"connection closed, no request head within {plazo_cabecera_s:g}s")
                self.transport.close()

        def _rechazar_cabecera(self) -> None:
            self._esperando, self._descartando = False, True
            self._cancelar_plazo()
            avisos(f"request answered 431, head over {max_cabecera} bytes")
            if self.cycle is None or self.cycle.response_complete:
                self.transport.write(respuesta(excedida))
                self.loop.call_later(DESCARTE_S, self.transport.close)
            else:  # an earlier request is still being answered: no clean way to answer this one
                self.transport.abort()

    return ProtocoloAcotado
