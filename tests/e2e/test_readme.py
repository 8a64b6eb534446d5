"""The README's curl walkthrough works verbatim against the shipped settings.toml.

The cluster of ``settings.toml`` (ports 5000-5002) is started from a copy of
the file in a temp folder, so its SQLite files land there, and the
walkthrough block of the README runs in bash, unedited.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servidor.ajustes import cargar_cluster
from servidor.dominio.ids import id_de_clave
from tests.procesos import RAIZ, ProcesoNodo, entorno_limpio


def bloque_del_readme() -> str:
    texto = (RAIZ / "README.md").read_text(encoding="utf-8")
    hallado = re.search(r"<!-- walkthrough -->\s*```bash\n(.*?)```\s*<!-- /walkthrough -->", texto, re.S)
    assert hallado, "README.md has no walkthrough block"
    return hallado.group(1)


@pytest.fixture
async def cluster_por_defecto(tmp_path: Path) -> AsyncIterator[list[ProcesoNodo]]:
    config = tmp_path / "settings.toml"
    shutil.copy(RAIZ / "settings.toml", config)
    cluster = cargar_cluster(config, {})
    nodos = [ProcesoNodo(n.id, n.host, n.port, n.database, config, entorno_limpio()) for n in cluster.nodes]
    try:
        for nodo in nodos:
            nodo.iniciar()
        await asyncio.gather(*(nodo.esperar_listo() for nodo in nodos))
        yield nodos
    finally:
        for nodo in nodos:
            if nodo.vivo:
                await nodo.parar()


async def test_the_readme_walkthrough_runs_verbatim_against_the_default_cluster(
    cluster_por_defecto: list[ProcesoNodo],
) -> None:
    guion = "set -euo pipefail\n" + bloque_del_readme()
    proceso = await asyncio.create_subprocess_exec("bash", "-c", guion, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    salida, errores = await asyncio.wait_for(proceso.communicate(), 60)
    texto = salida.decode()
    assert proceso.returncode == 0, f"walkthrough failed:\n{texto}\n{errores.decode()}"
    lineas = [linea.strip() for linea in texto.splitlines() if linea.strip()]
    assert lineas[-11:-2] == [
        "7",
        '"confirmado"',
        '"cancelado"',
        "10",
        '"cancelado"',
        '"TRANSICION_INVALIDA"',
        '"pendiente"',
        "2",
        '"agotado"',
    ], texto
    assert lineas[-2:] == [id_de_clave("pedido", "pedido-ana-0001"), "idempotent-replayed: true"], texto
