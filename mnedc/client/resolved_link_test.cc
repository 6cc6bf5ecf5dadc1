// ResolvedLink against a private D-Bus daemon (dbus-daemon, started here)
// and a stand-in for systemd-resolved that records what it is asked.
#include "mnedc/client/resolved_link.h"

#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace mnedc::client {
namespace {
using namespace std::chrono_literals;

// A message bus of our own, configured like a system bus that lets anyone own any name.
class PrivateBus {
 public:
  PrivateBus() {
    dir_ = std::filesystem::temp_directory_path() / ("mnedc-bus-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    socket_ = (dir_ / "bus").string();
    const std::string config = (dir_ / "bus.conf").string();
    std::ofstream(config) << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
                             " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                             "<busconfig><type>system</type><listen>unix:path=" << socket_
                          << "</listen><auth>EXTERNAL</auth><policy context=\"default\">"
                             "<allow user=\"*\"/><allow own=\"*\"/><allow send_destination=\"*\"/>"
                             "<allow receive_sender=\"*\"/></policy></busconfig>\n";
    std::string program = "dbus-daemon", config_flag = "--config-file=" + config, nofork = "--nofork";
    char* argv[] = {program.data(), config_flag.data(), nofork.data(), nullptr};
    if (::posix_spawnp(&pid_, "dbus-daemon", nullptr, nullptr, argv, environ) != 0) pid_ = -1;
    for (int i = 0; i < 200 && pid_ > 0 && !std::filesystem::exists(socket_); ++i) std::this_thread::sleep_for(10ms);
  }
  ~PrivateBus() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::filesystem::remove_all(dir_);
  }
  bool up() const { return pid_ > 0 && std::filesystem::exists(socket_); }
  std::string address() const { return "unix:path=" + socket_; }

 private:
  std::filesystem::path dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

// Owns org.freedesktop.resolve1 on the bus and records the Manager calls.
class FakeResolved {
 public:
  explicit FakeResolved(const std::string& address) {
    sd_bus_new(&bus_);
    sd_bus_set_address(bus_, address.c_str());
    sd_bus_set_bus_client(bus_, 1);
    ok_ = sd_bus_start(bus_) >= 0 &&
          sd_bus_add_object_vtable(bus_, nullptr, "/org/freedesktop/resolve1", "org.freedesktop.resolve1.Manager",
                                   kVtable, this) >= 0 &&
          sd_bus_request_name(bus_, "org.freedesktop.resolve1", 0) >= 0;
    thread_ = std::thread([this] {
      while (!stop_) {
        const int r = sd_bus_process(bus_, nullptr);
        if (r < 0) break;
        if (r == 0) sd_bus_wait(bus_, 20'000);
      }
    });
  }
  ~FakeResolved() {
    stop_ = true;
    thread_.join();
    sd_bus_flush_close_unref(bus_);
  }
  bool ok() const { return ok_; }
  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }
  // Waits (boundedly) for `count` calls.
  std::vector<std::string> WaitFor(std::size_t count) {
    for (int i = 0; i < 200 && calls().size() < count; ++i) std::this_thread::sleep_for(10ms);
    return calls();
  }

