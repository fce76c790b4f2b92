#!/usr/bin/env bash
# Makes the certificates for TLS on kumod's gRPC port with openssl: a private
# CA, kumod's server certificate and one client certificate per name (the
# operators' CLI and each agent node). Keys are EC P-256, files mode 0600.
#
#   deploy/make-certs.sh DIR SERVER_NAME [CLIENT_NAME...]
#   deploy/make-certs.sh /etc/kumo/tls kumod.example.net operator node-1 node-2
#
# SERVER_NAME is the host name (or IP address) agents and the CLI use to
# reach kumod; localhost and 127.0.0.1 are added. Existing files in DIR are
# kept (a CA is reused, so more clients can be added later). Valid 825 days.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
dir=$1
server=$2
shift 2
for name in "$server" "$@"; do
  case "$name" in
    "" | *[!A-Za-z0-9.:_-]*) echo "make-certs: '$name' is not a valid name" >&2; exit 2 ;;
  esac
done
command -v openssl >/dev/null || { echo "make-certs: openssl is required" >&2; exit 1; }
umask 077
mkdir -p "$dir"
cd "$dir"
days=825

if [ ! -f ca.pem ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout ca.key -out ca.pem -days 3650 -subj "/CN=Kumo CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  echo "made ca.pem (keep ca.key offline once the certificates are made)"
fi

# issue NAME EXTENSIONS: a key and a certificate signed by the CA.
issue() {
  local name=$1 extensions=$2
  [ -f "$name.pem" ] && { echo "kept $name.pem"; return; }
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$name.key" -out "$name.csr" -subj "/CN=$name" 2>/dev/null
  printf '%s\n' "$extensions" >"$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out "$name.pem" -days "$days" -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
  echo "made $name.pem"
}

if [[ "$server" =~ ^[0-9.]+$ || "$server" == *:* ]]; then
  san="IP:$server,DNS:localhost,IP:127.0.0.1"
else
  san="DNS:$server,DNS:localhost,IP:127.0.0.1"
fi
issue kumod "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$san"
for client in "$@"; do
  issue "$client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
subjectAltName=DNS:$client"
done
chmod 0600 ./*.key ./*.pem
