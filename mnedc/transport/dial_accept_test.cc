// Dial and AcceptStream against each other on loopback: one deadline per
// dial, and nothing of a handshake left running once it has returned.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <optional>
#include <boost/asio/write.hpp>

#include <boost/asio/ssl.hpp>

#include "mnedc/transport/accept.h"
#include "mnedc/transport/dial.h"
#include "mnedc/transport/tls_context.h"
#include "testing/test_pki.h"

namespace mnedc::transport {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

template <typename T>
struct Result {
  std::optional<T> value;
};

template <typename T>
void Start(asio::io_context& io, asio::awaitable<T> operation, Result<T>& result) {
  asio::co_spawn(io, std::move(operation), [&result](std::exception_ptr error, T value) {
    ASSERT_FALSE(error);
    result.value.emplace(std::move(value));
  });
}

// Runs handlers one at a time until `done`, so the test stops exactly there.
bool RunOneUntil(asio::io_context& io, const std::function<bool()>& done, Clock::duration limit) {
  const auto deadline = Clock::now() + limit;
  while (!done() && Clock::now() < deadline) io.run_one_for(10ms);
  return done();
}

asio::awaitable<AcceptOutcome> AcceptOne(tcp::acceptor& acceptor, AcceptOptions options) {
  tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
  co_return co_await AcceptStream(std::move(socket), std::move(options));
}

ServerAddress WebSocketTo(uint16_t port) {
  ServerAddress address;
  address.endpoint = {"127.0.0.1", port};
  address.scheme = Scheme::kWs;
  address.path = "/mnedc";
  return address;
}

TEST(DialAcceptTest, NothingOfAHandshakeRunsOnAfterItReturned) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  Result<DialOutcome> dialed;
  Start(io, Dial(WebSocketTo(acceptor.local_endpoint().port()), {}), dialed);
  io.run_for(50ms);  // Sends the SYN; the kernel completes the connection.
  tcp::socket accepted = acceptor.accept();
  Result<AcceptOutcome> taken;
  Start(io, AcceptStream(std::move(accepted), {}), taken);
  ASSERT_TRUE(RunOneUntil(io, [&] { return dialed.value && taken.value; }, 5s));
  ASSERT_TRUE(dialed.value->stream) << dialed.value->detail;
  ASSERT_TRUE(taken.value->stream) << taken.value->refused;
  EXPECT_EQ(taken.value->stream->kind(), "ws");
  // Both handshakes are over: their deadlines must not be waiting to fire
  // (a detached deadline could still shut a finished socket down).
  EXPECT_EQ(io.poll(), 0u);
  dialed.value->stream->Close();
  taken.value->stream->Close();
}

TEST(DialAcceptTest, AnAcceptThatTimesOutSaysSo) {
  asio::io_context io;
  tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket silent(io);
  silent.connect(acceptor.local_endpoint());
  Result<AcceptOutcome> taken;
  AcceptOptions options;
  options.timeout = 100ms;
  Start(io, AcceptStream(acceptor.accept(), options), taken);
  ASSERT_TRUE(RunOneUntil(io, [&] { return taken.value.has_value(); }, 5s));
  EXPECT_FALSE(taken.value->stream);
  EXPECT_EQ(taken.value->refused, "sent nothing before the deadline");
  EXPECT_EQ(io.poll(), 0u);
}

