// Real kernel TUN tests. They run in a private network namespace (unshare), so
// nothing they send can leave this process's own virtual interfaces.
#include "mnedc/tun/tun_device.h"
#include "mnedc/tun/lasting_tun.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <gtest/gtest.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <cstring>
#include <vector>

namespace mnedc::tun {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

constexpr uint32_t kOwn = 0x0a4d0002;   // 10.77.0.2
constexpr uint32_t kPeer = 0x0a4d0009;  // 10.77.0.9

uint16_t Checksum(const uint8_t* data, std::size_t size) {
  uint32_t sum = 0;
  for (std::size_t i = 0; i + 1 < size; i += 2) sum += (uint32_t{data[i]} << 8) | data[i + 1];
  if (size % 2) sum += uint32_t{data[size - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// ICMP echo request peer -> own, as a remote member would send it.
std::vector<uint8_t> EchoRequest(uint16_t id) {
  std::vector<uint8_t> p(28 + 16, 0);
  p[0] = 0x45;
  p[3] = static_cast<uint8_t>(p.size());
  p[8] = 64;
  p[9] = 1;  // ICMP
  for (int i = 0; i < 4; ++i) {
    p[12 + i] = static_cast<uint8_t>(kPeer >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(kOwn >> (24 - 8 * i));
  }
  const uint16_t ip_sum = Checksum(p.data(), 20);
  p[10] = ip_sum >> 8;
  p[11] = ip_sum & 0xff;
  p[20] = 8;  // Echo request
  p[24] = id >> 8;
  p[25] = id & 0xff;
  const uint16_t icmp_sum = Checksum(p.data() + 20, p.size() - 20);
  p[22] = icmp_sum >> 8;
  p[23] = icmp_sum & 0xff;
  return p;
}

class TunDeviceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (geteuid() != 0) {
      skip_reason_ = "needs root to create TUN interfaces (run tools/test as root)";
    } else if (access("/dev/net/tun", R_OK | W_OK) != 0) {
      skip_reason_ = "/dev/net/tun is not available on this machine";
    } else if (unshare(CLONE_NEWNET) != 0) {
      skip_reason_ = std::string("cannot create a private network namespace: ") + strerror(errno);
    }
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << "SKIPPED: " << skip_reason_;
  }
  static std::string skip_reason_;
  asio::io_context io_;
};
std::string TunDeviceTest::skip_reason_;

TEST_F(TunDeviceTest, ConfiguresAddressMtuAndUp) {
  std::string error;
  auto tun = OpenTun(io_.get_executor(), "mnedct0", &error);
  ASSERT_TRUE(tun) << error;
  ASSERT_TRUE(tun->Configure(kOwn, 24, 1400, &error)) << error;

  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, "mnedct0", IFNAMSIZ - 1);
  ASSERT_EQ(ioctl(s, SIOCGIFADDR, &request), 0);
  EXPECT_EQ(ntohl(reinterpret_cast<sockaddr_in*>(&request.ifr_addr)->sin_addr.s_addr), kOwn);
  ASSERT_EQ(ioctl(s, SIOCGIFNETMASK, &request), 0);
  EXPECT_EQ(ntohl(reinterpret_cast<sockaddr_in*>(&request.ifr_netmask)->sin_addr.s_addr),
            0xffffff00u);
  ASSERT_EQ(ioctl(s, SIOCGIFMTU, &request), 0);
  EXPECT_EQ(request.ifr_mtu, 1400);
  ASSERT_EQ(ioctl(s, SIOCGIFFLAGS, &request), 0);
  EXPECT_TRUE(request.ifr_flags & IFF_UP);

  // Reconfiguring with another lease works too.
  ASSERT_TRUE(tun->Configure(kOwn + 1, 16, 1300, &error)) << error;
  ASSERT_EQ(ioctl(s, SIOCGIFMTU, &request), 0);
  EXPECT_EQ(request.ifr_mtu, 1300);

  // Closing removes the interface.
  tun->Close();
  tun.reset();
  EXPECT_NE(ioctl(s, SIOCGIFFLAGS, &request), 0);
  close(s);
}

TEST_F(TunDeviceTest, ReadsWhatTheKernelRoutesAndWritesWhatItAnswers) {
  std::string error;
  auto tun = OpenTun(io_.get_executor(), "mnedct1", &error);
  ASSERT_TRUE(tun) << error;
  ASSERT_TRUE(tun->Configure(kOwn, 24, 1400, &error)) << error;

  std::vector<std::vector<uint8_t>> read;
  asio::co_spawn(io_, tun->ReadLoop([&](std::span<const uint8_t> p, packet::Gso) {
    read.emplace_back(p.begin(), p.end());
  }), asio::detached);

  // An application sends UDP to a peer's virtual address: it must come out of the TUN.
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(4242);
  to.sin_addr.s_addr = htonl(kPeer);
  const char message[] = "hello over tun";
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(sendto(s, message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)),
              static_cast<ssize_t>(sizeof(message)));
  }
  close(s);
  // A peer's echo request written into the TUN must be answered by the kernel.
  ASSERT_TRUE(tun->Write(EchoRequest(0x1234)));

