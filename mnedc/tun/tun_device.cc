#include "mnedc/tun/tun_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "mnedc/base/coro.h"
#include "mnedc/base/ipv4.h"

namespace mnedc::tun {
namespace {
namespace asio = boost::asio;

// Packets handed over per wake-up before yielding to the other coroutines.
constexpr int kReadBatch = 64;

std::string Errno(int error) { return std::strerror(error); }

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

class TunDevice final : public PacketPort {
 public:
  TunDevice(asio::any_io_executor executor, int fd, std::string name)
      : descriptor_(executor, fd), name_(std::move(name)), buffer_(65536) {}

  bool Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                 std::string* error) override {
    FileDescriptor control(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (control.get() < 0) return Fail(error, "socket", errno);
    ifreq request{};
    std::strncpy(request.ifr_name, name_.c_str(), IFNAMSIZ - 1);
    auto set_ipv4 = [&](sockaddr& field, uint32_t value) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_addr.s_addr = htonl(value);
      std::memcpy(&field, &in, sizeof(in));
    };
    set_ipv4(request.ifr_addr, address);
    if (::ioctl(control.get(), SIOCSIFADDR, &request) < 0) return Fail(error, "set address", errno);
    set_ipv4(request.ifr_netmask, base::PrefixMask(prefix_length));
    if (::ioctl(control.get(), SIOCSIFNETMASK, &request) < 0) {
      return Fail(error, "set netmask", errno);
    }
    request.ifr_mtu = static_cast<int>(mtu);
    if (::ioctl(control.get(), SIOCSIFMTU, &request) < 0) return Fail(error, "set MTU", errno);
    if (::ioctl(control.get(), SIOCGIFFLAGS, &request) < 0) return Fail(error, "get flags", errno);
    request.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (::ioctl(control.get(), SIOCSIFFLAGS, &request) < 0) return Fail(error, "bring up", errno);
    return true;
  }

  asio::awaitable<boost::system::error_code> ReadLoop(
      std::function<void(std::span<const uint8_t>)> handler, FlowControl flow) override {
    const int fd = descriptor_.native_handle();
    auto has_room = [&] { return !flow.has_room || flow.has_room(); };
    while (descriptor_.is_open()) {
      if (!has_room()) {
        co_await flow.wait_for_room();
        continue;
      }
      auto [ec] = co_await descriptor_.async_wait(asio::posix::stream_descriptor::wait_read,
                                                  base::kUse);
      if (!descriptor_.is_open()) co_return boost::system::error_code{};  // Closed.
      if (ec) co_return ec;
      // Drain what is there, a bounded batch per wake-up.
      for (int i = 0; i < kReadBatch && has_room(); ++i) {
        const ssize_t n = ::read(fd, buffer_.data(), buffer_.size());
        if (n < 0) {
          const int code = errno;
          if (code == EAGAIN || code == EWOULDBLOCK || code == EINTR) break;  // Empty for now.
          // The device is gone (EBADFD once its interface is deleted) or
          // broken: it would report itself readable forever, so stop here
          // rather than spin, and say why.
          ++counters_.read_errors;
          co_return boost::system::error_code(code, boost::system::system_category());
        }
        if (n == 0) break;
        ++counters_.packets_read;
        handler(std::span<const uint8_t>(buffer_.data(), static_cast<std::size_t>(n)));
        if (!descriptor_.is_open()) co_return boost::system::error_code{};
      }
    }
    co_return boost::system::error_code{};
  }

  bool Write(std::span<const uint8_t> packet) override {
    if (!descriptor_.is_open()) return false;
    const ssize_t n = ::write(descriptor_.native_handle(), packet.data(), packet.size());
    if (n != static_cast<ssize_t>(packet.size())) {
      ++counters_.write_drops;
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) {
        ++counters_.write_errors;
      }
      return false;
    }
    ++counters_.packets_written;
    return true;
  }

  void Close() override {
    boost::system::error_code ignored;
    descriptor_.close(ignored);
  }

  const std::string& name() const override { return name_; }
  const PortCounters& counters() const override { return counters_; }

 private:
  bool Fail(std::string* error, const char* step, int code) {
    if (error) {
      *error = "cannot " + std::string(step) + " on " + name_ + ": " + Errno(code);
      if (code == EPERM) *error += " (needs root or CAP_NET_ADMIN)";
    }
    return false;
  }

  asio::posix::stream_descriptor descriptor_;
  std::string name_;
  std::vector<uint8_t> buffer_;
  PortCounters counters_;
};

}  // namespace

std::unique_ptr<PacketPort> OpenTun(asio::any_io_executor executor, const std::string& name,
                                    std::string* error) {
  auto fail = [&](std::string why) -> std::unique_ptr<PacketPort> {
    if (error) *error = std::move(why);
    return nullptr;
  };
  if (name.empty() || name.size() >= IFNAMSIZ) {
    return fail("TUN name '" + name + "' must be 1 to " + std::to_string(IFNAMSIZ - 1) + " characters");
  }
  FileDescriptor fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    const int code = errno;
    if (code == ENOENT) {
      return fail("/dev/net/tun does not exist: load the tun module (modprobe tun), or give a "
                  "container the device (--device /dev/net/tun)");
    }
    if (code == EACCES || code == EPERM) {
      return fail("cannot open /dev/net/tun: " + Errno(code) + " (needs root or CAP_NET_ADMIN)");
    }
    return fail("cannot open /dev/net/tun: " + Errno(code));
  }
  ifreq request{};
  request.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(fd.get(), TUNSETIFF, &request) < 0) {
    const int code = errno;
    if (code == EPERM) {
      return fail("cannot create TUN interface " + name + ": " + Errno(code) +
                  " (needs root or CAP_NET_ADMIN)");
    }
    if (code == EBUSY) {
      return fail("cannot create TUN interface " + name + ": it is in use by another program");
    }
    return fail("cannot create TUN interface " + name + ": " + Errno(code));
  }
  return std::make_unique<TunDevice>(executor, fd.release(), request.ifr_name);
}

}  // namespace mnedc::tun
