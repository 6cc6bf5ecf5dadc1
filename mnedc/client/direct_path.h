#pragma once
// The path to one peer: through the relay, or direct over UDP once a probe
// has round-tripped. Pure logic on a clock the caller passes in (tests use a
// fake one); the socket, the messages and the timers are Direct's.
//
// While on the relay with candidates (the peer's local and outside UDP
// addresses, from its CallMeMaybe, and any address an authenticated ping came
// from), a probing round pings each candidate every probe_interval for
// probe_for; a round that finds nothing is followed by another after
// retry_after. Nothing a peer sends starts rounds more often than one per
// retry_after, and no candidate is pinged more often than probe_interval, so
// what a peer naming someone else's address as its candidate can make this
// device send there is capped (its at most 8 candidates, twice a second for
// 5 s in every 35 s, 129 bytes a ping), however much it sends. The first pong moves the peer to direct, on
// the address that
// answered; the rest of the round still pings the others, and one whose
// round trip is under 70% of it takes over (the LAN beats the way round
// through the NATs). On a direct path a ping goes
// every heartbeat_active while traffic flows (every heartbeat_idle otherwise,
// within NAT UDP timeouts), and a ping unanswered for `silence` with nothing
// heard since it went drops the peer back to the relay at once, and a new
// round starts.
#include <array>
#include <boost/asio/ip/udp.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace mnedc::client {

struct PathConfig {
  using Duration = std::chrono::steady_clock::duration;
  Duration probe_interval = std::chrono::milliseconds(500);
  Duration probe_for = std::chrono::seconds(5);
  Duration retry_after = std::chrono::seconds(30);
  Duration heartbeat_active = std::chrono::milliseconds(250);
  Duration heartbeat_idle = std::chrono::seconds(10);
  Duration silence = std::chrono::milliseconds(800);
  Duration active_for = std::chrono::seconds(5);  // Traffic this recent keeps the fast heartbeat.
  std::size_t max_candidates = 8;  // Of each peer: nobody is made to ping a long list.
};

using ProbeId = std::array<uint8_t, 12>;

class PathState {
 public:
  using Clock = std::chrono::steady_clock;
  using Endpoint = boost::asio::ip::udp::endpoint;

  explicit PathState(PathConfig config = {}) : config_(config) {}

  // The peer's candidates (replacing those it sent before); starts a
  // probing round now. At most max_candidates are kept.
  void SetCandidates(std::span<const Endpoint> candidates, Clock::time_point now);
  // An authenticated ping came from `from`: a candidate too (its NAT's
  // mapping toward us), probed in the current round or the next.
  void OnPingFrom(const Endpoint& from, Clock::time_point now);
  // Starts a probing round now unless one is under way (new traffic to a
  // peer on the relay, or our own candidates changed).
  void Probe(Clock::time_point now);

  // The pings to send now (appended to `to`). For each, the caller sends a
  // ping and calls PingSent with its ID.
  void Due(Clock::time_point now, std::vector<Endpoint>* to);
  void PingSent(const Endpoint& to, const ProbeId& id, Clock::time_point now);
  // A pong: true if it answers a ping of ours (then the path may be direct).
  bool OnPong(const Endpoint& from, const ProbeId& id, Clock::time_point now);
  // Something authenticated came from `from` (a packet or a ping): the path
  // is alive if that is its address.
  void OnHeard(const Endpoint& from, Clock::time_point now);
  // Traffic went to this peer (keeps the fast heartbeat).
  void OnSent(Clock::time_point now) { last_sent_ = now; }

  // When Due next has something to do (time_point::max(): nothing planned).
  Clock::time_point NextDue() const;

  bool direct() const { return direct_.has_value(); }
  // The direct path's address, when direct.
  const std::optional<Endpoint>& endpoint() const { return direct_; }
  // When the path last changed (to direct, or back to the relay).
  Clock::time_point since() const { return since_; }
  // The last round trip measured on the direct path (zero before any).
  Clock::duration rtt() const { return rtt_; }
  bool probing(Clock::time_point now) const { return !direct_ && now < round_end_; }
  const std::vector<Endpoint>& candidates() const { return candidates_; }
  uint64_t fallbacks() const { return fallbacks_; }  // Times a direct path went silent.
  uint64_t rounds() const { return rounds_; }        // Probing rounds started.

 private:
  struct Outstanding {
    ProbeId id{};
    Endpoint to;
    Clock::time_point sent{};
  };
  void AddCandidate(const Endpoint& candidate);
  void StartRound(Clock::time_point now, bool at_once = false);
  bool MayStartRound(Clock::time_point now) const;

  PathConfig config_;
  std::vector<Endpoint> candidates_;
  std::optional<Endpoint> direct_;
  Clock::time_point since_{};
  Clock::duration rtt_{};
  Clock::time_point round_end_{};      // Probing until then (while not direct).
  Clock::time_point next_round_{Clock::time_point::max()};
  Clock::time_point last_probe_{};     // The last round of pings to the candidates.
  Clock::time_point last_ping_{};      // The last heartbeat on the direct path.
  Clock::time_point last_heard_{};
  std::optional<Clock::time_point> unanswered_since_;  // First ping since last heard.
  Clock::time_point last_sent_{};
  std::array<Outstanding, 16> outstanding_{};
  std::size_t next_outstanding_ = 0;
  uint64_t fallbacks_ = 0;
  uint64_t rounds_ = 0;
};

}  // namespace mnedc::client
