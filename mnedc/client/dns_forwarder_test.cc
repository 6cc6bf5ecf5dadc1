#include "mnedc/client/dns_forwarder.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

namespace mnedc::client {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

std::vector<uint8_t> Message(uint16_t id, bool answer) {
  std::vector<uint8_t> m = {static_cast<uint8_t>(id >> 8), static_cast<uint8_t>(id), 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0,
                            3, 'c', 'o', 'm', 0, 0, 1, 0, 1};
  if (answer) m[2] |= 0x80;
  return m;
}

struct Received {
  dns::UdpFlow flow;
  std::vector<uint8_t> answer;
};

class DnsForwarderTest : public ::testing::Test {
 protected:
  DnsForwarderTest()
      : upstream_(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        forwarder_(io_.get_executor(), upstream_.local_endpoint(), [this](const dns::UdpFlow& flow, std::span<const uint8_t> a) {
          received_.push_back({flow, std::vector<uint8_t>(a.begin(), a.end())});
        }) {
    asio::co_spawn(io_, forwarder_.Run(), asio::detached);
  }
  ~DnsForwarderTest() override {
    forwarder_.Stop();
    io_.run_for(10ms);
  }
  // What the upstream got: the query and where from.
  std::pair<std::vector<uint8_t>, asio::ip::udp::endpoint> UpstreamReceives() {
    std::vector<uint8_t> buffer(512);
    asio::ip::udp::endpoint from;
    upstream_.non_blocking(false);
    const std::size_t size = upstream_.receive_from(asio::buffer(buffer), from);
    buffer.resize(size);
    return {buffer, from};
  }
  void Run(std::chrono::milliseconds time) {
    io_.restart();
    io_.run_for(time);
  }

  asio::io_context io_;
  asio::ip::udp::socket upstream_;
  DnsForwarder forwarder_;
  std::vector<Received> received_;
};

TEST_F(DnsForwarderTest, AnAnswerComesBackUnderTheAskersIdAndFlow) {
  dns::UdpFlow flow;
  flow.version = 4;
  flow.source_port = 40000;
  ASSERT_TRUE(forwarder_.Forward(Message(0x1111, false), flow));
  auto [query, from] = UpstreamReceives();
  ASSERT_EQ(query.size(), Message(0, false).size());
  const uint16_t sent_id = static_cast<uint16_t>(query[0] << 8 | query[1]);
  // Stray datagrams first: not an answer, another ID, another sender.
  upstream_.send_to(asio::buffer(Message(sent_id, false)), from);
  upstream_.send_to(asio::buffer(Message(static_cast<uint16_t>(sent_id + 1), true)), from);
  asio::ip::udp::socket stranger(io_, asio::ip::udp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  stranger.send_to(asio::buffer(Message(sent_id, true)), from);
  Run(50ms);
  EXPECT_TRUE(received_.empty());
  EXPECT_EQ(forwarder_.counters().rejected, 3u);
  // The answer.
  upstream_.send_to(asio::buffer(Message(sent_id, true)), from);
  Run(50ms);
  ASSERT_EQ(received_.size(), 1u);
  EXPECT_EQ(received_[0].answer, Message(0x1111, true));
  EXPECT_EQ(received_[0].flow.source_port, 40000);
  // Answered once: the same answer again is a stray.
  upstream_.send_to(asio::buffer(Message(sent_id, true)), from);
  Run(50ms);
  EXPECT_EQ(received_.size(), 1u);
  EXPECT_EQ(forwarder_.counters().answered, 1u);
  EXPECT_EQ(forwarder_.counters().rejected, 4u);
  EXPECT_EQ(forwarder_.pending(), 0u);
}

TEST_F(DnsForwarderTest, WaitingIsBoundedInNumberAndTime) {
  dns::UdpFlow flow;
  for (std::size_t i = 0; i < DnsForwarder::kMaxPending; ++i) {
    ASSERT_TRUE(forwarder_.Forward(Message(static_cast<uint16_t>(i), false), flow));
  }
  EXPECT_FALSE(forwarder_.Forward(Message(7, false), flow));
  EXPECT_EQ(forwarder_.counters().overflow, 1u);
  EXPECT_FALSE(forwarder_.Forward(std::vector<uint8_t>(11, 0), flow));  // No header.
  Run(std::chrono::duration_cast<std::chrono::milliseconds>(DnsForwarder::kTimeout) + 700ms);
  EXPECT_EQ(forwarder_.pending(), 0u);
  EXPECT_EQ(forwarder_.counters().timed_out, DnsForwarder::kMaxPending);
}

}  // namespace
}  // namespace mnedc::client
