"""``python -m bench.tasa``: how many orders per second one node takes, next to a bare endpoint.

The load comes from Debian's ``wrk`` (compiled C, one thread, ``C``
keep-alive connections, for ``D`` seconds) running ``bench/pedidos.lua``,
which POSTs one-unit orders rotating over 20 clients and 20 products. Four
runs, each after a short warm-up:

1. the bare endpoint (``bench.desnudo``: Starlette + uvicorn echoing the
   JSON body): the ceiling of the HTTP layer on this machine;
2. REST ``POST /api/pedidos`` on a node with no peers;
3. GraphQL ``crearPedido`` on that node;
4. REST on a node of three, its two peers linked and merging every order.

The generator's headroom is shown by its own CPU time (a fraction of one
core) next to the rate it drove against the bare endpoint.

::

    .venv/bin/python -m bench.tasa [--duracion 10] [--conexiones 16] [--keep] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import comun as c
from servidor.acceso import Rol
from tests.credenciales import TOKENS
from tests.procesos import ProcesoNodo, Reserva, entorno_limpio, esperar

LUA = Path(__file__).with_name("pedidos.lua")
UNIDADES = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _cpu_hijos() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _ms(texto: str) -> float:
    numero, unidad = re.fullmatch(r"([\d.]+)(us|ms|s)", texto).groups()  # type: ignore[union-attr]
    return float(numero) * UNIDADES[unidad]


async def wrk(url: str, modo: str, ids: tuple[list[str], list[str]], duracion: int, conexiones: int) -> dict[str, Any]:
    """One wrk run; its rate, latency percentiles, bad replies and its own CPU time."""
    entorno = {
        **os.environ,
        "BENCH_MODO": modo,
        "BENCH_CLIENTES": ",".join(ids[0]),
        "BENCH_PRODUCTOS": ",".join(ids[1]),
        "BENCH_TOKEN": TOKENS[Rol.ADMIN],
    }
    antes = _cpu_hijos()
    proceso = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{conexiones}", f"-d{duracion}s", "--latency", "-s", str(LUA), url,
        env=entorno, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    salida = (await proceso.communicate())[0].decode()
    cpu = _cpu_hijos() - antes
    if proceso.returncode != 0 or "Requests/sec" not in salida:
        raise RuntimeError(f"wrk failed:\n{salida}")
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(50|99)%\s+(\S+)$", salida, re.M)}
    total = int(re.search(r"(\d+) requests in", salida).group(1))  # type: ignore[union-attr]
    malas = int(re.search(r"BENCH malas=(\d+)", salida).group(1))  # type: ignore[union-attr]
    errores = re.search(r"Socket errors: (.*)", salida)
    return {
        "por_s": float(re.search(r"Requests/sec:\s+([\d.]+)", salida).group(1)),  # type: ignore[union-attr]
        "p50_ms": pct["50"],
        "p99_ms": pct["99"],
        "peticiones": total,
        "malas": malas,
        "errores_socket": errores.group(1) if errores else "",
        "cpu_generador": cpu / duracion,
    }


async def _medir_nodo(
    nodos: int, modos: list[str], duracion: int, conexiones: int, conservar: bool
) -> dict[str, dict[str, Any]]:
    carpeta, limpiar = c.carpeta_temporal(conservar)
    cl = c.cluster(carpeta, nodos)
    try:
        await cl.arrancar()
        uno = cl["nodo1"]
        ids = await c.catalogo(uno, 20, 20, stock=1_000_000_000)
        await c.esperar_vector(list(cl), await c.vector(uno))
        r = {}
        for modo in modos:
            url = f"{uno.url}/graphql" if modo == "graphql" else f"{uno.url}/api/pedidos"
            await wrk(url, modo, ids, 2, conexiones)  # warm-up
            await c.esperar_vector(list(cl), await c.vector(uno), plazo=300)
            cpu0 = {n.id: c.cpu_s(n.pid) or 0.0 for n in cl}
            r[modo] = await wrk(url, modo, ids, duracion, conexiones)
            await c.esperar_vector(list(cl), await c.vector(uno), plazo=300)  # the peers took every order
            pedidos = max(1, r[modo]["peticiones"])
            r[modo]["cpu_ms_por_pedido"] = {n.id: ((c.cpu_s(n.pid) or 0.0) - cpu0[n.id]) * 1000 / pedidos for n in cl}
            r[modo]["cpu_nodo_ms_por_pedido"] = r[modo]["cpu_ms_por_pedido"][uno.id]
        return r
    finally:
        await cl.cerrar()
        limpiar()


async def _medir_desnudo(duracion: int, conexiones: int) -> dict[str, Any]:
    with Reserva(1) as reserva:
        puerto = reserva.puertos[0]
        proceso = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.desnudo", "--port", str(puerto), env=entorno_limpio()
        )
        nodo = ProcesoNodo("desnudo", "127.0.0.1", puerto, "", Path("."), {})
        try:
            async with nodo.cliente() as http:

                async def responde() -> bool:
                    try:
                        return (await http.post("/eco", json={})).status_code == 201
                    except Exception:  # noqa: BLE001 - not up yet
                        return False

                await esperar(responde, 30, que="the bare endpoint answers")
            ids = (["cliente"], ["producto"])
            await wrk(f"http://127.0.0.1:{puerto}/eco", "eco", ids, 2, conexiones)
            return await wrk(f"http://127.0.0.1:{puerto}/eco", "eco", ids, duracion, conexiones)
        finally:
            proceso.terminate()
            await proceso.wait()


async def medir(duracion: int, conexiones: int, conservar: bool) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("bench.tasa needs wrk: apt-get install -y wrk")
    return {
        "duracion_s": duracion,
        "conexiones": conexiones,
        "desnudo": await _medir_desnudo(duracion, conexiones),
        "solo": await _medir_nodo(1, ["rest", "graphql"], duracion, conexiones, conservar),
        "con_pares": await _medir_nodo(3, ["rest"], duracion, conexiones, conservar),
    }


def _valor(x: dict[str, Any]) -> str:
    return f"{x['por_s']:,.0f}/s (p50 {c.ms(x['p50_ms'])}, p99 {c.ms(x['p99_ms'])})"


def filas(r: dict[str, Any]) -> list[c.Fila]:
    d, rest, gql, pares = r["desnudo"], r["solo"]["rest"], r["solo"]["graphql"], r["con_pares"]["rest"]
    return [
        c.Fila("rate: bare Starlette JSON endpoint (the HTTP ceiling)", _valor(d)),
        c.Fila(
            "rate: REST order creation, no peers",
            _valor(rest),
            referencia=f"{rest['por_s'] / d['por_s']:.1%} of bare",
            objetivo=">= 10% of bare",
            cumple=rest["por_s"] >= 0.10 * d["por_s"] and rest["malas"] == 0,
        ),
        c.Fila(
            "rate: REST order creation, two peers linked",
            _valor(pares),
            referencia=f"{pares['por_s'] / rest['por_s']:.0%} of no peers",
            objetivo=">= 80% of no peers",
            cumple=pares["por_s"] >= 0.80 * rest["por_s"] and pares["malas"] == 0,
        ),
        c.Fila(
            "rate: GraphQL order creation, no peers",
            _valor(gql),
            referencia=f"{gql['por_s'] / rest['por_s']:.0%} of REST",
            objetivo=">= 50% of REST",
            cumple=gql["por_s"] >= 0.50 * rest["por_s"] and gql["malas"] == 0,
        ),
    ]


def notas(r: dict[str, Any]) -> list[str]:
    corridas = {
        "bare": r["desnudo"],
        "REST": r["solo"]["rest"],
        "GraphQL": r["solo"]["graphql"],
        "REST+peers": r["con_pares"]["rest"],
    }
    return [
        f"rate: wrk -t1 -c{r['conexiones']} -d{r['duracion_s']}s with bench/pedidos.lua; generator CPU "
        + ", ".join(f"{k} {x['cpu_generador']:.0%} of a core" for k, x in corridas.items()),
        "rate: bad replies (non-2xx or GraphQL errors): "
        + ", ".join(f"{k} {x['malas']}" for k, x in corridas.items())
        + "; socket errors: "
        + (", ".join(f"{k} {x['errores_socket']}" for k, x in corridas.items() if x["errores_socket"]) or "none"),
        "rate: node CPU per order: "
        + ", ".join(f"{k} {x['cpu_nodo_ms_por_pedido']:.2f} ms" for k, x in corridas.items() if k != "bare"),
        _techo(r["con_pares"]["rest"]),
    ]


def _techo(x: dict[str, Any]) -> str:
    """What the three nodes together spent per order, and the rate that allows on this machine's cores."""
    cpu = x.get("cpu_ms_por_pedido", {})
    suma = sum(cpu.values())
    nucleos = os.cpu_count() or 1
    return (
        "rate: with peers, CPU per order on each node (until every node held every order): "
        + ", ".join(f"{n} {v:.2f} ms" for n, v in sorted(cpu.items()))
        + f"; {suma:.2f} ms in all, so {nucleos} cores allow at most {nucleos * 1000 / max(suma, 1e-9):,.0f} orders/s"
    )


def main() -> int:
    def argumentos(a: argparse.ArgumentParser) -> None:
        a.add_argument("--duracion", type=int, default=10, help="seconds per measured run (default 10)")
        a.add_argument("--conexiones", type=int, default=16, help="wrk keep-alive connections (default 16)")

    return c.principal(
        "bench.tasa",
        "Orders per second on one node.",
        argumentos,
        lambda x: medir(x.duracion, x.conexiones, x.keep),
        "order creation rate",
        filas,
        notas,
    )


if __name__ == "__main__":
    raise SystemExit(main())
