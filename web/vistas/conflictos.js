// Conflictos: concurrent estado changes made on different nodes, and which one won.

import { avisos, corto, el, sincronizarFilas } from "./comun.js";

const CONSULTA = `{ conflictos { pedidoId campo ganador perdedor valorGanador valorPerdedor base } }`;

export function crearVista(conexion) {
  const aviso = avisos();
  const tbody = el("tbody");
  const cabeceras = ["Pedido", "Campo", "Valor ganador", "Valor perdedor", "Ganador", "Perdedor", "Base"];
  const tabla = el(
    "table",
    { "aria-label": "Conflictos" },
    el("thead", {}, el("tr", {}, ...cabeceras.map((t) => el("th", {}, t)))),
    tbody,
  );
  const elemento = el(
    "section",
    { id: "vista-conflictos" },
    el("h2", {}, "Conflictos"),
    el(
      "p",
      { class: "explicacion" },
      "Cambios de un mismo campo hechos a la vez en nodos distintos. Gana el de sello posterior (hlc:origen), ",
      "en todos los nodos por igual; el perdedor queda en el registro de cambios.",
    ),
    aviso.nodo,
    tabla,
  );

  function crearFila() {
    return el("tr", {}, ...cabeceras.map(() => el("td")));
  }

  function actualizarFila(tr, c) {
    const valores = [corto(c.pedidoId), c.campo, c.valorGanador, c.valorPerdedor, c.ganador, c.perdedor, c.base];
    valores.forEach((v, i) => (tr.cells[i].textContent = v));
    tr.cells[0].title = c.pedidoId;
  }

  async function recargar() {
    const { conflictos } = await conexion.consultar(CONSULTA);
    // A conflict has no id of its own: the pair of stamps identifies it.
    const filas = conflictos.map((c) => ({ ...c, id: `${c.pedidoId}/${c.campo}/${c.ganador}/${c.perdedor}` }));
    sincronizarFilas(tbody, filas, crearFila, actualizarFila, "No hay conflictos.");
  }

  return { titulo: "Conflictos", elemento, recargar, aviso };
}
