"""The lag observer: a peer-style link to each watched node, timestamping arrivals.

``python -m bench.observador --config PATH --id ID --nodos nodo2,nodo3 --vector JSON --salida FILE``

It dials each watched node's ``/sync`` as peer ``ID`` (an entry of the
settings file that no node process runs), proving the cluster secret like
any node, and says hello with ``--vector`` (what the node already has), so
it is sent only what the node commits from then on. A node pushes a batch as
soon as a commit wakes its serving link (``sync.enlace.servir``), so the
arrival of change ``(origen, seq)`` here is the moment it became visible on
that node plus one loopback hop and one read of the change log: the lag
figures are, if anything, a little pessimistic. Nothing is polled.

Every arrival is stamped with ``CLOCK_MONOTONIC`` (shared by all processes of
the machine) before the message is even parsed. On stdout the observer says
``listo NODE`` once each link is authenticated; on SIGTERM it writes, per
node, ``{"llegadas": {origen: {seq: t}}, "pedidos": {id: seq of its first
change}}`` to ``--salida`` as JSON and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from bench.comun import ahora, correr
from servidor.ajustes import cargar_cluster
from sync import protocolo as p


class Registro:
    def __init__(self) -> None:
        self.llegadas: dict[str, dict[int, float]] = {}
        self.pedidos: dict[str, int] = {}

    def anotar(self, cambios: list[Any], t: float) -> None:
        for c in cambios:
            self.llegadas.setdefault(c.origen, {}).setdefault(c.seq, t)
            if c.entidad == "pedido" and c.campo == "cliente_id":
                self.pedidos.setdefault(c.clave, c.seq)

    def a_json(self) -> dict[str, Any]:
        return {"llegadas": self.llegadas, "pedidos": self.pedidos}


async def observar(
    url: str, cluster: str, secreto: str, yo: str, nodo: str, vector: dict[str, int], r: Registro
) -> None:
    sesion = p.SesionCliente(cluster, secreto, yo, nodo)
    tengo = dict(vector)
    async with connect(url, proxy=None, max_size=p.MAX_MENSAJE, open_timeout=5) as ws:
        await ws.send(p.codificar(sesion.hola(p.decodificar(await ws.recv()), tengo)))
        while True:
            texto = await ws.recv()
            t = ahora()
            msg = p.decodificar(texto)
            autenticado = sesion.autenticado
            cambios = sesion.recibir(msg)
            if sesion.autenticado and not autenticado:
                print(f"listo {nodo}", flush=True)
            if cambios is not None:
                r.anotar(cambios, t)
                for c in cambios:
                    tengo[c.origen] = max(tengo.get(c.origen, 0), c.seq)
                await ws.send(p.codificar(sesion.ack(tengo)))
            elif msg["tipo"] == "latido":
                await ws.send(p.codificar(sesion.ack(tengo)))


async def principal(args: argparse.Namespace) -> int:
    cluster = cargar_cluster(Path(args.config))
    vector = json.loads(args.vector)
    registros = {n: Registro() for n in args.nodos.split(",")}
    parar = asyncio.Event()
    bucle = asyncio.get_running_loop()
    bucle.add_signal_handler(signal.SIGTERM, parar.set)
    tareas: list[asyncio.Task[Any]] = []
    for nodo_id, registro in registros.items():
        nodo = cluster.nodo(nodo_id)
        url = f"ws://{nodo.host}:{nodo.port}/sync"
        tareas.append(
            asyncio.create_task(observar(url, cluster.name, cluster.secret, args.id, nodo_id, vector, registro))
        )
    esperando = asyncio.create_task(parar.wait())
    hechas, _ = await asyncio.wait([esperando, *tareas], return_when=asyncio.FIRST_COMPLETED)
    for t in tareas:
        t.cancel()
    fallos = [t for t in hechas if t is not esperando and not t.cancelled() and t.exception()]
    for t in fallos:
        print(f"observer link failed: {t.exception()!r}", file=sys.stderr, flush=True)
    Path(args.salida).write_text(json.dumps({n: r.a_json() for n, r in registros.items()}))
    return 1 if fallos else 0


def main() -> int:
    a = argparse.ArgumentParser(prog="python -m bench.observador", description=__doc__.splitlines()[0])
    a.add_argument("--config", required=True)
    a.add_argument("--id", required=True, help="this observer's entry in the settings file")
    a.add_argument("--nodos", required=True, help="comma-separated node ids to watch")
    a.add_argument("--vector", required=True, help="JSON version vector the watched nodes already hold")
    a.add_argument("--salida", required=True, help="where to write the arrivals, as JSON")
    return correr(principal(a.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
