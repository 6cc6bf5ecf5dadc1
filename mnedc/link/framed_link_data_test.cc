// FramedLink's data frames: super-packets whole or cut, sent directly or
// queued, and sealed frames both ways.
#include "mnedc/link/link_test_fixture.h"

namespace mnedc::link {
namespace {
using namespace test;

std::vector<uint8_t> SuperFrame(packet::Gso gso, const std::vector<uint8_t>& packet) {
  std::vector<uint8_t> payload(protocol::kSuperPacketHeaderSize);
  protocol::WriteSuperPacketHeader(gso, payload.data());
  payload.insert(payload.end(), packet.begin(), packet.end());
  return Frame(static_cast<uint8_t>(protocol::FrameType::kSuperPacket), payload);
}

TEST_F(LinkTest, TakesASuperPacketWholeAndDropsOnesWhoseHeaderDoesNotFit) {
  RunLink();
  packet::testing::Flow flow;
  const std::vector<uint8_t> super_packet = packet::testing::MakePacket(flow, 10000);
  const packet::Gso gso{packet::GsoKind::kTcp, 1400};
  Write(SuperFrame(gso, super_packet));
  Write(SuperFrame({packet::GsoKind::kTcp, 0}, super_packet));      // A segment size of 0.
  std::vector<uint8_t> header_past_end = packet::testing::MakePacket(flow, 0);
  header_past_end[32] = 0xf0;                                          // TCP header of 60 in 40 bytes.
  Write(SuperFrame(gso, header_past_end));
  Write(SuperFrame({packet::GsoKind::kUdp, 1400}, super_packet));   // Not UDP.
  Write(Frame(static_cast<uint8_t>(protocol::FrameType::kSuperPacket), {1, 0}));  // No room for its header.
  Write(Frame(1, {4, 5, 6}));
  io_.run_for(200ms);
  ASSERT_EQ(sink_.packets.size(), 2u);
  EXPECT_EQ(sink_.packets[0], super_packet);
  EXPECT_EQ(sink_.offloads[0], gso);
  EXPECT_EQ(sink_.packets[1], (std::vector<uint8_t>{4, 5, 6}));
  EXPECT_FALSE(sink_.offloads[1].super());
  EXPECT_EQ(link_->counters().super_packets_in, 1u);
  EXPECT_EQ(link_->counters().bad_super_packets, 4u);
  EXPECT_GE(sink_.batch_ends, 1);
  EXPECT_FALSE(done_);  // Dropped, not fatal: the frames themselves were whole.

  // A SUPER frame announcing more than the largest super-packet ends the link.
  std::vector<uint8_t> header(protocol::kFrameHeaderSize);
  protocol::WriteFrameHeader(protocol::FrameType::kSuperPacket, protocol::kMaxSuperFramePayload + 1, header.data());
  Write(header);
  const auto controls = ReadControlsUntilEof(2s);
  ASSERT_FALSE(controls.empty());
  EXPECT_EQ(controls.back().error().code(), protocol::Error::BAD_REQUEST);
}

// Reads every frame the link sends within `limit`.
std::vector<std::pair<uint8_t, std::vector<uint8_t>>> ReadFrames(asio::io_context& io, tcp::socket& raw,
                                                                 std::chrono::milliseconds limit) {
  std::vector<uint8_t> bytes;
  raw.non_blocking(true);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    io.run_for(10ms);
    uint8_t chunk[65536];
    boost::system::error_code ec;
    const std::size_t n = raw.read_some(asio::buffer(chunk), ec);
    if (ec) continue;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  std::vector<std::pair<uint8_t, std::vector<uint8_t>>> frames;
  std::span<const uint8_t> rest(bytes);
  for (;;) {
    auto frame = protocol::ParseFrame(rest);
    if (frame.status != protocol::ParseStatus::kFrame) break;
    frames.emplace_back(frame.raw_type, std::vector<uint8_t>(frame.payload.begin(), frame.payload.end()));
    rest = rest.subspan(frame.consumed);
  }
  return frames;
}

TEST_F(LinkTest, SendsASuperPacketWholeOnlyToAPeerThatTakesThem) {
  RunLink();
  packet::testing::Flow flow;
  const std::vector<uint8_t> super_packet = packet::testing::MakePacket(flow, 5000);
  const packet::Gso gso{packet::GsoKind::kTcp, 1400};
  EXPECT_EQ(link_->FramesFor(super_packet, gso), 4u);
  EXPECT_EQ(link_->SendData(super_packet, gso), FramedLink::Push::kQueued);
  auto frames = ReadFrames(io_, raw_, 200ms);
  ASSERT_EQ(frames.size(), 4u);
  for (std::size_t i = 0; i < frames.size(); ++i) {
    packet::testing::Flow segment = flow;
    segment.ip_id = static_cast<uint16_t>(flow.ip_id + i);
    EXPECT_EQ(frames[i].first, static_cast<uint8_t>(protocol::FrameType::kData));
    EXPECT_EQ(frames[i].second, packet::testing::MakePacket(segment, i < 3 ? 1400 : 800, i * 1400));
  }
  EXPECT_EQ(link_->counters().super_packets_split, 1u);

  link_->set_peer_takes_super_packets(true);
  EXPECT_EQ(link_->FramesFor(super_packet, gso), 1u);
  EXPECT_EQ(link_->SendData(super_packet, gso), FramedLink::Push::kQueued);
  frames = ReadFrames(io_, raw_, 200ms);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].first, static_cast<uint8_t>(protocol::FrameType::kSuperPacket));
  const std::vector<uint8_t> expected = SuperFrame(gso, super_packet);
  EXPECT_EQ(frames[0].second, std::vector<uint8_t>(expected.begin() + protocol::kFrameHeaderSize, expected.end()));
  EXPECT_EQ(link_->counters().super_packets_out, 1u);
  EXPECT_EQ(link_->counters().direct_sends, 0u) << "a small super-packet waits for the writer";
}

