// Splicing (FramedLink::set_splice_reads): large frames passed from one link's socket
// to another's unread, in order with what goes through memory, whole when
// they arrive in pieces, and read as usual where the sink names no target or
// the frame cannot be trusted.
#include <sys/socket.h>

#include "mnedc/link/link_test_fixture.h"

namespace mnedc::link {
namespace {
using namespace test;

std::vector<uint8_t> Bytes(std::size_t size, uint8_t seed) {
  std::vector<uint8_t> bytes(size);
  for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<uint8_t>(seed + i * 7);
  return bytes;
}

std::vector<uint8_t> SuperFrame(packet::Gso gso, const std::vector<uint8_t>& packet) {
  std::vector<uint8_t> payload(protocol::kSuperPacketHeaderSize);
  protocol::WriteSuperPacketHeader(gso, payload.data());
  payload.insert(payload.end(), packet.begin(), packet.end());
  return Frame(static_cast<uint8_t>(protocol::FrameType::kSuperPacket), payload);
}

constexpr uint8_t kData = static_cast<uint8_t>(protocol::FrameType::kData);
constexpr uint8_t kSealed = static_cast<uint8_t>(protocol::FrameType::kSealed);

// The source's sink: names `target` for every offer (while it is set), and
// sends what it is handed the usual way to the same link, as the relay would.
struct SplicingSink : RecordingSink {
  FramedLink* target = nullptr;
  std::vector<SpliceOffer> offers;
  int spliced = 0;
  FramedLink* SpliceTarget(const SpliceOffer& offer) override {
    offers.push_back(offer);
    offers.back().head = {};  // Points into the reader's peek: gone after this call.
    return target;
  }
  void OnSpliced(const SpliceOffer&) override { ++spliced; }
  DataVerdict OnData(std::span<const uint8_t> packet, packet::Gso gso) override {
    RecordingSink::OnData(packet, gso);
    if (target) target->SendData(packet, gso);
    return DataVerdict::kAccepted;
  }
  DataVerdict OnSealed(std::span<uint8_t> payload) override {
    RecordingSink::OnSealed(payload);
    if (target) target->SendSealed(payload);
    return DataVerdict::kAccepted;
  }
};

// Source: the fixture's link (raw_ writes into it). Destination: a second
// link on its own loopback connection, whose raw end the test reads.
class SpliceTest : public LinkTest {
 protected:
  void SetUp() override {
    LinkTest::SetUp();
    tcp::acceptor acceptor(io_, {asio::ip::make_address("127.0.0.1"), 0});
    out_raw_.connect(acceptor.local_endpoint());
    out_ = std::make_unique<FramedLink>(io_.get_executor(), MakeTcpStream(acceptor.accept()), options_);
    link_->set_splice_reads(true);
    splicing_.target = out_.get();
    asio::co_spawn(io_, [this]() -> asio::awaitable<void> { co_await out_->Run(out_sink_); }, asio::detached);
    asio::co_spawn(io_, [this]() -> asio::awaitable<void> { co_await link_->Run(splicing_); }, asio::detached);
  }
  // What the destination's peer receives, until `size` bytes or 5 s.
  std::vector<uint8_t> Received(std::size_t size) {
    out_raw_.non_blocking(true);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (received_.size() < size && std::chrono::steady_clock::now() < deadline) {
      io_.run_for(5ms);
      uint8_t chunk[65536];
      boost::system::error_code ec;
      for (;;) {
        const std::size_t n = out_raw_.read_some(asio::buffer(chunk), ec);
        if (ec) break;
        received_.insert(received_.end(), chunk, chunk + n);
      }
    }
    return received_;
  }
  static std::vector<uint8_t> Join(const std::vector<std::vector<uint8_t>>& frames) {
    std::vector<uint8_t> all;
    for (const auto& frame : frames) all.insert(all.end(), frame.begin(), frame.end());
    return all;
  }

