// Nodos: the node this page talks to, every peer's health as it sees them, "Replicar ahora".

import { avisos, ejecutar, el, fecha, sincronizarFilas } from "./comun.js";

const CONSULTA = `{
  nodo { id hlc baseDeDatos vector { origen seq } uptimeS }
  nodos { id url activo ultimoContacto pendientes lagMs ultimoError }
}`;

export function crearVista(conexion) {
  const aviso = avisos();
  const datosNodo = el("dl", { class: "nodo" });
  const graphiql = el("a", { target: "_blank", rel: "noopener" }, "Abrir GraphiQL");
  const replicar = el("button", { type: "button" }, "Replicar ahora");
  const tbody = el("tbody");
  const cabeceras = ["Nodo", "URL", "Activo", "Último contacto", "Pendientes", "Retraso", "Último error"];
  const tabla = el(
    "table",
    { "aria-label": "Pares" },
    el("thead", {}, el("tr", {}, ...cabeceras.map((t) => el("th", {}, t)))),
    tbody,
  );
  const elemento = el(
    "section",
    { id: "vista-nodos" },
    el("h2", {}, "Nodos"),
    el("h3", {}, "Este nodo"),
    datosNodo,
    el("p", { class: "acciones" }, replicar, graphiql),
    aviso.nodo,
    el("h3", {}, "Sus pares"),
    tabla,
  );

  replicar.addEventListener("click", () =>
    ejecutar(replicar, aviso, async () => {
      const r = await conexion.rest("POST", "/api/replicacion/replicar", 15000);
      await recargar();
      const partes = r.pares.map((p) =>
        p.ok ? `${p.nodo}: ${p.recibidos} cambios recibidos, ${p.aplicados} aplicados` : `${p.nodo}: ${p.error}`,
      );
      return `Replicación desde ${r.nodo}: ${partes.join("; ") || "no tiene pares"}.`;
    }),
  );

  function crearFila() {
    return el("tr", {}, ...cabeceras.map(() => el("td")));
  }

  function actualizarFila(tr, par) {
    const c = tr.cells;
    c[0].textContent = par.id;
    c[1].replaceChildren(el("a", { href: par.url }, par.url));
    c[2].textContent = par.activo ? "sí" : "no";
    c[2].className = par.activo ? "activo" : "inactivo";
    c[3].textContent = par.ultimoContacto ? fecha(par.ultimoContacto) : "nunca";
    c[4].textContent = par.pendientes;
    c[5].textContent = `${par.lagMs} ms`;
    c[6].textContent = par.ultimoError ?? "";
  }

  async function recargar() {
    const { nodo, nodos } = await conexion.consultar(CONSULTA);
    conexion.anotarPares(nodos);
    const vector = nodo.vector.map((v) => `${v.origen}: ${v.seq}`).join(", ") || "vacío";
    const filas = [
      ["Nodo", nodo.id],
      ["Dirección", conexion.url],
      ["Base de datos", nodo.baseDeDatos],
      ["Reloj (HLC)", nodo.hlc],
      ["Vector de versiones", vector],
      ["En marcha desde hace", `${Math.round(nodo.uptimeS)} s`],
    ];
    datosNodo.replaceChildren(...filas.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    graphiql.href = `${conexion.url}/graphql`;
    sincronizarFilas(tbody, nodos, crearFila, actualizarFila, "Este nodo no tiene pares.");
  }

  return { titulo: "Nodos", elemento, recargar, aviso };
}
