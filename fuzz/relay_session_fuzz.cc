// Everything a stranger can send a relay: the bytes of one connection, from
// the first (which picks native frames, WebSocket or TLS) to the last, into a
// real relay on 127.0.0.1 that accepts every transport. A joined member sits
// beside it, so a Hello in the input joins and its packets are routed. Each
// input must end its connection (EOF) without a crash, a hang or a leak.
#include <glog/logging.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "mnedc/protocol/control_codec.h"
#include "mnedc/relay/relay.h"
#include "mnedc/transport/tls_context.h"
#include "testing/test_pki.h"

namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct World {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  std::unique_ptr<mnedc::relay::Relay> relay;
  tcp::socket member{io};  // "anchor", 10.0.0.2: the destination of routed packets.
  std::vector<uint8_t> sink = std::vector<uint8_t>(65536);

  World() {
    // Quiet: a log line per input would be most of the work. GLOG_minloglevel=0 to debug.
    if (!std::getenv("GLOG_minloglevel")) FLAGS_minloglevel = 3;
    const std::string dir = std::filesystem::temp_directory_path() / ("mnedc-fuzz-pki-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const mnedc::testing::TestPki pki = mnedc::testing::MakeTestPki(dir);
    mnedc::relay::RelayOptions options;
    // Dual-stack, so IPv6 packets are routed (and checked), not merely dropped.
    options.prefix6 = mnedc::base::ParsePrefix6("fd00:1:2::/64", nullptr);
    std::string error;
    options.accept.tls = mnedc::transport::MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
    if (!options.accept.tls) std::abort();
    options.link.handshake_timeout = 300ms;
    acceptor.open(tcp::v4());
    acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor.listen();
    relay = std::make_unique<mnedc::relay::Relay>(io.get_executor(), options);
    asio::co_spawn(io, relay->AcceptLoop(acceptor), asio::detached);
    JoinAnchor();
  }

  // (Re)joins the anchor; an input may have joined under its ID and
  // superseded it, which is fine, so each input starts with it present.
  void JoinAnchor() {
    boost::system::error_code ignored;
    member.close(ignored);
    member = tcp::socket(io);
    mnedc::protocol::ControlMessage hello;
    hello.mutable_hello()->set_protocol_version(mnedc::protocol::kProtocolVersion);
    hello.mutable_hello()->set_device_id("anchor");
    auto frame = std::make_shared<std::vector<uint8_t>>();
    mnedc::protocol::EncodeControlFrame(hello, *frame);
    member.async_connect(acceptor.local_endpoint(), [this, frame](boost::system::error_code ec) {
      if (ec) std::abort();
      asio::async_write(member, asio::buffer(*frame), [frame](boost::system::error_code, std::size_t) {});
    });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (relay->member_count() < 1 && std::chrono::steady_clock::now() < deadline) io.run_for(10ms);
    if (relay->member_count() != 1) std::abort();
    member.non_blocking(true, ignored);
  }

  void Drain() {
    boost::system::error_code ec;
    while (member.read_some(asio::buffer(sink), ec) > 0) {
    }
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  static World* world = new World();
  world->io.restart();  // run_for() stops the context when it runs out of work.
  if (world->relay->member_count() != 1) world->JoinAnchor();
  tcp::socket stranger(world->io);
  // Asynchronously: libFuzzer's timer signals interrupt blocking calls (a
  // blocking connect here once failed with EINTR and aborted the run).
  bool sent = false;
  stranger.async_connect(world->acceptor.local_endpoint(), [&](boost::system::error_code connect_error) {
    if (connect_error) std::abort();  // Our own relay on 127.0.0.1 must take the connection.
    asio::async_write(stranger, asio::buffer(data, size), [&](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      stranger.shutdown(tcp::socket::shutdown_send, ignored);
      sent = true;
    });
  });
  while (!sent) world->io.run_for(1ms);
  // Read (and drop) whatever the relay answers until it closes the connection.
  std::vector<uint8_t> answer(4096);
  bool closed = false;
  std::function<void(boost::system::error_code, std::size_t)> on_read =
      [&](boost::system::error_code read_error, std::size_t) {
        if (read_error) {
          closed = true;
          return;
        }
        stranger.async_read_some(asio::buffer(answer), on_read);
      };
  stranger.async_read_some(asio::buffer(answer), on_read);
  // Generous (the relay's own deadlines end any connection within ~2.5 s): a
  // machine busy with other work must not pass for a hang.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while ((!closed || world->relay->connection_count() > 1) && std::chrono::steady_clock::now() < deadline) {
    world->io.run_for(1ms);
    world->Drain();
  }
  // The relay must end every connection it was given, in bounded time.
  if (!closed || world->relay->connection_count() != 1) std::abort();
  // The stranger left (the anchor may have left too, if the input joined under its ID).
  if (world->relay->member_count() > 1) std::abort();
  return 0;
}