  const auto deadline = std::chrono::steady_clock::now() + 5s;
  auto udp_count = [&] {
    int n = 0;
    for (auto& p : read) n += p.size() >= 28 && p[9] == 17;
    return n;
  };
  auto echo_reply = [&] {
    for (auto& p : read) {
      if (p.size() >= 28 && p[9] == 1 && p[20] == 0 && p[24] == 0x12 && p[25] == 0x34) return true;
    }
    return false;
  };
  while ((udp_count() < 5 || !echo_reply()) && std::chrono::steady_clock::now() < deadline) {
    io_.run_for(10ms);
  }
  EXPECT_EQ(udp_count(), 5);
  EXPECT_TRUE(echo_reply());
  for (auto& p : read) {
    if (p[9] != 17) continue;
    EXPECT_EQ(std::memcmp(p.data() + 28, message, sizeof(message)), 0);
    EXPECT_EQ(p[16], 10);
    EXPECT_EQ(p[19], 9);
  }
  EXPECT_EQ(tun->counters().packets_written, 1u);
  tun->Close();
  io_.run_for(10ms);
}

// The IPv6 addresses interface `name` has now, as text.
std::vector<std::string> Ipv6AddressesOf(const std::string& name) {
  std::vector<std::string> found;
  ifaddrs* all = nullptr;
  if (getifaddrs(&all) != 0) return found;
  for (ifaddrs* a = all; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET6 || name != a->ifa_name) continue;
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
    base::Ipv6Address bytes;
    std::memcpy(bytes.data(), &in6->sin6_addr, 16);
    found.push_back(base::Ipv6ToString(bytes));
  }
  freeifaddrs(all);
  return found;
}

TEST_F(TunDeviceTest, TakesAnIpv6AddressAndMakesNoLinkLocalOne) {
  std::string error;
  auto tun = OpenTun(io_.get_executor(), "mnedct6", &error);
  ASSERT_TRUE(tun) << error;
  ASSERT_TRUE(tun->Configure(kOwn, 24, 1400, &error)) << error;
  ASSERT_TRUE(tun->ConfigureIpv6(*base::ParseIpv6("fd00:1::9"), 64, &error)) << error;
  EXPECT_EQ(Ipv6AddressesOf("mnedct6"), std::vector<std::string>{"fd00:1::9"});

  std::vector<std::vector<uint8_t>> read;
  asio::co_spawn(io_, tun->ReadLoop([&](std::span<const uint8_t> p, packet::Gso) {
    read.emplace_back(p.begin(), p.end());
  }), asio::detached);
  // To a peer, and to the mDNS group (link scope): both from the overlay address.
  const int s = socket(AF_INET6, SOCK_DGRAM, 0);
  ASSERT_GE(s, 0);
  const int index = static_cast<int>(if_nametoindex("mnedct6"));
  ASSERT_EQ(setsockopt(s, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)), 0);
  for (const char* destination : {"fd00:1::5", "ff02::fb"}) {
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    to.sin6_port = htons(5353);
    to.sin6_scope_id = static_cast<uint32_t>(index);
    ASSERT_EQ(inet_pton(AF_INET6, destination, &to.sin6_addr), 1);
    ASSERT_EQ(sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 1) << destination << ": "
                                                                                       << strerror(errno);
  }
  close(s);
  auto udp6 = [&] {
    std::vector<std::string> seen;
    for (auto& p : read) {
      if (p.size() < 48 || p[0] >> 4 != 6 || p[6] != 17) continue;
      base::Ipv6Address source, destination;
      std::memcpy(source.data(), p.data() + 8, 16);
      std::memcpy(destination.data(), p.data() + 24, 16);
      seen.push_back(base::Ipv6ToString(source) + " > " + base::Ipv6ToString(destination));
    }
    return seen;
  };
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (udp6().size() < 2 && std::chrono::steady_clock::now() < deadline) io_.run_for(10ms);
  EXPECT_EQ(udp6(), (std::vector<std::string>{"fd00:1::9 > fd00:1::5", "fd00:1::9 > ff02::fb"}));

  // A new lease replaces the address.
  ASSERT_TRUE(tun->ConfigureIpv6(*base::ParseIpv6("fd00:1::a"), 64, &error)) << error;
  EXPECT_EQ(Ipv6AddressesOf("mnedct6"), std::vector<std::string>{"fd00:1::a"});
  tun->Close();
  io_.run_for(10ms);
}

