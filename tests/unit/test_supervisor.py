"""The supervisor, with tiny Python children standing in for nodes."""

from __future__ import annotations

import asyncio
import io
import logging
import sys

import pytest

from servidor.supervisor import Orden, Supervisor, describir
from tests.procesos import esperar

# A child that says it is ready, then waits to be stopped; SIGTERM makes it exit 0.
OBEDIENTE = """
import signal, sys, threading
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("listo", flush=True)
threading.Event().wait()
"""
# A child that ignores SIGTERM: only SIGKILL stops it.
TERCO = """
import signal, threading
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("listo", flush=True)
threading.Event().wait()
"""


def orden(nombre: str, codigo: str) -> Orden:
    return Orden(nombre, (sys.executable, "-c", codigo))


class Salidas:
    def __init__(self) -> None:
        self.out = io.BytesIO()
        self.err = io.BytesIO()

    def lineas(self) -> list[str]:
        return (self.out.getvalue() + self.err.getvalue()).decode().splitlines()

    def cuantos(self, texto: str) -> int:
        return sum(texto in linea for linea in self.lineas())


def supervisor(salidas: Salidas, *ordenes: Orden, plazo: float = 10.0) -> Supervisor:
    return Supervisor(ordenes, plazo=plazo, salida=salidas.out, errores=salidas.err, senales=False)


async def test_child_lines_are_relayed_with_their_prefix_and_never_prefixed_twice() -> None:
    s = Salidas()
    codigo = "import sys\nprint('hola')\nprint('[a] ya prefijada')\nsys.stderr.write('al final sin salto')"
    sup = supervisor(s, orden("a", codigo))

    assert await sup.ejecutar() == 0

    assert s.out.getvalue().decode().splitlines() == ["[a] hola", "[a] ya prefijada"]
    assert s.err.getvalue() == b"[a] al final sin salto\n"


async def test_stopping_sends_sigterm_and_counts_a_clean_exit_as_success(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    s = Salidas()
    sup = supervisor(s, orden("a", OBEDIENTE), orden("b", OBEDIENTE))
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 2, 30, que="both children ready")

    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 0
    assert "supervisor: a stopped" in caplog.text
    assert "supervisor: b stopped" in caplog.text


async def test_a_child_that_ignores_sigterm_is_killed_after_the_deadline(caplog: pytest.LogCaptureFixture) -> None:
    s = Salidas()
    sup = supervisor(s, orden("terco", TERCO), orden("bueno", OBEDIENTE), plazo=0.5)
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 2, 30, que="both children ready")

    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 1
    assert "terco did not stop in time, sending SIGKILL" in caplog.text
    assert "terco killed by SIGKILL while stopping" in caplog.text
    assert "bueno did not stop" not in caplog.text


async def test_asking_twice_kills_at_once_without_waiting_for_the_deadline() -> None:
    s = Salidas()
    sup = supervisor(s, orden("terco", TERCO), plazo=600)
    tarea = asyncio.create_task(sup.ejecutar())
    await esperar(lambda: s.cuantos("listo") == 1, 30, que="the child is ready")

    sup.parar()
    sup.parar()

    assert await asyncio.wait_for(tarea, 30) == 1


async def test_a_dead_child_is_reported_and_the_others_keep_running(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "servidor.supervisor")
    s = Salidas()
    sup = supervisor(s, orden("vivo", OBEDIENTE), orden("muerto", "raise SystemExit(7)"))
    tarea = asyncio.create_task(sup.ejecutar())

    await esperar(lambda: "muerto died (exited 7)" in caplog.text, 30, que="the death is reported")
    assert "1 node(s) still running, the cluster tolerates a dead node" in caplog.text
    await esperar(lambda: s.cuantos("listo") == 1, 30, que="the other child is ready")
    assert not tarea.done()

    sup.parar()
    assert await asyncio.wait_for(tarea, 30) == 1
    assert "supervisor: vivo stopped" in caplog.text


async def test_the_supervisor_returns_when_no_child_is_left(caplog: pytest.LogCaptureFixture) -> None:
    sup = supervisor(Salidas(), orden("a", "raise SystemExit(1)"), orden("b", "raise SystemExit(2)"))
    assert await asyncio.wait_for(sup.ejecutar(), 30) == 1
    assert "no node is left running" in caplog.text


@pytest.mark.parametrize(
    ("codigo", "dicho"),
    [(0, "exited 0"), (3, "exited 3"), (-9, "killed by SIGKILL"), (-15, "killed by SIGTERM"), (None, "still running")],
)
def test_exit_statuses_are_described_in_words(codigo: int | None, dicho: str) -> None:
    assert describir(codigo) == dicho
