#include "mnedc/stun/message.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <string_view>

namespace mnedc::stun {
namespace {
namespace ip = boost::asio::ip;

constexpr uint16_t kBindingRequest = 0x0001;
constexpr uint16_t kBindingSuccess = 0x0101;
constexpr uint16_t kMappedAddress = 0x0001;
constexpr uint16_t kChangeRequest = 0x0003;  // RFC 5780; only "change nothing" is taken.
constexpr uint16_t kPadding = 0x0026;        // RFC 5780.
constexpr uint16_t kXorMappedAddress = 0x0020;
constexpr uint16_t kSoftware = 0x8022;
constexpr std::string_view kSoftwareText = "mnedc: what is my addr?";  // Pads the request.
static_assert(((kSoftwareText.size() + 3) & ~std::size_t{3}) == kRequestSize - kHeaderSize - 4);

uint16_t Read16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t Read32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
void Write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// The header of a datagram that LooksLikeStun: type, and whether it has the cookie.
struct Header {
  uint16_t type = 0;
  bool cookie = false;
};
Header ReadHeader(std::span<const uint8_t> datagram) {
  return {Read16(datagram.data()), Read32(datagram.data() + 4) == kMagicCookie};
}

// Walks the attributes after the header; `visit(type, value)` returns false to
// stop (and make the walk fail). False if an attribute runs past the end.
template <typename Visit>
bool ForEachAttribute(std::span<const uint8_t> datagram, Visit visit) {
  std::size_t at = kHeaderSize;
  while (at < datagram.size()) {
    if (datagram.size() - at < 4) return false;
    const uint16_t type = Read16(&datagram[at]);
    const std::size_t length = Read16(&datagram[at + 2]);
    const std::size_t padded = (length + 3) & ~std::size_t{3};
    if (datagram.size() - at - 4 < padded) return false;
    if (!visit(type, datagram.subspan(at + 4, length))) return false;
    at += 4 + padded;
  }
  return true;
}

// MAPPED-ADDRESS or XOR-MAPPED-ADDRESS's value; `mask` is what the address
// and port are XORed with (zeros for MAPPED-ADDRESS).
bool ReadAddress(std::span<const uint8_t> value, std::span<const uint8_t, 16> mask, ip::udp::endpoint* out) {
  if (value.size() < 4) return false;
  const uint16_t port = Read16(&value[2]) ^ Read16(mask.data());
  if (value[1] == 0x01 && value.size() == 8) {
    ip::address_v4::bytes_type bytes;
    for (int i = 0; i < 4; ++i) bytes[i] = value[4 + i] ^ mask[i];
    *out = ip::udp::endpoint(ip::address_v4(bytes), port);
    return true;
  }
  if (value[1] == 0x02 && value.size() == 20) {
    ip::address_v6::bytes_type bytes;
    for (int i = 0; i < 16; ++i) bytes[i] = value[4 + i] ^ mask[i];
    *out = ip::udp::endpoint(ip::address_v6(bytes), port);
    return true;
  }
  return false;
}
}  // namespace

bool LooksLikeStun(std::span<const uint8_t> datagram) {
  if (datagram.size() < kHeaderSize || (datagram[0] & 0xC0) != 0) return false;
  const std::size_t length = Read16(&datagram[2]);
  return length % 4 == 0 && length == datagram.size() - kHeaderSize;
}

RequestVerdict ParseBindingRequest(std::span<const uint8_t> datagram, BindingRequest* request) {
  if (!LooksLikeStun(datagram)) return RequestVerdict::kNotStun;
  const Header header = ReadHeader(datagram);
  if (header.type != kBindingRequest) return RequestVerdict::kNotBindingRequest;
  bool unknown_required = false;
  const bool parsed = ForEachAttribute(datagram, [&](uint16_t type, std::span<const uint8_t> value) {
    if (type == kChangeRequest) {
      // Asking for the answer from another address or port: this server has
      // one of each, and answering from elsewhere is not on offer.
      if (value.size() != 4) return false;
      if (Read32(value.data()) & 0x6) unknown_required = true;
    } else if (type < 0x8000 && type != kPadding) {
      unknown_required = true;  // RESPONSE-PORT, MESSAGE-INTEGRITY, USERNAME, ...
    }
    return true;
  });
  if (!parsed) return RequestVerdict::kMalformed;
  if (unknown_required) return RequestVerdict::kUnknownRequired;
  request->classic = !header.cookie;
  std::memcpy(request->transaction.data(), datagram.data() + 4, 16);
  return RequestVerdict::kBinding;
}

std::size_t WriteBindingResponse(const BindingRequest& request, const ip::udp::endpoint& seen_from,
                                 std::span<uint8_t, kMaxResponseSize> out) {
  ip::address address = seen_from.address();
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    address = ip::make_address_v4(ip::v4_mapped, address.to_v6());
  }
  const std::size_t address_size = address.is_v4() ? 4 : 16;
  const std::size_t size = kHeaderSize + 4 + 4 + address_size;
  Write16(&out[0], kBindingSuccess);
  Write16(&out[2], static_cast<uint16_t>(size - kHeaderSize));
  std::memcpy(&out[4], request.transaction.data(), 16);
  // XOR-MAPPED-ADDRESS against the cookie and transaction ID; an RFC 3489
  // client gets MAPPED-ADDRESS (it knows no other, and sent no cookie).
  std::array<uint8_t, 16> mask{};
  if (!request.classic) std::memcpy(mask.data(), &out[4], 16);
  Write16(&out[20], request.classic ? kMappedAddress : kXorMappedAddress);
  Write16(&out[22], static_cast<uint16_t>(4 + address_size));
  out[24] = 0;
  out[25] = address.is_v4() ? 0x01 : 0x02;
  Write16(&out[26], seen_from.port() ^ Read16(mask.data()));
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    for (int i = 0; i < 4; ++i) out[28 + i] = bytes[i] ^ mask[i];
  } else {
    const auto bytes = address.to_v6().to_bytes();
    for (int i = 0; i < 16; ++i) out[28 + i] = bytes[i] ^ mask[i];
  }
  return size;
}

