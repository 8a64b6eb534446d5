"""A node broken on purpose, to prove that the checker sees what it must.

Test-only entry point::

    python -m tests.caos.sabotaje NOMBRE --config settings.toml --node nodo2

patches one function of the node, then runs ``servidor``'s command line in
this same process. Production code carries no switch for any of this; a
test puts the command in ``ProcesoNodo.programa`` (see :func:`programa`).

Sabotages (:data:`SABOTAJES`):

- ``perder_cambio``: the first order created elsewhere that reaches this
  node is merged without the change that sets its creation time, so the
  version vector moves past a change that is in neither the log nor the
  tables — a dropped change.
- ``aplicar_dos_veces``: a stock change merged from a peer moves the
  product's stock twice, as if it had been applied twice.
- ``vender_sin_stock``: the check of a new order reads every product with a
  million more units than it has, and this node with rights to all of them,
  so orders beyond the stock are accepted and stock goes negative.
- ``disco_lleno``: while a file ``ID.disco-lleno`` (:func:`marca_disco_lleno`)
  exists in the node's working folder, every commit of its SQLite writer
  fails as on a full disk (``sqlite3.OperationalError: database or disk is
  full``, ``SQLITE_FULL``) and is rolled back; removing the file frees the
  disk. The real disk is never filled.

The flipped LWW tie-break needs two writes with equal stamps, which real
clocks make too rare to provoke; its test patches ``sync.reglas.gana`` in
process instead (``tests/integration/test_caos_sabotaje.py``).
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Connection

from sync.cambios import Cambio


def _nodo(argv: Sequence[str]) -> str:
    return argv[list(argv).index("--node") + 1]


def perder_cambio(nodo: str) -> None:
    from servidor.almacen import almacen

    original = almacen.aplicar
    perdido: list[Cambio] = []

    def aplicar(conn: Connection, lote: Sequence[Cambio], *resto: Any) -> None:
        if not perdido:
            for c in lote:
                if c.origen != nodo and c.entidad == "pedido" and c.campo == "creado_en":
                    perdido.append(c)
                    lote = [x for x in lote if x is not c]
                    break
        original(conn, lote, *resto)

    almacen.aplicar = aplicar  # type: ignore[assignment]


def aplicar_dos_veces(nodo: str) -> None:
    from servidor.almacen import aplicar as modulo

    original = modulo._aplicar_contadores

    def contadores(sql: Any, lote: Sequence[Cambio]) -> dict[str, int]:
        deltas = original(sql, lote)
        if any(c.origen != nodo for c in lote):
            return {pid: 2 * d for pid, d in deltas.items()}
        return deltas

    modulo._aplicar_contadores = contadores


def vender_sin_stock(nodo: str) -> None:
    from servidor.almacen import consultas
    from servidor.dominio import operaciones

    class Inflado:
        def __getattr__(self, nombre: str) -> Any:
            return getattr(consultas, nombre)

        @staticmethod
        def productos_por_ids(conn: Connection, ids: Sequence[str], **kw: Any) -> dict[str, dict[str, Any]]:
            reales = consultas.productos_por_ids(conn, ids, **kw)
            inflados = {k: {**v, "stock": v["stock"] + 1_000_000} for k, v in reales.items()}
            for v in inflados.values():
                if "derechos" in v:
                    v["derechos"] = {**v["derechos"], nodo: v["derechos"].get(nodo, 0) + 1_000_000}
            return inflados

        @staticmethod
        def derechos_propios(conn: Connection, productos: Sequence[str], de: str) -> dict[str, int]:
            reales = consultas.derechos_propios(conn, productos, de)
            return {p: reales.get(p, 0) + 1_000_000 for p in productos}

    operaciones.consultas = Inflado()  # type: ignore[assignment]


def marca_disco_lleno(carpeta: Path, nodo: str) -> Path:
    """The file whose presence fills the disk of node ``nodo`` run in ``carpeta`` (see ``disco_lleno``)."""
    return carpeta / f"{nodo}.disco-lleno"


def disco_lleno(nodo: str) -> None:
    from servidor.almacen import motor

    abrir_original = motor._abrir_sqlite
    marca = marca_disco_lleno(Path.cwd(), nodo)

    def abrir(url: str) -> motor.Motores:
        motores = abrir_original(url)
        assert motores.escritor is not None
        dialecto = motores.escritor.dialect
        confirmar = dialecto.do_commit

        def do_commit(dbapi: Any) -> None:
            if marca.exists():
                # What the driver raises when the disk is full, codes and all.
                error = sqlite3.OperationalError("database or disk is full")
                error.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
                error.sqlite_errorname = "SQLITE_FULL"  # type: ignore[attr-defined]
                raise error
            confirmar(dbapi)

        dialecto.do_commit = do_commit  # type: ignore[method-assign,assignment]
        return motores

    motor._abrir_sqlite = abrir


SABOTAJES: dict[str, Callable[[str], None]] = {
    "perder_cambio": perder_cambio,
    "aplicar_dos_veces": aplicar_dos_veces,
    "vender_sin_stock": vender_sin_stock,
    "disco_lleno": disco_lleno,
}


def programa(nombre: str) -> list[str]:
    """The command that starts a node with sabotage ``nombre`` (for ``ProcesoNodo.programa``)."""
    assert nombre in SABOTAJES, f"unknown sabotage {nombre!r}"
    return [sys.executable, "-m", "tests.caos.sabotaje", nombre]


def main(argv: Sequence[str]) -> int:
    nombre, resto = argv[0], list(argv[1:])
    SABOTAJES[nombre](_nodo(resto))
    from servidor.cli import main as servidor

    return servidor(resto)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
