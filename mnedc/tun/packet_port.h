#pragma once
// Where a device's IP packets come from and go to: the TUN device in the
// binaries, a fake in tests. The client and relay glue code is written against
// this interface, so it never needs the kernel to be tested.
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>

namespace mnedc::tun {

struct PortCounters {
  uint64_t packets_read = 0;
  uint64_t packets_written = 0;
  uint64_t write_drops = 0;  // The kernel would not take the packet (queue full, down).
  uint64_t read_errors = 0;  // read() failed with something other than "empty for now".
  uint64_t write_errors = 0;  // Of write_drops, those with an error other than a full queue.
  uint64_t recreations = 0;  // Times the interface was deleted and created again.
};

// Lets the reader stop taking packets from the kernel while the connection's
// send queue is full: the kernel's queue then holds them and local TCP slows
// down, instead of packets being dropped after they were read.
struct FlowControl {
  std::function<bool()> has_room;
  std::function<boost::asio::awaitable<void>()> wait_for_room;
};

class PacketPort {
 public:
  virtual ~PacketPort() = default;

  // Applies a lease: address and prefix length (IPv4, host byte order), MTU,
  // and brings the interface up. Safe to call again with a new lease.
  virtual bool Configure(uint32_t address, uint32_t prefix_length, uint32_t mtu,
                         std::string* error) = 0;

  // Hands every packet read to `handler`, draining several per wake-up and
  // pausing while `flow` (if given) has no room. Returns no error after
  // Close(), and the error when the device itself failed (its interface was
  // deleted: EBADFD): the port is then unusable, and is not read again.
  virtual boost::asio::awaitable<boost::system::error_code> ReadLoop(
      std::function<void(std::span<const uint8_t>)> handler, FlowControl flow = {}) = 0;

  // Writes one packet without blocking; false (and counted) if it was dropped.
  virtual bool Write(std::span<const uint8_t> packet) = 0;

  virtual void Close() = 0;
  virtual const std::string& name() const = 0;
  virtual const PortCounters& counters() const = 0;
};

}  // namespace mnedc::tun
