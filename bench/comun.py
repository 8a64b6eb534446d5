"""What every benchmark shares: the machine, percentiles, the table, a cluster.

A benchmark returns a list of :class:`Fila` (figure, value, reference,
target, met?) and :func:`imprimir` prints them under a header naming the
machine, the date and the exact command, so a figure never travels without
what produced it.

The cluster is ``tests.procesos.Cluster`` (real ``python -m servidor``
processes, SQLite files, loopback ports held for them until
``Cluster.cerrar``); :func:`cluster` adds extra entries to its settings file
for processes that are not nodes but must be let in as peers (the lag
observer).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import shlex
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.procesos import Cluster, ProcesoNodo, escribir_settings, esperar

T = TypeVar("T")


# --- the machine -----------------------------------------------------------


def maquina() -> dict[str, str]:
    """nproc, memory, CPU model, Python and SQLite versions, from /proc where Linux has it."""
    memoria = "?"
    with _sin_error():
        for linea in Path("/proc/meminfo").read_text().splitlines():
            if linea.startswith("MemTotal:"):
                memoria = f"{int(linea.split()[1]) / 1024 / 1024:.1f} GiB"
    cpu = platform.processor() or "?"
    with _sin_error():
        for linea in Path("/proc/cpuinfo").read_text().splitlines():
            if linea.startswith("model name"):
                cpu = linea.split(":", 1)[1].strip()
                break
    carga = "?"
    with _sin_error():
        carga = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return {
        "carga": carga,
        "nproc": str(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()),
        "memoria": memoria,
        "cpu": cpu,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "fecha": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def orden_exacta() -> str:
    """The command as typed, from the repository root."""
    return shlex.join([os.path.relpath(sys.executable), "-m", _modulo(), *sys.argv[1:]])


def _modulo() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    nombre = spec.name if spec is not None else "bench"
    return nombre.removesuffix(".__main__")


@contextmanager
def _sin_error() -> Any:
    try:
        yield
    except OSError:
        pass


def pico_rss_mb(pid: int) -> float | None:
    """Peak resident set (``VmHWM``) of a live process, in MiB."""
    with _sin_error():
        for linea in Path(f"/proc/{pid}/status").read_text().splitlines():
            if linea.startswith("VmHWM:"):
                return int(linea.split()[1]) / 1024
    return None


def cpu_s(pid: int) -> float | None:
    """CPU time (user + system) a live process has used so far, in seconds."""
    with _sin_error():
        campos = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(campos[11]) + int(campos[12])) / os.sysconf("SC_CLK_TCK")
    return None


# --- figures ---------------------------------------------------------------


def percentil(valores: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    orden = sorted(valores)
    k = max(0, math.ceil(p / 100 * len(orden)) - 1)
    return orden[k]


def resumen_ms(segundos: Sequence[float]) -> dict[str, float]:
    if not segundos:
        return {"n": 0, "p50": math.nan, "p99": math.nan, "max": math.nan}
    return {
        "n": len(segundos),
        "p50": percentil(segundos, 50) * 1000,
        "p99": percentil(segundos, 99) * 1000,
        "max": max(segundos) * 1000,
    }


@dataclass(frozen=True)
class Fila:
    figura: str
    valor: str
    referencia: str = ""
    objetivo: str = ""
    cumple: bool | None = None

    @property
    def veredicto(self) -> str:
        return "" if self.cumple is None else ("yes" if self.cumple else "NO")


def imprimir(filas: Iterable[Fila], titulo: str, notas: Sequence[str] = ()) -> None:
    """The header (machine, date, command), the table, then notes."""
    m = maquina()
    print(f"\n== {titulo} ==")
    print(f"machine: nproc={m['nproc']}, memory {m['memoria']}, CPU {m['cpu']}")
    print(f"python {m['python']}, SQLite {m['sqlite']}; date {m['fecha']}; load average now {m['carga']}")
    print(f"command: {orden_exacta()}")
    cabecera = ("figure", "value", "reference", "target", "met?")
    datos = [(f.figura, f.valor, f.referencia, f.objetivo, f.veredicto) for f in filas]
    anchos = [max(len(str(x)) for x in col) for col in zip(cabecera, *datos, strict=False)]

    def linea(celdas: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(a) for c, a in zip(celdas, anchos, strict=True)) + " |"

    print(linea(cabecera))
    print("|" + "|".join("-" * (a + 2) for a in anchos) + "|")
    for d in datos:
        print(linea(d))
    for nota in notas:
        print(f"  {nota}")
    sys.stdout.flush()


def principal(
    modulo: str,
    descripcion: str,
    argumentos: Callable[[argparse.ArgumentParser], None],
    medir: Callable[[argparse.Namespace], Awaitable[dict[str, Any]]],
    titulo: str,
    filas: Callable[[dict[str, Any]], Iterable[Fila]],
    notas: Callable[[dict[str, Any]], Sequence[str]] = lambda _: (),
) -> int:
    """The command line of one benchmark: its own arguments, ``--keep`` and ``--json``; one run; the table."""
    a = argparse.ArgumentParser(prog=f"python -m {modulo}", description=descripcion)
    argumentos(a)
    a.add_argument("--keep", action="store_true", help="keep the temp folders (databases, node logs)")
    a.add_argument("--json", metavar="PATH", help="also write the raw figures there")
    args = a.parse_args()
    r = correr(medir(args))
    imprimir(filas(r), titulo, notas(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=1))
    return 0


def ms(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f} ms"


# --- a cluster -------------------------------------------------------------


def carpeta_temporal(conservar: bool) -> tuple[Path, Callable[[], None]]:
    """A fresh folder and how to drop it (a no-op with ``conservar``)."""
    if conservar:
        ruta = Path(tempfile.mkdtemp(prefix="pedidos-bench-"))
        return ruta, lambda: print(f"  kept: {ruta}")
    tmp = tempfile.TemporaryDirectory(prefix="pedidos-bench-")
    return Path(tmp.name), tmp.cleanup


def cluster(carpeta: Path, n: int = 3, extra: Sequence[tuple[str, str, int, str]] = ()) -> Cluster:
    """``n`` nodes, not started; ``extra`` entries are added to the settings only."""
    c = Cluster(carpeta, n, nombre="pedidos-bench", secreto="secreto-de-bench")
    if extra:
        escribir_settings(c.config, [*c.filas, *extra], c.nombre, c.secreto, c.max_clock_drift_ms)
    return c


async def salud(nodo: ProcesoNodo, http: httpx.AsyncClient | None = None) -> dict[str, Any]:
    if http is None:
        async with nodo.cliente() as propio:
            return await salud(nodo, propio)
    r = await http.get(f"{nodo.url}/api/health")
    r.raise_for_status()
    datos: dict[str, Any] = r.json()
    return datos


async def vector(nodo: ProcesoNodo) -> dict[str, int]:
    return dict((await salud(nodo))["vector"])


async def esperar_vector(nodos: Sequence[ProcesoNodo], objetivo: dict[str, int], plazo: float = 60.0) -> None:
    """Until every node's vector has reached ``objetivo`` (polled every 0.1 s)."""

    async def alcanzado() -> bool:
        for n in nodos:
            v = await vector(n)
            if any(v.get(o, 0) < s for o, s in objetivo.items()):
                return False
        return True

    await esperar(alcanzado, plazo, intervalo=0.1, que=f"vectors reach {objetivo}", ignorar=(httpx.TransportError,))


