// The cluster's address allocation against a real etcd (Debian's etcd-server,
// started by the test): two relays racing for the same devices and the same
// addresses never give one address to two devices, a device keeps its
// address, and a full pool or an unreachable etcd is a clear error.
#include "mnedc/cluster/etcd_leases.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <map>
#include <random>
#include <set>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "mnedc/base/ipv4.h"
#include "testing/etcd_server.h"

namespace mnedc::cluster {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs `body` on `io` to completion (bounded).
template <typename F>
void RunToEnd(asio::io_context& io, F body) {
  bool done = false;
  io.restart();  // It may have run out of work before.
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    co_await body();
    done = true;
  }, asio::detached);
  io.run_for(30s);
  io.restart();
  ASSERT_TRUE(done) << "did not finish in 30 s";
}

TEST(Base64, RoundTripsEveryLengthAndRefusesGarbage) {
  for (std::size_t n = 0; n < 8; ++n) {
    std::string bytes;
    for (std::size_t i = 0; i < n; ++i) bytes += static_cast<char>(0xf0 + i);
    const std::string text = Base64Encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(Base64Decode(text), bytes) << n;
  }
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Decode("Zm9vYg=="), "foob");
  EXPECT_FALSE(Base64Decode("Zm9"));
  EXPECT_FALSE(Base64Decode("Zm9v!!!!"));
  EXPECT_FALSE(Base64Decode("\t \t ")) << "whitespace is not base64 (found by etcd_response_fuzz)";
  EXPECT_FALSE(Base64Decode("Zg=="  "Zg=="));
  EXPECT_FALSE(Base64Decode("Z==="));
}

TEST(EtcdClient, PrefixEnd) {
  EXPECT_EQ(EtcdClient::PrefixEnd("/a/"), "/a0");
  EXPECT_EQ(EtcdClient::PrefixEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(EtcdClient::PrefixEnd(""), std::string(1, '\0'));
}

class EtcdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    etcd_ = std::make_unique<testing::EtcdServer>(testing::TestTempDir());
    if (!etcd_->available()) GTEST_SKIP() << "SKIPPED: " << etcd_->why();
  }
  std::vector<transport::HostPort> Endpoints() const { return {{"127.0.0.1", etcd_->client_port()}}; }

  asio::io_context io_;
  std::unique_ptr<testing::EtcdServer> etcd_;
};

TEST_F(EtcdTest, PutIfAbsentWritesOnlyWhenNoKeyExists) {
  EtcdClient etcd(io_.get_executor(), Endpoints());
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    std::vector<std::string> absent = {"/t/a", "/t/b"};
    std::vector<std::pair<std::string, std::string>> puts = {{"/t/a", "1"}, {"/t/b", "2"}};
    auto first = co_await etcd.PutIfAbsent(absent, puts, 0, &error);
    EXPECT_EQ(first, std::optional<bool>(true)) << error;
    absent = {"/t/b", "/t/c"};
    puts = {{"/t/b", "x"}, {"/t/c", "3"}};
    auto second = co_await etcd.PutIfAbsent(absent, puts, 0, &error);
    EXPECT_EQ(second, std::optional<bool>(false)) << error;
    auto all = co_await etcd.Range("/t/", EtcdClient::PrefixEnd("/t/"), &error);
    EXPECT_TRUE(all) << error;
    if (!all) co_return;
    EXPECT_EQ(all->size(), 2u);  // c was not written, b not overwritten.
    if (all->size() != 2) co_return;
    EXPECT_EQ((*all)[0].key, "/t/a");
    EXPECT_EQ((*all)[1].value, "2");
  });
}

// Calls share a connection (HTTP/1.1 keep-alive) rather than opening one each.
TEST_F(EtcdTest, CallsShareAConnection) {
  EtcdClient etcd(io_.get_executor(), Endpoints());
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    for (int i = 0; i < 5; ++i) {
      auto kvs = co_await etcd.Range("/none", "", &error);
      EXPECT_TRUE(kvs) << error;
    }
  });
  EXPECT_EQ(etcd.connections_opened(), 1u);
}

