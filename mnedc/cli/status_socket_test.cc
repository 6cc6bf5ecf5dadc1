// The client's status socket: its directory made if missing, owner-only, a
// stale socket from a crash replaced, a live one (another client) left alone
// with an error that says what to do.
#include "mnedc/cli/status_socket.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace mnedc::cli {
namespace {
namespace asio = boost::asio;
namespace fs = std::filesystem;
using Acceptor = asio::local::stream_protocol::acceptor;

// Under /tmp (Bazel's TEST_TMPDIR is longer than a Unix socket's path may
// be), removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string dir = "/tmp/status_socket_XXXXXX";
    if (mkdtemp(dir.data())) path_ = dir;
  }
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool Reachable(asio::io_context& io, const std::string& path) {
  asio::local::stream_protocol::socket client(io);
  boost::system::error_code ec;
  client.connect(asio::local::stream_protocol::endpoint(path), ec);
  return !ec;
}

TEST(StatusSocket, MakesItsDirectoryAndIsOwnerOnly) {
  asio::io_context io;
  const TempDir dir;
  const std::string path = dir.path() + "/run/mnedc/status.sock";
  Acceptor acceptor(io);
  std::string error;
  ASSERT_TRUE(OpenStatusSocket(path, acceptor, &error)) << error;
  struct stat info {};
  ASSERT_EQ(stat(path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_TRUE(Reachable(io, path));
}

TEST(StatusSocket, AStaleSocketIsReplacedALiveOneIsNot) {
  asio::io_context io;
  const TempDir dir;
  const std::string path = dir.path() + "/status.sock";
  std::string error;
  {
    Acceptor crashed(io);
    ASSERT_TRUE(OpenStatusSocket(path, crashed, &error)) << error;
  }  // Closed without removing its file, as a crash leaves it.
  ASSERT_TRUE(fs::exists(path));
  ASSERT_FALSE(Reachable(io, path));
  Acceptor next(io);
  ASSERT_TRUE(OpenStatusSocket(path, next, &error)) << error;
  EXPECT_TRUE(Reachable(io, path));

  Acceptor second(io);
  EXPECT_FALSE(OpenStatusSocket(path, second, &error));
  EXPECT_EQ(error, "another client already serves " + path + " (pass --status_socket=PATH or none)");
  EXPECT_FALSE(second.is_open());
  EXPECT_TRUE(Reachable(io, path)) << "the live one still serves";
}

TEST(StatusSocket, APathThatCannotBeBoundSaysSo) {
  asio::io_context io;
  const TempDir dir;
  const std::string file = dir.path() + "/plain";
  std::FILE* f = std::fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fclose(f);
  const std::string path = file + "/status.sock";  // Under a regular file.
  Acceptor acceptor(io);
  std::string error;
  EXPECT_FALSE(OpenStatusSocket(path, acceptor, &error));
  EXPECT_EQ(error.rfind("cannot serve status on " + path + ": ", 0), 0u) << error;
  EXPECT_FALSE(acceptor.is_open());
}

TEST(StatusSocket, APathTooLongForAUnixSocketIsAnErrorNotACrash) {
  asio::io_context io;
  const std::string path = "/tmp/" + std::string(120, 'x') + "/status.sock";
  Acceptor acceptor(io);
  std::string error;
  EXPECT_FALSE(OpenStatusSocket(path, acceptor, &error));
  EXPECT_EQ(error, "--status_socket=" + path + ": a Unix socket's path is 1 to 107 bytes long");
  EXPECT_FALSE(fs::exists("/tmp/" + std::string(120, 'x'))) << "nothing made for it";
  EXPECT_EQ(UnixSocketPathProblem(path), "a Unix socket's path is 1 to 107 bytes long");
  EXPECT_EQ(UnixSocketPathProblem(""), "a Unix socket's path is 1 to 107 bytes long");
  EXPECT_EQ(UnixSocketPathProblem("/tmp/" + std::string(102, 'x')), "") << "107 bytes fit";
  EXPECT_NE(UnixSocketPathProblem("/tmp/" + std::string(103, 'x')), "") << "108 do not (the NUL)";
}

}  // namespace
}  // namespace mnedc::cli
