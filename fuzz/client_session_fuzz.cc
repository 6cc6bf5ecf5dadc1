// Everything a relay (or a proxy, or whatever answers in their place) can send
// a client: the first input byte picks how the client dials - native TCP, ws://,
// or native through an HTTP CONNECT proxy - and the rest is what the other end
// answers, from the first byte (a proxy's CONNECT response, a WebSocket upgrade
// response, or frames) to the end. A real client parses it and must end the
// connection without a crash, a hang or a leak.
#include <glog/logging.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "mnedc/client/client.h"
#include "mnedc/transport/dial.h"

namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;

struct World {
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  World() {
    if (!std::getenv("GLOG_minloglevel")) FLAGS_minloglevel = 3;  // GLOG_minloglevel=0 to debug.
    acceptor.open(tcp::v4());
    acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
    acceptor.listen();
  }
};
struct Session {
  mnedc::client::ClientOptions options;
  mnedc::client::Client* client = nullptr;
  int dials = 0;
  bool done = false;
};

// One connection per input: the second dial stops the client instead.
asio::awaitable<mnedc::transport::DialOutcome> DialOnce(Session& session) {
  if (++session.dials > 1) {
    asio::post(co_await asio::this_coro::executor, [&session] { session.client->Stop(); });
    co_return mnedc::transport::DialOutcome{asio::error::operation_aborted, "done", nullptr};
  }
  co_return co_await mnedc::transport::Dial(session.options.server, session.options.dial);
}

asio::awaitable<void> RunClient(Session& session) {
  co_await session.client->Run();
  session.done = true;
}

int Fuzz(const uint8_t* data, std::size_t size);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) { return Fuzz(data, size); }

namespace {
int Fuzz(const uint8_t* data, std::size_t size) {
  static World* world = new World();
  world->io.restart();  // run_for() stops the context when it runs out of work.
  if (size < 1) return 0;
  const int how = data[0] % 3;
  const uint16_t port = world->acceptor.local_endpoint().port();
  Session session;
  mnedc::client::ClientOptions& options = session.options;
  options.device_id = "fuzzed-client";
  options.server.scheme = how == 1 ? mnedc::transport::Scheme::kWs : mnedc::transport::Scheme::kTcp;
  options.server.endpoint = {how == 2 ? "relay.invalid" : "127.0.0.1", port};
  if (how == 2) options.dial.proxy = mnedc::transport::HostPort{"127.0.0.1", port};
  options.dial.timeout = 2s;
  options.backoff_initial = 1ms;  // The second dial (which stops the client) comes at once.
  options.backoff_max = 1ms;
  options.link.handshake_timeout = 2s;
  auto client = std::make_unique<mnedc::client::Client>(world->io.get_executor(), options,
                                                        [&session](const mnedc::transport::ServerAddress&) { return DialOnce(session); });
  session.client = client.get();
  asio::co_spawn(world->io, RunClient(session), asio::detached);
  // The other end: take the connection, answer with the input, close.
  tcp::socket peer(world->io);
  bool accepted = false;
  world->acceptor.async_accept(peer, [&](boost::system::error_code ec) {
    if (ec) return;
    accepted = true;
    boost::system::error_code ignored;
    asio::write(peer, asio::buffer(data + 1, size - 1), ignored);
    peer.shutdown(tcp::socket::shutdown_send, ignored);
  });
  std::vector<uint8_t> sink(4096);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!session.done && std::chrono::steady_clock::now() < deadline) {
    world->io.run_for(1ms);
    if (accepted) {  // Drop what the client sends (its Hello, the proxy request).
      boost::system::error_code ec;
      peer.non_blocking(true, ec);
      while (peer.read_some(asio::buffer(sink), ec) > 0) {
      }
    }
  }
  if (!session.done) {  // A client must give up on any answer, in bounded time.
    std::fprintf(stderr, "client still running after 10 s: %d dials, %lu connect attempts\n", session.dials,
                 static_cast<unsigned long>(client->counters().connect_attempts));
    std::abort();
  }
  if (!accepted) world->acceptor.cancel();
  world->io.run_for(1ms);
  return 0;
}
}  // namespace
