"""Replication lag under a fixed write rate: three nodes, writes on node 1.

``python -m bench.lag [--rate 100] [--n 1000] [--keep]``

1. Three node processes on loopback (SQLite files in a temp folder); a
   catalogue (``--clientes`` customers, ``--productos`` products with ample
   stock) created on node 1 and synced to all three.
2. The number of changes one order makes is read from node 1's vector
   before and after one order (``K``; 7 for a one-line order: six order
   fields and node 1's stock entry). A few more orders warm the path.
3. The observer process (:mod:`bench.observador`) links to nodes 2 and 3
   as a peer and timestamps every change they commit.
4. ``--n`` orders are POSTed to node 1 at ``--rate`` per second on an open
   loop (:mod:`bench.carga`); each answer carries the order's id, which the
   observer maps to the ``seq`` of its first change, so the write is the
   range ``seq .. seq + K - 1`` of node 1's changes and is visible on a node
   when the last of them has arrived from it.
5. Per write: ``visible − acknowledged`` (the replication lag, whose target is
   p99 at most 50 ms at 100 and at 500 writes/s) and ``visible − due`` (from the
   moment the schedule said to send it, so queueing anywhere counts); also
   the write's own latency (``acknowledged − due``), and the rates achieved.

Negative ``visible − acknowledged`` values are possible (node 2 committed the
write before node 1's answer reached the client) and are kept as measured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys
from collections import Counter
from typing import Any

from bench import comun as c
from bench.carga import ClienteHTTP, abrir_lazo
from tests.procesos import Cluster, Reserva, entorno_limpio

OBSERVADOR = "observador"
OBJETIVO_P99_MS = 50.0
TASA_OBJETIVO = 100.0
TASAS_CON_OBJETIVO = (100.0, 500.0)


async def medir(
    tasa: float, n: int, clientes: int, productos: int, conservar: bool, observar: str = "nodo2,nodo3"
) -> dict[str, Any]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    # The observer never listens: its entry in the settings only needs a port that no node has.
    obs = Reserva(1)
    cl: Cluster | None = None
    observador: asyncio.subprocess.Process | None = None
    try:
        cl = c.cluster(
            carpeta, 3, extra=[(OBSERVADOR, "127.0.0.1", obs.puertos[0], f"sqlite+aiosqlite:///{carpeta}/obs.db")]
        )
        n1, n2, n3 = cl["nodo1"], cl["nodo2"], cl["nodo3"]
        await cl.arrancar()
        ids_c, ids_p = await c.catalogo(n1, clientes, productos, stock=1_000_000_000)
        await c.esperar_vector([n2, n3], await c.vector(n1))

        cliente = ClienteHTTP(n1.host, n1.port)
        antes = (await c.vector(n1))["nodo1"]
        estado, _ = await cliente.post("/api/pedidos", c.cuerpo_pedido(0, ids_c, ids_p))
        assert estado == 201, estado
        k = (await c.vector(n1))["nodo1"] - antes
        for i in range(1, 20):
            await cliente.post("/api/pedidos", c.cuerpo_pedido(i, ids_c, ids_p))
        base = await c.vector(n1)
        await c.esperar_vector([n2, n3], base)

        salida = carpeta / "observador.json"
        observador = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.observador", "--config", str(cl.config), "--id", OBSERVADOR,
            "--nodos", observar, "--vector", json.dumps(base), "--salida", str(salida),
            env=entorno_limpio(), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert observador.stdout is not None
        listos: set[str] = set()
        while len(listos) < len(observar.split(",")):
            linea = (await asyncio.wait_for(observador.stdout.readline(), 15)).decode().strip()
            if not linea:
                raise RuntimeError("observer exited before linking")
            listos.add(linea.split()[-1])

        cpu0 = {nd.id: c.cpu_s(nd.pid) or 0.0 for nd in cl}
        carga = await abrir_lazo(cliente, "/api/pedidos", lambda i: c.cuerpo_pedido(i, ids_c, ids_p), n, tasa)
        cliente.cerrar()
        final = await c.vector(n1)
        await c.esperar_vector([n2, n3], final, plazo=120)
        cpu = {nd.id: (c.cpu_s(nd.pid) or 0.0) - cpu0[nd.id] for nd in cl}
        observador.send_signal(signal.SIGTERM)
        await asyncio.wait_for(observador.wait(), 15)
        vistos = json.loads(salida.read_text())
        rss = {nd.id: c.pico_rss_mb(nd.pid) for nd in cl}
    finally:
        if observador is not None and observador.returncode is None:
            observador.kill()
            await observador.wait()
        if cl is not None:
            await cl.cerrar()
        obs.liberar()
        limpiar()
    r = _cifras(carga, vistos, k, tasa, rss)
    r["cpu_s"] = cpu
    r["observados"] = observar.split(",")
    return r


def _cifras(carga: Any, vistos: dict[str, Any], k: int, tasa: float, rss: dict[str, float | None]) -> dict[str, Any]:
    ok = carga.correctos
    bien = {e.i for e in ok}
    fallos = Counter(e.error or f"HTTP {e.estado}: {str(e.cuerpo)[:120]}" for e in carga.envios if e.i not in bien)
    r: dict[str, Any] = {
        "fallos": dict(fallos.most_common(3)),
        "tasa_ofrecida": tasa,
        "n": len(carga.envios),
        "errores": len(carga.envios) - len(ok),
        "cambios_por_pedido": k,
        "tasa_enviada": carga.tasa_enviada,
        "tasa_completada": carga.tasa_completada,
        "retraso_envio_max_ms": carga.retraso_max * 1000,
        "conexiones": carga.conexiones,
        "escritura": c.resumen_ms([e.respondido - e.debido for e in ok]),
        "rss_mb": rss,
        "duracion_s": max(e.respondido for e in carga.envios) - carga.t0,
    }
    for nodo, datos in vistos.items():
        llegadas = {int(s): t for s, t in datos["llegadas"].get("nodo1", {}).items()}
        desde_ack, desde_debido, faltan = [], [], 0
        for e in ok:
            primero = datos["pedidos"].get(e.cuerpo["id"])
            tiempos = [llegadas.get(s) for s in range(primero, primero + k)] if primero else [None]
            if any(t is None for t in tiempos):
                faltan += 1
                continue
            visible = max(t for t in tiempos if t is not None)
            desde_ack.append(visible - e.respondido)
            desde_debido.append(visible - e.debido)
        r[nodo] = {
            "desde_ack": c.resumen_ms(desde_ack),
            "desde_debido": c.resumen_ms(desde_debido),
            "antes_del_ack": sum(1 for x in desde_ack if x < 0),
            "sin_ver": faltan,
        }
    return r


def filas(r: dict[str, Any]) -> list[c.Fila]:
    tasa = r["tasa_ofrecida"]
    objetivo = f"p99 <= {OBJETIVO_P99_MS:.0f} ms"
    f = [
        c.Fila(
            f"lag @{tasa:.0f}/s: offered / achieved send / completed rate (writes/s, n={r['n']})",
            f"{tasa:.0f} / {r['tasa_enviada']:.1f} / {r['tasa_completada']:.1f}",
            objetivo="completed = offered",
            cumple=r["tasa_completada"] >= 0.97 * tasa and r["errores"] == 0,
        ),
        c.Fila(
            f"lag @{tasa:.0f}/s: write latency on node 1, due→ack p50/p99/max",
            f"{c.ms(r['escritura']['p50'])} / {c.ms(r['escritura']['p99'])} / {c.ms(r['escritura']['max'])}",
        ),
    ]
    for nodo in r["observados"]:
        a, s = r[nodo]["desde_ack"], r[nodo]["desde_debido"]
        medido = tasa in TASAS_CON_OBJETIVO and not math.isnan(a["p99"])
        f.append(
            c.Fila(
                f"lag @{tasa:.0f}/s: ack→visible on {nodo} p50/p99/max",
                f"{c.ms(a['p50'])} / {c.ms(a['p99'])} / {c.ms(a['max'])}",
                objetivo=objetivo,
                cumple=(a["p99"] <= OBJETIVO_P99_MS and r[nodo]["sin_ver"] == 0) if medido else None,
            )
        )
        f.append(
            c.Fila(
                f"lag @{tasa:.0f}/s: due→visible on {nodo} p50/p99/max",
                f"{c.ms(s['p50'])} / {c.ms(s['p99'])} / {c.ms(s['max'])}",
            )
        )
    return f


def notas(r: dict[str, Any]) -> list[str]:
    rss = ", ".join(f"{k} {v:.0f} MiB" for k, v in r["rss_mb"].items() if v is not None)
    return [
        f"lag: {r['cambios_por_pedido']} changes per order; {r['errores']} failed writes; "
        f"worst send behind schedule {r['retraso_envio_max_ms']:.1f} ms; up to {r['conexiones']} connections open",
        "lag: writes visible before their ack reached the client: "
        + ", ".join(f"{nd} {r[nd]['antes_del_ack']}" for nd in r["observados"])
        + "; never seen: "
        + ", ".join(f"{nd} {r[nd]['sin_ver']}" for nd in r["observados"]),
        *(f"lag: failed write x{n}: {motivo}" for motivo, n in r["fallos"].items()),
        f"lag: peak RSS {rss}",
        "lag: CPU used from the first write to convergence: "
        + ", ".join(f"{k} {v:.1f} s ({v / r['n'] * 1000:.1f} ms/write)" for k, v in r["cpu_s"].items())
        + f" (load lasted {r['duracion_s']:.1f} s)",
    ]


def argumentos(a: argparse.ArgumentParser) -> None:
    a.add_argument("--rate", type=float, default=TASA_OBJETIVO, help="offered writes per second (default 100)")
    a.add_argument("--n", type=int, default=1000, help="orders written (default 1000)")
    a.add_argument("--clientes", type=int, default=20)
    a.add_argument("--productos", type=int, default=20)
    a.add_argument("--observar", default="nodo2,nodo3", help="nodes the observer links to (default nodo2,nodo3)")


def main() -> int:
    return c.principal(
        "bench.lag",
        "Replication lag under a fixed write rate.",
        argumentos,
        lambda x: medir(x.rate, x.n, x.clientes, x.productos, x.keep, x.observar),
        "replication lag",
        filas,
        notas,
    )


if __name__ == "__main__":
    raise SystemExit(main())
