#include "mnedc/cli/peer_hook.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mnedc::cli {
namespace {

using namespace std::chrono_literals;

std::string TempPath(const char* name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(PeerHook, RunsInOrderWithTheEnvironment) {
  const std::string out = TempPath("hook-events");
  std::remove(out.c_str());
  boost::asio::io_context io;
  // The first hook is slow: the second must still come after it.
  PeerHook hook(io.get_executor(),
                "[ \"$MNEDC_EVENT\" = up ] && sleep 0.2; "
                "echo \"$MNEDC_EVENT $MNEDC_PEER_ID $MNEDC_PEER_ADDR ${MNEDC_PEER_ADDR6-none}\" >> " + out);
  boost::asio::co_spawn(io, hook.Run(), boost::asio::detached);
  hook.OnEvent(discovery::PeerEvent::kUp, {"dev-b", 0x0a000003, "1.2.3.4:5", base::ParseIpv6("fd00:1::3")});
  hook.OnEvent(discovery::PeerEvent::kDown, {"dev-b", 0x0a000003, "1.2.3.4:5", base::ParseIpv6("fd00:1::3")});
  // An IPv4-only network's peer: no MNEDC_PEER_ADDR6 at all.
  hook.OnEvent(discovery::PeerEvent::kUp, {"dev-c", 0x0a000004, "1.2.3.4:6"});
  const std::string expected = "up dev-b 10.0.0.3 fd00:1::3\ndown dev-b 10.0.0.3 fd00:1::3\nup dev-c 10.0.0.4 none\n";
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ReadAll(out) != expected && std::chrono::steady_clock::now() < deadline) {
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_EQ(ReadAll(out), expected);
}

TEST(PeerHook, KillsAHookThatHangs) {
  const std::string out = TempPath("hook-after-hang");
  std::remove(out.c_str());
  boost::asio::io_context io;
  PeerHook hook(io.get_executor(),
                "if [ \"$MNEDC_PEER_ID\" = stuck ]; then sleep 60; else echo done > " + out + "; fi",
                std::chrono::seconds(1));
  boost::asio::co_spawn(io, hook.Run(), boost::asio::detached);
  hook.OnEvent(discovery::PeerEvent::kUp, {"stuck", 1, ""});
  hook.OnEvent(discovery::PeerEvent::kUp, {"next", 2, ""});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ReadAll(out).empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_EQ(ReadAll(out), "done\n");
}

// A process that has ended (gone, or a zombie waiting for its reaper).
bool Ended(pid_t pid) {
  if (::kill(pid, 0) != 0) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string pid_field, name, state;
  stat >> pid_field >> name >> state;
  return state == "Z";
}

// A hook that ignores SIGTERM, with a child that inherits that: what the
// client's exit once waited for without bound.
std::string StubbornHook(const std::string& pid_file) {
  return "trap '' TERM; sleep 60 & echo $! > " + pid_file + ".tmp; mv " + pid_file + ".tmp " +
         pid_file + "; wait";
}

pid_t WaitForPid(boost::asio::io_context& io, const std::string& pid_file) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ReadAll(pid_file).empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(20ms);
    io.restart();
  }
  return static_cast<pid_t>(std::atoi(ReadAll(pid_file).c_str()));
}

TEST(PeerHook, StopEndsAHookThatIgnoresTermWithItsChildren) {
  const std::string pid_file = TempPath("stubborn-stop.pid");
  std::remove(pid_file.c_str());
  boost::asio::io_context io;
  PeerHook hook(io.get_executor(), StubbornHook(pid_file), std::chrono::seconds(30), 300ms);
  bool done = false;
  boost::asio::co_spawn(io, [&]() -> boost::asio::awaitable<void> {
    co_await hook.Run();
    done = true;
  }, boost::asio::detached);
  hook.OnEvent(discovery::PeerEvent::kUp, {"dev-b", 1, ""});
  const pid_t child = WaitForPid(io, pid_file);
  ASSERT_GT(child, 0);
  const auto stopped_at = std::chrono::steady_clock::now();
  hook.Stop();
  while (!done && std::chrono::steady_clock::now() < stopped_at + 10s) {
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_TRUE(done);
  EXPECT_TRUE(Ended(child)) << "the hook's child outlived it";
}

TEST(PeerHook, DestroyingItWhileAHookRunsIsBounded) {
  const std::string pid_file = TempPath("stubborn-destroy.pid");
  std::remove(pid_file.c_str());
  boost::asio::io_context io;
  pid_t child = 0;
  const auto start = std::chrono::steady_clock::now();
  {
    PeerHook hook(io.get_executor(), StubbornHook(pid_file));
    boost::asio::co_spawn(io, hook.Run(), boost::asio::detached);
    hook.OnEvent(discovery::PeerEvent::kUp, {"dev-b", 1, ""});
    child = WaitForPid(io, pid_file);
    ASSERT_GT(child, 0);
  }  // Without a bound, this waited for the 60 s sleep.
  EXPECT_LT(std::chrono::steady_clock::now() - start, 20s);
  EXPECT_TRUE(Ended(child)) << "the hook's child outlived it";
}

}  // namespace
}  // namespace mnedc::cli
