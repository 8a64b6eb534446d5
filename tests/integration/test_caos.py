"""Partition and heal: randomized fault schedules against real nodes, then the checker.

Every schedule is drawn from its seed (``tests/caos/nemesis.py``) with two
kinds of fault it must contain, so that the list below covers every kind
more than once, plus one more drawn at random; a few seconds of faults under
a random workload, then heal and the checker (``tests/caos/verificador.py``).
A failing schedule prints its plan, the table and the command that replays it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.caos.corrida import correr
from tests.caos.nemesis import RELOJES, TIPOS, generar
from tests.procesos import Cluster, FabricaClusters
from tests.proxy import Proxies

DURACION_S = 3.0


def _planes(cuantos: int, primera_semilla: int) -> list[tuple[int, tuple[str, ...]]]:
    """``cuantos`` (seed, kinds) pairs; the kinds walk TIPOS twice over, at most one clock each."""
    planes: list[tuple[int, tuple[str, ...]]] = []
    for i in range(cuantos):
        a, b = TIPOS[i % len(TIPOS)], TIPOS[(i * 5 + 7 + i // len(TIPOS)) % len(TIPOS)]
        tipos = (a,) if a == b or (a in RELOJES and b in RELOJES) else (a, b)
        planes.append((primera_semilla + i, tipos))
    return planes


SQLITE = _planes(22, 101)
# Shorter on MariaDB: the kinds that touch the store most (restarts, pauses, merges after a long cut).
MARIADB = [
    (901, ("aislar", "matar")),
    (902, ("puente", "pausar")),
    (903, ("anillo", "reloj_lejano")),
    (904, ("perdida", "mitades")),
]


def test_the_schedules_of_the_suite_cover_every_kind_of_fault() -> None:
    assert {t for _, tipos in SQLITE for t in tipos} == set(TIPOS)
    planes = [generar(s, DURACION_S, tipos) for s, tipos in SQLITE]
    assert {f.tipo for p in planes for f in p.faltas} == set(TIPOS)


def _id(plan: tuple[int, tuple[str, ...]]) -> str:
    return f"{plan[0]}-{'+'.join(plan[1])}"


async def _correr(
    clusters: FabricaClusters, proxies: Proxies, carpeta: Path, backend: str, semilla: int, tipos: tuple[str, ...]
) -> None:
    plan = generar(semilla, DURACION_S, tipos, backend=backend)

    async def crear(n: int) -> Cluster:
        return await clusters(n, backend=backend, arrancar=False)

    resultado = await correr(plan, crear, proxies, carpeta)
    print(resultado.texto())
    assert resultado.informe.valido, resultado.texto()


@pytest.mark.parametrize(("semilla", "tipos"), SQLITE, ids=[_id(p) for p in SQLITE])
async def test_a_cluster_under_faults_heals_to_one_state_with_no_acknowledged_write_lost(
    clusters: FabricaClusters, proxies: Proxies, tmp_path: Path, semilla: int, tipos: tuple[str, ...]
) -> None:
    await _correr(clusters, proxies, tmp_path, "sqlite", semilla, tipos)


@pytest.mark.mariadb
@pytest.mark.parametrize(("semilla", "tipos"), MARIADB, ids=[_id(p) for p in MARIADB])
async def test_a_mariadb_cluster_under_faults_heals_to_one_state_with_no_acknowledged_write_lost(
    clusters: FabricaClusters, proxies: Proxies, tmp_path: Path, semilla: int, tipos: tuple[str, ...]
) -> None:
    await _correr(clusters, proxies, tmp_path, "mariadb", semilla, tipos)
