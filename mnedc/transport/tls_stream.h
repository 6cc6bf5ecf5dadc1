#pragma once
// Native mnedc frames over TLS, on a connection whose TLS handshake is done.
// Dial() and AcceptStream() make them.
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string>
#include <vector>

#include "mnedc/transport/stream.h"
#include "mnedc/transport/tls_socket.h"

namespace mnedc::transport {

// `already_read` holds plaintext the acceptor read while telling TLS-native
// from WebSocket; the first reads return it.
std::unique_ptr<Stream> MakeTlsStream(TlsSocket socket, std::vector<uint8_t> already_read = {});

// The names a verified peer certificate gives its holder: subject CN, then
// DNS, URI and email SANs. Empty without a certificate or when it did not
// verify.
std::vector<std::string> CertificateNames(SSL* ssl);

// Sends close_notify if it can go out now, then FIN: the peer reads all that
// was sent and then sees the end.
void ShutdownSendOf(TlsSocket& socket);

}  // namespace mnedc::transport
