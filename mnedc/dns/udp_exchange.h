#pragma once
// The UDP datagrams around DNS messages in the client's TUN: recognizing a
// query to the overlay's DNS address in a packet the kernel sent, and building
// the packet that answers it, as a server at that address would.
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "mnedc/base/ipv6.h"

namespace mnedc::dns {

// Where a query came from and went to, to answer it the other way.
struct UdpFlow {
  int version = 0;  // 4 or 6.
  uint8_t source[16] = {};       // IPv4 in the first 4 bytes.
  uint8_t destination[16] = {};
  uint16_t source_port = 0;
  uint16_t destination_port = 0;
};

// If `packet` is a whole (unfragmented) UDP datagram to port 53 of
// `server` (IPv4, host order) or `server6`, returns its payload and sets
// `flow`; nullopt for anything else. The UDP checksum is not checked: the
// packet comes from this host's kernel, which may leave it to be completed
// (checksum offload).
std::optional<std::span<const uint8_t>> DnsQueryIn(std::span<const uint8_t> packet, uint32_t server,
                                                   const std::optional<base::Ipv6Address>& server6, UdpFlow* flow);

// The packet answering `flow` with `payload`: addresses and ports swapped,
// lengths and every checksum complete. Into `out` (reused: no allocation
// once it is large enough).
void BuildUdpAnswer(const UdpFlow& flow, std::span<const uint8_t> payload, std::vector<uint8_t>* out);

}  // namespace mnedc::dns
