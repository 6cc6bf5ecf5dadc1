#include "mnedc/cli/peer_hook.h"

#include <glog/logging.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>
#include <vector>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"


extern char** environ;

namespace mnedc::cli {
namespace {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxPending = 1024;  // Beyond this, the oldest events are dropped.
constexpr auto kPollInterval = std::chrono::milliseconds(20);
// After SIGKILL a process ends at once, unless the kernel holds it (D state).
constexpr auto kKillWait = std::chrono::seconds(5);
}  // namespace

PeerHook::PeerHook(asio::any_io_executor executor, std::string command,
                   Clock::duration time_limit, Clock::duration stop_grace)
    : command_(std::move(command)),
      time_limit_(time_limit),
      stop_grace_(stop_grace),
      wake_(executor, Clock::time_point::max()),
      poll_timer_(executor) {}

PeerHook::~PeerHook() {
  if (running_ <= 0) return;
  // Run() did not get to end it: no grace left, but never an unbounded wait
  // on a hook that ignores SIGTERM.
  SignalGroup(SIGKILL);
  const auto deadline = Clock::now() + kKillWait;
  while (!Reap() && Clock::now() < deadline) ::usleep(10000);
}

void PeerHook::OnEvent(discovery::PeerEvent event, const discovery::Peer& peer) {
  if (stopped_ || command_.empty()) return;
  if (pending_.size() >= kMaxPending) {
    LOG(WARNING) << "--on_peer hook is " << kMaxPending << " events behind; dropping the oldest";
    pending_.pop_front();
  }
  pending_.push_back({discovery::PeerEventName(event), peer.device_id, base::Ipv4ToString(peer.address),
                      peer.address6 ? base::Ipv6ToString(*peer.address6) : std::string()});
  wake_.cancel();
}

void PeerHook::Stop() {
  stopped_ = true;
  wake_.cancel();
  poll_timer_.cancel();
}

void PeerHook::SignalGroup(int signal) {
  if (running_ > 0) ::kill(-running_, signal);
}

void PeerHook::Start(const Pending& next) {
  std::vector<std::string> env_storage = {"MNEDC_EVENT=" + next.event,
                                          "MNEDC_PEER_ID=" + next.device_id,
                                          "MNEDC_PEER_ADDR=" + next.address};
  if (!next.address6.empty()) env_storage.push_back("MNEDC_PEER_ADDR6=" + next.address6);
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
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attributes, 0);  // A group of its own, named by its pid.
  pid_t pid = -1;
  const int error = ::posix_spawn(&pid, "/bin/sh", nullptr, &attributes, argv, env.data());
  posix_spawnattr_destroy(&attributes);
  if (error != 0) {
    LOG(ERROR) << "cannot run --on_peer hook: " << std::strerror(error);
    return;
  }
  running_ = pid;
  started_ = Clock::now();
}

bool PeerHook::Reap() {
  if (running_ <= 0) return true;
  int status = 0;
  const pid_t done = ::waitpid(running_, &status, WNOHANG);
  if (done == 0) return false;
  if (done == running_ && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
    if (WIFSIGNALED(status)) {
      LOG(WARNING) << "--on_peer hook ended by signal " << WTERMSIG(status);
    } else {
      LOG(WARNING) << "--on_peer hook failed (exit status " << WEXITSTATUS(status) << ")";
    }
  }
  running_ = -1;
  return true;
}

asio::awaitable<bool> PeerHook::WaitForExit(Clock::time_point deadline, bool stop_ends_wait) {
  for (;;) {
    if (Reap()) co_return true;
    const auto now = Clock::now();
    if (now >= deadline || (stop_ends_wait && stopped_)) co_return false;
    poll_timer_.expires_after(std::min<Clock::duration>(kPollInterval, deadline - now));
    co_await poll_timer_.async_wait(base::kUse);
  }
}

asio::awaitable<void> PeerHook::Run() {
  while (!stopped_) {
    if (pending_.empty()) {
      wake_.expires_at(Clock::time_point::max());
      co_await wake_.async_wait(base::kUse);
      continue;
    }
    const Pending next = std::move(pending_.front());
    pending_.pop_front();
    Start(next);
    if (co_await WaitForExit(started_ + time_limit_, /*stop_ends_wait=*/true) || stopped_) continue;
    LOG(WARNING) << "--on_peer hook ran over "
                 << std::chrono::duration_cast<std::chrono::seconds>(time_limit_).count()
                 << "s; killing it";
    SignalGroup(SIGKILL);
    co_await WaitForExit(Clock::now() + kKillWait, false);
  }
  if (running_ <= 0) co_return;
  // Stopping with a hook still running: ask, then insist.
  SignalGroup(SIGTERM);
  if (co_await WaitForExit(Clock::now() + stop_grace_, false)) co_return;
  LOG(WARNING) << "--on_peer hook did not end within "
               << std::chrono::duration_cast<std::chrono::milliseconds>(stop_grace_).count()
               << " ms of SIGTERM; killing it";
  SignalGroup(SIGKILL);
  co_await WaitForExit(Clock::now() + kKillWait, false);
}

}  // namespace mnedc::cli