 private:
  void Record(std::string call) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(call));
  }
  static int SetLinkDns(sd_bus_message* m, void* self, sd_bus_error*) {
    int ifindex = 0;
    sd_bus_message_read(m, "i", &ifindex);
    std::string call = "SetLinkDNS " + std::to_string(ifindex);
    sd_bus_message_enter_container(m, 'a', "(iay)");
    while (sd_bus_message_enter_container(m, 'r', "iay") > 0) {
      int family = 0;
      const void* data = nullptr;
      size_t size = 0;
      sd_bus_message_read(m, "i", &family);
      sd_bus_message_read_array(m, 'y', &data, &size);
      sd_bus_message_exit_container(m);
      char text[64] = {};
      inet_ntop(family, data, text, sizeof(text));
      call += std::string(" ") + (family == AF_INET ? "inet " : "inet6 ") + text + (size == 4 || size == 16 ? "" : "?");
    }
    sd_bus_message_exit_container(m);
    static_cast<FakeResolved*>(self)->Record(call);
    return sd_bus_reply_method_return(m, "");
  }
  static int SetLinkDomains(sd_bus_message* m, void* self, sd_bus_error*) {
    int ifindex = 0;
    sd_bus_message_read(m, "i", &ifindex);
    std::string call = "SetLinkDomains " + std::to_string(ifindex);
    sd_bus_message_enter_container(m, 'a', "(sb)");
    const char* domain = nullptr;
    int routing_only = 0;
    while (sd_bus_message_read(m, "(sb)", &domain, &routing_only) > 0) {
      call += std::string(" ") + (routing_only ? "~" : "") + domain;
    }
    sd_bus_message_exit_container(m);
    static_cast<FakeResolved*>(self)->Record(call);
    return sd_bus_reply_method_return(m, "");
  }
  static int RevertLink(sd_bus_message* m, void* self, sd_bus_error*) {
    int ifindex = 0;
    sd_bus_message_read(m, "i", &ifindex);
    static_cast<FakeResolved*>(self)->Record("RevertLink " + std::to_string(ifindex));
    return sd_bus_reply_method_return(m, "");
  }
  static constexpr sd_bus_vtable kVtable[] = {
      SD_BUS_VTABLE_START(0),
      SD_BUS_METHOD("SetLinkDNS", "ia(iay)", "", SetLinkDns, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("SetLinkDomains", "ia(sb)", "", SetLinkDomains, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_METHOD("RevertLink", "i", "", RevertLink, SD_BUS_VTABLE_UNPRIVILEGED),
      SD_BUS_VTABLE_END};

  sd_bus* bus_ = nullptr;
  bool ok_ = false;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> calls_;
};

TEST(ResolvedLink, WithoutABusOrWithoutResolvedItSaysWhy) {
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/mnedc-test-bus", 1);
  std::string why;
  EXPECT_FALSE(ResolvedLink::Connect(&why));
  EXPECT_NE(why.find("no system bus"), std::string::npos) << why;

  PrivateBus bus;
  if (!bus.up()) GTEST_SKIP() << "SKIPPED: cannot start dbus-daemon (install dbus-daemon: tools/install-deps)";
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address().c_str(), 1);
  EXPECT_FALSE(ResolvedLink::Connect(&why));
  EXPECT_NE(why.find("systemd-resolved is not running"), std::string::npos) << why;
}

TEST(ResolvedLink, RegistersTheDomainOnTheLinkAndRevertsIt) {
  PrivateBus bus;
  if (!bus.up()) GTEST_SKIP() << "SKIPPED: cannot start dbus-daemon (install dbus-daemon: tools/install-deps)";
  ::setenv("DBUS_SYSTEM_BUS_ADDRESS", bus.address().c_str(), 1);
  FakeResolved resolved(bus.address());
  ASSERT_TRUE(resolved.ok());
  std::string why;
  {
    auto link = ResolvedLink::Connect(&why);
    ASSERT_TRUE(link) << why;
    ASSERT_TRUE(link->Register(7, 0x0a000001, base::ParseIpv6("fd00:1:2::1"), "mnedc.internal", &why)) << why;
    // A new lease on another interface (the TUN was created again): the old one is reverted.
    ASSERT_TRUE(link->Register(9, 0x0a000001, std::nullopt, "mnedc.internal", &why)) << why;
  }
  EXPECT_EQ(resolved.WaitFor(6), (std::vector<std::string>{
                                     "SetLinkDNS 7 inet 10.0.0.1 inet6 fd00:1:2::1",
                                     "SetLinkDomains 7 ~mnedc.internal",
                                     "RevertLink 7",
                                     "SetLinkDNS 9 inet 10.0.0.1",
                                     "SetLinkDomains 9 ~mnedc.internal",
                                     "RevertLink 9",
                                 }));
}

}  // namespace
}  // namespace mnedc::client
