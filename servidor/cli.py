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

A node logs to stderr, every line prefixed ``[ID] ``. Under ``--all`` the
supervisor relays each child's lines under the same prefix and logs its own
under ``[supervisor] `` (see :mod:`servidor.supervisor`).

Exit status:

- 0: stopped cleanly on request (SIGINT or SIGTERM), including Ctrl-C —
  a requested stop that went well is not a failure, so it is not 130;
- 1: a node failed while running; under ``--all``, any node died, exited
  non-zero or had to be killed;
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
FORMATO = "[{etiqueta}] %(asctime)s %(levelname)s %(name)s: %(message)s"


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
        return 2
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


def configurar_registro(etiqueta: str, nivel: int = logging.INFO) -> None:
    """Log to stderr, one line per record, every line prefixed ``[etiqueta] ``."""
    manejador = logging.StreamHandler(sys.stderr)
    manejador.setFormatter(logging.Formatter(FORMATO.format(etiqueta=etiqueta.replace("%", "%%"))))
    raiz = logging.getLogger()
    for viejo in list(raiz.handlers):
        raiz.removeHandler(viejo)
    raiz.addHandler(manejador)
    raiz.setLevel(nivel)


def ejecutar_nodo(ajustes: Ajustes) -> int:
    """Serve one node until SIGINT or SIGTERM, then shut it down in order."""
    configurar_registro(ajustes.nodo.id)
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
    from servidor.supervisor import Orden, Supervisor

    configurar_registro("supervisor")
    ordenes = [
        Orden(n.id, (sys.executable, "-m", "servidor", "--config", str(cluster.ruta), "--node", n.id))
        for n in cluster.nodes
    ]
    log.info("supervisor: running %d node(s) of %s", len(ordenes), cluster.ruta.resolve())
    supervisor = Supervisor(ordenes, plazo=PLAZO_HIJOS_S, entorno=entorno)
    codigo = asyncio.run(supervisor.ejecutar())
    log.info("supervisor: done, exit status %d", codigo)
    return codigo
