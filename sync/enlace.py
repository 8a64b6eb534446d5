"""The only module that touches websockets: both ends of a peer link.

:func:`servir` is the sync endpoint (``/sync``) a peer dials; :func:`marcar`
dials a peer and applies what it sends. The protocol decisions are in
``sync.protocolo``; the store is reached through :class:`Nodo` (a small
interface the peer manager implements), so a link never writes rows itself:
everything it receives goes through ``Almacen.fusionar``, the one ``apply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect
from websockets.asyncio.client import connect

from servidor.almacen import Almacen, Cadena
from sync import protocolo as p
from sync.cambios import Cambio
from sync.errores import ErrorSync

log = logging.getLogger(__name__)

LATIDO_S = 1.0  # an idle server says so this often
SILENCIO_S = 4.0  # a link quiet for this long is dead
PLAZO_HOLA_S = 5.0


class Nodo(Protocol):
    """What a link needs from the node it belongs to."""

    almacen: Almacen
    cluster: str
    secreto: str
    nodo_id: str

    def pares(self) -> frozenset[str]: ...
    def estado(self, par: str) -> Any: ...
    def suscribir(self, fn: Callable[[Sequence[Cambio]], None]) -> Callable[[], None]: ...
    async def ceder(self, par: str, peticion: p.Peticion) -> tuple[int, int | None]: ...


@dataclass
class Ronda:
    """What one dial took from a peer."""

    recibidos: int = 0
    aplicados: int = 0
    al_dia: bool = False


async def servir(ws: WebSocket, nodo: Nodo) -> None:
    await ws.accept()
    sesion = p.SesionServidor(nodo.cluster, nodo.secreto, nodo.nodo_id, nodo.pares())
    try:
        await ws.send_text(p.codificar(sesion.desafio()))
        msg = p.decodificar(await asyncio.wait_for(_recibir(ws), PLAZO_HOLA_S))
        bienvenida = sesion.hola(msg, nodo.almacen.vector)
    except p.Rechazo as e:
        origen = ws.client.host if ws.client else "?"
        log.warning("%s: refused peer hello from %s: %s %s", nodo.nodo_id, origen, e.codigo, e.mensaje)
        with contextlib.suppress(Exception):
            await ws.send_text(p.codificar(p.error(e.codigo, e.mensaje)))
            await ws.close(code=1008)
        return
    except Exception as e:  # noqa: BLE001 - timeout or disconnect before hello
        log.info("%s: peer left before hello: %r", nodo.nodo_id, e)
        return
    assert sesion.par is not None
    estado = nodo.estado(sesion.par)
    await ws.send_text(p.codificar(bienvenida))
    estado.entrantes += 1
    estado.acuse = dict(sesion.acuse)
    estado.contacto()
    estado.notificar()
    novedades = asyncio.Event()
    novedades.set()
    # What committed since the last batch: usually exactly what the peer lacks next,
    # so it is sent from memory instead of read back from the log.
    recientes: list[Cambio] = []

    def al_confirmar(lote: Sequence[Cambio]) -> None:
        if len(recientes) < p.MAX_LOTE:
            recientes.extend(lote)
        novedades.set()

    quitar = nodo.suscribir(al_confirmar)
    # Answers to requests for rights, each held until the change that grants it went out.
    respuestas: list[tuple[int | None, dict[str, Any]]] = []
    atendiendo: set[asyncio.Task[None]] = set()

    async def atender(peticion: p.Peticion) -> None:
        assert sesion.par is not None
        try:
            unidades, seq = await nodo.ceder(sesion.par, peticion)
        except Exception:
            log.exception("%s: request for rights from %s failed", nodo.nodo_id, sesion.par)
            unidades, seq = 0, None
        respuestas.append((seq, peticion.respuesta(unidades, seq)))
        novedades.set()

    def falta_algo() -> bool:
        return any(s > sesion.cursor.get(o, 0) for o, s in nodo.almacen.vector.items() if o != sesion.par)

    async def leer() -> None:
        while True:
            texto = await asyncio.wait_for(_recibir(ws), SILENCIO_S)
            peticion = sesion.recibir(p.decodificar(texto))
            if peticion is not None:
                tarea = asyncio.create_task(atender(peticion))
                atendiendo.add(tarea)
                tarea.add_done_callback(atendiendo.discard)
            if sesion.acuse != estado.acuse:
                estado.acuse = dict(sesion.acuse)
                estado.notificar()
            estado.contacto()
            novedades.set()

    async def escribir() -> None:
        dicho_al_dia = False
        bucle = asyncio.get_running_loop()
        ultimo_envio = bucle.time()
        while True:
            try:
                await asyncio.wait_for(novedades.wait(), LATIDO_S)
            except TimeoutError:
                pass
            # Woken often yet with nothing for this peer (its own changes are never
            # echoed): it still has to hear from us within SILENCIO_S.
            if sesion.en_vuelo == 0 and bucle.time() - ultimo_envio >= LATIDO_S:
                await ws.send_text(p.codificar({"tipo": "latido"}))
                ultimo_envio = bucle.time()
            if not novedades.is_set():
                continue
            novedades.clear()
            while sesion.puede_enviar():
                # Never echo a peer's own changes back: it made them, it has them all.
                if not falta_algo():
                    recientes.clear()
                    if not dicho_al_dia:
                        await ws.send_text(p.codificar({"tipo": "al_dia"}))
                        dicho_al_dia = True
                    break
                lote = p.lote(_continuacion(recientes, sesion.cursor, nodo.almacen.vector, sesion.par) or [])
                recientes.clear()
                if not lote:
                    lote = await nodo.almacen.lote_para(sesion.cursor, p.MAX_LOTE, sesion.par)
                if not lote:
                    break
                await ws.send_text(sesion.enviar(lote))
                ultimo_envio = bucle.time()
                dicho_al_dia = False
            for respuesta in [r for r in respuestas if sesion.enviado(r[0])]:
                respuestas.remove(respuesta)
                await ws.send_text(p.codificar(respuesta[1]))

    try:
        await _hasta_que_uno_termine(leer(), escribir())
    except p.Rechazo as e:
        log.warning("%s: link from %s closed: %s %s", nodo.nodo_id, sesion.par, e.codigo, e.mensaje)
        with contextlib.suppress(Exception):
            await ws.send_text(p.codificar(p.error(e.codigo, e.mensaje)))
    except Exception as e:  # noqa: BLE001 - a peer going away is routine
        log.info("%s: link from %s closed: %r", nodo.nodo_id, sesion.par, e)
    finally:
        quitar()
        for tarea in list(atendiendo):
            tarea.cancel()
        estado.entrantes -= 1
        estado.notificar()
        with contextlib.suppress(Exception):
            await ws.close()


async def marcar(url: str, par: str, nodo: Nodo, ronda: bool = False) -> Ronda:
    """Dial ``par`` and apply what it sends; with ``ronda``, stop once caught up."""
    resultado = Ronda()
    estado = nodo.estado(par)
    sesion = p.SesionCliente(nodo.cluster, nodo.secreto, nodo.nodo_id, par)
    esperando: dict[int, asyncio.Future[dict[str, Any]]] = {}
    ids = itertools.count(1)
    async with connect(
        url,
        proxy=None,
        open_timeout=3,
        ping_interval=LATIDO_S,
        ping_timeout=SILENCIO_S,
        close_timeout=1,
        max_size=p.MAX_MENSAJE,
        # Deflating every batch cost the sender more CPU than the whole of JSON encoding;
        # peers share a LAN (or a tunnel that compresses), not a metered link.
        compression=None,
    ) as ws:

        async def pedir(producto: str, necesita: int, extra: int) -> dict[str, Any]:
            """Ask ``par`` for rights; the answer comes once the grant is applied here."""
            id = next(ids)
            esperando[id] = asyncio.get_running_loop().create_future()
            try:
                await ws.send(p.codificar(sesion.pedir(id, producto, necesita, extra)))
                return await esperando[id]
            finally:
                esperando.pop(id, None)

        # Merges run in arrival order while the next batch is read and decoded: the
        # writer thread's SQL and this thread's JSON overlap. Each batch is acknowledged
        # once applied; an answer to a request for rights waits for every batch read
        # before it, for its grant travels in one of them.
        # So several batches wait for the writer at once, and a later one may need an
        # earlier one of another origin (an order's cancellation, the order): they form
        # one chain, and once a batch is refused none read after it on this connection
        # is applied. The link goes down, and the next dial asks again from the vector.
        cadena = Cadena()
        en_orden: asyncio.Queue[tuple[asyncio.Future[Any] | None, list[Cambio] | dict[str, Any]]] = asyncio.Queue(
            maxsize=p.VENTANA_LOTES
        )

        async def confirmar() -> None:
            while True:
                fusion, que = await en_orden.get()
                if fusion is not None:
                    hecho = await fusion
                    estado.contacto()  # only once the batch was accepted
                    resultado.recibidos += len(que)
                    resultado.aplicados += len(hecho.aplicados)
                    await ws.send(p.codificar(sesion.ack(nodo.almacen.vector)))
                else:
                    assert isinstance(que, dict)
                    espera = esperando.get(que["id"])
                    if espera is not None and not espera.done():
                        espera.set_result(que)
                en_orden.task_done()

        async def leer() -> None:
            while True:
                msg = p.decodificar(await asyncio.wait_for(ws.recv(), SILENCIO_S))
                autenticado = sesion.autenticado
                cambios = sesion.recibir(msg)
                if cambios is None:
                    estado.contacto()
                if sesion.autenticado and not autenticado:
                    if not ronda:
                        estado.saliente = True
                        estado.pedir = pedir
                        estado.notificar()
                    log.info("%s: linked to %s", nodo.nodo_id, par)
                if cambios is not None:
                    fusion = asyncio.ensure_future(  # validados by SesionCliente
                        nodo.almacen.fusionar(cambios, validados=True, cadena=cadena)
                    )
                    await en_orden.put((fusion, cambios))
                elif msg["tipo"] == "latido":
                    await ws.send(p.codificar(sesion.ack(nodo.almacen.vector)))
                elif msg["tipo"] == "al_dia":
                    resultado.al_dia = True
                    if ronda:
                        await en_orden.join()
                        return
                elif msg["tipo"] == "derechos":
                    await en_orden.put((None, msg))

        try:
            reto = p.decodificar(await asyncio.wait_for(ws.recv(), PLAZO_HOLA_S))
            await ws.send(p.codificar(sesion.hola(reto, nodo.almacen.vector)))
            await _hasta_que_uno_termine(leer(), confirmar())
            return resultado
        except ErrorSync as e:
            codigo = getattr(e, "codigo", "ERROR_SYNC")
            log.warning("%s: refused what %s sent: %s %s", nodo.nodo_id, par, codigo, e.mensaje)
            with contextlib.suppress(Exception):
                await ws.send(p.codificar(p.error(codigo, e.mensaje)))
            raise
        finally:
            while not en_orden.empty():
                fusion, _ = en_orden.get_nowait()
                if fusion is not None and not fusion.cancel() and not fusion.cancelled():
                    fusion.exception()  # retrieved: the link is going down for a reason already raised
            for espera in esperando.values():
                if not espera.done():
                    espera.set_exception(ConnectionError(f"link to {par} closed"))
            if not ronda and estado.saliente:
                estado.saliente = False
                estado.pedir = None
                estado.notificar()


async def _hasta_que_uno_termine(*corrutinas: Any) -> None:
    tareas = [asyncio.ensure_future(c) for c in corrutinas]
    try:
        hechas, _ = await asyncio.wait(tareas, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tareas:
            t.cancel()
        await asyncio.gather(*tareas, return_exceptions=True)
    for t in hechas:
        t.result()


async def _recibir(ws: WebSocket) -> str:
    """The next text frame; a binary frame is refused, for the protocol speaks JSON text."""
    mensaje = await ws.receive()
    if mensaje["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(mensaje.get("code", 1000), mensaje.get("reason"))
    texto = mensaje.get("text")
    if texto is None:
        raise p.Rechazo("MALFORMADO", "binary frame: peer messages are JSON text")
    return str(texto)


def _continuacion(
    recientes: Sequence[Cambio], cursor: Mapping[str, int], vector: Mapping[str, int], par: str | None
) -> list[Cambio] | None:
    """``recientes`` past ``cursor``, if they are exactly everything the peer lacks; else None."""
    faltan = {o: s for o, s in vector.items() if o != par and s > cursor.get(o, 0)}
    lote = [c for c in recientes if c.origen in faltan and c.seq > cursor.get(c.origen, 0)]
    por_origen: dict[str, list[int]] = {}
    for c in lote:
        por_origen.setdefault(c.origen, []).append(c.seq)
    for origen, hasta in faltan.items():
        desde = cursor.get(origen, 0) + 1
        seqs = por_origen.get(origen, [])
        # Lengths first: after a long absence the peer lacks far more than memory holds.
        if len(seqs) != hasta - desde + 1 or seqs != list(range(desde, hasta + 1)):
            return None
    return lote
