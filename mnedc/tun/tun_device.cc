#include "mnedc/tun/tun_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glog/logging.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstring>
#include <vector>

#include "mnedc/base/coro.h"
#include "mnedc/packet/checksum.h"
#include "mnedc/packet/gso.h"
#include "mnedc/packet/coalescer.h"
#include "mnedc/tun/interface_address.h"

namespace mnedc::tun {
namespace {
namespace asio = boost::asio;

// Packets handed over per wake-up before yielding to the other coroutines.
constexpr int kReadBatch = 64;

std::string Errno(int error) { return std::strerror(error); }



// The virtio-net header that precedes every packet read from or written to a
// TUN opened with IFF_VNET_HDR (struct virtio_net_hdr; native byte order, as
// for a legacy virtio device on this machine).
struct VnetHeader {
  uint8_t flags = 0;
  uint8_t gso_type = 0;
  uint16_t hdr_len = 0;
  uint16_t gso_size = 0;
  uint16_t csum_start = 0;
  uint16_t csum_offset = 0;
};
static_assert(sizeof(VnetHeader) == 10);
// From <linux/virtio_net.h>, which does not compile as C++ (a field named
// `class`).
constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV4 = 1;
constexpr uint8_t VIRTIO_NET_HDR_GSO_TCPV6 = 4;
constexpr uint8_t VIRTIO_NET_HDR_GSO_ECN = 0x80;
constexpr uint8_t kGsoUdpL4 = 5;  // VIRTIO_NET_HDR_GSO_UDP_L4
// Linux 6.2's USO flags, for building against older kernel headers.
constexpr unsigned kTunUso4 = 0x20;
constexpr unsigned kTunUso6 = 0x40;


class TunDevice final : public PacketPort {
 public:
  TunDevice(asio::any_io_executor executor, int fd, std::string name, Offloads offloads)
      : descriptor_(executor, fd),
        name_(std::move(name)),
        offloads_(offloads),
        buffer_(sizeof(VnetHeader) + packet::kMaxSuperPacket) {
    if (offloads_.vnet_header) coalescer_ = std::make_unique<packet::Coalescer>(offloads_.udp);
  }

  bool Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                 std::string* error) override {
    return SetIpv4Address(name_, address, prefix_length, mtu, error);
  }

  bool ConfigureIpv6(const base::Ipv6Address& address, uint32_t prefix_length, std::string* error) override {
    return address6_.Set(name_, address, prefix_length, error);
  }

