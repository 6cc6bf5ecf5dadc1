#pragma once
// What the FramedLink tests share: a sink that records, frame builders, and a
// fixture with a link on one end of a loopback connection and raw bytes on
// the other.
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "mnedc/link/framed_link.h"
#include "mnedc/packet/test_packets.h"
#include "mnedc/protocol/control_codec.h"
#include "mnedc/transport/tcp_stream.h"

namespace mnedc::link::test {
using transport::MakeTcpStream;

namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
inline constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

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

inline std::vector<uint8_t> Frame(uint8_t type, std::vector<uint8_t> payload) {
  std::vector<uint8_t> frame(protocol::kFrameHeaderSize);
  protocol::WriteFrameHeader(static_cast<protocol::FrameType>(type),
                             static_cast<uint32_t>(payload.size()), frame.data());
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

inline std::vector<uint8_t> Control(const protocol::ControlMessage& message) {
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

}  // namespace mnedc::link::test
