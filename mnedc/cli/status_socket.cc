#include "mnedc/cli/status_socket.h"

#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <filesystem>

namespace mnedc::cli {
namespace asio = boost::asio;

std::string UnixSocketPathProblem(const std::string& path) {
  if (!path.empty() && path.size() < sizeof(sockaddr_un::sun_path)) return {};
  return "a Unix socket's path is 1 to " + std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes long";
}

bool OpenStatusSocket(const std::string& path, asio::local::stream_protocol::acceptor& acceptor,
                      std::string* error) {
  namespace fs = std::filesystem;
  if (const std::string problem = UnixSocketPathProblem(path); !problem.empty()) {
    *error = "--status_socket=" + path + ": " + problem;
    return false;
  }
  std::error_code fs_error;
  fs::create_directories(fs::path(path).parent_path(), fs_error);
  asio::local::stream_protocol::socket probe(acceptor.get_executor());
  boost::system::error_code ec;
  probe.connect(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) {
    *error = "another client already serves " + path + " (pass --status_socket=PATH or none)";
    return false;
  }
  ::unlink(path.c_str());
  const mode_t old_mask = ::umask(0177);  // Created owner-only: no window for others.
  acceptor.open(asio::local::stream_protocol(), ec);
  if (!ec) acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
  if (!ec) acceptor.listen(16, ec);
  ::umask(old_mask);
  if (ec) {
    *error = "cannot serve status on " + path + ": " + ec.message();
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return false;
  }
  return true;
}

}  // namespace mnedc::cli
