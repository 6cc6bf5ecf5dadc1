#include "mnedc/relay/pushback.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>

namespace mnedc::relay {
namespace {
namespace asio = boost::asio;
using namespace std::chrono_literals;

struct Wait {
  std::optional<std::string> stalled;  // Set when the wait returned.
};

void StartWait(asio::io_context& io, Pushback& sender, std::chrono::milliseconds limit, Wait& wait) {
  asio::co_spawn(io, sender.WaitForRoom(limit), [&wait](std::exception_ptr, std::string name) {
    wait.stalled = std::move(name);
  });
}

TEST(PushbackTest, ADrainedReceiverReleasesItsSenders) {
  asio::io_context io;
  const std::string a_name = "a", b_name = "b", r_name = "r";
  Pushback a(io.get_executor(), a_name), b(io.get_executor(), b_name);
  Pushback receiver(io.get_executor(), r_name);
  a.WaitOn(receiver);
  b.WaitOn(receiver);
  EXPECT_EQ(receiver.waiters(), 2u);
  Wait wa, wb;
  StartWait(io, a, 10s, wa);
  StartWait(io, b, 10s, wb);
  io.run_for(10ms);
  EXPECT_FALSE(wa.stalled);
  receiver.Drained();
  io.run_for(10ms);
  ASSERT_TRUE(wa.stalled && wb.stalled);
  EXPECT_EQ(*wa.stalled, "");
  EXPECT_EQ(receiver.waiters(), 0u);
  EXPECT_FALSE(a.waiting());
  EXPECT_FALSE(receiver.stalled());
}

TEST(PushbackTest, AReceiverThatDoesNotDrainInTimeIsStalledOnce) {
  asio::io_context io;
  const std::string a_name = "a", b_name = "b", r_name = "slow";
  Pushback a(io.get_executor(), a_name), b(io.get_executor(), b_name);
  Pushback receiver(io.get_executor(), r_name);
  a.WaitOn(receiver);
  Wait wa;
  StartWait(io, a, 20ms, wa);
  io.run_for(100ms);
  ASSERT_TRUE(wa.stalled);
  EXPECT_EQ(*wa.stalled, "slow");  // This wait made it stalled: the caller logs and counts it.
  EXPECT_TRUE(receiver.stalled());
  EXPECT_EQ(receiver.waiters(), 0u);
  b.WaitOn(receiver);
  Wait wb;
  io.restart();  // run_for above ran out of work.
  StartWait(io, b, 20ms, wb);
  io.run_for(100ms);
  ASSERT_TRUE(wb.stalled);
  EXPECT_EQ(*wb.stalled, "");  // Already stalled: not reported twice.
  receiver.Drained();
  EXPECT_FALSE(receiver.stalled());
}

TEST(PushbackTest, EitherSideGoingFirstLeavesNoPointerBehind) {
  asio::io_context io;
  const std::string s_name = "s", r_name = "r";
  auto sender = std::make_unique<Pushback>(io.get_executor(), s_name);
  auto receiver = std::make_unique<Pushback>(io.get_executor(), r_name);
  sender->WaitOn(*receiver);
  Wait wait;
  StartWait(io, *sender, 10s, wait);
  io.run_for(5ms);
  receiver.reset();  // The receiver's session ends: the sender goes on at once.
  io.run_for(5ms);
  ASSERT_TRUE(wait.stalled);
  EXPECT_FALSE(sender->waiting());

  io.restart();
  auto other = std::make_unique<Pushback>(io.get_executor(), r_name);
  sender->WaitOn(*other);
  EXPECT_EQ(other->waiters(), 1u);
  sender.reset();  // The sender's session ends first: the receiver forgets it.
  EXPECT_EQ(other->waiters(), 0u);
  other->Drained();  // Would touch the gone sender if it were still listed.
}

}  // namespace
}  // namespace mnedc::relay
