#pragma once
// A TUN interface's addresses: what the kernel is told about the interface
// (rtnetlink, ioctl, its IPv6 settings), apart from moving packets through it
// (tun_device.cc).
#include <unistd.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "mnedc/base/ipv6.h"

namespace mnedc::tun {

// Owns a file descriptor (a socket, /dev/net/tun).
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

// Before the interface comes up: no fe80:: address of its own
// (addr_gen_mode "none": the relay routes only the overlay's addresses, so the
// kernel must send from the leased one even to link-scope groups), and no
// duplicate address detection, which has nothing to detect on a link whose
// only other end is the relay and would hold each new address back. A host
// without IPv6 has no such settings, and needs none.
void PrepareIpv6(const std::string& name);

// Address, netmask and MTU of interface `name`, and brings it up (ioctl).
// False with `error` saying which step failed.
bool SetIpv4Address(const std::string& name, uint32_t address, uint32_t prefix_length, uint32_t mtu,
                    std::string* error);

// The one IPv6 address an interface is given (rtnetlink, IFA_F_NODAD: usable
// at once), remembered so that a new lease replaces it.
class InterfaceIpv6Address {
 public:
  bool Set(const std::string& name, const base::Ipv6Address& address, uint32_t prefix_length, std::string* error);

 private:
  std::optional<base::Ipv6Address> address_;
  uint32_t prefix_length_ = 0;
};

}  // namespace mnedc::tun
