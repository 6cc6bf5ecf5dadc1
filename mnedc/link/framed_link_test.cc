#include "mnedc/link/framed_link.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "mnedc/packet/test_packets.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::link {
namespace {
using transport::MakeTcpStream;

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

struct RecordingSink : FrameSink {
  std::vector<std::vector<uint8_t>> packets;
  std::vector<packet::Gso> offloads;
  std::vector<std::string> controls;
  int batch_ends = 0;
  DataVerdict OnData(std::span<const uint8_t> packet, packet::Gso gso) override {
    packets.emplace_back(packet.begin(), packet.end());
    offloads.push_back(gso);
    return DataVerdict::kAccepted;
  }
  std::vector<std::vector<uint8_t>> sealed;
  DataVerdict OnSealed(std::span<uint8_t> payload) override {
    sealed.emplace_back(payload.begin(), payload.end());
    return DataVerdict::kAccepted;
  }
  void OnReadBatchEnd() override { ++batch_ends; }
  bool OnControl(const protocol::ControlMessage& message) override {
    controls.push_back(protocol::ControlKind(message));
    return true;
  }
};

std::vector<uint8_t> Frame(uint8_t type, std::vector<uint8_t> payload) {
  std::vector<uint8_t> frame(protocol::kFrameHeaderSize);
  protocol::WriteFrameHeader(static_cast<protocol::FrameType>(type),
                             static_cast<uint32_t>(payload.size()), frame.data());
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

std::vector<uint8_t> Control(const protocol::ControlMessage& message) {
  std::vector<uint8_t> frame;
  EXPECT_TRUE(protocol::EncodeControlFrame(message, frame));
  return frame;
}

// A FramedLink on the accepting side of a loopback connection; the test drives
// the other end as raw bytes.
class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = tcp::socket(io_);
    tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    raw_.connect(acceptor.local_endpoint());
    link_ = std::make_unique<FramedLink>(io_.get_executor(), MakeTcpStream(acceptor.accept()),
                                         options_);
  }
  void RunLink() {
    asio::co_spawn(io_, [this]() -> asio::awaitable<void> {
      co_await link_->Run(sink_);
      done_ = true;
    }, asio::detached);
  }
  void Write(const std::vector<uint8_t>& bytes) { asio::write(raw_, asio::buffer(bytes)); }
  // Reads frames from the raw side until EOF or the deadline.
  std::vector<protocol::ControlMessage> ReadControlsUntilEof(std::chrono::milliseconds limit) {
    std::vector<protocol::ControlMessage> result;
    std::vector<uint8_t> bytes;
    raw_.non_blocking(true);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      io_.run_for(10ms);
      uint8_t chunk[4096];
      boost::system::error_code ec;
      const std::size_t n = raw_.read_some(asio::buffer(chunk), ec);
      if (ec == asio::error::would_block) continue;
      if (ec) {
        eof_ = true;
        break;
      }
      bytes.insert(bytes.end(), chunk, chunk + n);
    }
    std::span<const uint8_t> rest(bytes);
    for (;;) {
      auto frame = protocol::ParseFrame(rest);
      if (frame.status != protocol::ParseStatus::kFrame) break;
      if (frame.type == protocol::FrameType::kControl) {
        protocol::ControlMessage message;
        EXPECT_TRUE(protocol::DecodeControl(frame.payload, message));
        result.push_back(message);
      }
      rest = rest.subspan(frame.consumed);
    }
    return result;
  }

  asio::io_context io_;
  tcp::socket raw_{io_};
  LinkOptions options_;
  std::unique_ptr<FramedLink> link_;
  RecordingSink sink_;
  bool done_ = false;
  bool eof_ = false;
};

TEST_F(LinkTest, DeliversFramesInOrderAndSkipsUnknownTypes) {
  RunLink();
  protocol::ControlMessage hello;
  hello.mutable_hello()->set_device_id("x");
  Write(Frame(1, {1, 2, 3}));
  Write(Frame(0x42, {9, 9}));  // Unknown type: skipped.
  Write(Control(hello));
  Write(Frame(1, std::vector<uint8_t>(9000, 7)));
  io_.run_for(200ms);
  ASSERT_EQ(sink_.packets.size(), 2u);
  EXPECT_EQ(sink_.packets[0], (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(sink_.packets[1].size(), 9000u);
  EXPECT_EQ(sink_.controls, std::vector<std::string>{"Hello"});
  EXPECT_EQ(link_->counters().unknown_frames_skipped, 1u);
  EXPECT_FALSE(done_);
}

TEST_F(LinkTest, OversizeFrameIsAnsweredWithErrorAndClosed) {
  RunLink();
  Write({1, 0x7f, 0xff, 0xff, 0xff});
  auto replies = ReadControlsUntilEof(3000ms);
  EXPECT_TRUE(eof_);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error().code(), protocol::Error::BAD_REQUEST);
  EXPECT_NE(replies[0].error().text().find("exceeds the maximum"), std::string::npos);
  EXPECT_TRUE(sink_.packets.empty());
  io_.run_for(100ms);
  EXPECT_TRUE(done_);
}

TEST_F(LinkTest, GarbageControlIsAnsweredWithErrorAndClosed) {
  RunLink();
  Write(Frame(2, {0x0a, 0x64, 0x01}));
  auto replies = ReadControlsUntilEof(3000ms);
  EXPECT_TRUE(eof_);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error().code(), protocol::Error::BAD_REQUEST);
  EXPECT_TRUE(sink_.controls.empty());
}

