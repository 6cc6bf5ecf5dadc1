// FramedLink's life: frames in order, bad input, deadlines, keepalive,
// flushing and closing. (Super-packets and sealed frames: framed_link_data_test.)
#include "mnedc/link/link_test_fixture.h"

namespace mnedc::link {
namespace {
using namespace test;

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

}  // namespace
}  // namespace mnedc::link
