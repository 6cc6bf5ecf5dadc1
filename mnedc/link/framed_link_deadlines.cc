// FramedLink's deadlines: one timer for the handshake, keepalive, a dead
// peer, a stalled write and an unfinished flush (see framed_link.h).
#include <glog/logging.h>

#include <algorithm>
#include <cstdio>

#include "mnedc/link/framed_link.h"

namespace mnedc::link {
namespace {
using Clock = std::chrono::steady_clock;

std::string Seconds(Clock::duration d) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.1fs", std::chrono::duration<double>(d).count());
  return text;
}
}  // namespace

void FramedLink::Replan(Clock::time_point deadline) {
  if (deadline < timers_planned_) timers_.cancel();
}

Clock::duration FramedLink::Jittered(Clock::duration d) {
  // +-20%, so a relay restart does not make every client ping in lockstep.
  std::uniform_int_distribution<int> percent(80, 120);
  return d * percent(jitter_) / 100;
}

void FramedLink::ArmTimers() {
  // Ping only after the peer has been silent for an interval (anything it
  // sends, a Pong included, counts), and not again before another interval:
  // a busy link sends no pings at all, and an idle one a ping and a pong per
  // interval (the side that pings first keeps the other quiet).
  Clock::time_point next = Clock::time_point::max();
  if (!closing_) {
    const Clock::time_point ping_due =
        std::max(last_receive_ + ping_interval_, last_ping_ + ping_interval_);
    next = established_ ? std::min(ping_due, last_receive_ + options_.dead_after)
                        : handshake_deadline_;
  }
  if (writing_) next = std::min(next, write_started_at_ + options_.write_timeout);
  if (closing_ && !flushed_) next = std::min(next, closing_at_ + options_.flush_timeout);
  if (flushed_ && !reading_done_) next = std::min(next, flushed_at_ + options_.flush_timeout);
  timers_planned_ = next;
  timers_armed_ = true;
  timers_.expires_at(next);
  // Run() does not return while this is pending, so `this` outlives it.
  timers_.async_wait([this](const boost::system::error_code&) {
    timers_armed_ = false;
    timers_planned_ = Clock::time_point::min();  // Running: nothing to cancel.
    if (closed_) {
      joined_.cancel();
      return;
    }
    OnTimers();
    if (closed_) {
      joined_.cancel();
    } else if (!timers_armed_) {
      ArmTimers();
    }
  });
}

void FramedLink::OnTimers() {
  const Clock::time_point now = Clock::now();
  if (flushed_ && !reading_done_ && now >= flushed_at_ + options_.flush_timeout) {
    Close();  // The peer did not close its side after our FIN: enough.
    return;
  }
  if (closing_ && !flushed_ && now >= closing_at_ + options_.flush_timeout) {
    set_end_reason("peer did not read the last frames within " + Seconds(options_.flush_timeout));
    Close();
    return;
  }
  if (writing_ && now >= write_started_at_ + options_.write_timeout) {
    set_end_reason("peer took nothing for " + Seconds(now - write_started_at_) +
                   " (write stalled)");
    Close();
    return;
  }
  if (closing_) return;
  if (!established_) {
    if (now < handshake_deadline_) return;
    const std::string why = "no handshake within " + Seconds(options_.handshake_timeout);
    set_end_reason(why);
    reading_done_ = true;  // Nothing more is read: close once the Error is out.
    SendErrorAndClose(protocol::Error::HANDSHAKE_TIMEOUT, why);
    return;
  }
  if (now - last_receive_ >= options_.dead_after) {
    set_end_reason("nothing received for " + Seconds(now - last_receive_) + ": peer is gone");
    reading_done_ = true;  // No FIN will come back from a dead peer.
    CloseAfterFlush();
    return;
  }
  if (now >= std::max(last_receive_ + ping_interval_, last_ping_ + ping_interval_)) {
    protocol::ControlMessage ping;
    ping.mutable_ping()->set_nonce(next_ping_nonce_++);
    SendControl(ping);
    last_ping_ = now;
    ping_interval_ = Jittered(options_.keepalive_interval);
  }
}

}  // namespace mnedc::link
