// What a client writes into its TUN passes its coalescer first, and those
// packets come from the network (opened, but written by whoever sent them).
// The input is a run of packets: each starts with an operation byte; most
// operations make the packet continue the one before (its headers, the next
// TCP sequence number, a payload size and bytes from the input, lengths and
// checksums made right), so runs form and join; bits of the operation bend
// it (a wrong sequence number, PSH, a stale checksum); the others take raw
// bytes, their lengths and checksums made right or not. Every run the
// coalescer hands back must parse as a super-packet and cut into exactly the
// packets that went into it (from the transport header on: IPv4 IDs are
// counted up from the first's), and a lone packet must come back unchanged.
// A packet may take the place of the held one only if both are pure ACKs of
// one connection and the new one acknowledges more (checked here by hand).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "mnedc/packet/checksum.h"
#include "mnedc/packet/coalescer.h"
#include "mnedc/packet/gso.h"

namespace {
using namespace mnedc::packet;
using Bytes = std::vector<uint8_t>;

struct Input {
  const uint8_t* data;
  std::size_t size;
  uint8_t Byte() {
    if (size == 0) return 0;
    --size;
    return *data++;
  }
  void Fill(uint8_t* out, std::size_t n) {
    if (n == 0) return;
    const std::size_t take = n < size ? n : size;
    std::memcpy(out, data, take);
    std::memset(out + take, 0, n - take);
    data += take;
    size -= take;
  }
};

// Where the transport header starts, and its protocol; 0 if neither.
std::size_t TransportAt(const Bytes& p, uint8_t* protocol) {
  if (p.size() >= 20 && p[0] == 0x45) {
    *protocol = p[9];
    return 20;
  }
  if (p.size() >= 40 && (p[0] >> 4) == 6) {
    *protocol = p[6];
    return 40;
  }
  return 0;
}

// Lengths and the transport checksum made right, where the packet is an IPv4
// (no options) or IPv6 TCP or UDP packet long enough for its header.
void MakeRight(Bytes& p, bool checksum) {
  uint8_t protocol = 0;
  const std::size_t at = TransportAt(p, &protocol);
  if (at == 0 || p.size() > 65535) return;
  if (at == 20) {
    Store16(p.data() + 2, static_cast<uint16_t>(p.size()));
  } else {
    Store16(p.data() + 4, static_cast<uint16_t>(p.size() - 40));
  }
  std::size_t field;
  if (protocol == 17 && p.size() >= at + 8) {
    Store16(p.data() + at + 4, static_cast<uint16_t>(p.size() - at));
    field = at + 6;
  } else if (protocol == 6 && p.size() >= at + 20) {
    field = at + 16;
  } else {
    return;
  }
  if (!checksum) return;
  if (at == 20) SetIpv4HeaderChecksum(p.data(), 20);
  p[field] = p[field + 1] = 0;
  uint64_t sum = PseudoHeaderSum(p, protocol, static_cast<uint32_t>(p.size() - at));
  sum = Sum(std::span<const uint8_t>(p).subspan(at), sum);
  uint16_t value = static_cast<uint16_t>(~Fold(sum));
  if (protocol == 17 && value == 0) value = 0xffff;
  StoreChecksum(p.data() + field, value);
}

// The packet after `previous` in its flow, `payload` bytes of it.
bool Continue(const Bytes& previous, Input& in, uint8_t op, Bytes* out) {
  uint8_t protocol = 0;
  const std::size_t at = TransportAt(previous, &protocol);
  std::size_t headers = 0;
  if (at != 0 && protocol == 17) headers = at + 8;
  if (at != 0 && protocol == 6 && previous.size() >= at + 20) {
    headers = at + static_cast<std::size_t>(previous[at + 12] >> 4) * 4;
  }
  if (headers < at + (protocol == 6 ? 20 : 8) || headers > previous.size()) return false;
  const std::size_t previous_payload = previous.size() - headers;
  std::size_t payload = (std::size_t{in.Byte()} << 8 | in.Byte()) % 1500;
  if ((op & 0x08) == 0) payload = payload % (previous_payload + 1);  // Mostly no larger.
  out->assign(previous.begin(), previous.begin() + static_cast<std::ptrdiff_t>(headers));
  out->resize(headers + payload);
  in.Fill(out->data() + headers, payload);
  if (protocol == 6) {
    uint32_t sequence = Load32(previous.data() + at + 4) + static_cast<uint32_t>(previous_payload);
    if (op & 0x10) sequence += 1;  // A gap.
    Store32(out->data() + at + 4, sequence);
    // A later acknowledgement sometimes (pure ACKs that supersede), or an
    // earlier one.
    if (op & 0x80) Store32(out->data() + at + 8, Load32(previous.data() + at + 8) + in.Byte() - 64u);
    (*out)[at + 13] = (op & 0x20) ? 0x18 : 0x10;  // ACK, with PSH sometimes.
  }
  MakeRight(*out, (op & 0x40) == 0);
  return true;
}

// A pure ACK (flags ACK only, no payload) of TCP over IPv4 or IPv6, and its
// acknowledgement number; false for anything else.
bool PureAck(const Bytes& p, uint32_t* ack) {
  uint8_t protocol = 0;
  const std::size_t at = TransportAt(p, &protocol);
  if (at == 0 || protocol != 6 || p.size() < at + 20) return false;
  *ack = Load32(p.data() + at + 8);
  return p[at + 13] == 0x10 && at + static_cast<std::size_t>(p[at + 12] >> 4) * 4 == p.size();
}

// `now` may stand in for `held`: both pure ACKs, the same addresses and
// ports, now's acknowledgement number after held's.
bool MaySupersede(const Bytes& held, const Bytes& now) {
  uint32_t a = 0, b = 0;
  if (!PureAck(held, &a) || !PureAck(now, &b) || static_cast<int32_t>(b - a) <= 0) return false;
  const std::size_t at = held[0] == 0x45 ? 20 : 40;
  if (now.size() != held.size() || (now[0] >> 4) != (held[0] >> 4)) return false;
  const std::size_t addresses = at == 20 ? 12 : 8;
  return std::memcmp(now.data() + addresses, held.data() + addresses, at - addresses) == 0 &&
         std::memcmp(now.data() + at, held.data() + at, 4) == 0;
}

void CheckTaken(Coalescer& coalescer, std::vector<Bytes>& run) {
  Gso gso;
  const std::span<const uint8_t> held = coalescer.Take(&gso);
  if (coalescer.holding() || run.empty()) std::abort();
  if (run.size() == 1) {
    if (gso.super() || held.size() != run[0].size() || std::memcmp(held.data(), run[0].data(), held.size()) != 0) {
      std::abort();
    }
    run.clear();
    return;
  }
  SuperPacketLayout layout;
  if (ParseSuperPacket(held, gso, &layout) != GsoVerdict::kOk || layout.segments != run.size()) std::abort();
  // A UDP super-packet's own length covers it, as the kernel reads it.
  const std::size_t at = layout.ip_header_length;
  if (gso.kind == GsoKind::kUdp && Load16(held.data() + at + 4) != held.size() - at) std::abort();
  static Bytes scratch(65536);
  for (std::size_t i = 0; i < run.size(); ++i) {
    const std::size_t n = BuildSegment(held, gso, layout, i, scratch);
    if (n != run[i].size() || std::memcmp(scratch.data() + at, run[i].data() + at, n - at) != 0) std::abort();
  }
  run.clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  Input in{data, size};
  Coalescer coalescer(true);
  std::vector<Bytes> run;
  Bytes previous, packet;
  int packets = 0;
  while (in.size > 0 && packets++ < 200) {
    const uint8_t op = in.Byte();
    if ((op & 0x03) == 0 || !Continue(previous, in, op, &packet)) {
      packet.resize((std::size_t{in.Byte()} << 8 | in.Byte()) % 2048);
      in.Fill(packet.data(), packet.size());
      if (op & 0x04) MakeRight(packet, (op & 0x40) == 0);
    }
    previous = packet;
    for (int tries = 0;; ++tries) {
      if (tries == 2) std::abort();  // Take-first twice in a row: it would spin.
      const Coalescer::Offer offer = coalescer.Add(packet);
      if (offer == Coalescer::Offer::kHeld) {
        run.push_back(packet);
        break;
      }
      if (offer == Coalescer::Offer::kReplacedHeld) {
        if (run.size() != 1 || !MaySupersede(run[0], packet)) std::abort();
        run[0] = packet;
        break;
      }
      if (offer == Coalescer::Offer::kNotCandidate) {
        if (coalescer.holding()) std::abort();
        break;
      }
      CheckTaken(coalescer, run);
    }
  }
  if (coalescer.holding()) CheckTaken(coalescer, run);
  return 0;
}
