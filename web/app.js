// The page: hash routing between the views, the connection line, live updates.
//
// Every view is built once and only hidden or shown, so whatever is typed into a form survives
// reloads, reconnections and moving to another node. A view reloads its data when it is shown,
// after the page (re)connects to a node, and when a subscription event concerns it.

import { CLAVE_TOKEN, Conexion } from "./graphql.js";
import { describirError } from "./vistas/comun.js";
import * as clientes from "./vistas/clientes.js";
import * as conflictos from "./vistas/conflictos.js";
import * as nodos from "./vistas/nodos.js";
import * as pedidos from "./vistas/pedidos.js";
import * as productos from "./vistas/productos.js";

const SUSCRIPCIONES = [
  {
    nombre: "pedidoCambiado",
    query: `subscription { pedidoCambiado { tipo pedido {
      id clienteId estado total creadoEn nodoOrigen items { productoId cantidad } } } }`,
    vistas: ["pedidos", "productos", "nodos", "conflictos"],
  },
  {
    nombre: "stockCambiado",
    query: "subscription { stockCambiado { id nombre precio stock } }",
    vistas: ["pedidos", "productos"],
  },
  {
    nombre: "nodosCambiados",
    query: "subscription { nodosCambiados { id url activo ultimoContacto pendientes lagMs ultimoError } }",
    vistas: ["nodos"],
  },
];

const conexion = new Conexion();
const vistas = {
  pedidos: pedidos.crearVista(conexion),
  productos: productos.crearVista(conexion),
  clientes: clientes.crearVista(conexion),
  nodos: nodos.crearVista(conexion),
  conflictos: conflictos.crearVista(conexion),
};
const principal = document.querySelector("main");
const lineaConexion = document.getElementById("conexion");
const enVivo = document.getElementById("en-vivo");
const menu = document.querySelector("nav ul");

for (const [nombre, vista] of Object.entries(vistas)) {
  vista.elemento.hidden = true;
  principal.append(vista.elemento);
  const enlace = document.createElement("a");
  enlace.href = `#/${nombre}`;
  enlace.textContent = vista.titulo;
  const item = document.createElement("li");
  item.append(enlace);
  menu.append(item);
}

const visible = () => {
  const nombre = location.hash.replace(/^#\/?/, "");
  return nombre in vistas ? nombre : "pedidos";
};

let mostrada = null;
function mostrar() {
  const nombre = visible();
  if (mostrada) vistas[mostrada].elemento.hidden = true;
  mostrada = nombre;
  vistas[nombre].elemento.hidden = false;
  document.title = `${vistas[nombre].titulo} · pedidos`;
  for (const a of menu.querySelectorAll("a")) {
    if (a.getAttribute("href") === `#/${nombre}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (conexion.situacion === "conectado") recargar();
}

// One reload at a time, so that an older answer never lands after a newer one; a reload asked
// for meanwhile runs once the current one ends.
let enCurso = null;
let otraVez = false;
function recargar() {
  if (enCurso) {
    otraVez = true;
    return enCurso;
  }
  enCurso = (async () => {
    do {
      otraVez = false;
      await recargarUnaVez(mostrada);
    } while (otraVez);
  })().finally(() => (enCurso = null));
  return enCurso;
}

const fallidas = new Set();
async function recargarUnaVez(nombre) {
  const vista = vistas[nombre];
  try {
    await vista.recargar();
    if (fallidas.delete(nombre)) vista.aviso.limpiar();
  } catch (e) {
    fallidas.add(nombre);
    vista.aviso.error(e);
  }
}

// Events come in bursts (an order changes the order and its products' stock): one reload per burst.
let programada = null;
function alEvento(nombresDeVistas) {
  if (!nombresDeVistas.includes(mostrada) || programada) return;
  programada = setTimeout(() => {
    programada = null;
    recargar();
  }, 100);
}

function pintarEstado() {
  lineaConexion.textContent = conexion.texto();
  lineaConexion.className = conexion.situacion;
  document.body.dataset.nodo = conexion.id ?? "";
  document.getElementById("graphiql").href = `${conexion.url}/graphql`;
  const rechazadas = SUSCRIPCIONES.filter((s) => s.registro.estado !== "activa");
  if (conexion.situacion !== "conectado") {
    enVivo.textContent = "";
  } else if (rechazadas.length) {
    enVivo.textContent = "Sin actualizaciones en vivo";
    enVivo.title = `Este nodo no ofrece ${rechazadas.map((s) => s.nombre).join(", ")}: use «Recargar».`;
    enVivo.dataset.faltan = rechazadas.map((s) => s.nombre).join(" ");
    enVivo.className = "apagado";
  } else {
    enVivo.textContent = "En vivo";
    enVivo.title = "Las vistas se actualizan solas con las suscripciones GraphQL.";
    enVivo.className = "encendido";
    enVivo.dataset.faltan = "";
  }
}

for (const s of SUSCRIPCIONES) {
  s.registro = conexion.suscribir(
    s.nombre,
    s.query,
    {},
    (datos) => {
      if (s.nombre === "nodosCambiados") conexion.anotarPares([].concat(datos.nodosCambiados));
      alEvento(s.vistas);
    },
    (errores) => console.warn(`${s.nombre}: ${errores.map((e) => e.message).join("; ")}`),
  );
}

document.getElementById("recargar").addEventListener("click", () => recargar());

// The access token: kept in this origin's localStorage; a new one takes effect by loading the page again.
const acceso = document.getElementById("acceso");
acceso.elements.token.value = conexion.token;
acceso.addEventListener("submit", (evento) => {
  evento.preventDefault();
  localStorage.setItem(CLAVE_TOKEN, acceso.elements.token.value.trim());
  location.reload();
});
conexion.addEventListener("estado", pintarEstado);
conexion.addEventListener("recargar", () => {
  pintarEstado();
  recargar();
});
window.addEventListener("hashchange", mostrar);
mostrar();
conexion.iniciar().catch((e) => {
  lineaConexion.textContent = describirError(e);
  lineaConexion.className = "sin-conexion";
  if (e.codigo === "NO_AUTENTICADO") acceso.elements.token.focus();
});
