#include "mnedc/client/direct_path.h"

#include <algorithm>

namespace mnedc::client {

void PathState::AddCandidate(const Endpoint& candidate) {
  if (candidate.port() == 0 || candidate.address().is_unspecified()) return;
  if (std::find(candidates_.begin(), candidates_.end(), candidate) != candidates_.end()) return;
  if (candidates_.size() >= config_.max_candidates) return;
  candidates_.push_back(candidate);
}

void PathState::StartRound(Clock::time_point now, bool at_once) {
  ++rounds_;
  round_end_ = now + config_.probe_for;
  next_round_ = round_end_ + config_.retry_after;
  // Ping at once (when a peer's message started it: unless the last pings
  // went less than an interval ago).
  if (at_once || now - last_probe_ >= config_.probe_interval) last_probe_ = Clock::time_point{};
}

bool PathState::MayStartRound(Clock::time_point now) const {
  // Whatever a peer sends (CallMeMaybe, pings from new addresses), at most
  // one round per retry_after: what it can make this device send to the
  // addresses it names is capped, however much it sends.
  return !direct_ && !probing(now) && (rounds_ == 0 || now >= next_round_);
}

void PathState::SetCandidates(std::span<const Endpoint> candidates, Clock::time_point now) {
  candidates_.clear();
  for (const Endpoint& candidate : candidates) AddCandidate(candidate);
  if (direct_ && std::find(candidates_.begin(), candidates_.end(), *direct_) == candidates_.end()) {
    AddCandidate(*direct_);  // Still the path in use (learned from its ping).
  }
  if (MayStartRound(now)) StartRound(now);
}

void PathState::OnPingFrom(const Endpoint& from, Clock::time_point now) {
  const std::size_t before = candidates_.size();
  AddCandidate(from);
  if (candidates_.size() != before && MayStartRound(now)) StartRound(now);
  OnHeard(from, now);
}

void PathState::Probe(Clock::time_point now) {
  if (!candidates_.empty() && MayStartRound(now)) StartRound(now);
}

void PathState::Due(Clock::time_point now, std::vector<Endpoint>* to) {
  if (direct_) {
    if (unanswered_since_ && now - *unanswered_since_ >= config_.silence) {
      // Silent: back to the relay, and look again at once.
      direct_.reset();
      since_ = now;
      unanswered_since_.reset();
      ++fallbacks_;
      StartRound(now, /*at_once=*/true);
    } else {
      const bool active = now - last_sent_ < config_.active_for;
      const auto interval = active ? config_.heartbeat_active : config_.heartbeat_idle;
      if (now - last_ping_ >= interval) to->push_back(*direct_);
      // The rest of the round still probes the others: one may be closer.
      if (now < round_end_ && now - last_probe_ >= config_.probe_interval) {
        last_probe_ = now;
        for (const Endpoint& candidate : candidates_) {
          if (candidate != *direct_) to->push_back(candidate);
        }
      }
      return;
    }
  }
  if (candidates_.empty()) return;
  if (now >= round_end_ && now >= next_round_) StartRound(now, /*at_once=*/true);
  if (now < round_end_ && now - last_probe_ >= config_.probe_interval) {
    last_probe_ = now;
    to->insert(to->end(), candidates_.begin(), candidates_.end());
  }
}

void PathState::PingSent(const Endpoint& to, const ProbeId& id, Clock::time_point now) {
  outstanding_[next_outstanding_] = {id, to, now};
  next_outstanding_ = (next_outstanding_ + 1) % outstanding_.size();
  if (direct_ && to == *direct_) {
    last_ping_ = now;
    if (!unanswered_since_) unanswered_since_ = now;
  }
}

bool PathState::OnPong(const Endpoint& from, const ProbeId& id, Clock::time_point now) {
  const auto found = std::find_if(outstanding_.begin(), outstanding_.end(), [&](const Outstanding& o) {
    return o.id == id && o.to == from && o.sent != Clock::time_point{};
  });
  if (found == outstanding_.end()) return false;
  const Clock::duration rtt = now - found->sent;
  found->sent = Clock::time_point{};  // Answered once.
  if (!direct_) {
    direct_ = from;
    since_ = now;
    rtt_ = rtt;
    last_ping_ = now;
  } else if (from == *direct_) {
    rtt_ = rtt;
  } else if (rtt * 10 < rtt_ * 7) {
    direct_ = from;  // Much closer: the LAN rather than round through the NATs.
    rtt_ = rtt;
  }
  OnHeard(from, now);
  return true;
}

void PathState::OnHeard(const Endpoint& from, Clock::time_point now) {
  if (direct_ && from == *direct_) {
    last_heard_ = now;
    unanswered_since_.reset();
  }
}

PathState::Clock::time_point PathState::NextDue() const {
  if (direct_) {
    const bool active = last_sent_ + config_.active_for > last_ping_;
    Clock::time_point due = last_ping_ + (active ? config_.heartbeat_active : config_.heartbeat_idle);
    if (unanswered_since_) due = std::min(due, *unanswered_since_ + config_.silence);
    if (last_probe_ + config_.probe_interval < round_end_) due = std::min(due, last_probe_ + config_.probe_interval);
    return due;
  }
  if (candidates_.empty()) return Clock::time_point::max();
  if (last_probe_ + config_.probe_interval < round_end_) return last_probe_ + config_.probe_interval;
  return next_round_;
}

}  // namespace mnedc::client
