#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <vector>

#include "mnedc/stun/message.h"
#include "mnedc/stun/responder.h"

namespace mnedc::stun {
namespace {
namespace ip = boost::asio::ip;

std::vector<uint8_t> Hex(std::string_view hex) {
  std::vector<uint8_t> out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

// RFC 5769's transaction ID (sections 2.2 and 2.3), after the magic cookie.
TransactionId Rfc5769Transaction() {
  TransactionId id;
  const auto bytes = Hex("2112a442b7e7a701bc34d686fa87dfae");
  std::copy(bytes.begin(), bytes.end(), id.begin());
  return id;
}

TEST(StunTest, XorMappedAddressMatchesRfc5769ForIpv4AndIpv6) {
  const BindingRequest request{Rfc5769Transaction(), false};
  std::array<uint8_t, kMaxResponseSize> out;
  // 2.2: 192.0.2.1 port 32853 -> X-Port a147, X-Address e112a643.
  std::size_t size = WriteBindingResponse(request, {ip::make_address("192.0.2.1"), 32853}, out);
  ASSERT_EQ(size, 32u);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + size),
            Hex("0101000c2112a442b7e7a701bc34d686fa87dfae002000080001a147e112a643"));
  // 2.3: 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
  size = WriteBindingResponse(request, {ip::make_address("2001:db8:1234:5678:11:2233:4455:6677"), 32853}, out);
  ASSERT_EQ(size, 44u);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + size),
            Hex("010100182112a442b7e7a701bc34d686fa87dfae002000140002a1470113a9faa5d3f179bc25f4b5bed2b9d9"));
  // And read back.
  ip::udp::endpoint mapped;
  ASSERT_EQ(ParseBindingResponse(std::span(out.data(), size), request.transaction, &mapped),
            ResponseVerdict::kMapped);
  EXPECT_EQ(mapped, ip::udp::endpoint(ip::make_address("2001:db8:1234:5678:11:2233:4455:6677"), 32853));
}

TEST(StunTest, AnIpv4MappedSourceIsAnsweredAsIpv4) {
  const BindingRequest request{Rfc5769Transaction(), false};
  std::array<uint8_t, kMaxResponseSize> out;
  const std::size_t size = WriteBindingResponse(request, {ip::make_address("::ffff:192.0.2.1"), 32853}, out);
  ip::udp::endpoint mapped;
  ASSERT_EQ(ParseBindingResponse(std::span(out.data(), size), request.transaction, &mapped), ResponseVerdict::kMapped);
  EXPECT_EQ(mapped, ip::udp::endpoint(ip::make_address("192.0.2.1"), 32853));
}

TEST(StunTest, ARequestRoundTripsAndIsNoSmallerThanTheAnswer) {
  const TransactionId id = NewTransactionId();
  EXPECT_NE(id, NewTransactionId());
  std::array<uint8_t, kRequestSize> request;
  ASSERT_EQ(WriteBindingRequest(id, request), kRequestSize);
  EXPECT_GE(kRequestSize, kMaxResponseSize);
  BindingRequest parsed;
  ASSERT_EQ(ParseBindingRequest(request, &parsed), RequestVerdict::kBinding);
  EXPECT_EQ(parsed.transaction, id);
  EXPECT_FALSE(parsed.classic);
}

TEST(StunTest, AnRfc3489ClientGetsMappedAddress) {
  // What Debian's stun-client (0.97) sends: no cookie, CHANGE-REQUEST 0.
  const auto request = Hex("0001000801d3d01514498c567bed3f03c16f39780003000400000000");
  BindingRequest parsed;
  ASSERT_EQ(ParseBindingRequest(request, &parsed), RequestVerdict::kBinding);
  EXPECT_TRUE(parsed.classic);
  std::array<uint8_t, kMaxResponseSize> out;
  const std::size_t size = WriteBindingResponse(parsed, {ip::make_address("198.51.100.7"), 4242}, out);
  EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + size),
            Hex("0101000c01d3d01514498c567bed3f03c16f39780001000800011092c6336407"));
}

