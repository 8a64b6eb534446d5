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

A child that exits on its own is reported, in one line that says how it
ended and what happens next, and started again as the restart policy says
(:mod:`servidor.reinicios`): after a growing wait when it crashed; never
when it exited 0 (someone stopped it on purpose) or with a status the
policy lists as definitive; no more once it has crashed too often too fast.
A child given up on is logged at CRITICAL and the others keep running: a
cluster tolerates a dead node. When no child is left, the supervisor returns.
A request to stop ends any wait before a restart at once.

:meth:`Supervisor.ejecutar` returns 0 when every child exited 0 (stopped on
request, or by someone else with SIGTERM), and 1 when any child ever exited
non-zero, died of a signal or had to be killed — even one that was started
again and ran well after.
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

from servidor.reinicios import Abandonar, Politica, Reinicios

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
        politica: Politica | None = None,
    ) -> None:
        self.ordenes = tuple(ordenes)
        self.plazo = plazo
        self.salida = salida if salida is not None else sys.stdout.buffer
        self.errores = errores if errores is not None else sys.stderr.buffer
        self.entorno = dict(entorno) if entorno is not None else None
        self.senales = senales
        self.politica = politica if politica is not None else Politica()
        # The current process of each child that was started, by name.
        self._hijos: dict[str, _Hijo] = {}
        self._parar = asyncio.Event()
        self._forzar = asyncio.Event()
        self._fallos = 0

    @property
    def pids(self) -> dict[str, int]:
        return {nombre: h.proceso.pid for nombre, h in self._hijos.items()}

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
        cuidados = [asyncio.create_task(self._cuidar(orden)) for orden in self.ordenes]
        try:
            await asyncio.gather(*cuidados)
            if self.ordenes and not self._parar.is_set():
                log.error("supervisor: no node is left running")
            await self._detener()
        finally:
            for tarea in cuidados:
                tarea.cancel()
            await asyncio.gather(*cuidados, return_exceptions=True)
            for h in self._hijos.values():
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
        hijo = self._hijos[orden.nombre] = _Hijo(orden, proceso)
        assert proceso.stdout is not None and proceso.stderr is not None
        for flujo, destino in ((proceso.stdout, self.salida), (proceso.stderr, self.errores)):
            hijo.relevos.append(asyncio.create_task(_relevar(orden.nombre, flujo, destino)))
        log.info("supervisor: started %s (pid %d)", orden.nombre, proceso.pid)
        return hijo

    async def _cuidar(self, orden: Orden) -> None:
        """Run one child until a request to stop, starting it again as the policy says.

        Returns when asked to stop (the child, if running, is left to
        :meth:`_detener`) or when the child is left stopped for good.
        """
        reinicios = Reinicios(self.politica)
        parada = asyncio.create_task(self._parar.wait())
        salida: asyncio.Task[int] | None = None
        try:
            while not self._parar.is_set():
                hijo = await self._lanzar(orden)
                reinicios.arrancado()
                salida = asyncio.create_task(hijo.proceso.wait())
                await asyncio.wait([salida, parada], return_when=asyncio.FIRST_COMPLETED)
                if not salida.done():
                    return
                await _terminar_relevos(hijo)
                codigo = hijo.proceso.returncode
                assert codigo is not None
                if self._parar.is_set():
                    self._informar_parada(hijo)  # it went down with the request to stop (Ctrl-C reaches it too)
                    return
                decision = reinicios.salida(codigo)
                if codigo != 0:
                    self._fallos += 1
                if isinstance(decision, Abandonar):
                    self._abandonar(orden.nombre, codigo, decision)
                    return
                log.error(
                    "supervisor: %s died (%s); restarting it in %gs (restart %d)",
                    orden.nombre,
                    describir(codigo),
                    decision.espera,
                    decision.vez,
                )
                await asyncio.wait([parada], timeout=decision.espera)
        finally:
            parada.cancel()
            if salida is not None:
                salida.cancel()

    def _abandonar(self, nombre: str, codigo: int, decision: Abandonar) -> None:
        quedan = sum(h.proceso.returncode is None for h in self._hijos.values())
        if codigo == 0:
            log.warning("supervisor: %s stopped (exited 0); %d node(s) still running", nombre, quedan)
            return
        log.critical(
            "supervisor: %s died (%s); giving up on it: %s. %d node(s) still running, "
            "the cluster tolerates a dead node",
            nombre,
            describir(codigo),
            decision.motivo,
            quedan,
        )

    async def _detener(self) -> None:
        vivos = [h for h in self._hijos.values() if h.proceso.returncode is None]
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
            self._informar_parada(h)

    def _informar_parada(self, hijo: _Hijo) -> None:
        codigo = hijo.proceso.returncode
        if codigo == 0:
            log.info("supervisor: %s stopped", hijo.orden.nombre)
        else:
            self._fallos += 1
            log.error("supervisor: %s %s while stopping", hijo.orden.nombre, describir(codigo))


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