TEST_F(LinkTest, TruncatedFrameThenEofEndsQuietly) {
  RunLink();
  Write({1, 0, 0, 0, 10, 1, 2});
  raw_.shutdown(tcp::socket::shutdown_send);
  io_.run_for(300ms);
  EXPECT_TRUE(done_);
  EXPECT_EQ(link_->end_reason(), "closed by peer in the middle of a frame");
  EXPECT_TRUE(sink_.packets.empty());
}

TEST_F(LinkTest, HandshakeDeadline) {
  options_.handshake_timeout = 100ms;
  SetUp();
  RunLink();
  auto replies = ReadControlsUntilEof(3000ms);
  EXPECT_TRUE(eof_);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].error().code(), protocol::Error::HANDSHAKE_TIMEOUT);
}

TEST_F(LinkTest, AnswersPingAndDetectsADeadPeer) {
  options_.keepalive_interval = 50ms;
  options_.dead_after = 300ms;
  SetUp();
  link_->MarkEstablished();
  RunLink();
  protocol::ControlMessage ping;
  ping.mutable_ping()->set_nonce(77);
  Write(Control(ping));
  // The raw side never answers the link's pings: it must be declared dead.
  auto replies = ReadControlsUntilEof(3000ms);
  EXPECT_TRUE(eof_);
  bool saw_pong = false;
  int pings = 0;
  for (auto& m : replies) {
    saw_pong |= m.has_pong() && m.pong().nonce() == 77;
    pings += m.has_ping();
  }
  EXPECT_TRUE(saw_pong);
  EXPECT_GE(pings, 1);
  EXPECT_NE(link_->end_reason().find("peer is gone"), std::string::npos) << link_->end_reason();
}

TEST_F(LinkTest, NonReadingPeerCausesCountedDropsNotBlocking) {
  RunLink();
  const std::vector<uint8_t> packet(1400, 1);
  uint64_t dropped = 0;
  // Far more than the socket buffers hold: the queue must stay bounded.
  for (int i = 0; i < 20000; ++i) {
    if (link_->SendData(packet) == FramedLink::Push::kQueuedDroppedOldest) ++dropped;
    if (i % 64 == 0) io_.poll();
  }
  EXPECT_GT(dropped, 0u);
  EXPECT_EQ(link_->counters().data_dropped_queue_full, dropped);
  EXPECT_FALSE(done_);
}

TEST_F(LinkTest, CloseAfterFlushIsBoundedWhenThePeerStopsReading) {
  options_.flush_timeout = 200ms;
  SetUp();
  RunLink();
  const std::vector<uint8_t> packet(1400, 1);
  for (int i = 0; i < 20000 && !done_; ++i) {
    link_->SendData(packet);
    if (i % 64 == 0) io_.poll();
  }
  link_->CloseAfterFlush();  // The raw side never reads: the flush cannot finish.
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!done_ && std::chrono::steady_clock::now() < deadline) io_.run_for(10ms);
  EXPECT_TRUE(done_);
  EXPECT_NE(link_->end_reason().find("did not read the last frames"), std::string::npos)
      << link_->end_reason();
}

// A link that hears from its peer sends no pings; one that stops hearing
// from it pings after an interval of silence.
TEST_F(LinkTest, PingsOnlyAfterSilence) {
  options_.keepalive_interval = 100ms;
  options_.dead_after = 10s;
  SetUp();
  link_->MarkEstablished();
  RunLink();
  protocol::ControlMessage pong;
  pong.mutable_pong()->set_nonce(1);
  const auto busy_until = std::chrono::steady_clock::now() + 600ms;
  while (std::chrono::steady_clock::now() < busy_until) {
    Write(Control(pong));  // The peer talks every 30 ms.
    io_.run_for(30ms);
  }
  auto pings_in = [](const std::vector<protocol::ControlMessage>& messages) {
    int pings = 0;
    for (const auto& m : messages) pings += m.has_ping();
    return pings;
  };
  EXPECT_EQ(pings_in(ReadControlsUntilEof(10ms)), 0) << "pinged a peer it hears from";
  // Now the peer is silent: a ping comes within an interval (+20% jitter).
  EXPECT_GE(pings_in(ReadControlsUntilEof(400ms)), 1);
}

// When Run() has returned, the owner destroys the link at once (the relay
// drops the session, the client resets its link): no timer of the link may
// still be waiting to run with `this`.
TEST_F(LinkTest, NothingOfTheLinkRunsOnAfterRunReturned) {
  RunLink();
  link_->SendData(std::vector<uint8_t>(100, 1));
  io_.run_for(20ms);
  raw_.close();
  const auto deadline = std::chrono::steady_clock::now() + 3s;
  while (!done_ && std::chrono::steady_clock::now() < deadline) io_.run_one_for(10ms);
  ASSERT_TRUE(done_);
  link_.reset();
  EXPECT_EQ(io_.poll(), 0u);
}

TEST_F(LinkTest, APeerThatTakesNothingIsCutOffAfterTheWriteTimeout) {
  options_.write_timeout = 200ms;
  options_.keepalive_interval = 60s;
  options_.dead_after = 120s;
  SetUp();
  link_->MarkEstablished();
  RunLink();
  const std::vector<uint8_t> packet(1400, 1);
  // The raw side sends (so it is not "dead") but never reads.
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  protocol::ControlMessage ping;
  ping.mutable_ping()->set_nonce(1);
  while (!done_ && std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 64; ++i) link_->SendData(packet);
    Write(Control(ping));
    io_.run_for(10ms);
  }
  ASSERT_TRUE(done_);
  EXPECT_NE(link_->end_reason().find("write stalled"), std::string::npos) << link_->end_reason();
}

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
