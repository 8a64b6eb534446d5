"""A fault-injecting TCP proxy for one directed link, run in the test's loop.

``Proxy(destino)`` listens on a free loopback port and forwards every
connection to ``destino``. Node A reaches node B through a proxy when A's
settings say ``via = { B = "127.0.0.1:PORT" }``; :func:`cluster_con_proxies`
starts a cluster with one proxy per directed link.

Faults, each switched on and off while connections are live:

- :meth:`Proxy.cortar` drops the live connections and refuses new ones (a
  partition); :meth:`Proxy.restaurar` heals it.
- :meth:`Proxy.configurar` sets the rest, all off by default:

  - ``retraso_s``: latency added to every chunk, order kept (a long link);
  - ``perdida``: the chance, per chunk, that a packet of it is lost. TCP hides
    a loss as a retransmission, so the chunk (and, head of line, everything
    behind it) waits ``RETRANSMISION_S``; one loss in four ends in a reset
    connection, as a link that loses enough packets eventually does;
  - ``lento``: bandwidth in bytes per second (a slow link);
  - ``colgado``: connections stay open but nothing moves (a link that went
    silent without closing); data waits and flows again when it is lifted.

Sleeping is how a proxy makes time pass on a link, so it sleeps; nothing in
the tests waits on it.

Every proxy counts the websocket data messages it carries in each direction
(:class:`ContadorTramas`), for the "messages per operation" figure.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator

import pytest

from tests.procesos import Cluster, FabricaClusters

RETRANSMISION_S = 0.2


class ContadorTramas:
    """Counts complete websocket data frames (text, binary) in one direction of a stream.

    The stream starts with the HTTP upgrade (skipped up to its blank line);
    then frames follow (RFC 6455 §5.2): a two-byte header, an extended length
    of 2 or 8 bytes, a 4-byte mask when masked, the payload. Control frames
    (ping, pong, close) are not messages.
    """

    def __init__(self) -> None:
        self.mensajes = 0
        self.bytes = 0
        self._cabecera_http = True
        self._buf = bytearray()

    def alimentar(self, datos: bytes) -> None:
        self.bytes += len(datos)
        self._buf += datos
        if self._cabecera_http:
            fin = self._buf.find(b"\r\n\r\n")
            if fin < 0:
                return
            del self._buf[: fin + 4]
            self._cabecera_http = False
        while len(self._buf) >= 2:
            b0, b1 = self._buf[0], self._buf[1]
            largo, pos = b1 & 0x7F, 2
            if largo == 126:
                if len(self._buf) < 4:
                    return
                largo, pos = int.from_bytes(self._buf[2:4], "big"), 4
            elif largo == 127:
                if len(self._buf) < 10:
                    return
                largo, pos = int.from_bytes(self._buf[2:10], "big"), 10
            if b1 & 0x80:
                pos += 4
            if len(self._buf) < pos + largo:
                return
            del self._buf[: pos + largo]
            opcode = b0 & 0x0F
            if b0 & 0x80 and opcode in (0, 1, 2):  # the last frame of a data message
                self.mensajes += 1


class Proxy:
    def __init__(self, destino_host: str, destino_puerto: int, semilla: int = 0) -> None:
        self.destino = (destino_host, destino_puerto)
        self.cortado = False
        self.retraso_s = 0.0
        self.perdida = 0.0
        self.lento: float | None = None
        self.colgado = False
        self.mensajes = 0  # websocket data messages carried, both directions, every connection
        self.bytes = 0
        self._azar = random.Random(semilla)
        self._fluye = asyncio.Event()
        self._fluye.set()
        self._servidor: asyncio.Server | None = None
        self._conexiones: set[asyncio.StreamWriter] = set()
        self._tareas: set[asyncio.Task[None]] = set()

    @property
    def puerto(self) -> int:
        assert self._servidor is not None
        return int(self._servidor.sockets[0].getsockname()[1])

    @property
    def direccion(self) -> str:
        return f"127.0.0.1:{self.puerto}"

    async def abrir(self, puerto: int = 0) -> Proxy:
        self._servidor = await asyncio.start_server(self._atender, "127.0.0.1", puerto)
        return self

    async def cerrar(self) -> None:
        self.cortar()
        self._fluye.set()
        if self._servidor is not None:
            self._servidor.close()
            await self._servidor.wait_closed()
        for t in list(self._tareas):
            t.cancel()
        await asyncio.gather(*self._tareas, return_exceptions=True)

    def cortar(self) -> None:
        self.cortado = True
        for w in list(self._conexiones):
            w.transport.abort()
        self._conexiones.clear()

    def restaurar(self) -> None:
        self.cortado = False

    def configurar(
        self, retraso_s: float = 0.0, perdida: float = 0.0, lento: float | None = None, colgado: bool = False
    ) -> None:
        """Set the link's latency, loss, bandwidth and stall; the defaults are a clean link."""
        self.retraso_s, self.perdida, self.lento, self.colgado = retraso_s, perdida, lento, colgado
        if colgado:
            self._fluye.clear()
        else:
            self._fluye.set()

    async def _atender(self, lector: asyncio.StreamReader, escritor: asyncio.StreamWriter) -> None:
        if self.cortado:
            escritor.transport.abort()
            return
        try:
            destino_l, destino_e = await asyncio.open_connection(*self.destino)
        except OSError:
            escritor.transport.abort()
            return
        self._conexiones.update({escritor, destino_e})
        tareas = [
            asyncio.create_task(self._copiar(lector, destino_e)),
            asyncio.create_task(self._copiar(destino_l, escritor)),
        ]
        self._tareas.update(tareas)
        try:
            await asyncio.wait(tareas, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in tareas:
                t.cancel()
                self._tareas.discard(t)
            for w in (escritor, destino_e):
                self._conexiones.discard(w)
                w.transport.abort()

    async def _copiar(self, lector: asyncio.StreamReader, escritor: asyncio.StreamWriter) -> None:
        """Read chunks, delay them as the link says, write them in order; return when either side ends."""
        tramas = ContadorTramas()
        cola: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        bucle = asyncio.get_running_loop()

        async def leer() -> None:
            while datos := await lector.read(65536):
                if self.cortado:
                    raise ConnectionAbortedError("link cut")
                retraso = self.retraso_s
                if self.perdida and self._azar.random() < self.perdida:
                    if self._azar.random() < 0.25:
                        raise ConnectionResetError("the link lost too much")
                    retraso += RETRANSMISION_S
                await cola.put((bucle.time() + retraso, datos))
            await cola.put(None)

        async def escribir() -> None:
            while (elemento := await cola.get()) is not None:
                cuando, datos = elemento
                if (falta := cuando - bucle.time()) > 0:
                    await asyncio.sleep(falta)
                await self._fluye.wait()
                if self.cortado:
                    raise ConnectionAbortedError("link cut")
                # Counted once delivered: a message lost with its connection was never carried.
                antes = tramas.mensajes
                tramas.alimentar(datos)
                self.mensajes += tramas.mensajes - antes
                self.bytes += len(datos)
                escritor.write(datos)
                await escritor.drain()
                if self.lento:
                    await asyncio.sleep(len(datos) / self.lento)

        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            partes = [asyncio.create_task(leer()), asyncio.create_task(escribir())]
            try:
                hechas, _ = await asyncio.wait(partes, return_when=asyncio.FIRST_COMPLETED)
                leido = partes[0]
                if leido in hechas and not leido.cancelled() and leido.exception() is None:
                    await partes[1]  # the stream ended cleanly: deliver what is queued
            finally:
                for t in partes:
                    t.cancel()
                await asyncio.gather(*partes, return_exceptions=True)


Proxies = dict[tuple[str, str], Proxy]


@pytest.fixture
async def proxies() -> AsyncIterator[Proxies]:
    """The proxies of :func:`cluster_con_proxies`, closed after the test."""
    abiertos: Proxies = {}
    try:
        yield abiertos
    finally:
        await asyncio.gather(*(p.cerrar() for p in abiertos.values()))


async def abrir_proxies(c: Cluster, proxies: Proxies, semilla: int = 0) -> None:
    """One proxy per directed link of ``c``, written to its settings; start the nodes after.

    A proxy binds and listens at once on a port the kernel picks, so nothing
    can take it first; and the kernel never picks a port the cluster holds
    for a node that has not started yet (``tests.procesos.Reserva``).
    """
    for i, a in enumerate(c):
        for j, b in enumerate(c):
            if a is not b:
                proxies[(a.id, b.id)] = await Proxy(b.host, b.port, semilla * 1000 + i * 100 + j).abrir()
    c.escribir_vias({(a, b): p.direccion for (a, b), p in proxies.items()})


async def cluster_con_proxies(
    fabrica: FabricaClusters, proxies: Proxies, n: int = 3, backend: str = "sqlite"
) -> Cluster:
    """A started cluster whose every directed link goes through its own proxy, to cut it."""
    c = await fabrica(n, backend=backend, arrancar=False)
    await abrir_proxies(c, proxies)
    await c.arrancar()
    return c
