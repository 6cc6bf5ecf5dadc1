#pragma once
// TLS settings for both ends: TLS 1.2 or later only (1.3 preferred, as OpenSSL
// negotiates the highest both support), AEAD ciphers only, the fastest for this
// CPU first, verification by CA or pinned key.
#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <optional>
#include <string>

namespace mnedc::transport {

struct TlsClientOptions {
  std::string ca_file;        // Verify the relay against these CAs (and its name)...
  std::string pin_sha256;     // ...or against this SHA-256 of its certificate (hex, ':' allowed).
  std::string cert_file;      // Client certificate for mutual TLS (optional).
  std::string key_file;
};

struct TlsServerOptions {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // If set, clients must present a certificate from these CAs.
};

// Build contexts; on failure return null and a one-line `error`.
std::shared_ptr<boost::asio::ssl::context> MakeTlsClientContext(const TlsClientOptions& options,
                                                                 std::string* error);
std::shared_ptr<boost::asio::ssl::context> MakeTlsServerContext(const TlsServerOptions& options,
                                                                 std::string* error);

// TLS 1.3 keyed by a secret both ends hold (an external pre-shared key,
// RFC 8446 section 2.2, with ECDHE for forward secrecy): no certificates, and
// only a peer that knows the secret completes the handshake. The relays'
// mesh uses it with the cluster secret. A client context offers the key; a
// server context takes it (AddPskToServerContext gives a certificate context
// the same, so one listener serves devices and relays). `secret` must not be
// empty.
std::shared_ptr<boost::asio::ssl::context> MakePskClientContext(const std::string& secret);
std::shared_ptr<boost::asio::ssl::context> MakePskServerContext(const std::string& secret);
void AddPskToServerContext(boost::asio::ssl::context& context, const std::string& secret);
// Whether the connection's TLS handshake was made with such a key; whether
// the peer offered one under the relays' identity at all (a handshake that
// offered one and failed: a relay with another secret).
bool UsedPreSharedKey(SSL* ssl);
bool OfferedPreSharedKey(SSL* ssl);

// Lower-case hex SHA-256 of a DER certificate ("ab12..."), for pins and logs.
std::string CertificateSha256(const std::string& pem_file, std::string* error);

// Whether the CPU has AES and carry-less multiply instructions (AES-GCM in
// hardware). The contexts above list AES-128-GCM first if so, else
// ChaCha20-Poly1305.
bool CpuHasAesInstructions();

// Normalizes a pin: strips ':' and spaces, lower-cases; nullopt unless 64 hex digits.
std::optional<std::string> NormalizePin(const std::string& pin);

}  // namespace mnedc::transport