// A server that answers one request per connection and then closes it, as
// etcd may close one that sat idle: each call after the first finds its kept
// connection closed, and goes again on a new one; none fails.
asio::awaitable<void> AnswerOnceThenClose(asio::ip::tcp::acceptor& acceptor, int* served) {
  namespace http = boost::beast::http;
  for (;;) {
    auto [accept_error, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (accept_error) co_return;
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> request;
    auto [read_error, n] = co_await http::async_read(socket, buffer, request, asio::as_tuple(asio::use_awaitable));
    if (read_error) continue;
    http::response<http::string_body> response(http::status::ok, 11);
    response.body() = R"({"header":{"revision":"7"},"kvs":[]})";
    response.prepare_payload();
    auto [write_error, written] = co_await http::async_write(socket, response, asio::as_tuple(asio::use_awaitable));
    if (!write_error) ++*served;
  }
}

TEST(EtcdClient, AKeptConnectionTheServerClosedIsReplaced) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  int served = 0;
  asio::co_spawn(io, AnswerOnceThenClose(acceptor, &served), asio::detached);
  EtcdClient etcd(io.get_executor(), {{"127.0.0.1", acceptor.local_endpoint().port()}}, 2s);
  int answered = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        std::string error;
        for (int i = 0; i < 3; ++i) {
          auto kvs = co_await etcd.Range("/k", "", &error);
          EXPECT_TRUE(kvs) << error;
          if (kvs) ++answered;
        }
        acceptor.close();
      },
      asio::detached);
  io.run_for(10s);
  EXPECT_EQ(answered, 3);
  EXPECT_EQ(served, 3);
  EXPECT_EQ(etcd.connections_opened(), 3u);
}

// What a relay writing its members again rests on: a put that happens only
// if nobody wrote the key since a revision; and a range of what was written
// since one.
TEST_F(EtcdTest, PutUnlessWrittenSinceAndRangeSinceARevision) {
  EtcdClient etcd(io_.get_executor(), Endpoints());
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    // Absent: put, at a revision.
    auto first = co_await etcd.PutUnlessWrittenSince("/w/a", "mine", 0, 0, &error);
    EXPECT_TRUE(first && *first > 0) << error;
    if (!first) co_return;
    // Unchanged since our put: put again, at a newer revision.
    auto second = co_await etcd.PutUnlessWrittenSince("/w/a", "mine again", 0, *first, &error);
    EXPECT_TRUE(second && *second > *first) << error;
    if (!second) co_return;
    // Someone else writes it: ours is refused (0) and theirs stays.
    auto theirs = co_await etcd.Put("/w/a", "theirs", 0, &error);
    EXPECT_TRUE(theirs && *theirs > *second) << error;
    auto refused = co_await etcd.PutUnlessWrittenSince("/w/a", "mine", 0, *second, &error);
    EXPECT_EQ(refused, std::optional<int64_t>(0)) << error;
    auto kvs = co_await etcd.Range("/w/a", "", &error);
    EXPECT_TRUE(kvs && kvs->size() == 1 && (*kvs)[0].value == "theirs" && (*kvs)[0].mod_revision == *theirs);
    // Deleted (as a lease's end deletes): absent again, so put.
    EXPECT_TRUE(co_await etcd.Delete("/w/a", &error)) << error;
    auto after_delete = co_await etcd.PutUnlessWrittenSince("/w/a", "mine", 0, *second, &error);
    EXPECT_TRUE(after_delete && *after_delete > *theirs) << error;
    // Only what was written since a revision.
    auto b = co_await etcd.Put("/w/b", "b", 0, &error);
    EXPECT_TRUE(b) << error;
    if (!b || !after_delete) co_return;
    auto since = co_await etcd.Range("/w/", EtcdClient::PrefixEnd("/w/"), &error, *after_delete + 1);
    EXPECT_TRUE(since && since->size() == 1 && (*since)[0].key == "/w/b") << error;
    auto all = co_await etcd.Range("/w/", EtcdClient::PrefixEnd("/w/"), &error, *after_delete);
    EXPECT_TRUE(all && all->size() == 2) << error;
  });
}

// What a relay's membership will rest on: keys under an etcd lease stay
// while the lease is kept alive and go on their own once it is not.
TEST_F(EtcdTest, KeysUnderALeaseGoWhenItIsNoLongerKeptAlive) {
  EtcdClient etcd(io_.get_executor(), Endpoints());
  int64_t lease = 0;
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    auto granted = co_await etcd.GrantLease(2, &error);
    EXPECT_TRUE(granted) << error;
    if (!granted) co_return;
    lease = *granted;
    EXPECT_TRUE(co_await etcd.Put("/m/relay1", "tcp://192.0.2.1:3334", lease, &error)) << error;
    EXPECT_TRUE(co_await etcd.Put("/m/plain", "x", 0, &error)) << error;
    // Kept alive for longer than its TTL: the key stays.
    asio::steady_timer timer(co_await asio::this_coro::executor);
    for (int i = 0; i < 6; ++i) {
      auto left = co_await etcd.KeepAlive(lease, &error);
      EXPECT_TRUE(left && *left > 0) << error;
      timer.expires_after(500ms);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    auto kvs = co_await etcd.Range("/m/relay1", "", &error);
    EXPECT_TRUE(kvs && kvs->size() == 1 && (*kvs)[0].lease == lease) << error;
    // No longer kept alive: gone within its TTL (and a keepalive now says 0).
    timer.expires_after(3500ms);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    kvs = co_await etcd.Range("/m/", EtcdClient::PrefixEnd("/m/"), &error);
    EXPECT_TRUE(kvs) << error;
    if (!kvs) co_return;
    EXPECT_EQ(kvs->size(), 1u);
    if (!kvs->empty()) EXPECT_EQ((*kvs)[0].key, "/m/plain");
    auto left = co_await etcd.KeepAlive(lease, &error);
    EXPECT_EQ(left, std::optional<int64_t>(0)) << error;
    EXPECT_TRUE(co_await etcd.Delete("/m/plain", &error)) << error;
    kvs = co_await etcd.Range("/m/plain", "", &error);
    EXPECT_TRUE(kvs && kvs->empty()) << error;
  });
}

