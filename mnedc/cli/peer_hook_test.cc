#include "mnedc/cli/peer_hook.h"

#include <gtest/gtest.h>

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
                "echo \"$MNEDC_EVENT $MNEDC_PEER_ID $MNEDC_PEER_ADDR\" >> " + out);
  hook.OnEvent(discovery::PeerEvent::kUp, {"dev-b", 0x0a000003, "1.2.3.4:5"});
  hook.OnEvent(discovery::PeerEvent::kDown, {"dev-b", 0x0a000003, "1.2.3.4:5"});
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (ReadAll(out) != "up dev-b 10.0.0.3\ndown dev-b 10.0.0.3\n" &&
         std::chrono::steady_clock::now() < deadline) {
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_EQ(ReadAll(out), "up dev-b 10.0.0.3\ndown dev-b 10.0.0.3\n");
}

TEST(PeerHook, KillsAHookThatHangs) {
  const std::string out = TempPath("hook-after-hang");
  std::remove(out.c_str());
  boost::asio::io_context io;
  PeerHook hook(io.get_executor(),
                "if [ \"$MNEDC_PEER_ID\" = stuck ]; then sleep 60; else echo done > " + out + "; fi",
                std::chrono::seconds(1));
  hook.OnEvent(discovery::PeerEvent::kUp, {"stuck", 1, ""});
  hook.OnEvent(discovery::PeerEvent::kUp, {"next", 2, ""});
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ReadAll(out).empty() && std::chrono::steady_clock::now() < deadline) {
    io.run_for(20ms);
    io.restart();
  }
  EXPECT_EQ(ReadAll(out), "done\n");
}

}  // namespace
}  // namespace mnedc::cli