// A large super-packet goes from the caller's buffer straight to the socket
// when nothing is ahead of it. What the socket does not take (a small send
// buffer here) goes out before anything queued after it: the peer reads every
// frame whole and in order.
TEST_F(LinkTest, SendsALargeSuperPacketDirectlyAndFinishesAPartialSendFirst) {
  raw_ = tcp::socket(io_);
  raw_.open(tcp::v4());
  raw_.set_option(asio::socket_base::receive_buffer_size(8192));
  tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
  raw_.connect(acceptor.local_endpoint());
  tcp::socket accepted = acceptor.accept();
  accepted.set_option(asio::socket_base::send_buffer_size(8192));
  link_ = std::make_unique<FramedLink>(io_.get_executor(), MakeTcpStream(std::move(accepted)), options_);
  RunLink();
  link_->set_peer_takes_super_packets(true);
  io_.run_for(10ms);  // The writer starts, and waits for something to send.

  const packet::Gso gso{packet::GsoKind::kTcp, 1400};
  std::vector<std::vector<uint8_t>> sent;
  for (uint32_t i = 0; i < 6; ++i) {
    packet::testing::Flow flow;
    flow.sequence = 1000 + i * 30000;
    sent.push_back(packet::testing::MakePacket(flow, 30000));
    EXPECT_EQ(link_->SendData(sent.back(), gso), FramedLink::Push::kQueued);
    // The first went (partly) to the socket at once; the rest wait behind it.
    EXPECT_EQ(link_->counters().direct_sends, 1u) << "after super-packet " << i;
  }
  auto frames = ReadFrames(io_, raw_, 500ms);
  ASSERT_EQ(frames.size(), sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    const std::vector<uint8_t> expected = SuperFrame(gso, sent[i]);
    EXPECT_EQ(frames[i].first, static_cast<uint8_t>(protocol::FrameType::kSuperPacket));
    EXPECT_EQ(frames[i].second, std::vector<uint8_t>(expected.begin() + protocol::kFrameHeaderSize, expected.end()))
        << "super-packet " << i;
  }
  EXPECT_EQ(link_->counters().super_packets_out, sent.size());
  EXPECT_EQ(link_->counters().frames_out, sent.size());

  // All sent: the next one goes directly again.
  EXPECT_EQ(link_->SendData(sent[0], gso), FramedLink::Push::kQueued);
  EXPECT_EQ(link_->counters().direct_sends, 2u);
  frames = ReadFrames(io_, raw_, 300ms);
  ASSERT_EQ(frames.size(), 1u);
  const std::vector<uint8_t> expected = SuperFrame(gso, sent[0]);
  EXPECT_EQ(frames[0].second, std::vector<uint8_t>(expected.begin() + protocol::kFrameHeaderSize, expected.end()));
}

TEST_F(LinkTest, SealedFramesPassWholeBothWaysAndShortOnesAreDropped) {
  RunLink();
  std::vector<uint8_t> payload(protocol::kSealedHeaderSize + 100 + protocol::kSealedTagSize);
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<uint8_t>(i);
  const uint8_t sealed_type = static_cast<uint8_t>(protocol::FrameType::kSealed);
  Write(Frame(sealed_type, payload));
  Write(Frame(sealed_type, std::vector<uint8_t>(protocol::kSealedHeaderSize + protocol::kSealedTagSize - 1)));
  Write(Frame(1, {4, 5, 6}));
  io_.run_for(200ms);
  ASSERT_EQ(sink_.sealed.size(), 1u);
  EXPECT_EQ(sink_.sealed[0], payload);
  EXPECT_EQ(sink_.packets.size(), 1u);
  EXPECT_EQ(link_->counters().bad_sealed, 1u);
  EXPECT_FALSE(done_);

  // Out: forwarded as it came, and sealed in place in the queue.
  EXPECT_EQ(link_->SendSealed(payload), FramedLink::Push::kQueued);
  FramedLink::Push push;
  const std::span<uint8_t> room = link_->AppendSealed(40, &push);
  ASSERT_EQ(room.size(), 40u);
  EXPECT_EQ(push, FramedLink::Push::kQueued);
  std::fill(room.begin(), room.end(), 0x5a);
  const auto frames = ReadFrames(io_, raw_, 200ms);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].first, sealed_type);
  EXPECT_EQ(frames[0].second, payload);
  EXPECT_EQ(frames[1].first, sealed_type);
  EXPECT_EQ(frames[1].second, std::vector<uint8_t>(40, 0x5a));

  // A SEALED frame announcing more than the largest sealed super-packet ends the link.
  std::vector<uint8_t> header(protocol::kFrameHeaderSize);
  protocol::WriteFrameHeader(protocol::FrameType::kSealed, protocol::kMaxSealedFramePayload + 1, header.data());
  Write(header);
  const auto controls = ReadControlsUntilEof(2s);
  ASSERT_FALSE(controls.empty());
  EXPECT_EQ(controls.back().error().code(), protocol::Error::BAD_REQUEST);
}

}  // namespace
}  // namespace mnedc::link
