#!/usr/bin/env bash
# Fetch GraphiQL's files from the npm registry into this directory (see README.md).
#
# Each package is pinned by version and by the integrity the registry
# publishes for its tarball; a tarball that does not match stops the script
# before anything here is replaced. Needs npm, openssl and the registry, nothing else.
set -euo pipefail
cd "$(dirname "$0")"

# package@version, integrity of its tarball, where its files go here
PAQUETES=(
  "react@18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ== react"
  "react-dom@18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw== react-dom"
  "graphiql@4.1.2 sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg== graphiql"
  "@graphiql/plugin-explorer@4.0.6 sha512-TppIi92YPER3v70nlF01KTQrq9AiYqkZicSd1hpU7aqGmbqw/pLwBNLUEcfENBoJtw574Qxjswb01+GaYK0Tzw== plugin-explorer"
)
# destination, file inside the package's tarball
ARCHIVOS=(
  "react/react.production.min.js package/umd/react.production.min.js"
  "react/LICENSE package/LICENSE"
  "react-dom/react-dom.production.min.js package/umd/react-dom.production.min.js"
  "react-dom/LICENSE package/LICENSE"
  "graphiql/graphiql.min.js package/graphiql.min.js"
  "graphiql/graphiql.min.css package/graphiql.min.css"
  "graphiql/LICENSE package/LICENSE"
  "plugin-explorer/index.umd.js package/dist/index.umd.js"
  "plugin-explorer/style.css package/dist/style.css"
)

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for linea in "${PAQUETES[@]}"; do
  read -r paquete integridad dir <<<"$linea"
  tarball=$(cd "$tmp" && npm pack --silent "$paquete")
  obtenida="sha512-$(openssl dgst -sha512 -binary "$tmp/$tarball" | base64 -w0)"
  if [ "$obtenida" != "$integridad" ]; then
    echo "traer.sh: $paquete: tarball integrity $obtenida, expected $integridad" >&2
    exit 1
  fi
  mkdir -p "$tmp/$dir"
  tar -xzf "$tmp/$tarball" -C "$tmp/$dir"
done

for linea in "${ARCHIVOS[@]}"; do
  read -r destino origen <<<"$linea"
  mkdir -p "$(dirname "$destino")"
  cp "$tmp/$(dirname "$destino")/$origen" "$destino"
done
echo "traer.sh: GraphiQL's files are in $(pwd)" >&2