  asio::awaitable<boost::system::error_code> ReadLoop(PacketHandler handler, FlowControl flow) override {
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
        std::span<uint8_t> packet(buffer_.data(), static_cast<std::size_t>(n));
        packet::Gso gso;
        if (offloads_.vnet_header && !FromKernel(&packet, &gso)) continue;
        handler(packet, gso);
        if (!descriptor_.is_open()) co_return boost::system::error_code{};
      }
    }
    co_return boost::system::error_code{};
  }

  bool Write(std::span<const uint8_t> packet, packet::Gso gso) override {
    if (!descriptor_.is_open()) return false;
    if (!offloads_.vnet_header) {
      if (!gso.super()) return WritePlain(packet);
      return WriteSegments(packet, gso);
    }
    if (gso.super()) {
      if (gso.kind == packet::GsoKind::kUdp && !offloads_.udp) return WriteSegments(packet, gso);
      Flush();
      return WriteSuper(packet, gso);
    }
    for (;;) {
      switch (coalescer_->Add(packet)) {
        case packet::Coalescer::Offer::kHeld:
          return true;
        case packet::Coalescer::Offer::kReplacedHeld:
          ++counters_.acks_superseded;
          return true;
        case packet::Coalescer::Offer::kTakeHeldFirst:
          Flush();
          continue;
        case packet::Coalescer::Offer::kNotCandidate:
          return WritePlain(packet);
      }
    }
  }

  void Flush() override {
    if (!coalescer_ || !coalescer_->holding()) return;
    packet::Gso gso;
    const std::size_t segments = coalescer_->held_segments();
    const std::span<const uint8_t> held = coalescer_->Take(&gso);
    if (!gso.super()) {
      WritePlain(held);
      return;
    }
    if (WriteSuper(held, gso)) counters_.segments_joined += segments;
  }

  Offloads offloads() const override { return offloads_; }

  void SetSuperPacketReads(bool on) override {
    if (!offloads_.vnet_header) return;
    unsigned flags = offloads_.checksum ? TUN_F_CSUM : 0;
    if (on) {
      if (offloads_.tcp4) flags |= TUN_F_TSO4;
      if (offloads_.tcp6) flags |= TUN_F_TSO6;
      if (offloads_.udp) flags |= kTunUso4 | kTunUso6;
    }
    if (::ioctl(descriptor_.native_handle(), TUNSETOFFLOAD, flags) < 0) {
      LOG(WARNING) << "cannot change the offloads of " << name_ << ": " << Errno(errno);
    }
  }

  void Close() override {
    boost::system::error_code ignored;
    descriptor_.close(ignored);
  }

  const std::string& name() const override { return name_; }
  const PortCounters& counters() const override { return counters_; }

 private:
  // Strips and applies the virtio-net header of a read: completes a checksum
  // the kernel left to us, or says what super-packet it is. False (counted)
  // for what cannot be passed on.
  bool FromKernel(std::span<uint8_t>* packet, packet::Gso* gso) {
    VnetHeader header;
    if (packet->size() < sizeof(header)) {
      ++counters_.read_errors;
      return false;
    }
    std::memcpy(&header, packet->data(), sizeof(header));
    *packet = packet->subspan(sizeof(header));
    const uint8_t type = header.gso_type & static_cast<uint8_t>(~VIRTIO_NET_HDR_GSO_ECN);
    if (type == VIRTIO_NET_HDR_GSO_NONE) {
      if ((header.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
          !packet::CompletePartialChecksum(*packet, header.csum_start, header.csum_offset)) {
        ++counters_.read_errors;
        return false;
      }
      return true;
    }
    if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) {
      *gso = {packet::GsoKind::kTcp, header.gso_size};
    } else if (type == kGsoUdpL4) {
      *gso = {packet::GsoKind::kUdp, header.gso_size};
    } else {
      ++counters_.read_errors;
      return false;
    }
    packet::SuperPacketLayout layout;
    if (packet::ParseSuperPacket(*packet, *gso, &layout) != packet::GsoVerdict::kOk) {
      ++counters_.read_errors;
      return false;
    }
    ++counters_.super_packets_read;
    return true;
  }

  bool Written(ssize_t n, std::size_t expected) {
    if (n == static_cast<ssize_t>(expected)) {
      ++counters_.packets_written;
      return true;
    }
    ++counters_.write_drops;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS) ++counters_.write_errors;
    return false;
  }

  bool WritePlain(std::span<const uint8_t> packet) {
    if (!offloads_.vnet_header) {
      return Written(::write(descriptor_.native_handle(), packet.data(), packet.size()), packet.size());
    }
    static const VnetHeader kPlain{};
    iovec parts[2] = {{const_cast<VnetHeader*>(&kPlain), sizeof(kPlain)},
                      {const_cast<uint8_t*>(packet.data()), packet.size()}};
    return Written(::writev(descriptor_.native_handle(), parts, 2), sizeof(kPlain) + packet.size());
  }

  // One write for the whole super-packet: its headers fixed up in a copy
  // (the payload is not copied), as virtio-net wants them.
  bool WriteSuper(std::span<const uint8_t> packet, packet::Gso gso) {
    packet::SuperPacketLayout layout;
    if (packet::ParseSuperPacket(packet, gso, &layout) != packet::GsoVerdict::kOk) {
      ++counters_.write_drops;
      ++counters_.write_errors;
      return false;
    }
    VnetHeader header;
    header.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
    header.gso_type = gso.kind == packet::GsoKind::kUdp ? kGsoUdpL4
                      : layout.ip_version == 4         ? VIRTIO_NET_HDR_GSO_TCPV4
                                                       : VIRTIO_NET_HDR_GSO_TCPV6;
    if (layout.segments == 1) header.gso_type = VIRTIO_NET_HDR_GSO_NONE;
    header.hdr_len = layout.headers_length;
    header.gso_size = gso.segment_size;
    header.csum_start = layout.ip_header_length;
    header.csum_offset = layout.checksum_offset;
    std::memcpy(headers_, packet.data(), layout.headers_length);
    packet::PrepareHeadersForOffload({headers_, layout.headers_length}, layout, packet.size());
    iovec parts[3] = {{&header, sizeof(header)},
                      {headers_, layout.headers_length},
                      {const_cast<uint8_t*>(packet.data()) + layout.headers_length,
                       packet.size() - layout.headers_length}};
    const bool ok = Written(::writev(descriptor_.native_handle(), parts, 3), sizeof(header) + packet.size());
    if (ok) ++counters_.super_packets_written;
    return ok;
  }

  // For a TUN that cannot take the super-packet whole.
  bool WriteSegments(std::span<const uint8_t> packet, packet::Gso gso) {
    if (scratch_.empty()) scratch_.resize(65536);  // Only a port that needs it pays for it.
    bool all = true;
    const bool parsed = packet::ForEachSegment(packet, gso, scratch_, [&](std::span<const uint8_t> segment) {
      all &= WritePlain(segment);
    });
    if (!parsed) {
      ++counters_.write_drops;
      ++counters_.write_errors;
      return false;
    }
    ++counters_.super_packets_split;
    return all;
  }

  asio::posix::stream_descriptor descriptor_;
  std::string name_;
  Offloads offloads_;
  InterfaceIpv6Address address6_;
  std::vector<uint8_t> buffer_;
  std::vector<uint8_t> scratch_;  // One segment at a time.
  uint8_t headers_[120];          // A super-packet's IP and transport headers (at most 60 + 60).
  std::unique_ptr<packet::Coalescer> coalescer_;
  PortCounters counters_;
};

