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

#include "mnedc/base/ipv6.h"
#include "mnedc/packet/gso.h"

namespace mnedc::tun {

struct PortCounters {
  uint64_t packets_read = 0;
  uint64_t packets_written = 0;
  uint64_t write_drops = 0;  // The kernel would not take the packet (queue full, down).
  uint64_t read_errors = 0;  // read() failed with something other than "empty for now".
  uint64_t write_errors = 0;  // Of write_drops, those with an error other than a full queue.
  uint64_t recreations = 0;  // Times the interface was deleted and created again.
  uint64_t super_packets_read = 0;     // Of packets_read.
  uint64_t super_packets_written = 0;  // Of packets_written: written whole, or joined from segments.
  uint64_t segments_joined = 0;        // Packets written as part of a larger one (coalesced).
  uint64_t super_packets_split = 0;    // Cut into segments because the port cannot take them whole.
  uint64_t acks_superseded = 0;        // Pure ACKs not written: a newer one of their connection came with them.
};

// What the kernel agreed to on a TUN (TUNSETOFFLOAD). With a virtio-net
// header, reads may bring super-packets (TSO for TCP, USO for UDP) and packets
// whose checksum is still to be done, and writes may hand the kernel a
// super-packet whole.
struct Offloads {
  bool vnet_header = false;
  bool checksum = false;
  bool tcp4 = false;  // TSO4
  bool tcp6 = false;  // TSO6
  bool udp = false;   // USO4 and USO6 (Linux 6.2 and later)
  // "checksum, tso4, tso6, uso" or "none".
  std::string ToString() const;
};

// `packet` lies in the port's own buffer: the handler may change it (seal it
// in place) until it returns; the port does not read it again.
using PacketHandler = std::function<void(std::span<uint8_t> packet, packet::Gso gso)>;

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

  // Gives the interface an IPv6 address (after Configure), replacing the one
  // given before. The interface makes no link-local (fe80::) address of its
  // own: the relay routes only the overlay's addresses, so the kernel sends
  // from this one even to link-scope groups (ff02::fb). False with `error` where
  // IPv6 is off (disabled on the host or the interface, an MTU under 1280).
  virtual bool ConfigureIpv6(const base::Ipv6Address& address, uint32_t prefix_length, std::string* error) = 0;

  // Hands every packet read to `handler` (with gso.super() for a
  // super-packet, which ParseSuperPacket accepts), draining several per
  // wake-up and pausing while `flow` (if given) has no room. Returns no error
  // after Close(), and the error when the device itself failed (its interface
  // was deleted: EBADFD): the port is then unusable, and is not read again.
  virtual boost::asio::awaitable<boost::system::error_code> ReadLoop(PacketHandler handler,
                                                                     FlowControl flow = {}) = 0;

  // Writes one packet, or a super-packet (cut into segments if the port
  // cannot take it whole), without blocking; false (and counted) if it was
  // dropped. An ordinary TCP packet may be held back to be joined with the
  // ones that follow it: Flush() writes what is held, and the caller calls it
  // whenever a batch of writes ends.
  virtual bool Write(std::span<const uint8_t> packet, packet::Gso gso = {}) = 0;
  virtual void Flush() {}

  // What the kernel agreed to; none for a port without offloads.
  virtual Offloads offloads() const { return {}; }
  // Whether reads may bring super-packets (the default where the kernel
  // agreed): off when whoever takes the packets would only cut them up again.
  virtual void SetSuperPacketReads(bool /*on*/) {}

  virtual void Close() = 0;
  virtual const std::string& name() const = 0;
  virtual const PortCounters& counters() const = 0;
};

}  // namespace mnedc::tun