TEST_F(EtcdTest, TwoRelaysRacingNeverGiveOneAddressToTwoDevices) {
  // Two relays (each its own client), twelve devices, twelve addresses: each
  // relay acquires every device at once, in its own order.
  EtcdClient etcd1(io_.get_executor(), Endpoints()), etcd2(io_.get_executor(), Endpoints());
  const uint32_t base = *base::ParseIpv4("10.0.0.0");
  const AddressPool pool{base + 1, base + 13, base + 1};  // .1 is the relay's: .2 to .13.
  EtcdLeases relay1(etcd1, "/mnedc/test/", pool), relay2(etcd2, "/mnedc/test/", pool);
  std::vector<std::string> devices;
  for (int i = 0; i < 12; ++i) devices.push_back("dev" + std::to_string(i));
  std::map<std::string, uint32_t> got1, got2;
  int pending = 0;
  std::vector<std::string> errors;
  auto acquire = [&](EtcdLeases& leases, std::string device, std::map<std::string, uint32_t>& got)
      -> asio::awaitable<void> {
    std::string error;
    auto address = co_await leases.Acquire(device, 0, &error);
    if (address) {
      got[device] = *address;
    } else {
      errors.push_back(device + ": " + error);
    }
    --pending;
  };
  std::vector<std::string> order2 = devices;
  std::shuffle(order2.begin(), order2.end(), std::mt19937(7));
  for (std::size_t i = 0; i < devices.size(); ++i) {
    pending += 2;
    asio::co_spawn(io_, acquire(relay1, devices[i], got1), asio::detached);
    asio::co_spawn(io_, acquire(relay2, order2[i], got2), asio::detached);
  }
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (pending > 0 && std::chrono::steady_clock::now() < deadline) io_.run_for(50ms);
  ASSERT_EQ(pending, 0);
  EXPECT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(got1.size(), devices.size());
  ASSERT_EQ(got2.size(), devices.size());
  std::set<uint32_t> addresses;
  for (const auto& device : devices) {
    EXPECT_EQ(got1[device], got2[device]) << device << " got two addresses";
    EXPECT_GE(got1[device], base + 2);
    EXPECT_LE(got1[device], base + 13);
    addresses.insert(got1[device]);
  }
  EXPECT_EQ(addresses.size(), devices.size()) << "an address was given to two devices";
  std::cout << "races lost and retried: " << relay1.conflicts() + relay2.conflicts() << "\n";

  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    // Full: a thirteenth device is refused, clearly.
    auto none = co_await relay1.Acquire("dev12", 0, &error);
    EXPECT_FALSE(none);
    EXPECT_NE(error.find("no free address"), std::string::npos) << error;
    // A device keeps its address, whatever it asks for, on either relay.
    auto again = co_await relay2.Acquire("dev3", base + 9, &error);
    EXPECT_EQ(again, std::optional<uint32_t>(got1["dev3"])) << error;
  });
}

TEST_F(EtcdTest, APreviousAddressIsKeptIfFreeAndAnUnreachableEtcdIsAnError) {
  EtcdClient etcd(io_.get_executor(), Endpoints(), 1s);
  const uint32_t base = *base::ParseIpv4("10.0.0.0");
  EtcdLeases leases(etcd, "/mnedc/prev/", {base + 1, base + 254, base + 1});
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    auto address = co_await leases.Acquire("a", base + 77, &error);
    EXPECT_EQ(address, std::optional<uint32_t>(base + 77)) << error;
    auto other = co_await leases.Acquire("b", base + 77, &error);
    EXPECT_EQ(other, std::optional<uint32_t>(base + 2)) << "taken: the lowest free one";
  });
  etcd_->Pause();
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    auto address = co_await leases.Acquire("c", 0, &error);
    EXPECT_FALSE(address);
    EXPECT_NE(error.find("etcd 127.0.0.1:"), std::string::npos) << error;
    EXPECT_NE(error.find("timed out"), std::string::npos) << error;
  });
  etcd_->Resume();
  RunToEnd(io_, [&]() -> asio::awaitable<void> {
    std::string error;
    auto address = co_await leases.Acquire("c", 0, &error);
    EXPECT_EQ(address, std::optional<uint32_t>(base + 3)) << error;
  });
}

}  // namespace
}  // namespace mnedc::cluster
