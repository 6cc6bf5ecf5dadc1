#include "mnedc/transport/tls_context.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace mnedc::transport {
namespace {
namespace ssl = boost::asio::ssl;

std::string Hex(const unsigned char* data, unsigned size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < size; ++i) {
    out += digits[data[i] >> 4];
    out += digits[data[i] & 15];
  }
  return out;
}

std::string CertSha256(X509* cert) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  if (X509_digest(cert, EVP_sha256(), digest, &size) != 1) return {};
  return Hex(digest, size);
}

bool Readable(const std::string& path, const char* what, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) {
    *error = std::string("cannot read ") + what + " '" + path + "'";
    return false;
  }
  std::fclose(f);
  return true;
}

// AEADs only, in the order that is fastest on this CPU: AES-128-GCM where
// the CPU has AES instructions (4.5 GB/s against AES-256-GCM's 2.9 and
// ChaCha20's 3.0 on the x86 of tools/bench, at 16 KiB records; OpenSSL's own
// default puts AES-256 first), ChaCha20-Poly1305 where it has none (ARM
// routers and boards without the crypto extensions, where AES in software is
// several times slower). The relay chooses (server preference), except that
// a client which lists ChaCha20 first gets it (SSL_OP_PRIORITIZE_CHACHA).
void PreferFastCiphers(ssl::context& context, bool server) {
  const bool aes = CpuHasAesInstructions();
  const char* tls13 = aes ? "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384"
                          : "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384";
  const char* tls12 = aes ? "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"
                          : "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384";
  SSL_CTX_set_ciphersuites(context.native_handle(), tls13);
  SSL_CTX_set_cipher_list(context.native_handle(), tls12);
  if (server) SSL_CTX_set_options(context.native_handle(), SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_PRIORITIZE_CHACHA);
}

void RequireModernTls(ssl::context& context, bool server) {
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_2_VERSION);
  context.set_options(ssl::context::default_workarounds | ssl::context::no_compression);
  PreferFastCiphers(context, server);
}

// The pre-shared key: what both ends derive from the secret (never the secret
// itself), under a fixed identity. SHA-256 sized, so it suits every TLS 1.3
// suite the contexts allow but AES-256-GCM-SHA384, which they leave out.
constexpr char kPskIdentity[] = "mnedc relay mesh";
constexpr std::size_t kPskBytes = 32;

// Where a context keeps its key (freed with the context).
int PskIndex() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* data, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<std::string*>(data);
      });
  return index;
}

void SetPsk(SSL_CTX* context, const std::string& secret) {
  unsigned char key[EVP_MAX_MD_SIZE];
  unsigned size = 0;
  static constexpr char kLabel[] = "mnedc relay mesh tls 1.3 psk";
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(kLabel),
       sizeof(kLabel) - 1, key, &size);
  delete static_cast<std::string*>(SSL_CTX_get_ex_data(context, PskIndex()));
  SSL_CTX_set_ex_data(context, PskIndex(), new std::string(reinterpret_cast<char*>(key), size));
  OPENSSL_cleanse(key, sizeof(key));
}

// A session holding the context's key for TLS_AES_128_GCM_SHA256 (any
// SHA-256 suite may be negotiated with it); null if that cannot be made.
SSL_SESSION* PskSession(SSL* ssl) {
  const auto* key = static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), PskIndex()));
  static const unsigned char kAes128GcmSha256[] = {0x13, 0x01};
  const SSL_CIPHER* cipher = SSL_CIPHER_find(ssl, kAes128GcmSha256);
  if (!key || key->size() != kPskBytes || !cipher) return nullptr;
  SSL_SESSION* session = SSL_SESSION_new();
  if (!session) return nullptr;
  if (SSL_SESSION_set1_master_key(session, reinterpret_cast<const unsigned char*>(key->data()), key->size()) != 1 ||
      SSL_SESSION_set_cipher(session, cipher) != 1 ||
      SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) != 1) {
    SSL_SESSION_free(session);
    return nullptr;
  }
  return session;
}

