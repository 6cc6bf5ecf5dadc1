#pragma once
// Joins a run of ordinary TCP segments, or UDP datagrams, of one flow, as
// they arrive in order, into one super-packet for a single write into a TUN
// that takes them (what Linux's GRO does for a NIC, and wireguard-go's tcpGRO
// and udpGRO for its TUN): the kernel then handles one packet where it would
// have handled dozens, and the TUN takes one write.
//
// Two TCP segments join when the second continues the first exactly: same
// addresses, ports, IP fields (TOS or traffic class, TTL or hop limit, DF),
// acknowledgement number and TCP options; its sequence number follows; it is
// no larger than the first; nothing came after a shorter one or one with PSH;
// both carry only ACK (and PSH); and both checksums are right (the kernel does
// not check a super-packet's payload again). Two UDP datagrams join (only if
// the TUN takes UDP super-packets) on the same terms without the TCP ones: the
// second no larger than the first, nothing after a shorter one, checksums
// right (a datagram without one, checksum 0, joins nothing); the kernel cuts
// the super-packet into the same datagrams again, their IPv4 IDs counted up
// from the first's. Anything else ends the run. One run is held at a time,
// so packets are never reordered: whoever writes takes the held run first
// whenever Add says so.
//
// Pure ACKs of one TCP connection that arrive together are a run of their
// own: an ACK that acknowledges more than the one held, and says nothing
// else the held one said, takes its place (Offer::kReplacedHeld), so the
// kernel handles the newest instead of each in turn. A bulk download's
// receiver sends one ACK per super-packet it takes; they come back through
// the relay in bursts and each one written costs a write and the sender's
// kernel a pass of its ACK processing for what the next one says anyway.
// Only the rules of Linux's CAKE ACK filter (net/sched/sch_cake.c) let one
// go: flags exactly ACK (no ECE, CWR, PSH, URG, SYN, FIN, RST), no payload,
// options only timestamps (no SACK: loss recovery keeps every ACK), the
// same sequence number, an acknowledgement number strictly after the held
// one's (a duplicate ACK, which fast retransmit counts, is never dropped),
// timestamps not older, the same addresses, ports and IP fields, and a
// right checksum. The ACKs are next to each other in one batch the relay
// sent: the held one would reach the sender's kernel a moment before the
// newer one, never in time to matter.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mnedc/packet/gso.h"

namespace mnedc::packet {

class Coalescer {
 public:
  // UDP runs only with `udp` (a TUN that took USO).
  explicit Coalescer(bool udp);

  enum class Offer {
    kHeld,          // Taken: joined to the held run, or the start of a new one.
    kReplacedHeld,  // Taken: a pure ACK that says all the held one did; the held one is dropped.
    kTakeHeldFirst, // Take() the held run and write it, then offer this packet again.
    kNotCandidate,  // Nothing is held and this packet cannot start a run: write it as it is.
  };
  Offer Add(std::span<const uint8_t> packet);

  bool holding() const { return held_size_ > 0; }
  // The held run, and empties the coalescer. With one segment it is that
  // packet unchanged (gso none); with more, a super-packet whose IP (and UDP)
  // lengths cover all of it (gso tcp or udp, the first segment's payload
  // size). Valid until the next Add.
  std::span<const uint8_t> Take(Gso* gso);

  // Segments in the held run.
  std::size_t held_segments() const { return holding() ? segments_ : 0; }

 private:
  struct Candidate {
    uint8_t protocol = 0;  // 6 or 17.
    std::size_t ip_header_length = 0;
    std::size_t transport_header_length = 0;  // Or the UDP header's 8.
    std::size_t payload = 0;
    uint32_t sequence = 0;
    bool push = false;
  };
  // A pure ACK that may stand in for an earlier one of its connection.
  struct PureAck {
    std::size_t ip_header_length = 0;
    std::size_t transport_header_length = 0;
    uint32_t sequence = 0;
    uint32_t ack = 0;
    std::size_t timestamps_at = 0;  // Offset of TSval in the packet, 0 without timestamps.
  };
  bool Parse(std::span<const uint8_t> packet, Candidate* out) const;
  bool Continues(std::span<const uint8_t> packet, const Candidate& c) const;
  // Version, IPv4 and IPv6 fields other than lengths and IDs, and the
  // ports, the same as the held packet's (whose IP header is as long: the
  // callers compare header lengths first).
  bool SameFlowAsHeld(const uint8_t* packet, std::size_t ip_header_length) const;
  static bool ParsePureAck(std::span<const uint8_t> packet, PureAck* out);
  bool Supersedes(std::span<const uint8_t> packet, const PureAck& ack) const;
  void Hold(std::span<const uint8_t> packet);

  const bool udp_;
  std::unique_ptr<uint8_t[]> buffer_;  // kMaxSuperPacket bytes.
  std::size_t held_size_ = 0;
  Candidate first_;          // Of the held run's first segment.
  uint32_t next_sequence_ = 0;
  std::size_t segments_ = 0;
  bool ended_ = false;       // A shorter segment or PSH: nothing may follow.
  bool holding_ack_ = false; // The held packet is a pure ACK (held_ack_ describes it).
  PureAck held_ack_;
};

}  // namespace mnedc::packet
