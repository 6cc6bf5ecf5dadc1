#include "mnedc/client/disco.h"

#include <algorithm>
#include <cstring>

namespace mnedc::client {
namespace {
namespace ip = boost::asio::ip;
constexpr std::size_t kAddressSize = 19;

void WriteAddress(const ip::udp::endpoint& endpoint, uint8_t* out) {
  std::memset(out, 0, kAddressSize);
  out[1] = static_cast<uint8_t>(endpoint.port() >> 8);
  out[2] = static_cast<uint8_t>(endpoint.port());
  if (endpoint.address().is_v4()) {
    out[0] = 4;
    const auto bytes = endpoint.address().to_v4().to_bytes();
    std::memcpy(out + 3, bytes.data(), 4);
  } else {
    out[0] = 6;
    const auto bytes = endpoint.address().to_v6().to_bytes();
    std::memcpy(out + 3, bytes.data(), 16);
  }
}

bool ReadAddress(const uint8_t* in, ip::udp::endpoint* endpoint) {
  const uint16_t port = static_cast<uint16_t>(in[1] << 8 | in[2]);
  if (in[0] == 4) {
    ip::address_v4::bytes_type bytes;
    std::memcpy(bytes.data(), in + 3, 4);
    *endpoint = ip::udp::endpoint(ip::address_v4(bytes), port);
    return true;
  }
  if (in[0] == 6) {
    ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), in + 3, 16);
    *endpoint = ip::udp::endpoint(ip::address_v6(bytes), port);
    return true;
  }
  return false;
}
}  // namespace

bool ParseDisco(std::span<const uint8_t> body, DiscoMessage* message) {
  if (body.empty()) return false;
  switch (static_cast<DiscoType>(body[0])) {
    case DiscoType::kPing:
      if (body.size() != kPingSize) return false;
      message->type = DiscoType::kPing;
      std::memcpy(message->id.data(), &body[1], 12);
      return true;
    case DiscoType::kPong:
      if (body.size() != kPongSize) return false;
      message->type = DiscoType::kPong;
      std::memcpy(message->id.data(), &body[1], 12);
      return ReadAddress(&body[13], &message->seen_from);
    case DiscoType::kCallMeMaybe: {
      if (body.size() < 2) return false;
      const std::size_t count = body[1];
      if (count > kMaxCandidates || body.size() != 2 + count * kAddressSize) return false;
      message->type = DiscoType::kCallMeMaybe;
      message->candidate_count = count;
      for (std::size_t i = 0; i < count; ++i) {
        if (!ReadAddress(&body[2 + i * kAddressSize], &message->candidates[i])) return false;
      }
      return true;
    }
  }
  return false;
}

std::size_t WritePing(const ProbeId& id, std::span<uint8_t, kPingSize> out) {
  std::fill(out.begin(), out.end(), 0);
  out[0] = static_cast<uint8_t>(DiscoType::kPing);
  std::memcpy(&out[1], id.data(), 12);
  return kPingSize;
}

std::size_t WritePong(const ProbeId& id, const ip::udp::endpoint& seen_from, std::span<uint8_t, kPongSize> out) {
  out[0] = static_cast<uint8_t>(DiscoType::kPong);
  std::memcpy(&out[1], id.data(), 12);
  WriteAddress(seen_from, &out[13]);
  return kPongSize;
}

std::size_t WriteCallMeMaybe(std::span<const ip::udp::endpoint> candidates,
                             std::span<uint8_t, kMaxCallMeMaybeSize> out) {
  const std::size_t count = std::min(candidates.size(), kMaxCandidates);
  out[0] = static_cast<uint8_t>(DiscoType::kCallMeMaybe);
  out[1] = static_cast<uint8_t>(count);
  for (std::size_t i = 0; i < count; ++i) WriteAddress(candidates[i], &out[2 + i * kAddressSize]);
  return 2 + count * kAddressSize;
}

}  // namespace mnedc::client
