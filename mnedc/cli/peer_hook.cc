#include "mnedc/cli/peer_hook.h"

#include <glog/logging.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <vector>

#include "mnedc/protocol/control_codec.h"

extern char** environ;

namespace mnedc::cli {
namespace {
constexpr std::size_t kMaxPending = 1024;  // Beyond this, the oldest events are dropped.
}

PeerHook::PeerHook(boost::asio::any_io_executor executor, std::string command,
                   std::chrono::seconds time_limit)
    : command_(std::move(command)), time_limit_(time_limit), poll_timer_(executor) {}

PeerHook::~PeerHook() {
  if (running_ > 0) {
    ::kill(running_, SIGTERM);
    ::waitpid(running_, nullptr, 0);
  }
}

void PeerHook::OnEvent(discovery::PeerEvent event, const discovery::Peer& peer) {
  if (stopped_ || command_.empty()) return;
  if (pending_.size() >= kMaxPending) {
    LOG(WARNING) << "--on_peer hook is " << kMaxPending << " events behind; dropping the oldest";
    pending_.pop_front();
  }
  pending_.push_back(
      {discovery::PeerEventName(event), peer.device_id, protocol::Ipv4ToString(peer.address)});
  if (running_ < 0) StartNext();
}

void PeerHook::StartNext() {
  if (pending_.empty()) return;
  const Pending next = std::move(pending_.front());
  pending_.pop_front();
  std::vector<std::string> env_storage = {"MNEDC_EVENT=" + next.event,
                                          "MNEDC_PEER_ID=" + next.device_id,
                                          "MNEDC_PEER_ADDR=" + next.address};
  std::vector<char*> env;
  for (char** e = environ; *e; ++e) {
    const std::string_view entry(*e);
    if (entry.starts_with("MNEDC_EVENT=") || entry.starts_with("MNEDC_PEER_")) continue;
    env.push_back(*e);
  }
  for (auto& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  std::string shell = "/bin/sh", dash_c = "-c", command = command_;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, env.data());
  if (error != 0) {
    LOG(ERROR) << "cannot run --on_peer hook: " << std::strerror(error);
    return StartNext();
  }
  running_ = pid;
  started_ = std::chrono::steady_clock::now();
  Poll();
}

void PeerHook::Poll() {
  int status = 0;
  const pid_t done = ::waitpid(running_, &status, WNOHANG);
  if (done == running_ || done < 0) {
    if (done == running_ && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
      LOG(WARNING) << "--on_peer hook failed (status " << status << ")";
    }
    running_ = -1;
    return StartNext();
  }
  if (std::chrono::steady_clock::now() - started_ > time_limit_) {
    LOG(WARNING) << "--on_peer hook ran over " << time_limit_.count() << "s; killing it";
    ::kill(running_, SIGKILL);
  }
  poll_timer_.expires_after(std::chrono::milliseconds(20));
  poll_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) Poll();
  });
}

}  // namespace mnedc::cli