// The TCP connect and the WebSocket handshake share one deadline. The
// relay's listen queue is full, so the first SYN is dropped and the connect
// completes only with the kernel's retransmission about 1 s later; then the
// relay says nothing. With a deadline per step this dial took about 1 s plus
// the whole timeout; with one deadline it takes the timeout.
TEST(DialAcceptTest, ASlowConnectLeavesTheHandshakeOnlyWhatRemains) {
  asio::io_context io;
  tcp::acceptor acceptor(io);
  acceptor.open(tcp::v4());
  acceptor.bind({asio::ip::make_address("127.0.0.1"), 0});
  acceptor.listen(0);  // Room for one connection waiting to be accepted.
  tcp::socket filler(io);
  filler.connect(acceptor.local_endpoint());

  DialOptions options;
  options.timeout = 1500ms;
  Result<DialOutcome> dialed;
  const auto start = Clock::now();
  Start(io, Dial(WebSocketTo(acceptor.local_endpoint().port()), options), dialed);
  io.run_for(300ms);
  tcp::socket first = acceptor.accept();  // Frees the queue for the retransmitted SYN.
  ASSERT_TRUE(RunOneUntil(io, [&] { return dialed.value.has_value(); }, 10s));
  const auto took = Clock::now() - start;
  EXPECT_FALSE(dialed.value->stream);
  EXPECT_EQ(dialed.value->error, asio::error::timed_out) << dialed.value->detail;
  EXPECT_LT(took, 2100ms) << "the dial took "
                          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                          << " ms for a 1500 ms timeout";
}

