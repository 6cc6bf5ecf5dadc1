#pragma once
// Throw-away certificates for TLS tests, made with OpenSSL at test time: a CA,
// a relay certificate for 127.0.0.1/localhost, an expired one, one for another
// name, a second unrelated CA, and a client certificate for mutual TLS.
#include <string>

namespace mnedc::testing {

struct TestPki {
  std::string ca_cert;
  std::string other_ca_cert;
  std::string server_cert, server_key;    // CN relay, SAN IP:127.0.0.1, DNS:localhost
  std::string expired_cert, expired_key;  // Same names, expired yesterday.
  std::string wrong_name_cert, wrong_name_key;  // SAN DNS:elsewhere.test only.
  std::string client_cert, client_key;    // Signed by the CA.
  std::string client_from_other_ca_cert, client_from_other_ca_key;
};

// Writes the files into `directory` (which must exist) and returns their paths.
TestPki MakeTestPki(const std::string& directory);

}  // namespace mnedc::testing
