"""Replicas converge: a Hypothesis state machine over 3–5 real stores.

Random operations land on random replicas; between them, random deliveries
move a random prefix of what one replica has to another, with changes lost,
duplicated and reordered; replicas crash (the store is closed and opened
again from its file). After a final full exchange every replica must hold the
same state (equal canonical digests), every acknowledged order must be on
every replica, and stock must equal initial units plus restocks minus the
units of orders that are not cancelled.

Rights to stock move between replicas at random too. After every step, each
replica's own rights, as it sees them, are never negative (it never spends
what it does not hold, whatever it has heard); after the exchange every
node's rights are non-negative and add up to the stock.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from servidor.almacen import Almacen, consultas
from servidor.dominio import Dominio
from servidor.errores import ErrorPedidos

STOCK_INICIAL = 6


class Replicas(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.bucle = asyncio.new_event_loop()
        self.carpeta = Path(tempfile.mkdtemp(prefix="pedidos-prop-"))
        self.dominios: list[Dominio] = []
        self.clientes: list[str] = []
        self.productos: list[str] = []
        self.pedidos: list[str] = []
        self.reposiciones: dict[str, int] = {}

    def correr(self, corrutina: Any) -> Any:
        return self.bucle.run_until_complete(corrutina)

    def url(self, n: int) -> str:
        return f"sqlite+aiosqlite:///{self.carpeta / f'nodo{n}.db'}"

    @initialize(n=st.integers(min_value=3, max_value=5))
    def arrancar(self, n: int) -> None:
        for i in range(n):
            self.dominios.append(Dominio(self.correr(Almacen.abrir(self.url(i), f"nodo{i}"))))
        primero = self.dominios[0]
        for nombre in ("Ana", "Luis"):
            c = self.correr(primero.crear_cliente({"nombre": nombre, "email": f"{nombre.lower()}@example.com"}))
            self.clientes.append(c["id"])
        for nombre in ("Taza", "Plato", "Vaso"):
            p = self.correr(primero.crear_producto({"nombre": nombre, "precio": "2.50", "stock": STOCK_INICIAL}))
            self.productos.append(p["id"])
            self.reposiciones[p["id"]] = 0
        self.correr(self.intercambio_completo())

    # --- operations on random replicas -------------------------------------

    def _intentar(self, corrutina: Any) -> Any:
        try:
            return self.correr(corrutina)
        except ErrorPedidos:
            return None

    @rule(r=st.integers(0, 4), c=st.integers(0, 1), p=st.integers(0, 2), q=st.integers(1, 3))
    def crear_pedido(self, r: int, c: int, p: int, q: int) -> None:
        d = self.dominios[r % len(self.dominios)]
        datos = {"cliente_id": self.clientes[c], "items": [{"producto_id": self.productos[p], "cantidad": q}]}
        pedido = self._intentar(d.crear_pedido(datos))
        if pedido is not None:
            self.pedidos.append(pedido["id"])

    @precondition(lambda self: self.pedidos)
    @rule(
        r=st.integers(0, 4),
        i=st.integers(0, 1000),
        estado=st.sampled_from(["confirmado", "enviado", "entregado", "cancelado"]),
    )
    def cambiar_estado(self, r: int, i: int, estado: str) -> None:
        d = self.dominios[r % len(self.dominios)]
        self._intentar(d.cambiar_estado(self.pedidos[i % len(self.pedidos)], estado))

    @precondition(lambda self: self.pedidos)
    @rule(r=st.integers(0, 4), i=st.integers(0, 1000))
    def eliminar_pedido(self, r: int, i: int) -> None:
        d = self.dominios[r % len(self.dominios)]
        self._intentar(d.eliminar_pedido(self.pedidos[i % len(self.pedidos)]))

    @rule(r=st.integers(0, 4), p=st.integers(0, 2), n=st.integers(1, 4))
    def reponer(self, r: int, p: int, n: int) -> None:
        d = self.dominios[r % len(self.dominios)]
        if self._intentar(d.ajustar_stock(self.productos[p], n)) is not None:
            self.reposiciones[self.productos[p]] += n

    @rule(a=st.integers(0, 4), b=st.integers(0, 4), p=st.integers(0, 2), n=st.integers(0, 6), extra=st.integers(0, 6))
    def ceder(self, a: int, b: int, p: int, n: int, extra: int) -> None:
        origen = self.dominios[a % len(self.dominios)]
        destino = self.dominios[b % len(self.dominios)]
        if origen is not destino:
            self.correr(origen.ceder_derechos(destino.nodo_id, self.productos[p], n, extra))

    @rule(r=st.integers(0, 4), c=st.integers(0, 1), nombre=st.sampled_from(["Ana B.", "Luisa", "Eva"]))
    def renombrar_cliente(self, r: int, c: int, nombre: str) -> None:
        d = self.dominios[r % len(self.dominios)]
        self._intentar(d.actualizar_cliente(self.clientes[c], {"nombre": nombre}))

    # --- faults ------------------------------------------------------------

    @rule(a=st.integers(0, 4), b=st.integers(0, 4), limite=st.integers(1, 40), semilla=st.integers(0, 2**16))
    def entregar_con_perdidas(self, a: int, b: int, limite: int, semilla: int) -> None:
        """Deliver some of what ``a`` has for ``b``: lost, duplicated and shuffled."""
        origen = self.dominios[a % len(self.dominios)].almacen
        destino = self.dominios[b % len(self.dominios)].almacen
        if origen is destino:
            return
        lote = self.correr(origen.cambios_para(destino.vector, limite))
        azar = random.Random(semilla)
        entregados = [c for c in lote if azar.random() < 0.8]
        entregados += azar.sample(entregados, k=len(entregados) // 3)
        azar.shuffle(entregados)
        self.correr(destino.fusionar(entregados))

    @rule(r=st.integers(0, 4))
    def caer_y_volver(self, r: int) -> None:
        i = r % len(self.dominios)
        self.correr(self.dominios[i].almacen.cerrar())
        self.dominios[i] = Dominio(self.correr(Almacen.abrir(self.url(i), f"nodo{i}")))

    # --- checks --------------------------------------------------------------

    @invariant()
    def nadie_gasta_lo_que_no_tiene(self) -> None:
        for d in self.dominios:
            derechos = self.correr(d.almacen.leer(consultas.derechos, self.productos))
            for pid in self.productos:
                assert derechos.get(pid, {}).get(d.nodo_id, 0) >= 0, f"{d.nodo_id} spent rights it did not hold"

    async def intercambio_completo(self) -> None:
        for _ in range(2):
            for a in self.dominios:
                for b in self.dominios:
                    if a is b:
                        continue
                    while lote := await a.almacen.cambios_para(b.almacen.vector, 200):
                        await b.almacen.fusionar(lote)

    def teardown(self) -> None:
        try:
            if self.dominios:
                self.correr(self.comprobar_convergencia())
        finally:
            for d in self.dominios:
                self.correr(d.almacen.cerrar())
            self.bucle.close()
            shutil.rmtree(self.carpeta, ignore_errors=True)

    async def comprobar_convergencia(self) -> None:
        await self.intercambio_completo()
        digests = set()
        for d in self.dominios:
            digests.add(await d.almacen.leer(consultas.digest))
        assert len(digests) == 1, "replicas hold different states after a full exchange"
        vectores = {tuple(sorted(d.almacen.vector.items())) for d in self.dominios}
        assert len(vectores) == 1
        for d in self.dominios:
            presentes = await d.almacen.leer(consultas.pedidos_por_ids, self.pedidos, eliminados=True)
            assert set(presentes) == set(self.pedidos), "an acknowledged order is missing"
        d = self.dominios[0]
        todos = await d.almacen.leer(consultas.pedidos_por_ids, self.pedidos, eliminados=True)
        for pid in self.productos:
            vendidos = sum(
                i["cantidad"]
                for p in todos.values()
                if p["estado"] != "cancelado"
                for i in p["items"]
                if i["producto_id"] == pid
            )
            esperado = STOCK_INICIAL + self.reposiciones[pid] - vendidos
            producto = await d.obtener_producto(pid)
            assert producto["stock"] == esperado >= 0
            assert all(n >= 0 for n in producto["derechos"].values()), producto["derechos"]
            assert sum(producto["derechos"].values()) == producto["stock"]


Replicas.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_las_replicas_convergen_con_perdidas_duplicados_desorden_y_caidas = Replicas.TestCase
