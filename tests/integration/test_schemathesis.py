"""Schemathesis against a live node: the REST OpenAPI document and the GraphQL schema.

One node runs as a real process (``tests.procesos``) for the whole module;
Schemathesis generates requests from what the node itself publishes —
``/api/openapi.json`` and GraphQL introspection — valid and invalid, with a
bounded number of examples per operation (``EJEMPLOS``) so the module takes
about a minute. Each answer must pass every check Schemathesis has:

- no 5xx (``not_a_server_error``);
- status, content type, headers and body as documented (``*_conformance``);
- invalid input answered with 4xx (``negative_data_rejection``);
- a protected operation refuses a request without a token or with a wrong
  one (``ignored_auth``: it resends each authenticated request both ways).

Requests are sent with the admin token, so every operation is reachable.

Left out: ``positive_data_acceptance``, which expects every request that
fits the schema's types to succeed. The domain has rules no schema states
(a trimmed name is not empty, an e-mail address is deliverable syntax, the
product exists, there is stock), and refusing such input with a 4xx (REST)
or a ``BAD_USER_INPUT`` error (GraphQL) is the right answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis import Case
from schemathesis.config import SchemathesisConfig
from schemathesis.graphql import nodes
from schemathesis.specs.openapi.checks import positive_data_acceptance

from servidor.acceso import Rol
from tests.credenciales import TOKENS, cabecera
from tests.procesos import Cluster, ProcesoNodo

EJEMPLOS = 25

# Money in the schema is a Decimal scalar, sent as a string: any decimal text, valid money or not.
schemathesis.graphql.scalar(
    "Decimal",
    st.one_of(st.decimals(allow_nan=False, allow_infinity=False), st.text(max_size=20)).map(
        lambda valor: nodes.String(str(valor))
    ),
)


@pytest.fixture(scope="module")
def nodo_vivo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcesoNodo]:
    cluster = Cluster(Path(tmp_path_factory.mktemp("schemathesis")), 1)
    try:
        asyncio.run(cluster.arrancar())
        yield cluster["nodo1"]
    finally:
        asyncio.run(cluster.cerrar())


@pytest.fixture(scope="module")
def rest(nodo_vivo: ProcesoNodo) -> schemathesis.BaseSchema:
    # The token as the document's bearer scheme, so Schemathesis knows it is the credential and can probe without it.
    config = SchemathesisConfig.from_dict({"auth": {"openapi": {"bearer": {"bearer": TOKENS[Rol.ADMIN]}}}})
    return schemathesis.openapi.from_url(f"{nodo_vivo.url}/api/openapi.json", config=config)


@pytest.fixture(scope="module")
def graphql(nodo_vivo: ProcesoNodo) -> schemathesis.BaseSchema:
    return schemathesis.graphql.from_url(f"{nodo_vivo.url}/graphql", headers=cabecera())


esquema_rest = schemathesis.pytest.from_fixture("rest")
esquema_graphql = schemathesis.pytest.from_fixture("graphql")
AJUSTES = settings(max_examples=EJEMPLOS, deadline=None, suppress_health_check=list(HealthCheck))


@esquema_rest.parametrize()
@AJUSTES
def test_rest_answers_as_its_openapi_document_says(case: Case) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@esquema_graphql.parametrize()
@AJUSTES
def test_graphql_answers_every_generated_document_without_a_server_error(case: Case) -> None:
    case.call_and_validate(headers=cabecera(), excluded_checks=[positive_data_acceptance])