// Deletes interface `name` as `ip link del` would, through rtnetlink
// (RTM_DELLINK), and waits for the kernel's acknowledgement. True on success.
bool DeleteLink(const char* name) {
  const int index = static_cast<int>(if_nametoindex(name));
  if (index == 0) return false;
  const int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return false;
  struct {
    nlmsghdr header;
    ifinfomsg info;
  } request{};
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = RTM_DELLINK;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  request.header.nlmsg_seq = 1;
  request.info.ifi_family = AF_UNSPEC;
  request.info.ifi_index = index;
  bool deleted = false;
  if (send(s, &request, sizeof(request), 0) == static_cast<ssize_t>(sizeof(request))) {
    alignas(nlmsghdr) char answer[1024];
    const ssize_t n = recv(s, answer, sizeof(answer), 0);
    const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
    if (n >= static_cast<ssize_t>(NLMSG_LENGTH(sizeof(nlmsgerr))) && reply->nlmsg_type == NLMSG_ERROR) {
      deleted = static_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error == 0;
    }
  }
  close(s);
  return deleted;
}

uint32_t InterfaceAddress(const char* name) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  ifreq request{};
  std::strncpy(request.ifr_name, name, IFNAMSIZ - 1);
  const int result = ioctl(s, SIOCGIFADDR, &request);
  close(s);
  if (result != 0) return 0;
  return ntohl(reinterpret_cast<sockaddr_in*>(&request.ifr_addr)->sin_addr.s_addr);
}

void SendUdpTo(uint32_t address) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(4242);
  to.sin_addr.s_addr = htonl(address);
  const char message[] = "after the interface came back";
  sendto(s, message, sizeof(message), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  close(s);
}

// Deleting the interface under a reader (as `ip link del` does) leaves the device
// readable forever with EBADFD: the loop must end with that error after one
// failed read, not spin.
TEST_F(TunDeviceTest, ADeletedInterfaceEndsTheReadLoopWithItsError) {
  std::string error;
  auto tun = OpenTun(io_.get_executor(), "mnedct2", &error);
  ASSERT_TRUE(tun) << error;
  ASSERT_TRUE(tun->Configure(kOwn, 24, 1400, &error)) << error;
  bool done = false;
  boost::system::error_code result;
  asio::co_spawn(io_, tun->ReadLoop([](std::span<const uint8_t>, packet::Gso) {}),
                 [&](std::exception_ptr, boost::system::error_code ec) {
                   done = true;
                   result = ec;
                 });
  io_.run_for(20ms);
  ASSERT_TRUE(DeleteLink("mnedct2"));
  io_.run_for(300ms);
  EXPECT_TRUE(done);
  EXPECT_EQ(result.value(), EBADFD) << result.message();
  EXPECT_EQ(tun->counters().read_errors, 1u);
  tun->Close();
}

TEST_F(TunDeviceTest, ALastingTunComesBackWithItsAddressWhenDeleted) {
  std::string error;
  auto tun = OpenLastingTun(io_.get_executor(), "mnedct3", &error);
  ASSERT_TRUE(tun) << error;
  ASSERT_TRUE(tun->Configure(kOwn, 24, 1400, &error)) << error;
  std::vector<std::vector<uint8_t>> read;
  bool done = false;
  asio::co_spawn(io_, tun->ReadLoop([&](std::span<const uint8_t> p, packet::Gso) {
    read.emplace_back(p.begin(), p.end());
  }), [&](std::exception_ptr, boost::system::error_code) { done = true; });
  io_.run_for(20ms);
  ASSERT_TRUE(DeleteLink("mnedct3"));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (InterfaceAddress("mnedct3") != kOwn && std::chrono::steady_clock::now() < deadline) {
    io_.run_for(10ms);
  }
  ASSERT_EQ(InterfaceAddress("mnedct3"), kOwn) << "the interface did not come back";
  EXPECT_FALSE(done);
  EXPECT_EQ(tun->counters().recreations, 1u);
  // The new interface carries traffic: an application's packet comes out of it.
  auto saw_udp = [&] {  // IPv4 UDP to the peer; the kernel also sends IPv6 of its own.
    for (auto& p : read) {
      if (p.size() >= 28 && (p[0] >> 4) == 4 && p[9] == 17 && p[19] == (kPeer & 0xff)) return true;
    }
    return false;
  };
  SendUdpTo(kPeer);
  while (!saw_udp() && std::chrono::steady_clock::now() < deadline) io_.run_for(10ms);
  EXPECT_TRUE(saw_udp());
  tun->Close();
  io_.run_for(10ms);
  EXPECT_TRUE(done);
}

TEST(TunDeviceErrors, NameTooLongIsExplained) {
  asio::io_context io;
  std::string error;
  EXPECT_FALSE(OpenTun(io.get_executor(), "a-name-much-too-long", &error));
  EXPECT_NE(error.find("must be 1 to 15 characters"), std::string::npos) << error;
}

}  // namespace
}  // namespace mnedc::tun
