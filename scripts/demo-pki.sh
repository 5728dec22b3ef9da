#!/usr/bin/env bash
# Makes a throw-away PKI for trying ontap-keymgr with a local KMIP server: a CA, a KMIP server
# certificate for 127.0.0.1 and localhost, and a client certificate for the key manager.
# RSA 2048 throughout, made the way most people make them (`openssl req -newkey rsa:2048`).
# Usage: scripts/demo-pki.sh [DIR]   (default: demo/)
set -euo pipefail
dir="${1:-demo}"
mkdir -p "$dir"
cd "$dir"

key() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

key ca.key
openssl req -x509 -new -key ca.key -sha256 -days 365 -subj "/CN=demo-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem

issue() { # name, subject CN, extensions
    key "$1.key"
    openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 -days 365 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}
issue server kmip-server "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
issue client key-manager "extendedKeyUsage=clientAuth"
echo "made $dir/ca.pem, $dir/server.{pem,key} and $dir/client.{pem,key}"
