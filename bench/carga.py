"""An open-loop load generator: requests leave on a fixed schedule.

Request ``i`` is due at ``t0 + i / rate`` whether or not earlier ones have
been answered (a closed loop would slow down with the server and hide its
queueing). Each request takes a free keep-alive connection or opens a new
one, so concurrency grows as far as the server makes it, up to
``MAX_CONEXIONES``; past that, requests wait here for a connection. Latency
is measured from the time a request was *due*, so neither that wait nor a
schedule that falls behind (the generator starved of CPU) hides the
server's queueing; the achieved send rate says how well the schedule held.

The client is a minimal HTTP/1.1 one over asyncio streams: on a 2-core
machine that also runs three nodes, httpx's per-request CPU would show in the
figures. It handles what uvicorn answers to these requests: a status line,
headers with ``content-length``, a body.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.comun import ahora
from tests.credenciales import cabecera as credencial

MAX_CONEXIONES = 256
# uvicorn closes a keep-alive connection idle for 5 s; reusing one it is about to
# close would fail a request that the server never saw, so older ones are dropped.
MAX_REPOSO_S = 2.0


@dataclass
class Envio:
    """One request: when it was due, sent, answered; its status and decoded body."""

    i: int
    debido: float
    enviado: float = 0.0
    respondido: float = 0.0
    estado: int = 0
    cuerpo: Any = None
    error: str | None = None


class FalloPeticion(Exception):
    """A request that got no answer: what went wrong, on what kind of connection."""


class _Conexion:
    def __init__(self, lector: asyncio.StreamReader, escritor: asyncio.StreamWriter) -> None:
        self.lector = lector
        self.escritor = escritor
        self.libre_desde = 0.0

    async def post(self, cabecera: bytes, cuerpo: bytes) -> tuple[int, bytes, bool]:
        self.escritor.write(cabecera + cuerpo)
        linea = await self.lector.readuntil(b"\r\n")
        estado = int(linea.split(b" ", 2)[1])
        largo, cerrar = 0, False
        while True:
            h = await self.lector.readuntil(b"\r\n")
            if h == b"\r\n":
                break
            nombre, _, valor = h.partition(b":")
            nombre = nombre.strip().lower()
            if nombre == b"content-length":
                largo = int(valor)
            elif nombre == b"connection" and valor.strip().lower() == b"close":
                cerrar = True
        return estado, await self.lector.readexactly(largo), cerrar

    def cerrar(self) -> None:
        self.escritor.close()


class ClienteHTTP:
    """POSTs of JSON bodies to one host over a pool of keep-alive connections."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._libres: list[_Conexion] = []
        self._liberada = asyncio.Condition()
        self.abiertas = 0
        self.maximo_abiertas = 0

    async def post(self, ruta: str, datos: Any) -> tuple[int, Any]:
        cuerpo = json.dumps(datos, separators=(",", ":")).encode()
        cabecera = (
            f"POST {ruta} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: {credencial()['authorization']}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(cuerpo)}\r\n\r\n"
        ).encode()
        conexion = await self._tomar()
        reposo = ahora() - conexion.libre_desde if conexion.libre_desde else None
        try:
            estado, respuesta, cerrar = await conexion.post(cabecera, cuerpo)
        except Exception as e:
            await self._devolver(conexion, cerrar=True)
            donde = "a new connection" if reposo is None else f"a connection idle {reposo:.1f} s"
            raise FalloPeticion(f"{type(e).__name__}: {e} (on {donde})") from e
        except BaseException:
            await self._devolver(conexion, cerrar=True)
            raise
        await self._devolver(conexion, cerrar)
        return estado, json.loads(respuesta) if respuesta else None

    async def _tomar(self) -> _Conexion:
        async with self._liberada:
            await self._liberada.wait_for(lambda: bool(self._libres) or self.abiertas < MAX_CONEXIONES)
            while self._libres:
                conexion = self._libres.pop()
                if ahora() - conexion.libre_desde < MAX_REPOSO_S:
                    return conexion
                conexion.cerrar()
                self.abiertas -= 1
            self.abiertas += 1
        try:
            lector, escritor = await asyncio.open_connection(self.host, self.port)
        except BaseException:
            async with self._liberada:
                self.abiertas -= 1
                self._liberada.notify()
            raise
        self.maximo_abiertas = max(self.maximo_abiertas, self.abiertas)
        return _Conexion(lector, escritor)

    async def _devolver(self, conexion: _Conexion, cerrar: bool) -> None:
        async with self._liberada:
            if cerrar:
                conexion.cerrar()
                self.abiertas -= 1
            else:
                conexion.libre_desde = ahora()
                self._libres.append(conexion)
            self._liberada.notify()

    def cerrar(self) -> None:
        for c in self._libres:
            c.cerrar()
        self._libres.clear()


@dataclass
class Resultado:
    envios: list[Envio]
    t0: float
    conexiones: int
    retraso_max: float = field(default=0.0)  # worst lateness of a send behind its schedule, s

    @property
    def correctos(self) -> list[Envio]:
        return [e for e in self.envios if e.error is None and 200 <= e.estado < 300]

    @property
    def tasa_enviada(self) -> float:
        """Sends per second between the first and the last send."""
        t = [e.enviado for e in self.envios]
        return (len(t) - 1) / (max(t) - min(t)) if len(t) > 1 and max(t) > min(t) else float("nan")

    @property
    def tasa_completada(self) -> float:
        """Successful answers per second, from the first send to the last answer."""
        ok = self.correctos
        if not ok:
            return float("nan")
        return len(ok) / (max(e.respondido for e in ok) - min(e.enviado for e in self.envios))


async def abrir_lazo(cliente: ClienteHTTP, ruta: str, cuerpo: Callable[[int], Any], n: int, tasa: float) -> Resultado:
    """Send ``n`` POSTs at ``tasa`` per second on an open-loop schedule; wait for every answer."""
    envios = [Envio(i, 0.0) for i in range(n)]
    tareas: list[asyncio.Task[None]] = []
    retraso = 0.0

    async def uno(e: Envio) -> None:
        e.enviado = ahora()
        try:
            e.estado, e.cuerpo = await cliente.post(ruta, cuerpo(e.i))
        except Exception as exc:  # noqa: BLE001 - counted and reported, the run goes on
            e.error = str(exc) if isinstance(exc, FalloPeticion) else f"{type(exc).__name__}: {exc}"
        e.respondido = ahora()

    t0 = ahora() + 0.05
    for e in envios:
        e.debido = t0 + e.i / tasa
        espera = e.debido - ahora()
        if espera > 0:
            await asyncio.sleep(espera)
        retraso = max(retraso, ahora() - e.debido)
        tareas.append(asyncio.create_task(uno(e)))
    await asyncio.gather(*tareas)
    return Resultado(envios, t0, cliente.maximo_abiertas, retraso)
