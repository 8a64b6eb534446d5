"""The peer manager: one background task per peer, and what we know of each.

Each node dials every other node of the settings and keeps the link up:
a dropped link is retried after :func:`espera` (exponential backoff with
jitter, first retry under 0.1 s, capped at 3 s), and nothing a client does
ever waits for a peer. The manager also serves the sync endpoint (through
``sync.enlace``), wakes the serving links when a commit lands, and answers
the health and replication questions about peers.

Rights to stock move over the same links (``servidor.dominio.derechos``):
:meth:`GestorPares.pedir_derechos` asks a peer on this node's own dialled
link, and a request arriving on a served link is answered by the domain's
``ceder_derechos`` (the ``cedente`` this manager is given).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed

from servidor.ajustes import Ajustes, Nodo
from servidor.almacen import Almacen
from servidor.almacen.registro import pendientes as contar_pendientes
from sync import enlace
from sync import protocolo as p
from sync.cambios import Cambio
from sync.errores import ErrorSync
from sync.reloj import milisegundos

log = logging.getLogger(__name__)

ACTIVO_S = enlace.SILENCIO_S
PRIMERA_ESPERA_S = 0.05
ESPERA_MAXIMA_S = 3.0


def espera(intento: int, azar: random.Random | None = None) -> float:
    """Backoff before retry number ``intento`` (0-based): 50 ms doubling to 3 s, with jitter."""
    tope = min(ESPERA_MAXIMA_S, PRIMERA_ESPERA_S * (2**intento))
    return tope * (0.5 + 0.5 * (azar or random).random())


@dataclass
class EstadoPar:
    id: str
    url: str
    saliente: bool = False
    entrantes: int = 0
    acuse: dict[str, int] | None = None
    ultimo_contacto: float | None = None  # wall clock, seconds
    _contacto_mono: float | None = None
    ultimo_error: str | None = None
    notificar: Callable[[], None] = field(default=lambda: None, repr=False)
    # Asks this peer for rights over our dialled link, while it is up (set by sync.enlace).
    pedir: Callable[[str, int, int], Awaitable[dict[str, Any]]] | None = field(default=None, repr=False)

    def contacto(self) -> None:
        self.ultimo_contacto = time.time()
        self._contacto_mono = time.monotonic()

    @property
    def activo(self) -> bool:
        reciente = self._contacto_mono is not None and time.monotonic() - self._contacto_mono < ACTIVO_S
        return reciente and (self.saliente or self.entrantes > 0)


Cedente = Callable[[str, str, int, int], Awaitable[tuple[int, int | None]]]


class GestorPares:
    def __init__(self, ajustes: Ajustes, almacen: Almacen, cedente: Cedente | None = None) -> None:
        self.ajustes = ajustes
        self.almacen = almacen
        self.cedente = cedente
        self.cluster = ajustes.cluster.name
        self.secreto = ajustes.cluster.secret
        self.nodo_id = ajustes.nodo.id
        self._estados = {par.id: EstadoPar(par.id, par.url, notificar=self._avisar) for par in ajustes.pares}
        self._interesados: list[Callable[[], None]] = []
        self._enlaces: list[Callable[[Sequence[Cambio]], None]] = []
        self._tareas: list[asyncio.Task[None]] = []
        self._parado = asyncio.Event()
        self._quitar_observador: Callable[[], None] | None = None
        self._confirmado = asyncio.Event()  # replaced after every commit, for waiters

    # --- what sync.enlace needs ------------------------------------------

    def pares(self) -> frozenset[str]:
        return frozenset(self._estados)

    def estado(self, par: str) -> EstadoPar:
        return self._estados[par]

    def suscribir(self, fn: Callable[[Sequence[Cambio]], None]) -> Callable[[], None]:
        """Call ``fn`` with every committed batch (the serving links)."""
        self._enlaces.append(fn)
        return lambda: self._enlaces.remove(fn)

    def acuses(self) -> dict[str, dict[str, int]]:
        """The last version vector each peer acknowledged to this node, for peers that did."""
        return {par: dict(e.acuse) for par, e in self._estados.items() if e.acuse is not None}

    def al_cambiar(self, fn: Callable[[], None]) -> Callable[[], None]:
        """Call ``fn`` when a link goes up or down or a peer acknowledges."""
        self._interesados.append(fn)
        return lambda: self._interesados.remove(fn)

    def _avisar(self) -> None:
        for fn in list(self._interesados):
            fn()

    def _al_confirmar(self, lote: Sequence[Cambio]) -> None:
        for fn in list(self._enlaces):
            fn(lote)
        self._confirmado.set()
        self._confirmado = asyncio.Event()

    async def ceder(self, par: str, peticion: p.Peticion) -> tuple[int, int | None]:
        if self.cedente is None:
            return 0, None
        return await self.cedente(par, peticion.producto, peticion.necesita, peticion.extra)

    # --- rights to stock ----------------------------------------------------

    def enlazados(self) -> list[str]:
        """Peers we can ask for rights now: our dialled link to them is up."""
        return [e.id for e in self._estados.values() if e.pedir is not None and e.activo]

    async def pedir_derechos(self, par: str, producto_id: str, necesita: int, extra: int, plazo: float) -> int | None:
        """Ask ``par`` for rights to units of a product; answer the units granted and applied here.

        Within ``plazo`` seconds; a peer that is not linked, or does not
        answer in time, answers ``None`` (a late grant still arrives and
        stays here).
        """
        estado = self._estados.get(par)
        if estado is None or estado.pedir is None:
            return None
        limite = time.monotonic() + plazo
        try:
            respuesta = await asyncio.wait_for(estado.pedir(producto_id, necesita, extra), plazo)
        except (TimeoutError, ConnectionError, ConnectionClosed) as e:
            # A link that went down while asking is a peer that did not answer, not a failed order.
            log.info("%s: %s gave no rights to %s: %r", self.nodo_id, par, producto_id, e)
            return None
        unidades, seq = respuesta["unidades"], respuesta["seq"]
        # The grant came on the same link before the answer, so it is applied already;
        # wait for it anyway rather than trust the ordering blindly.
        while seq is not None and self.almacen.vector.get(par, 0) < seq:
            confirmado = self._confirmado
            try:
                await asyncio.wait_for(confirmado.wait(), max(0.0, limite - time.monotonic()))
            except TimeoutError:
                return None
        return int(unidades)

    # --- lifecycle ---------------------------------------------------------

    def iniciar(self) -> None:
        self._quitar_observador = self.almacen.observar(self._al_confirmar)
        for par in self.ajustes.pares:
            self._tareas.append(asyncio.create_task(self._mantener(par), name=f"par-{par.id}"))

    async def detener(self) -> None:
        self._parado.set()
        for t in self._tareas:
            t.cancel()
        await asyncio.gather(*self._tareas, return_exceptions=True)
        if self._quitar_observador:
            self._quitar_observador()

    async def servir(self, ws: WebSocket) -> None:
        await enlace.servir(ws, self)

    def _url_sync(self, par: Nodo) -> str:
        direccion = self.ajustes.nodo.via.get(par.id) or f"{par.host}:{par.port}"
        return f"ws://{direccion}/sync"

    async def _mantener(self, par: Nodo) -> None:
        estado = self._estados[par.id]
        intento = 0
        while not self._parado.is_set():
            rechazo = False
            try:
                await enlace.marcar(self._url_sync(par), par.id, self)
            except asyncio.CancelledError as e:
                tarea = asyncio.current_task()
                if self._parado.is_set() or (tarea is not None and tarea.cancelling()):
                    raise
                # Not this task being stopped: something the link awaited was cancelled under
                # it. Letting it through would end this peer's task, and with it every later
                # dial, silently; it is one more way for a link to fail, and is retried.
                log.warning("%s: link to %s ended by a cancelled wait: %r", self.nodo_id, par.id, e)
                estado.ultimo_error = f"CancelledError: {e}"
            except Exception as e:  # noqa: BLE001 - every failure means "retry later"
                rechazo = isinstance(e, ErrorSync)  # a refusal is no sign of a healthy link
                motivo = f"{type(e).__name__}: {e}"
                if motivo != estado.ultimo_error:
                    log.info("%s: link to %s down: %s", self.nodo_id, par.id, motivo)
                estado.ultimo_error = motivo
            if not rechazo and estado.ultimo_contacto is not None and time.time() - estado.ultimo_contacto < 1:
                intento = 0  # it was up: retry quickly
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._parado.wait(), espera(intento))
            intento += 1

    # --- questions about peers --------------------------------------------

    async def salud(self) -> list[dict[str, Any]]:
        ahora_ms = self.almacen.reloj.ahora_ms()
        respuesta = []
        for par in self.ajustes.pares:
            estado = self._estados[par.id]
            primero = await self._primero_pendiente(estado)
            respuesta.append(
                {
                    "id": par.id,
                    "url": par.url,
                    "activo": estado.activo,
                    "ultimo_contacto": _iso(estado.ultimo_contacto),
                    "pendientes": contar_pendientes(estado.acuse or {}, self.almacen.vector),
                    "lag_ms": max(0, ahora_ms - milisegundos(primero.hlc)) if primero else 0,
                    "ultimo_error": None if estado.activo else estado.ultimo_error,
                }
            )
        return respuesta

    async def pendientes(self) -> list[dict[str, Any]]:
        respuesta = []
        for par in self.ajustes.pares:
            estado = self._estados[par.id]
            primero = await self._primero_pendiente(estado)
            respuesta.append(
                {
                    "nodo": par.id,
                    "pendientes": contar_pendientes(estado.acuse or {}, self.almacen.vector),
                    "acuse_conocido": estado.acuse is not None,
                    "primero": primero.a_json() if primero else None,
                }
            )
        return respuesta

    async def _primero_pendiente(self, estado: EstadoPar) -> Cambio | None:
        lote = await self.almacen.cambios_para(estado.acuse or {}, 1)
        return lote[0] if lote else None

    async def replicar(self, plazo_s: float = 10.0) -> list[dict[str, Any]]:
        """One pull round with every peer now; says what each gave or why not."""

        async def uno(par: Nodo) -> dict[str, Any]:
            try:
                r = await asyncio.wait_for(enlace.marcar(self._url_sync(par), par.id, self, ronda=True), plazo_s)
                return {"nodo": par.id, "ok": True, "recibidos": r.recibidos, "aplicados": r.aplicados}
            except Exception as e:  # noqa: BLE001 - reported to the caller, per peer
                return {"nodo": par.id, "ok": False, "error": f"{type(e).__name__}: {e}".strip()}

        return list(await asyncio.gather(*(uno(par) for par in self.ajustes.pares)))


def _iso(segundos: float | None) -> str | None:
    if segundos is None:
        return None
    return datetime.fromtimestamp(segundos, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