// Asks for the offloads, most first: TCP and UDP segmentation, then TCP only,
// then checksums only, then none (the virtio-net header stays; reads are then
// ordinary packets).
Offloads NegotiateOffloads(int fd) {
  Offloads offloads;
  offloads.vnet_header = true;
  struct Attempt {
    unsigned flags;
    Offloads result;
  };
  const Attempt attempts[] = {
      {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | kTunUso4 | kTunUso6, {true, true, true, true, true}},
      {TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, {true, true, true, true, false}},
      {TUN_F_CSUM, {true, true, false, false, false}},
  };
  for (const Attempt& attempt : attempts) {
    if (::ioctl(fd, TUNSETOFFLOAD, attempt.flags) == 0) return attempt.result;
  }
  return offloads;
}
}  // namespace

std::unique_ptr<PacketPort> OpenTun(asio::any_io_executor executor, const std::string& name,
                                    std::string* error, TunOptions options) {
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
  request.ifr_flags = IFF_TUN | IFF_NO_PI | (options.offload ? IFF_VNET_HDR : 0);
  std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
  int result = ::ioctl(fd.get(), TUNSETIFF, &request);
  if (result < 0 && errno == EINVAL && options.offload) {
    // A kernel without virtio-net headers on TUN: go on without offloads.
    request.ifr_flags = IFF_TUN | IFF_NO_PI;
    result = ::ioctl(fd.get(), TUNSETIFF, &request);
  }
  if (result < 0) {
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
  PrepareIpv6(request.ifr_name);
  Offloads offloads;
  if (request.ifr_flags & IFF_VNET_HDR) offloads = NegotiateOffloads(fd.get());
  LOG(INFO) << "TUN " << request.ifr_name << " offloads: "
            << (options.offload ? offloads.ToString() : "off (--offload=false)");
  return std::make_unique<TunDevice>(executor, fd.release(), request.ifr_name, offloads);
}

}  // namespace mnedc::tun
