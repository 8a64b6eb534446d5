"""Fault schedules: drawn from a seed, replayable, shaped as their kind says."""

from __future__ import annotations

from collections import defaultdict

from tests.caos.nemesis import PROCESOS, Falta, generar


def vistos(falta: Falta, ids: list[str]) -> dict[str, set[str]]:
    """Per node, the peers it still reaches both ways while ``falta`` is on."""
    cortados = set(falta.enlaces)
    alcanza: dict[str, set[str]] = defaultdict(set)
    for a in ids:
        for b in ids:
            if a != b and (a, b) not in cortados and (b, a) not in cortados:
                alcanza[a].add(b)
    return alcanza


def test_a_plan_is_a_function_of_its_arguments_and_its_replay_command_gives_it_back() -> None:
    for semilla, tipos in [(106, ("perdida", "matar")), (104, ("anillo", "reloj_leve")), (7, ())]:
        plan = generar(semilla, 3.0, tipos)
        assert generar(semilla, 3.0, tipos) == plan
        assert generar(semilla, 3.0, tipos, nodos=plan.nodos) == plan
        assert f"--semilla {semilla} --duracion 3 --nodos {plan.nodos}" in plan.repeticion()


def test_in_a_ring_every_node_sees_a_different_majority() -> None:
    plan = generar(3, 3.0, ("anillo",), nodos=5)
    anillo = next(f for f in plan.faltas if f.tipo == "anillo")
    alcanza = vistos(anillo, plan.ids)
    mayorias = {frozenset(alcanza[n] | {n}) for n in plan.ids}
    assert all(len(alcanza[n]) == 2 for n in plan.ids)
    assert len(mayorias) == len(plan.ids)


def test_a_bridge_sees_both_sides_and_the_sides_do_not_see_each_other() -> None:
    plan = generar(5, 3.0, ("puente",), nodos=4)
    puente = next(f for f in plan.faltas if f.tipo == "puente")
    alcanza = vistos(puente, plan.ids)
    (centro,) = puente.nodos
    assert alcanza[centro] == set(plan.ids) - {centro}
    assert all(alcanza[n] != set(plan.ids) - {n} for n in plan.ids if n != centro)


def test_a_node_never_suffers_two_process_faults_at_once() -> None:
    plan = generar(11, 120.0, ("matar", "pausar", "matar", "pausar"), nodos=3)
    por_nodo: dict[str, list[Falta]] = defaultdict(list)
    for f in plan.faltas:
        if f.tipo in PROCESOS:
            por_nodo[f.nodos[0]].append(f)
    for faltas in por_nodo.values():
        faltas.sort(key=lambda f: f.inicio)
        assert all(a.fin < b.inicio for a, b in zip(faltas, faltas[1:], strict=False))