async def catalogo(nodo: ProcesoNodo, clientes: int, productos: int, stock: int) -> tuple[list[str], list[str]]:
    """Create ``clientes`` and ``productos`` (each with ``stock`` units) on ``nodo``."""
    async with nodo.cliente(timeout=30.0) as http:

        async def crear(ruta: str, cuerpo: dict[str, Any]) -> str:
            r = await http.post(ruta, json=cuerpo)
            if r.status_code != 201:
                raise RuntimeError(f"POST {ruta}: {r.status_code} {r.text}")
            return str(r.json()["id"])

        ids_c = [
            await crear("/api/clientes", {"nombre": f"Cliente {i}", "email": f"cliente{i}@example.com"})
            for i in range(clientes)
        ]
        ids_p = [
            await crear("/api/productos", {"nombre": f"Producto {i}", "precio": f"{1 + i % 50}.25", "stock": stock})
            for i in range(productos)
        ]
    return ids_c, ids_p


def cuerpo_pedido(i: int, clientes: Sequence[str], productos: Sequence[str]) -> dict[str, Any]:
    """The ``i``-th order of a run: one line, one unit, customers and products round robin."""
    return {
        "cliente_id": clientes[i % len(clientes)],
        "items": [{"producto_id": productos[i % len(productos)], "cantidad": 1}],
    }


def correr(corrutina: Awaitable[T]) -> T:
    """Run on uvloop, as uvicorn runs the nodes, when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(corrutina)  # type: ignore[arg-type]
    return uvloop.run(corrutina)  # type: ignore[arg-type]


def ahora() -> float:
    """CLOCK_MONOTONIC in seconds: the same clock in every process of this machine."""
    return time.monotonic_ns() / 1e9


def a_json(datos: Any) -> str:
    return json.dumps(datos, separators=(",", ":"))
