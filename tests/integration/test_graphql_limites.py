"""GraphQL limits (depth, tokens, aliases, fields) and the parse/validation caches shared by requests."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
import strawberry.schema.schema
from graphql import get_introspection_query
from graphql.validation import OverlappingFieldsCanBeMergedRule
from starlette.applications import Starlette

from esquema import Limites, crear_esquema
from servidor.acceso import Rol
from tests.credenciales import cabecera
from tests.integration.ayudas import gql

PROFUNDO = "{ pedidos { items { producto { nombre } } } }"  # depth 3 (root fields are 0), the deepest there is


async def test_a_query_deeper_than_the_limit_is_refused_before_running() -> None:
    # The schema has no cycles, so the default limit (10) cannot be reached: use a lower one.
    # No context is given: a refused document never reaches a resolver.
    esquema = crear_esquema(Limites(profundidad=2))

    refusado = await esquema.execute(PROFUNDO)

    assert refusado.data is None
    [error] = refusado.errors or []
    assert "exceeds maximum operation depth of 2" in error.message
    assert error.extensions == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}


async def test_the_deepest_query_of_the_schema_is_within_the_default_limit(http: httpx.AsyncClient) -> None:
    assert await gql(http, PROFUNDO) == {"data": {"pedidos": []}}


async def test_graphiql_introspection_is_not_refused_by_the_limits(http: httpx.AsyncClient) -> None:
    cuerpo = await gql(http, get_introspection_query(descriptions=True))
    assert "errors" not in cuerpo
    assert cuerpo["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_more_aliases_than_the_limit_are_refused(http: httpx.AsyncClient) -> None:
    def con_alias(n: int) -> str:
        return "{ " + " ".join(f"a{i}: nodo {{ id }}" for i in range(n)) + " }"

    admitido = await gql(http, con_alias(Limites().alias))
    refusado = await gql(http, con_alias(Limites().alias + 1))

    assert "errors" not in admitido and len(admitido["data"]) == Limites().alias
    assert refusado["data"] is None
    [error] = refusado["errors"]
    assert error["message"] == f"{Limites().alias + 1} aliases found. Allowed: {Limites().alias}"
    assert error["extensions"] == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}


async def test_a_document_over_the_token_limit_is_refused_without_parsing_it_all(http: httpx.AsyncClient) -> None:
    consulta = "{ " + "nodo { id } " * (Limites().tokens // 4 + 1) + "}"
    cuerpo = await gql(http, consulta)
    assert cuerpo["data"] is None
    [error] = cuerpo["errors"]
    assert f"more than {Limites().tokens} tokens" in error["message"]
    assert error["extensions"] == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}


async def test_the_same_document_is_validated_once_however_many_requests_send_it(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Strawberry's validation cache wraps ``validate_document``, which calls this ``validate``
    # on a miss. The cache is keyed by the schema, so this test's app starts cold. Were the
    # depth or alias rules rebuilt per request, every request would miss.
    llamadas = 0
    original = strawberry.schema.schema.validate

    def espia(*args: Any, **kwargs: Any) -> Any:
        nonlocal llamadas
        llamadas += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(strawberry.schema.schema, "validate", espia)
    for _ in range(3):
        assert await gql(http, "{ nodo { id } }") == {"data": {"nodo": {"id": "nodo1"}}}
    for _ in range(3):
        assert (await gql(http, "{ nodo { nada } }"))["errors"][0]["extensions"] == {
            "codigo": "VALIDACION",
            "code": "GRAPHQL_VALIDATION_FAILED",
        }

    assert llamadas == 2


def fragmentos_encadenados(niveles: int, spreads: int) -> str:
    """``query { ...F1 }``, each fragment spreading the next ``spreads`` times, the last selecting one field."""
    partes = ["query { ...F1 }"]
    for i in range(1, niveles):
        partes.append(f"fragment F{i} on Query {{ " + f"...F{i + 1} " * spreads + "}")
    partes.append(f"fragment F{niveles} on Query {{ nodo {{ id }} }}")
    return " ".join(partes)


async def test_fragments_doubling_at_each_level_are_refused_at_once_for_the_fields_they_expand_to() -> None:
    # 25 levels are 2**24 copies of the last fragment: Strawberry's limiters walked every one of them.
    esquema = crear_esquema()
    documento = fragmentos_encadenados(25, 2)
    assert len(documento) < 1000

    inicio = time.perf_counter()
    refusado = await esquema.execute(documento)
    segundos = time.perf_counter() - inicio

    assert segundos < 2, f"took {segundos:.1f} s"  # generous: only an exponential walk takes longer
    [error] = refusado.errors or []
    assert error.message == f"{2**24 * 2} fields found once fragments are expanded. Allowed: {Limites().campos}"
    assert error.extensions == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}


async def test_a_reader_sending_doubling_fragments_gets_the_limit_code(app: Starlette) -> None:
    transporte = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transporte, base_url="http://test", headers=cabecera(Rol.LECTURA)) as http:
        inicio = time.perf_counter()
        cuerpo = await gql(http, fragmentos_encadenados(25, 2))
        assert time.perf_counter() - inicio < 2
    assert cuerpo["data"] is None
    assert [e["extensions"]["codigo"] for e in cuerpo["errors"]] == ["VALIDACION"]


async def test_aliases_in_fragments_count_once_per_spread(http: httpx.AsyncClient) -> None:
    # 4 aliases in F2, spread 3 times in F1, and F1 twice: 24 aliases.
    documento = (
        "{ ...F1 ...F1 } fragment F1 on Query { ...F2 ...F2 ...F2 }"
        " fragment F2 on Query { a: nodo { id } b: nodo { id } c: nodo { id } d: nodo { id } }"
    )
    cuerpo = await gql(http, documento)
    [error] = cuerpo["errors"]
    assert error["message"] == f"24 aliases found. Allowed: {Limites().alias}"


async def test_depth_counts_through_fragments_and_stops_at_introspection() -> None:
    esquema = crear_esquema(Limites(profundidad=2))
    en_fragmentos = (
        "{ ...P } fragment P on Query { pedidos { ...I } } fragment I on Pedido { items { producto { nombre } } }"
    )
    refusado = await esquema.execute(en_fragmentos)
    [error] = refusado.errors or []
    assert error.message == "'anonymous' exceeds maximum operation depth of 2"
    assert error.extensions == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}

    introspeccion = "{ __schema { types { fields { type { ofType { ofType { name } } } } } } }"
    assert (await esquema.execute(introspeccion)).errors is None


async def test_a_chain_of_300_fragments_is_refused_with_a_code_not_a_recursion_error(http: httpx.AsyncClient) -> None:
    cuerpo = await gql(http, fragmentos_encadenados(300, 1))
    assert cuerpo["data"] is None
    [error] = cuerpo["errors"]
    assert "recursion" not in error["message"]
    assert error["extensions"] == {"codigo": "VALIDACION", "code": "GRAPHQL_VALIDATION_FAILED"}


async def test_more_fields_than_the_limit_are_refused_before_the_other_rules_walk_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Checking overlapping fields compares them pairwise; a refused document must not get that far.
    visitadas = 0
    original = OverlappingFieldsCanBeMergedRule.enter_selection_set

    def espia(self: Any, *args: Any) -> Any:
        nonlocal visitadas
        visitadas += 1
        return original(self, *args)

    monkeypatch.setattr(OverlappingFieldsCanBeMergedRule, "enter_selection_set", espia)
    esquema = crear_esquema(Limites(campos=10))
    admitido = await esquema.execute("{ " + "pedidos { id } " * 5 + "}")
    assert visitadas > 0
    visitadas = 0

    refusado = await esquema.execute("{ " + "pedidos { id } " * 6 + "}")

    [error] = refusado.errors or []
    assert error.message == "12 fields found once fragments are expanded. Allowed: 10"
    assert visitadas == 0
    assert [e.message for e in admitido.errors or []] == ["a bearer token is required"]