std::size_t WriteBindingRequest(const TransactionId& transaction, std::span<uint8_t, kRequestSize> out) {
  std::fill(out.begin(), out.end(), 0);
  Write16(&out[0], kBindingRequest);
  Write16(&out[2], static_cast<uint16_t>(kRequestSize - kHeaderSize));
  std::memcpy(&out[4], transaction.data(), 16);
  Write16(&out[20], kSoftware);
  Write16(&out[22], static_cast<uint16_t>(kSoftwareText.size()));
  std::memcpy(&out[24], kSoftwareText.data(), kSoftwareText.size());  // Zero-padded to 4.
  return kRequestSize;
}

TransactionId NewTransactionId() {
  TransactionId id{};
  id[0] = kMagicCookie >> 24;
  id[1] = (kMagicCookie >> 16) & 0xFF;
  id[2] = (kMagicCookie >> 8) & 0xFF;
  id[3] = kMagicCookie & 0xFF;
  if (RAND_bytes(id.data() + 4, 12) != 1) {
    // Without randomness a forged answer is easier to guess, not possible
    // to make unguessable: still unique per call.
    static uint64_t fallback = 0;
    ++fallback;
    std::memcpy(id.data() + 4, &fallback, sizeof fallback);
  }
  return id;
}

ResponseVerdict ParseBindingResponse(std::span<const uint8_t> datagram, const TransactionId& transaction,
                                     ip::udp::endpoint* mapped) {
  if (!LooksLikeStun(datagram)) return ResponseVerdict::kNotStun;
  const Header header = ReadHeader(datagram);
  if (header.type != kBindingSuccess || !std::equal(transaction.begin(), transaction.end(), datagram.begin() + 4)) {
    return ResponseVerdict::kOther;
  }
  const std::array<uint8_t, 16> zeros{};
  std::array<uint8_t, 16> mask{};
  std::memcpy(mask.data(), datagram.data() + 4, 16);
  bool have_xor = false;
  bool have_plain = false;
  ip::udp::endpoint from_xor;
  ip::udp::endpoint from_plain;
  const bool parsed = ForEachAttribute(datagram, [&](uint16_t type, std::span<const uint8_t> value) {
    if (type == kXorMappedAddress && !have_xor) have_xor = ReadAddress(value, mask, &from_xor);
    if (type == kMappedAddress && !have_plain) have_plain = ReadAddress(value, zeros, &from_plain);
    return true;
  });
  if (!parsed || (!have_xor && !have_plain)) return ResponseVerdict::kMalformed;
  *mapped = have_xor ? from_xor : from_plain;
  return ResponseVerdict::kMapped;
}

}  // namespace mnedc::stun
