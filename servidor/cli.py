"""``python -m servidor``: run one node, or every node of the settings file.

::

    python -m servidor [--config PATH] --node ID    one node, in this process (uvicorn)
    python -m servidor [--config PATH] --all        every node, one child process each

``--config`` defaults to ``PEDIDOS_CONFIG``, then ``settings.toml``; ``--node``
defaults to ``PEDIDOS_NODE``. ``PEDIDOS_SECRET`` and ``PEDIDOS_DATABASE_URL``
override the file (see :mod:`servidor.ajustes`); the latter names one
database, so ``--all`` refuses it.

Settings and usage problems are reported as one line on stderr,
``pedidos: error: ...``, before anything is opened or written.

A node logs to stderr, every line prefixed ``[ID] ``, uvicorn's and the
websockets library's lines too. ``access_log`` (settings) governs every
per-request and per-connection line: false, none of them shows (errors do);
true, each shows in the node's format. Under ``--all`` the supervisor relays
each child's lines under the same prefix and logs its own under
``[supervisor] `` (see :mod:`servidor.supervisor`). It starts a node that
crashed again after 0.5 s, doubling the wait with each crash up to 30 s (a
run of 60 s or more resets it); it gives up on a node after 5 crashes within
60 s, or at once when the node exits 2 (its settings are wrong: a restart
would not mend them), and keeps the others running (see
:mod:`servidor.reinicios`).

Exit status:

- 0: stopped cleanly on request (SIGINT or SIGTERM), including Ctrl-C —
  a requested stop that went well is not a failure, so it is not 130;
- 1: a node failed while running; under ``--all``, any node died, exited
  non-zero or had to be killed, even one that was restarted and then ran well;
- 2: a usage or settings error;
- 3: the node could not start (port taken, database unreachable: uvicorn's
  startup failure).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from types import FrameType
from typing import NoReturn

from servidor.ajustes import Ajustes, Cluster, ErrorAjustes, cargar, cargar_cluster, comprobar_exposicion, ruta_config

log = logging.getLogger(__name__)

# Grace uvicorn gives open connections after SIGTERM/SIGINT before cancelling them.
PARADA_ORDENADA_S = 5
# The largest websocket message the server reads at all: a peer's largest message, and some slack.
# (uvicorn's default is 16 MiB; a client could make the node buffer that much per frame.)
MAX_MENSAJE_WS = 5 * 1024 * 1024
# What the supervisor allows a child after SIGTERM (uvicorn's grace plus the
# lifespan's shutdown) before it sends SIGKILL.
PLAZO_HIJOS_S = 15.0
# Exit status of a usage or settings error.
SALIDA_AJUSTES = 2
FORMATO = "[{etiqueta}] %(asctime)s %(levelname)s %(name)s: %(message)s"
# The loggers of the libraries under a node. They keep no handler of their own,
# so that every line they write goes through the node's one handler and format.
AJENOS = (
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "websockets",
    "websockets.server",
    "websockets.client",
)


class ErrorUso(Exception):
    """A command-line problem, one line fit for the terminal."""


class _Analizador(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise ErrorUso(message)


def _analizador() -> argparse.ArgumentParser:
    p = _Analizador(
        prog="python -m servidor",
        description="Run a pedidos node, or every node of the cluster.",
    )
    p.add_argument("--config", metavar="PATH", help="settings file (default: $PEDIDOS_CONFIG or settings.toml)")
    cual = p.add_mutually_exclusive_group()
    cual.add_argument("--node", metavar="ID", help="run this node (default: $PEDIDOS_NODE)")
    cual.add_argument("--all", action="store_true", help="run every node of the file, one process each")
    return p


def main(argv: Sequence[str] | None = None, entorno: Mapping[str, str] | None = None) -> int:
    entorno = os.environ if entorno is None else entorno
    try:
        plan = preparar(argv, entorno)
    except (ErrorUso, ErrorAjustes) as e:
        sys.stderr.write(f"pedidos: error: {e}\n")
        return SALIDA_AJUSTES
    if isinstance(plan, Ajustes):
        return ejecutar_nodo(plan)
    return ejecutar_todos(plan, entorno)


def preparar(argv: Sequence[str] | None, entorno: Mapping[str, str]) -> Ajustes | Cluster:
    """Parse and validate everything; what to run, or :class:`ErrorUso`/:class:`ErrorAjustes`."""
    args = _analizador().parse_args(argv)
    if args.all:
        if entorno.get("PEDIDOS_DATABASE_URL"):
            raise ErrorUso("--all cannot use PEDIDOS_DATABASE_URL: one database cannot serve several nodes")
        cluster = cargar_cluster(ruta_config(args.config, entorno), entorno)
        for nodo in cluster.nodes:
            comprobar_exposicion(cluster, nodo)
        return cluster
    if not (args.node or entorno.get("PEDIDOS_NODE")):
        raise ErrorUso("choose a node with --node ID (or PEDIDOS_NODE), or run every node with --all")
    return cargar(args.config, args.node, entorno)


class SinAccesos(logging.Filter):
    """Drops uvicorn's and websockets' per-request and per-connection lines.

    uvicorn's own ``access_log=False`` silences ``uvicorn.access`` only. Each
    websocket handshake (``"WebSocket /sync" [accepted]``) is logged on
    ``uvicorn.error``, and uvicorn hands that logger to the websockets library,
    which logs ``connection open``, ``connection closed`` and ``connection
    rejected`` on it. Those lines are known by their message templates, and
    dropped at INFO and below only: a warning about a connection still shows.
    """

    PLANTILLAS = ('%s - "WebSocket ', "connection open", "connection closed", "connection rejected")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO or not record.name.startswith(("uvicorn", "websockets")):
            return True
        if record.name == "uvicorn.access":
            return False
        return not (isinstance(record.msg, str) and record.msg.startswith(self.PLANTILLAS))


def configurar_registro(etiqueta: str, nivel: int = logging.INFO, accesos: bool = True) -> None:
    """Log to stderr, one line per record, every line prefixed ``[etiqueta] ``.

    uvicorn's and websockets' loggers write through the same handler; with
    ``accesos`` false, their per-request and per-connection lines are dropped
    (:class:`SinAccesos`).
    """
    manejador = logging.StreamHandler(sys.stderr)
    manejador.setFormatter(logging.Formatter(FORMATO.format(etiqueta=etiqueta.replace("%", "%%"))))
    if not accesos:
        manejador.addFilter(SinAccesos())
    raiz = logging.getLogger()
    for viejo in list(raiz.handlers):
        raiz.removeHandler(viejo)
    raiz.addHandler(manejador)
    raiz.setLevel(nivel)
    for nombre in AJENOS:
        ajeno = logging.getLogger(nombre)
        for viejo in list(ajeno.handlers):
            ajeno.removeHandler(viejo)
        ajeno.setLevel(logging.NOTSET)
        ajeno.propagate = True


def ejecutar_nodo(ajustes: Ajustes) -> int:
    """Serve one node until SIGINT or SIGTERM, then shut it down in order."""
    configurar_registro(ajustes.nodo.id, accesos=ajustes.cluster.access_log)
    # Imported here so that a settings error never waits for (or trips on) the app's imports.
    import uvicorn

    from servidor.app import crear_app
    from servidor.conexiones import protocolo_http

    nodo, cluster = ajustes.nodo, ajustes.cluster
    config = uvicorn.Config(
        app=crear_app(ajustes),
        host=nodo.host,
        port=nodo.port,
        # Head size, head time and connections per node, which uvicorn leaves unbounded.
        http=protocolo_http(
            nodo.id, cluster.max_connections, cluster.max_header_bytes, cluster.header_timeout_ms / 1000
        ),
        timeout_graceful_shutdown=PARADA_ORDENADA_S,
        ws_max_size=MAX_MENSAJE_WS,
        log_config=None,
        access_log=ajustes.cluster.access_log,
        lifespan="on",
    )
    servidor = uvicorn.Server(config)
    recibidas: list[int] = []

    def anotar(s: int, _marco: FrameType | None) -> None:
        # Ours before uvicorn installs its handlers (a signal that early still
        # stops it right after startup) and again after it restores them: uvicorn
        # re-raises the signal that stopped it, which would otherwise kill us with
        # SIGTERM or a KeyboardInterrupt after a clean shutdown.
        recibidas.append(s)
        servidor.should_exit = True

    previos = {s: signal.signal(s, anotar) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        servidor.run()
    except SystemExit as e:
        codigo = e.code if isinstance(e.code, int) else 1
        log.error("%s: could not start (exit status %d)", nodo.id, codigo)
        return codigo
    finally:
        for s, manejador in previos.items():
            signal.signal(s, manejador)
    if recibidas:
        # uvicorn re-raises what it caught last-in first-out, so the order here says little.
        nombres = "/".join(sorted({signal.Signals(s).name for s in recibidas}))
        log.info("%s: stopped cleanly after %s", nodo.id, nombres)
    return 0


def ejecutar_todos(cluster: Cluster, entorno: Mapping[str, str]) -> int:
    """Run every node of ``cluster`` as a child process until SIGINT or SIGTERM."""
    from servidor.reinicios import Politica
    from servidor.supervisor import Orden, Supervisor

    configurar_registro("supervisor")
    ordenes = [
        Orden(n.id, (sys.executable, "-m", "servidor", "--config", str(cluster.ruta), "--node", n.id))
        for n in cluster.nodes
    ]
    log.info("supervisor: running %d node(s) of %s", len(ordenes), cluster.ruta.resolve())
    # The defaults of Politica are the numbers the module docstring gives.
    politica = Politica(definitivos={SALIDA_AJUSTES: "a usage or settings error"})
    supervisor = Supervisor(ordenes, plazo=PLAZO_HIJOS_S, entorno=entorno, politica=politica)
    codigo = asyncio.run(supervisor.ejecutar())
    log.info("supervisor: done, exit status %d", codigo)
    return codigo