// "Only TLS 1.2 and 1.3 are offered": a client that speaks at most TLS 1.1
// is refused, and the same client allowed TLS 1.2 gets in.
TEST(DialAcceptTest, ATls11ClientIsRefused) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const testing::TestPki pki = testing::MakeTestPki(dir ? dir : "/tmp");
  std::string error;
  AcceptOptions options;
  options.tls = MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(options.tls) << error;
  for (const int max_version : {TLS1_1_VERSION, TLS1_2_VERSION}) {
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    asio::ssl::context client_context(asio::ssl::context::tls_client);
    // Let the client offer old versions at all (OpenSSL 3 refuses them by default).
    SSL_CTX_set_security_level(client_context.native_handle(), 0);
    SSL_CTX_set_min_proto_version(client_context.native_handle(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(client_context.native_handle(), max_version);
    asio::ssl::stream<tcp::socket> client(io, client_context);
    client.next_layer().connect(acceptor.local_endpoint());
    Result<AcceptOutcome> taken;
    Start(io, AcceptStream(acceptor.accept(), options), taken);
    bool handshaken = false;
    boost::system::error_code client_error;
    client.async_handshake(asio::ssl::stream_base::client, [&](boost::system::error_code ec) {
      handshaken = true;
      client_error = ec;
      if (!ec) {  // Send something, so the relay can tell TLS-native from wss.
        static const uint8_t kData = 1;
        asio::write(client, asio::buffer(&kData, 1));
      }
    });
    ASSERT_TRUE(RunOneUntil(io, [&] { return taken.value && handshaken; }, 5s));
    if (max_version == TLS1_1_VERSION) {
      EXPECT_TRUE(client_error);
      EXPECT_FALSE(taken.value->stream);
      EXPECT_NE(taken.value->refused.find("TLS handshake failed"), std::string::npos)
          << taken.value->refused;
    } else {
      EXPECT_FALSE(client_error) << client_error.message();
      EXPECT_TRUE(taken.value->stream) << taken.value->refused;
    }
  }
}

// The relays' mesh is TLS keyed by the cluster secret, on the port devices
// use: a certificate context with the key added serves both (a device's TLS
// is no key's, a relay's is proven by the key); another secret's key is
// refused at the handshake, and both ends say so; a relay with no
// certificate serves relays only, and tells a device why.
TEST(DialAcceptTest, TheMeshKeyAndDevicesShareOneTlsPort) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const testing::TestPki pki = testing::MakeTestPki(dir ? dir : "/tmp");
  std::string error;
  AcceptOptions with_cert;
  with_cert.tls = MakeTlsServerContext({pki.server_cert, pki.server_key, ""}, &error);
  ASSERT_TRUE(with_cert.tls) << error;
  AddPskToServerContext(*with_cert.tls, "s3cret");
  AcceptOptions mesh_only;
  mesh_only.tls = MakePskServerContext("s3cret");
  mesh_only.tls_for_mesh_only = true;
  DialOptions device;
  device.tls = MakeTlsClientContext({pki.ca_cert, "", "", ""}, &error);
  ASSERT_TRUE(device.tls) << error;

  // Dials (a device if `secret` is empty, else a relay with that secret) and
  // sends a byte, as both do first; returns what each end made of it (the
  // connections end with the io_context they ran on, inside).
  struct Facts {
    bool dialed = false;
    boost::system::error_code dial_error;
    std::string dial_detail;
    bool taken = false;
    bool pre_shared_key = false;
    bool wrong_mesh_key = false;
    std::string refused;
  };
  static const uint8_t kByte = 1;
  const std::array<asio::const_buffer, 1> one{asio::buffer(&kByte, 1)};  // Outlives every write of it.
  auto attempt = [&](const AcceptOptions& options, const std::string& secret) {
    Facts facts;
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    const uint16_t port = acceptor.local_endpoint().port();
    Result<DialOutcome> dialed;
    if (secret.empty()) {
      ServerAddress address;
      address.endpoint = {"127.0.0.1", port};
      address.scheme = Scheme::kTls;
      Start(io, Dial(address, device), dialed);
    } else {
      Start(io, DialWithPreSharedKey(HostPort{"127.0.0.1", port}, 5s, MakePskClientContext(secret)), dialed);
    }
    Result<AcceptOutcome> taken;
    Start(io, AcceptOne(acceptor, options), taken);
    EXPECT_TRUE(RunOneUntil(io, [&] { return dialed.value.has_value(); }, 5s));
    if (!dialed.value) return facts;
    facts.dialed = dialed.value->stream != nullptr;
    facts.dial_error = dialed.value->error;
    facts.dial_detail = dialed.value->detail;
    if (dialed.value->stream) asio::co_spawn(io, dialed.value->stream->WriteAll(one), asio::detached);
    EXPECT_TRUE(RunOneUntil(io, [&] { return taken.value.has_value(); }, 5s));
    if (!taken.value) return facts;
    facts.taken = taken.value->stream != nullptr;
    facts.pre_shared_key = facts.taken && taken.value->stream->pre_shared_key();
    facts.wrong_mesh_key = taken.value->wrong_mesh_key;
    facts.refused = taken.value->refused;
    dialed.value.reset();
    taken.value.reset();
    io.run_for(50ms);  // What the closes started.
    return facts;
  };

  const Facts device_on_cert = attempt(with_cert, "");
  ASSERT_TRUE(device_on_cert.dialed) << device_on_cert.dial_detail;
  ASSERT_TRUE(device_on_cert.taken) << device_on_cert.refused;
  EXPECT_FALSE(device_on_cert.pre_shared_key);

  const Facts relay_on_cert = attempt(with_cert, "s3cret");
  ASSERT_TRUE(relay_on_cert.dialed) << relay_on_cert.dial_detail;
  ASSERT_TRUE(relay_on_cert.taken) << relay_on_cert.refused;
  EXPECT_TRUE(relay_on_cert.pre_shared_key);

  for (const AcceptOptions* options : {&with_cert, &mesh_only}) {
    const Facts stranger = attempt(*options, "another secret");
    EXPECT_FALSE(stranger.dialed);
    EXPECT_EQ(stranger.dial_error, asio::error::access_denied);
    EXPECT_NE(stranger.dial_detail.find("different cluster secrets"), std::string::npos) << stranger.dial_detail;
    EXPECT_FALSE(stranger.taken);
    EXPECT_TRUE(stranger.wrong_mesh_key);
    EXPECT_NE(stranger.refused.find("another --cluster_secret_file"), std::string::npos) << stranger.refused;
  }

  const Facts relay_on_mesh_only = attempt(mesh_only, "s3cret");
  ASSERT_TRUE(relay_on_mesh_only.taken) << relay_on_mesh_only.refused;
  EXPECT_TRUE(relay_on_mesh_only.pre_shared_key);
  const Facts device_on_mesh_only = attempt(mesh_only, "");
  EXPECT_FALSE(device_on_mesh_only.dialed);
  EXPECT_FALSE(device_on_mesh_only.taken);
  EXPECT_FALSE(device_on_mesh_only.wrong_mesh_key);
  EXPECT_NE(device_on_mesh_only.refused.find("no --tls_cert (its TLS is for the relays' mesh only)"), std::string::npos)
      << device_on_mesh_only.refused;
}

}  // namespace
}  // namespace mnedc::transport