TEST(StunTest, HostileRequestsAreRefusedNotTrusted) {
  BindingRequest parsed;
  auto verdict = [&](std::string_view hex) { return ParseBindingRequest(Hex(hex), &parsed); };
  EXPECT_EQ(verdict(""), RequestVerdict::kNotStun);
  EXPECT_EQ(verdict("0001000021"), RequestVerdict::kNotStun);  // Short.
  EXPECT_EQ(verdict("c0010000" "2112a442b7e7a701bc34d686fa87dfae"), RequestVerdict::kNotStun);  // First bits.
  EXPECT_EQ(verdict("000100042112a442b7e7a701bc34d686fa87dfae"), RequestVerdict::kNotStun);  // Length past end.
  // An attribute whose length runs past the message.
  EXPECT_EQ(verdict("000100042112a442b7e7a701bc34d686fa87dfae80220010"), RequestVerdict::kMalformed);
  // RESPONSE-PORT (answer elsewhere): not offered.
  EXPECT_EQ(verdict("000100082112a442b7e7a701bc34d686fa87dfae0027000412340000"), RequestVerdict::kUnknownRequired);
  // CHANGE-REQUEST asking for another address or port.
  EXPECT_EQ(verdict("000100082112a442b7e7a701bc34d686fa87dfae0003000400000006"), RequestVerdict::kUnknownRequired);
  // A success response is not a request.
  EXPECT_EQ(verdict("010100002112a442b7e7a701bc34d686fa87dfae"), RequestVerdict::kNotBindingRequest);
  // Unknown comprehension-optional attributes are skipped.
  EXPECT_EQ(verdict("000100082112a442b7e7a701bc34d686fa87dfae80ff000401020304"), RequestVerdict::kBinding);
}

TEST(StunTest, ResponsesToOtherTransactionsOrWithoutAnAddressAreNotTaken) {
  const TransactionId id = Rfc5769Transaction();
  ip::udp::endpoint mapped;
  auto verdict = [&](std::string_view hex) { return ParseBindingResponse(Hex(hex), id, &mapped); };
  const std::string good = "0101000c2112a442b7e7a701bc34d686fa87dfae002000080001a147e112a643";
  EXPECT_EQ(verdict(good), ResponseVerdict::kMapped);
  std::string other = good;
  other[39] = '0';  // Another transaction ID.
  EXPECT_EQ(verdict(other), ResponseVerdict::kOther);
  EXPECT_EQ(verdict("010100002112a442b7e7a701bc34d686fa87dfae"), ResponseVerdict::kMalformed);
  // An address family that is neither, or a value of the wrong length.
  EXPECT_EQ(verdict("0101000c2112a442b7e7a701bc34d686fa87dfae002000080003a147e112a643"), ResponseVerdict::kMalformed);
  EXPECT_EQ(verdict("0101000c2112a442b7e7a701bc34d686fa87dfae002000080002a147e112a643"), ResponseVerdict::kMalformed);
  // An error response.
  EXPECT_EQ(verdict("011100002112a442b7e7a701bc34d686fa87dfae"), ResponseVerdict::kOther);
}

TEST(StunTest, TheResponderAnswersEachSourceAtMostItsRateInASecond) {
  boost::asio::io_context io;
  ip::udp::socket socket(io);
  Responder responder(socket, {.per_source_per_second = 3, .max_sources = 2});
  std::array<uint8_t, kRequestSize> request;
  WriteBindingRequest(NewTransactionId(), request);
  std::array<uint8_t, kMaxResponseSize> answer;
  const ip::udp::endpoint a(ip::make_address("192.0.2.1"), 1000);
  const ip::udp::endpoint a_other_port(ip::make_address("192.0.2.1"), 1001);
  const ip::udp::endpoint b(ip::make_address("192.0.2.2"), 1000);
  const ip::udp::endpoint c(ip::make_address("192.0.2.3"), 1000);
  EXPECT_EQ(responder.Handle(request, a, 7, answer), 32u);
  EXPECT_EQ(responder.Handle(request, a_other_port, 7, answer), 32u);
  EXPECT_EQ(responder.Handle(request, a, 7, answer), 32u);
  EXPECT_EQ(responder.Handle(request, a, 7, answer), 0u);  // The 4th from one address in one second.
  EXPECT_EQ(responder.Handle(request, b, 7, answer), 32u);
  EXPECT_EQ(responder.Handle(request, c, 7, answer), 0u);  // A 3rd source when 2 are tracked.
  EXPECT_EQ(responder.counters().rate_limited, 2u);
  EXPECT_EQ(responder.Handle(request, a, 8, answer), 32u);  // The next second.
  EXPECT_EQ(responder.Handle(request, c, 8, answer), 32u);
  EXPECT_EQ(responder.Handle(std::span<const uint8_t>(request).first(30), a, 8, answer), 0u);
  EXPECT_EQ(responder.counters().not_stun, 1u);
}

}  // namespace
}  // namespace mnedc::stun
