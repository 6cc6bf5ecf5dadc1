#pragma once
// A real etcd for tests: Debian's etcd-server binary on 127.0.0.1, its data
// in a temporary directory, stopped (SIGKILL) and removed with the object.
#include <sys/types.h>

#include <cstdint>
#include <string>

namespace mnedc::testing {

// Where a test keeps its files: Bazel's TEST_TMPDIR, else /tmp.
std::string TestTempDir();

class EtcdServer {
 public:
  // Starts etcd; `available()` false (and `why()` says so) if it cannot here.
  explicit EtcdServer(const std::string& directory);
  ~EtcdServer();
  EtcdServer(const EtcdServer&) = delete;
  EtcdServer& operator=(const EtcdServer&) = delete;

  bool available() const { return pid_ > 0; }
  const std::string& why() const { return why_; }
  uint16_t client_port() const { return client_port_; }

  // Stops it (SIGSTOP) and lets it go on (SIGCONT): etcd unreachable without
  // losing its data.
  void Pause();
  void Resume();

 private:
  pid_t pid_ = -1;
  std::string why_;
  std::string data_;
  uint16_t client_port_ = 0;
};

}  // namespace mnedc::testing