int UsePskSession(SSL* ssl, const EVP_MD* md, const unsigned char** id, size_t* id_length, SSL_SESSION** out) {
  *out = nullptr;
  SSL_SESSION* session = PskSession(ssl);
  if (!session) return 0;
  // A second call (after a HelloRetryRequest) names the hash in use.
  if (md && md != SSL_CIPHER_get_handshake_digest(SSL_SESSION_get0_cipher(session))) {
    SSL_SESSION_free(session);
    return 1;
  }
  *id = reinterpret_cast<const unsigned char*>(kPskIdentity);
  *id_length = sizeof(kPskIdentity) - 1;
  *out = session;
  return 1;
}

// Marks a connection whose peer offered the key (UsedPreSharedKey).
int OfferedPskIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int FindPskSession(SSL* ssl, const unsigned char* id, size_t id_length, SSL_SESSION** out) {
  *out = nullptr;
  // Another identity: not ours; the handshake goes on without a key (and
  // fails, unless the context has a certificate).
  if (id_length != sizeof(kPskIdentity) - 1 || CRYPTO_memcmp(id, kPskIdentity, id_length) != 0) return 1;
  *out = PskSession(ssl);
  if (*out) SSL_set_ex_data(ssl, OfferedPskIndex(), ssl);
  return *out ? 1 : 0;
}

void PskOnly(ssl::context& context) {
  SSL_CTX_set_min_proto_version(context.native_handle(), TLS1_3_VERSION);
  context.set_options(ssl::context::no_compression);
  SSL_CTX_set_options(context.native_handle(), SSL_OP_NO_TICKET);
  SSL_CTX_set_ciphersuites(context.native_handle(), CpuHasAesInstructions()
                                                        ? "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256"
                                                        : "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256");
}
}  // namespace

std::shared_ptr<ssl::context> MakePskClientContext(const std::string& secret) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  PskOnly(*context);
  // No trust store: a server that answers with a certificate instead of
  // taking the key fails verification.
  SSL_CTX_set_verify(context->native_handle(), SSL_VERIFY_PEER, nullptr);
  SetPsk(context->native_handle(), secret);
  SSL_CTX_set_psk_use_session_callback(context->native_handle(), UsePskSession);
  return context;
}

std::shared_ptr<ssl::context> MakePskServerContext(const std::string& secret) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  PskOnly(*context);
  AddPskToServerContext(*context, secret);
  return context;
}

void AddPskToServerContext(ssl::context& context, const std::string& secret) {
  SetPsk(context.native_handle(), secret);
  SSL_CTX_set_psk_find_session_callback(context.native_handle(), FindPskSession);
}

bool OfferedPreSharedKey(SSL* ssl) { return SSL_get_ex_data(ssl, OfferedPskIndex()) == ssl; }

bool UsedPreSharedKey(SSL* ssl) {
  // The peer offered our key and OpenSSL took it (it counts a handshake with
  // a key as a resumption: no certificate was sent). A device resuming a
  // ticket of its own is a resumption too, but offered no key of ours.
  return SSL_get_ex_data(ssl, OfferedPskIndex()) == ssl && SSL_session_reused(ssl) == 1;
}

bool CpuHasAesInstructions() {
#if defined(__x86_64__) || defined(__i386__)
  return __builtin_cpu_supports("aes") && __builtin_cpu_supports("pclmul");
#elif defined(__aarch64__)
  const unsigned long caps = getauxval(AT_HWCAP);
  return (caps & HWCAP_AES) && (caps & HWCAP_PMULL);
#else
  return false;
#endif
}

