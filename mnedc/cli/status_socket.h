#pragma once
// The client's status socket (--status_socket): a Unix socket only its owner
// may connect to, for `ctl status` and metrics.
#include <boost/asio/local/stream_protocol.hpp>
#include <string>

namespace mnedc::cli {

// Empty if `path` can name a Unix socket; else why not ("a Unix socket's path
// is 1 to 107 bytes long"). Asio would throw on it.
std::string UnixSocketPathProblem(const std::string& path);

// Binds and listens on `path`: its directory is made if missing, a stale
// socket left by a crash is replaced, a live one (another client serving it)
// is not, and the socket is created owner-only (mode 0600, no window in
// which others may connect). False with `error` (naming the path).
bool OpenStatusSocket(const std::string& path, boost::asio::local::stream_protocol::acceptor& acceptor,
                      std::string* error);

}  // namespace mnedc::cli
