#include "mnedc/tun/interface_address.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <glog/logging.h>

#include <cerrno>
#include <cstring>

#include "mnedc/base/ipv4.h"

namespace mnedc::tun {
namespace {

std::string Errno(int error) { return std::strerror(error); }

bool Fail(std::string* error, const std::string& name, const char* step, int code) {
  if (error) {
    *error = "cannot " + std::string(step) + " on " + name + ": " + Errno(code);
    if (code == EPERM) *error += " (needs root or CAP_NET_ADMIN)";
  }
  return false;
}

// Writes one IPv6 setting of interface `name`.
void SetIpv6Setting(const std::string& name, const char* setting, const char* value) {
  const std::string path = "/proc/sys/net/ipv6/conf/" + name + "/" + setting;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) LOG(WARNING) << "cannot open " << path << ": " << Errno(errno);
    return;
  }
  const std::size_t length = std::strlen(value);
  if (::write(fd, value, length) != static_cast<ssize_t>(length)) {
    LOG(WARNING) << "cannot write " << path << ": " << Errno(errno);
  }
  ::close(fd);
}

// Adds (RTM_NEWADDR) or removes (RTM_DELADDR) an IPv6 address of interface
// `index` through rtnetlink, and waits for the kernel's answer: 0 or an
// errno. Added without duplicate address detection (IFA_F_NODAD), so it is
// usable at once: the ioctl (SIOCSIFADDR) would leave it tentative for a
// moment, failing the first sends from it.
int Ipv6AddressRequest(uint16_t type, int index, const base::Ipv6Address& address, uint32_t prefix_length) {
  FileDescriptor socket(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE));
  if (socket.get() < 0) return errno;
  struct Request {
    nlmsghdr header;
    ifaddrmsg message;
    rtattr local_attribute;
    uint8_t local[16];
    rtattr address_attribute;
    uint8_t address[16];
    rtattr flags_attribute;
    uint32_t flags;
  } request{};
  static_assert(sizeof(Request) == NLMSG_LENGTH(sizeof(ifaddrmsg)) + 2 * RTA_LENGTH(16) + RTA_LENGTH(4));
  request.header.nlmsg_len = sizeof(request);
  request.header.nlmsg_type = type;
  request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
  request.header.nlmsg_seq = 1;
  request.message.ifa_family = AF_INET6;
  request.message.ifa_prefixlen = static_cast<uint8_t>(prefix_length);
  request.message.ifa_flags = IFA_F_NODAD;
  request.message.ifa_scope = RT_SCOPE_UNIVERSE;
  request.message.ifa_index = static_cast<uint32_t>(index);
  request.local_attribute = {static_cast<unsigned short>(RTA_LENGTH(16)), IFA_LOCAL};
  std::memcpy(request.local, address.data(), 16);
  request.address_attribute = {static_cast<unsigned short>(RTA_LENGTH(16)), IFA_ADDRESS};
  std::memcpy(request.address, address.data(), 16);
  request.flags_attribute = {static_cast<unsigned short>(RTA_LENGTH(4)), IFA_FLAGS};
  request.flags = IFA_F_NODAD;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (::sendto(socket.get(), &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    return errno;
  }
  alignas(nlmsghdr) uint8_t answer[4096];
  const ssize_t got = ::recv(socket.get(), answer, sizeof(answer), 0);
  if (got < 0) return errno;
  const auto* reply = reinterpret_cast<const nlmsghdr*>(answer);
  if (!NLMSG_OK(reply, static_cast<unsigned>(got)) || reply->nlmsg_type != NLMSG_ERROR) return EPROTO;
  return -static_cast<const nlmsgerr*>(NLMSG_DATA(reply))->error;
}

}  // namespace

void PrepareIpv6(const std::string& name) {
  SetIpv6Setting(name, "addr_gen_mode", "1\n");
  SetIpv6Setting(name, "accept_dad", "0\n");
}

bool SetIpv4Address(const std::string& name, uint32_t address, uint32_t prefix_length, uint32_t mtu,
                    std::string* error) {
  FileDescriptor control(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (control.get() < 0) return Fail(error, name, "socket", errno);
  ifreq request{};
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  auto set_ipv4 = [&](sockaddr& field, uint32_t value) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(value);
    std::memcpy(&field, &in, sizeof(in));
  };
  set_ipv4(request.ifr_addr, address);
  if (::ioctl(control.get(), SIOCSIFADDR, &request) < 0) return Fail(error, name, "set address", errno);
  set_ipv4(request.ifr_netmask, base::PrefixMask(prefix_length));
  if (::ioctl(control.get(), SIOCSIFNETMASK, &request) < 0) return Fail(error, name, "set netmask", errno);
  request.ifr_mtu = static_cast<int>(mtu);
  if (::ioctl(control.get(), SIOCSIFMTU, &request) < 0) return Fail(error, name, "set MTU", errno);
  if (::ioctl(control.get(), SIOCGIFFLAGS, &request) < 0) return Fail(error, name, "get flags", errno);
  request.ifr_flags |= IFF_UP | IFF_RUNNING;
  if (::ioctl(control.get(), SIOCSIFFLAGS, &request) < 0) return Fail(error, name, "bring up", errno);
  return true;
}

bool InterfaceIpv6Address::Set(const std::string& name, const base::Ipv6Address& address, uint32_t prefix_length,
                               std::string* error) {
  FileDescriptor control(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (control.get() < 0) {
    if (error) *error = "IPv6 is not available on this host (" + Errno(errno) + ")";
    return false;
  }
  ifreq index_request{};
  std::strncpy(index_request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(control.get(), SIOCGIFINDEX, &index_request) < 0) {
    return Fail(error, name, "find the interface for IPv6", errno);
  }
  const int index = index_request.ifr_ifindex;
  if (address_ && (*address_ != address || prefix_length_ != prefix_length)) {
    // Gone already if the interface was recreated.
    Ipv6AddressRequest(RTM_DELADDR, index, *address_, prefix_length_);
    address_.reset();
  }
  if (address_) return true;
  if (const int code = Ipv6AddressRequest(RTM_NEWADDR, index, address, prefix_length); code != 0 && code != EEXIST) {
    if (error) {
      *error = "cannot give " + name + " its IPv6 address " + base::Ipv6ToString(address) + ": " + Errno(code) +
               (code == EACCES || code == EADDRNOTAVAIL || code == ENODEV
                    ? " (IPv6 is disabled on this host or interface: net.ipv6.conf.*.disable_ipv6, or the "
                      "MTU is under 1280)"
                    : "");
    }
    return false;
  }
  address_ = address;
  prefix_length_ = prefix_length;
  return true;
}

}  // namespace mnedc::tun