std::optional<std::string> NormalizePin(const std::string& pin) {
  std::string out;
  for (char c : pin) {
    if (c == ':' || c == ' ') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (out.size() != 64) return std::nullopt;
  return out;
}

std::string CertificateSha256(const std::string& pem_file, std::string* error) {
  std::FILE* f = std::fopen(pem_file.c_str(), "r");
  if (!f) {
    *error = "cannot read certificate '" + pem_file + "'";
    return {};
  }
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) {
    *error = "'" + pem_file + "' holds no PEM certificate";
    return {};
  }
  std::string digest = CertSha256(cert);
  X509_free(cert);
  return digest;
}

std::shared_ptr<ssl::context> MakeTlsClientContext(const TlsClientOptions& options,
                                                   std::string* error) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  RequireModernTls(*context, /*server=*/false);
  boost::system::error_code ec;
  if (!options.pin_sha256.empty()) {
    const auto pin = NormalizePin(options.pin_sha256);
    if (!pin) {
      *error = "--pin_sha256 must be 64 hex digits (colons allowed), the SHA-256 of the relay's "
               "certificate";
      return nullptr;
    }
    // A pinned certificate is trusted for what it is, self-signed or not: only
    // the leaf's digest matters, compared in constant time.
    context->set_verify_mode(ssl::verify_peer);
    context->set_verify_callback([pin = *pin](bool, ssl::verify_context& ctx) {
      X509_STORE_CTX* store = ctx.native_handle();
      if (X509_STORE_CTX_get_error_depth(store) > 0) return true;
      const std::string seen = CertSha256(X509_STORE_CTX_get_current_cert(store));
      return seen.size() == pin.size() && CRYPTO_memcmp(seen.data(), pin.data(), pin.size()) == 0;
    });
  } else {
    context->set_verify_mode(ssl::verify_peer);
    if (!options.ca_file.empty()) {
      if (!Readable(options.ca_file, "--ca_file", error)) return nullptr;
      context->load_verify_file(options.ca_file, ec);
      if (ec) {
        *error = "--ca_file '" + options.ca_file + "': " + ec.message();
        return nullptr;
      }
    } else {
      context->set_default_verify_paths(ec);
    }
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    if (options.cert_file.empty() || options.key_file.empty()) {
      *error = "a client certificate needs both --tls_cert and --tls_key";
      return nullptr;
    }
    if (!Readable(options.cert_file, "--tls_cert", error) ||
        !Readable(options.key_file, "--tls_key", error)) {
      return nullptr;
    }
    context->use_certificate_chain_file(options.cert_file, ec);
    if (!ec) context->use_private_key_file(options.key_file, ssl::context::pem, ec);
    if (ec) {
      *error = "client certificate: " + ec.message();
      return nullptr;
    }
  }
  return context;
}

std::shared_ptr<ssl::context> MakeTlsServerContext(const TlsServerOptions& options,
                                                   std::string* error) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    *error = "TLS needs both --tls_cert and --tls_key";
    return nullptr;
  }
  if (!Readable(options.cert_file, "--tls_cert", error) ||
      !Readable(options.key_file, "--tls_key", error)) {
    return nullptr;
  }
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  RequireModernTls(*context, /*server=*/true);
  boost::system::error_code ec;
  context->use_certificate_chain_file(options.cert_file, ec);
  if (ec) {
    *error = "--tls_cert '" + options.cert_file + "': " + ec.message();
    return nullptr;
  }
  context->use_private_key_file(options.key_file, ssl::context::pem, ec);
  if (ec) {
    *error = "--tls_key '" + options.key_file + "': " + ec.message() +
             " (is it the key of --tls_cert?)";
    return nullptr;
  }
  if (!options.client_ca_file.empty()) {
    if (!Readable(options.client_ca_file, "--tls_client_ca", error)) return nullptr;
    context->load_verify_file(options.client_ca_file, ec);
    if (ec) {
      *error = "--tls_client_ca '" + options.client_ca_file + "': " + ec.message();
      return nullptr;
    }
    context->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  }
  return context;
}

}  // namespace mnedc::transport
