# shellcheck shell=bash
# mnedc_make_pki DIR HOST_IP: a CA, a relay certificate for HOST_IP, and an
# unrelated CA, made with the openssl command (end-to-end tests and the benchmark).
mnedc_make_pki() {
  local dir=$1 ip=$2
  (
    cd "$dir" || exit 1
    key() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" "${@:2}" 2>/dev/null; }
    key ca -x509 -days 2 -subj /CN=mnedc-test-ca -out ca.pem
    key other-ca -x509 -days 2 -subj /CN=unrelated-ca -out other-ca.pem
    key relay -subj /CN=relay -out relay.csr
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\n' "$ip" >relay.ext
    openssl x509 -req -in relay.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
      -extfile relay.ext -out relay.pem 2>/dev/null
  ) && [[ -s $dir/relay.pem ]]
}
