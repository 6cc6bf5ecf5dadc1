#include "testing/test_pki.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace mnedc::testing {
namespace {

struct Issued {
  X509* cert;
  EVP_PKEY* key;
};

void AddExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!extension) throw std::runtime_error("bad extension");
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

Issued Issue(const char* common_name, const Issued* issuer, long valid_from, long valid_until,
             bool ca, const char* alt_names) {
  static long serial = 1;
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), valid_from);
  X509_gmtime_adj(X509_getm_notAfter(cert), valid_until);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer->cert) : name);
  X509_set_pubkey(cert, key);
  X509* signer = issuer ? issuer->cert : cert;
  if (ca) {
    AddExtension(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    AddExtension(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExtension(cert, signer, NID_basic_constraints, "critical,CA:FALSE");
    AddExtension(cert, signer, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  if (alt_names) AddExtension(cert, signer, NID_subject_alt_name, alt_names);
  X509_sign(cert, issuer ? issuer->key : key, EVP_sha256());
  return {cert, key};
}

std::string WriteCert(const std::string& path, X509* cert) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  return path;
}

std::string WriteKey(const std::string& path, EVP_PKEY* key) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  return path;
}
}  // namespace

TestPki MakeTestPki(const std::string& dir) {
  constexpr long kDay = 24 * 3600;
  const char* kRelayNames = "IP:127.0.0.1,DNS:localhost";
  const Issued ca = Issue("mnedc test CA", nullptr, -kDay, 30 * kDay, true, nullptr);
  const Issued other_ca = Issue("unrelated CA", nullptr, -kDay, 30 * kDay, true, nullptr);
  const Issued server = Issue("relay", &ca, -kDay, 30 * kDay, false, kRelayNames);
  const Issued expired = Issue("relay", &ca, -10 * kDay, -kDay, false, kRelayNames);
  const Issued wrong_name = Issue("elsewhere", &ca, -kDay, 30 * kDay, false, "DNS:elsewhere.test");
  const Issued client = Issue("device", &ca, -kDay, 30 * kDay, false, nullptr);
  const Issued stranger = Issue("stranger", &other_ca, -kDay, 30 * kDay, false, nullptr);
  TestPki pki;
  pki.ca_cert = WriteCert(dir + "/ca.pem", ca.cert);
  pki.other_ca_cert = WriteCert(dir + "/other-ca.pem", other_ca.cert);
  pki.server_cert = WriteCert(dir + "/server.pem", server.cert);
  pki.server_key = WriteKey(dir + "/server.key", server.key);
  pki.expired_cert = WriteCert(dir + "/expired.pem", expired.cert);
  pki.expired_key = WriteKey(dir + "/expired.key", expired.key);
  pki.wrong_name_cert = WriteCert(dir + "/wrong-name.pem", wrong_name.cert);
  pki.wrong_name_key = WriteKey(dir + "/wrong-name.key", wrong_name.key);
  pki.client_cert = WriteCert(dir + "/client.pem", client.cert);
  pki.client_key = WriteKey(dir + "/client.key", client.key);
  pki.client_from_other_ca_cert = WriteCert(dir + "/stranger.pem", stranger.cert);
  pki.client_from_other_ca_key = WriteKey(dir + "/stranger.key", stranger.key);
  for (const Issued* issued : {&ca, &other_ca, &server, &expired, &wrong_name, &client, &stranger}) {
    X509_free(issued->cert);
    EVP_PKEY_free(issued->key);
  }
  return pki;
}

}  // namespace mnedc::testing
