"""A fault-injecting TCP proxy for one directed link, run in the test's loop.

``Proxy(destino)`` listens on a free loopback port and forwards every
connection to ``destino``. :meth:`cortar` drops the live connections and
refuses new ones (a partition); :meth:`restaurar` heals it. Node A reaches
node B through a proxy when A's settings say ``via = { B = "127.0.0.1:PORT" }``;
:func:`cluster_con_proxies` starts a cluster with one proxy per directed link.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tests.procesos import Cluster, FabricaClusters


class Proxy:
    def __init__(self, destino_host: str, destino_puerto: int) -> None:
        self.destino = (destino_host, destino_puerto)
        self.cortado = False
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
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while datos := await lector.read(65536):
                if self.cortado:
                    return
                escritor.write(datos)
                await escritor.drain()


Proxies = dict[tuple[str, str], Proxy]


@pytest.fixture
async def proxies() -> AsyncIterator[Proxies]:
    """The proxies of :func:`cluster_con_proxies`, closed after the test."""
    abiertos: Proxies = {}
    try:
        yield abiertos
    finally:
        await asyncio.gather(*(p.cerrar() for p in abiertos.values()))


async def cluster_con_proxies(
    fabrica: FabricaClusters, proxies: Proxies, n: int = 3, backend: str = "sqlite"
) -> Cluster:
    """A started cluster whose every directed link goes through its own proxy, to cut it."""
    c = await fabrica(n, backend=backend, arrancar=False)
    await interponer(c, proxies)
    await c.arrancar()
    return c


async def interponer(c: Cluster, proxies: Proxies) -> None:
    """Open a proxy per directed link of a cluster not yet started, and have its nodes dial through them."""
    for a in c:
        for b in c:
            if a is not b:
                proxies[(a.id, b.id)] = await Proxy(b.host, b.port).abrir()
    c.escribir_vias({(a, b): p.direccion for (a, b), p in proxies.items()})
