#include "mnedc/protocol/frame.h"

#include <gtest/gtest.h>

#include <vector>

#include "mnedc/protocol/control_codec.h"

namespace mnedc::protocol {
namespace {

std::vector<uint8_t> DataFrame(std::vector<uint8_t> payload) {
  std::vector<uint8_t> frame(kFrameHeaderSize);
  WriteFrameHeader(FrameType::kData, static_cast<uint32_t>(payload.size()), frame.data());
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

TEST(Frame, HeaderIsTypeThenBigEndianLength) {
  uint8_t header[kFrameHeaderSize];
  WriteFrameHeader(FrameType::kControl, 0x01020304, header);
  EXPECT_EQ(header[0], 0x02);
  EXPECT_EQ(header[1], 0x01);
  EXPECT_EQ(header[2], 0x02);
  EXPECT_EQ(header[3], 0x03);
  EXPECT_EQ(header[4], 0x04);
}

TEST(Frame, DataRoundTripAtEverySize) {
  for (std::size_t size : {0u, 1u, 20u, 1400u, 9000u, 65535u}) {
    std::vector<uint8_t> payload(size);
    for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<uint8_t>(i * 7);
    const auto frame = DataFrame(payload);
    const ParseResult parsed = ParseFrame(frame);
    ASSERT_EQ(parsed.status, ParseStatus::kFrame) << size;
    EXPECT_EQ(parsed.type, FrameType::kData);
    EXPECT_EQ(parsed.consumed, frame.size());
    EXPECT_EQ(std::vector<uint8_t>(parsed.payload.begin(), parsed.payload.end()), payload);
  }
}

TEST(Frame, TruncatedHeaderAndPayloadNeedMore) {
  const auto frame = DataFrame({1, 2, 3, 4});
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    EXPECT_EQ(ParseFrame(std::span(frame).first(cut)).status, ParseStatus::kNeedMore) << cut;
  }
}

TEST(Frame, OversizeLengthIsRejectedFromHeaderAlone) {
  // Only the header arrives: the verdict must not wait for (or allocate) 4 GiB.
  const uint8_t header[] = {0x01, 0xff, 0xff, 0xff, 0xff};
  const ParseResult parsed = ParseFrame(header);
  EXPECT_EQ(parsed.status, ParseStatus::kOversize);
  EXPECT_EQ(parsed.announced_length, 0xffffffffu);
  const uint8_t just_over[] = {0x01, 0x00, 0x01, 0x00, 0x00};
  EXPECT_EQ(ParseFrame(just_over).status, ParseStatus::kOversize);
  EXPECT_EQ(ParseFrame(just_over, 0x10000).status, ParseStatus::kNeedMore);
}

TEST(Frame, UnknownTypeIsSkippedWhole) {
  std::vector<uint8_t> stream = {0x7f, 0, 0, 0, 3, 9, 9, 9};
  const auto data = DataFrame({5});
  stream.insert(stream.end(), data.begin(), data.end());
  const ParseResult unknown = ParseFrame(stream);
  ASSERT_EQ(unknown.status, ParseStatus::kUnknownType);
  EXPECT_EQ(unknown.raw_type, 0x7f);
  EXPECT_EQ(unknown.consumed, 8u);
  const ParseResult next = ParseFrame(std::span(stream).subspan(unknown.consumed));
  ASSERT_EQ(next.status, ParseStatus::kFrame);
  EXPECT_EQ(next.payload[0], 5);
}

TEST(Frame, FramesBackToBackParseInOrder) {
  std::vector<uint8_t> stream;
  for (uint8_t i = 0; i < 10; ++i) {
    const auto frame = DataFrame(std::vector<uint8_t>(i, i));
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  std::span<const uint8_t> rest(stream);
  for (uint8_t i = 0; i < 10; ++i) {
    const ParseResult parsed = ParseFrame(rest);
    ASSERT_EQ(parsed.status, ParseStatus::kFrame);
    ASSERT_EQ(parsed.payload.size(), i);
    rest = rest.subspan(parsed.consumed);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(ControlCodec, RoundTripHello) {
  ControlMessage message;
  auto* hello = message.mutable_hello();
  hello->set_protocol_version(kProtocolVersion);
  hello->set_device_id("device-a");
  hello->set_previous_address(0x0a000007);
  std::vector<uint8_t> frame;
  ASSERT_TRUE(EncodeControlFrame(message, frame));
  const ParseResult parsed = ParseFrame(frame);
  ASSERT_EQ(parsed.status, ParseStatus::kFrame);
  EXPECT_EQ(parsed.type, FrameType::kControl);
  ControlMessage decoded;
  ASSERT_TRUE(DecodeControl(parsed.payload, decoded));
  EXPECT_EQ(ControlKind(decoded), "Hello");
  EXPECT_EQ(decoded.hello().device_id(), "device-a");
  EXPECT_EQ(decoded.hello().previous_address(), 0x0a000007u);
}

TEST(ControlCodec, GarbageIsRejected) {
  // Field 1, wire type 2 (length-delimited) claiming 100 bytes that are not there.
  const uint8_t garbage[] = {0x0a, 0x64, 0x01};
  ControlMessage decoded;
  EXPECT_FALSE(DecodeControl(garbage, decoded));
  const uint8_t bad_tag[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  EXPECT_FALSE(DecodeControl(bad_tag, decoded));
}

TEST(ControlCodec, UnknownBodyParsesAsNotSet) {
  // Field 100 (varint) is a oneof case from the future: skipped, not fatal.
  const uint8_t future[] = {0xa0, 0x06, 0x01};
  ControlMessage decoded;
  ASSERT_TRUE(DecodeControl(future, decoded));
  EXPECT_EQ(decoded.body_case(), ControlMessage::BODY_NOT_SET);
  EXPECT_EQ(ControlKind(decoded), "unknown");
}


TEST(Frame, SuperPacketFramesMayBeLargerThanOthersButNoLarger) {
  std::vector<uint8_t> frame(kFrameHeaderSize + kMaxSuperFramePayload);
  WriteFrameHeader(FrameType::kSuperPacket, kMaxSuperFramePayload, frame.data());
  WriteSuperPacketHeader(packet::Gso{packet::GsoKind::kTcp, 0x1234}, frame.data() + kFrameHeaderSize);
  ParseResult parsed = ParseFrame(frame);
  ASSERT_EQ(parsed.status, ParseStatus::kFrame);
  EXPECT_EQ(parsed.type, FrameType::kSuperPacket);
  packet::Gso gso;
  std::span<const uint8_t> packet;
  ASSERT_TRUE(ReadSuperPacketHeader(parsed.payload, &gso, &packet));
  EXPECT_EQ(gso, (packet::Gso{packet::GsoKind::kTcp, 0x1234}));
  EXPECT_EQ(packet.size(), packet::kMaxSuperPacket);
  EXPECT_FALSE(ReadSuperPacketHeader(parsed.payload.first(3), &gso, &packet));

  // One byte more is refused from the header alone; a DATA frame of that size too.
  WriteFrameHeader(FrameType::kSuperPacket, kMaxSuperFramePayload + 1, frame.data());
  parsed = ParseFrame(std::span<const uint8_t>(frame).first(kFrameHeaderSize));
  EXPECT_EQ(parsed.status, ParseStatus::kOversize);
  WriteFrameHeader(FrameType::kData, kMaxFramePayload + 1, frame.data());
  parsed = ParseFrame(std::span<const uint8_t>(frame).first(kFrameHeaderSize));
  EXPECT_EQ(parsed.status, ParseStatus::kOversize);
}

}  // namespace
}  // namespace mnedc::protocol
