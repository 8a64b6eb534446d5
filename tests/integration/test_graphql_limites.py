"""GraphQL limits (depth, tokens, aliases) and the parse/validation caches shared by requests."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import strawberry.schema.schema
from graphql import get_introspection_query

from esquema import Limites, crear_esquema
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