  tcp::socket out_raw_{io_};
  std::unique_ptr<FramedLink> out_;
  RecordingSink out_sink_;
  SplicingSink splicing_;
  std::vector<uint8_t> received_;
};

TEST_F(SpliceTest, LargeFramesPassUnreadAndInOrderWithWhatIsRead) {
  packet::testing::Flow flow;
  const std::vector<uint8_t> super_packet = packet::testing::MakePacket(flow, 40000);
  const std::vector<std::vector<uint8_t>> frames = {
      Frame(kData, Bytes(20000, 1)),
      SuperFrame({packet::GsoKind::kTcp, 1400}, super_packet),
      Frame(kSealed, Bytes(30000, 3)),
      Frame(kData, Bytes(100, 2)),  // Small: read, and queued.
      Frame(kData, Bytes(60, 4)),
      // Spliced only if the target's writer has sent the small ones by then,
      // else read and queued behind them: in order either way.
      Frame(kData, Bytes(65535, 5)),
  };
  const std::vector<uint8_t> all = Join(frames);
  Write(all);
  EXPECT_EQ(Received(all.size()), all);
  const uint64_t spliced = link_->counters().spliced_in;
  EXPECT_GE(spliced, 3u);
  EXPECT_EQ(splicing_.spliced, static_cast<int>(spliced));
  EXPECT_EQ(out_->counters().spliced_out, spliced);
  EXPECT_EQ(link_->counters().frames_in, 6u);
  EXPECT_EQ(link_->counters().bytes_in, all.size());
  EXPECT_EQ(link_->counters().super_packets_in, 1u);
  EXPECT_EQ(out_->counters().super_packets_out, 1u);
  ASSERT_EQ(splicing_.packets.size(), 6 - spliced);  // What was read.
  EXPECT_EQ(splicing_.packets[0], Bytes(100, 2));
  EXPECT_EQ(splicing_.packets[1], Bytes(60, 4));
  ASSERT_GE(splicing_.offers.size(), 3u);
  EXPECT_EQ(splicing_.offers[1].type, protocol::FrameType::kSuperPacket);
  EXPECT_EQ(splicing_.offers[1].size, super_packet.size());
  EXPECT_EQ(splicing_.offers[1].gso, (packet::Gso{packet::GsoKind::kTcp, 1400}));
}

TEST_F(SpliceTest, AFrameThatArrivesInPiecesIsPassedWhole) {
  const std::vector<uint8_t> frame = Frame(kData, Bytes(50000, 9));
  Write(std::vector<uint8_t>(frame.begin(), frame.begin() + 1000));
  io_.run_for(50ms);
  EXPECT_EQ(link_->counters().frames_in, 0u);  // Waiting for the rest, nothing read.
  Write(std::vector<uint8_t>(frame.begin() + 1000, frame.end()));
  EXPECT_EQ(Received(frame.size()), frame);
  EXPECT_EQ(link_->counters().spliced_in, 1u);
  EXPECT_TRUE(splicing_.packets.empty());
}

TEST_F(SpliceTest, FramesTheSinkDoesNotRouteAreReadWhole) {
  splicing_.target = nullptr;
  const std::vector<std::vector<uint8_t>> frames = {Frame(kData, Bytes(40000, 1)), Frame(kData, Bytes(70, 2)),
                                                    Frame(kData, Bytes(65535, 3)), Frame(kSealed, Bytes(20000, 4))};
  Write(Join(frames));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((splicing_.packets.size() < 3 || splicing_.sealed.empty()) && std::chrono::steady_clock::now() < deadline) {
    io_.run_for(5ms);
  }
  ASSERT_EQ(splicing_.packets.size(), 3u);
  EXPECT_EQ(splicing_.packets[0], Bytes(40000, 1));
  EXPECT_EQ(splicing_.packets[1], Bytes(70, 2));
  EXPECT_EQ(splicing_.packets[2], Bytes(65535, 3));
  ASSERT_EQ(splicing_.sealed.size(), 1u);
  EXPECT_EQ(splicing_.sealed[0], Bytes(20000, 4));
  // The first large one was offered, then read with whatever followed it.
  EXPECT_GE(splicing_.offers.size(), 1u);
  EXPECT_EQ(link_->counters().spliced_in, 0u);
}

TEST_F(SpliceTest, ASuperPacketWhoseHeaderDoesNotFitIsNeverPassedOn) {
  packet::testing::Flow flow;
  std::vector<uint8_t> lying = packet::testing::MakePacket(flow, 30000);
  lying[2] = 0x01;  // IPv4 total length: not the packet's.
  const std::vector<uint8_t> good = Frame(kData, Bytes(20000, 5));
  Write(SuperFrame({packet::GsoKind::kTcp, 1400}, lying));
  Write(SuperFrame({packet::GsoKind::kTcp, 0}, packet::testing::MakePacket(flow, 30000)));  // Segment size 0.
  Write(good);
  EXPECT_EQ(Received(good.size()), good);  // Only the good one arrives.
  EXPECT_EQ(link_->counters().bad_super_packets, 2u);
  EXPECT_EQ(link_->counters().spliced_in, 1u);
  EXPECT_EQ(splicing_.offers.size(), 1u);  // The bad ones were not even offered.
}

// Small-packet traffic (pings, a client without offloads) is read as it was
// before splicing: no peek before each read. The first large frame after a
// run of small ones is read; the next is spliced.
TEST_F(SpliceTest, AfterARunOfSmallFramesReadsStopPeekingUntilALargeOneComes) {
  std::vector<uint8_t> expected;
  for (int i = 0; i < 20; ++i) {
    const std::vector<uint8_t> small = Frame(kData, Bytes(100, static_cast<uint8_t>(i)));
    Write(small);
    expected.insert(expected.end(), small.begin(), small.end());
    io_.run_for(2ms);
  }
  const std::vector<uint8_t> first = Frame(kData, Bytes(30000, 1));
  Write(first);
  expected.insert(expected.end(), first.begin(), first.end());
  EXPECT_EQ(Received(expected.size()), expected);
  EXPECT_EQ(link_->counters().spliced_in, 0u);
  EXPECT_TRUE(splicing_.offers.empty());  // Not even peeked at.
  const std::vector<uint8_t> second = Frame(kData, Bytes(30000, 2));
  Write(second);
  expected.insert(expected.end(), second.begin(), second.end());
  EXPECT_EQ(Received(expected.size()), expected);
  EXPECT_EQ(link_->counters().spliced_in, 1u);
  EXPECT_EQ(splicing_.packets.size(), 21u);
}

TEST_F(SpliceTest, NothingIsSplicedAheadOfWhatTheTargetHasQueued) {
  io_.run_for(20ms);  // Both links running, the target idle.
  EXPECT_TRUE(out_->CanTakeSplice(20000));
  // Data the target has queued must go out first.
  for (int i = 0; i < 3; ++i) out_->SendData(Bytes(30, static_cast<uint8_t>(i)));
  EXPECT_FALSE(out_->CanTakeSplice(20000));
  const std::vector<uint8_t> frame = Frame(kData, Bytes(20000, 7));
  Write(frame);
  std::vector<uint8_t> expected;
  for (int i = 0; i < 3; ++i) {
    const std::vector<uint8_t> queued = Frame(kData, Bytes(30, static_cast<uint8_t>(i)));
    expected.insert(expected.end(), queued.begin(), queued.end());
  }
  expected.insert(expected.end(), frame.begin(), frame.end());
  EXPECT_EQ(Received(expected.size()), expected);
}

}  // namespace
}  // namespace mnedc::link
