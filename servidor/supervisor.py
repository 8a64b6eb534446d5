"""Run several child processes as one: relay their output, stop them together.

:class:`Supervisor` starts one process per :class:`Orden` (a name and an
argv) and relays every line a child writes, stdout to our stdout and stderr
to our stderr, prefixed ``[name] `` — unless the child already starts its
lines that way, as a node's log lines do, so nothing is prefixed twice.

Stopping: SIGINT or SIGTERM to the supervisor (or :meth:`Supervisor.parar`)
sends SIGTERM to every child still running, waits up to ``plazo`` seconds,
then sends SIGKILL to the ones left. A second SIGINT/SIGTERM while stopping
sends SIGKILL at once. Children share the supervisor's process group, so
Ctrl-C in a terminal reaches them directly too; uvicorn treats the extra
SIGTERM as the same request to stop.

A child that exits on its own is reported and the others keep running: a
cluster tolerates a dead node. When no child is left, the supervisor returns.

:meth:`Supervisor.ejecutar` returns 0 when every child exited 0 (stopped on
request, or by someone else with SIGTERM), and 1 when any child exited
non-zero, died of a signal or had to be killed.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

log = logging.getLogger(__name__)

LIMITE_LINEA = 1 << 20


@dataclass(frozen=True)
class Orden:
    """One child to run: a name (used as the prefix) and its command line."""

    nombre: str
    argv: tuple[str, ...]


@dataclass
class _Hijo:
    orden: Orden
    proceso: asyncio.subprocess.Process
    relevos: list[asyncio.Task[None]] = field(default_factory=list)


def describir(codigo: int | None) -> str:
    """How a process ended, in words: ``exited 0``, ``killed by SIGKILL``."""
    if codigo is None:
        return "still running"
    if codigo < 0:
        try:
            return f"killed by {signal.Signals(-codigo).name}"
        except ValueError:
            return f"killed by signal {-codigo}"
    return f"exited {codigo}"


class Supervisor:
    def __init__(
        self,
        ordenes: Sequence[Orden],
        plazo: float = 15.0,
        salida: BinaryIO | None = None,
        errores: BinaryIO | None = None,
        entorno: Mapping[str, str] | None = None,
        senales: bool = True,
    ) -> None:
        self.ordenes = tuple(ordenes)
        self.plazo = plazo
        self.salida = salida if salida is not None else sys.stdout.buffer
        self.errores = errores if errores is not None else sys.stderr.buffer
        self.entorno = dict(entorno) if entorno is not None else None
        self.senales = senales
        self._hijos: list[_Hijo] = []
        self._parar = asyncio.Event()
        self._forzar = asyncio.Event()
        self._fallos = 0

    @property
    def pids(self) -> dict[str, int]:
        return {h.orden.nombre: h.proceso.pid for h in self._hijos}

    def parar(self) -> None:
        """Ask every child to stop; asked again while stopping, kill them."""
        if self._parar.is_set():
            self._forzar.set()
        self._parar.set()

    async def ejecutar(self) -> int:
        bucle = asyncio.get_running_loop()
        capturadas = (signal.SIGINT, signal.SIGTERM) if self.senales else ()
        for s in capturadas:
            bucle.add_signal_handler(s, self._al_recibir, s)
        try:
            for orden in self.ordenes:
                if self._parar.is_set():
                    break
                self._hijos.append(await self._lanzar(orden))
            await self._vigilar()
            await self._detener()
        finally:
            for h in self._hijos:
                if h.proceso.returncode is None:
                    h.proceso.kill()
                    await h.proceso.wait()
            for s in capturadas:
                bucle.remove_signal_handler(s)
        return 1 if self._fallos else 0

    def _al_recibir(self, s: signal.Signals) -> None:
        log.info("supervisor: %s received, stopping every node", s.name)
        self.parar()

    async def _lanzar(self, orden: Orden) -> _Hijo:
        proceso = await asyncio.create_subprocess_exec(
            *orden.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self.entorno,
            limit=LIMITE_LINEA,
        )
        hijo = _Hijo(orden, proceso)
        assert proceso.stdout is not None and proceso.stderr is not None
        for flujo, destino in ((proceso.stdout, self.salida), (proceso.stderr, self.errores)):
            hijo.relevos.append(asyncio.create_task(_relevar(orden.nombre, flujo, destino)))
        log.info("supervisor: started %s (pid %d)", orden.nombre, proceso.pid)
        return hijo

    async def _vigilar(self) -> None:
        """Wait for a request to stop, reporting children that exit meanwhile."""
        esperas = {asyncio.create_task(h.proceso.wait()): h for h in self._hijos}
        parada = asyncio.create_task(self._parar.wait())
        pendientes = set(esperas)
        try:
            while pendientes and not self._parar.is_set():
                hechas, _ = await asyncio.wait(pendientes | {parada}, return_when=asyncio.FIRST_COMPLETED)
                for tarea in hechas & pendientes:
                    pendientes.discard(tarea)
                    await self._informar_salida(esperas[tarea], len(pendientes))
            if not pendientes and self._hijos:
                log.error("supervisor: no node is left running")
        finally:
            parada.cancel()
            for tarea in pendientes:
                tarea.cancel()

    async def _informar_salida(self, hijo: _Hijo, quedan: int) -> None:
        await _terminar_relevos(hijo)
        codigo = hijo.proceso.returncode
        nombre = hijo.orden.nombre
        if codigo == 0:
            log.warning("supervisor: %s stopped (exited 0); %d node(s) still running", nombre, quedan)
            return
        self._fallos += 1
        log.error(
            "supervisor: %s died (%s); %d node(s) still running, the cluster tolerates a dead node",
            nombre,
            describir(codigo),
            quedan,
        )

    async def _detener(self) -> None:
        vivos = [h for h in self._hijos if h.proceso.returncode is None]
        if vivos:
            log.info(
                "supervisor: sending SIGTERM to %s (SIGKILL after %gs)",
                ", ".join(h.orden.nombre for h in vivos),
                self.plazo,
            )
        for h in vivos:
            _senal(h, signal.SIGTERM)
        todos: asyncio.Future[Any] = asyncio.gather(*(h.proceso.wait() for h in vivos))
        forzar: asyncio.Future[Any] = asyncio.create_task(self._forzar.wait())
        await asyncio.wait([todos, forzar], timeout=self.plazo, return_when=asyncio.FIRST_COMPLETED)
        forzar.cancel()
        for h in vivos:
            if h.proceso.returncode is None:
                log.error("supervisor: %s did not stop in time, sending SIGKILL", h.orden.nombre)
                _senal(h, signal.SIGKILL)
        await todos
        for h in vivos:
            await _terminar_relevos(h)
            codigo = h.proceso.returncode
            if codigo == 0:
                log.info("supervisor: %s stopped", h.orden.nombre)
            else:
                self._fallos += 1
                log.error("supervisor: %s %s while stopping", h.orden.nombre, describir(codigo))


def _senal(hijo: _Hijo, s: signal.Signals) -> None:
    try:
        hijo.proceso.send_signal(s)
    except ProcessLookupError:
        pass  # it exited between the check and the signal


async def _terminar_relevos(hijo: _Hijo, plazo: float = 2.0) -> None:
    """Let the relays drain what the child wrote before it exited.

    A grandchild could hold the pipes open past the child's exit; the relays
    are cancelled after ``plazo`` rather than waiting for it.
    """
    _, pendientes = await asyncio.wait(hijo.relevos, timeout=plazo)
    for tarea in pendientes:
        tarea.cancel()


async def _relevar(nombre: str, flujo: asyncio.StreamReader, destino: BinaryIO) -> None:
    prefijo = f"[{nombre}] ".encode()
    while True:
        try:
            linea = await flujo.readline()
        except ValueError:
            linea = b"<line longer than %d bytes dropped>\n" % LIMITE_LINEA
        if not linea:
            return
        if not linea.startswith(prefijo):
            linea = prefijo + linea
        if not linea.endswith(b"\n"):
            linea += b"\n"
        try:
            destino.write(linea)
            destino.flush()
        except (BrokenPipeError, ValueError):
            pass  # our own output is gone; keep draining so the child never blocks on a full pipe
