#pragma once
// The relay: leases virtual addresses, keeps virtual address -> session, forwards
// each packet to the session that owns its destination, and tells members when
// peers join and leave. It runs on one strand (single-threaded io_context): no
// locks, and a session's registry entry is removed before the session dies.
#include <array>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "mnedc/base/ipv6.h"
#include "mnedc/relay/cluster_store.h"
#include "mnedc/relay/join_policy.h"
#include "mnedc/relay/key_bindings.h"
#include "mnedc/relay/lease_keeper.h"
#include "mnedc/relay/lease_pool.h"
#include "mnedc/stun/responder.h"
#include "mnedc/transport/socket_state_reserve.h"
#include "mnedc/transport/accept.h"
#include "mnedc/link/framed_link.h"
#include "mnedc/transport/stream.h"
#include "mnedc/tun/packet_port.h"

namespace mnedc::relay {

enum class DropReason {
  kQueueFull,           // The receiver's send queue was full: its oldest packet went.
  kUnknownDestination,  // No member holds the destination address.
  kSpoofedSource,       // Source address is not the sender's lease.
  kMalformed,           // Not a parsable IPv4/IPv6 packet.
  kIpv6,                // IPv6, and this relay's network has none (--network6=none).
  kLinkLocal,           // IPv6 from a link-local (fe80::/10) address: not routable across the overlay.
  kNotJoined,           // DATA before the join completed.
  kNoLocalTun,          // Addressed to the relay, which runs without a TUN.
  kReceiverClosing,     // The receiver's session was closing: queued too late, or left queued.
  kRelayUnreachable,    // The destination is on another relay, with no mesh link to it now.
  kUnsealable,          // A sealed packet for a member that presented no keys, or for the relay itself.
  kCount,
};
std::string_view DropReasonName(DropReason reason);

struct RelayCounters {
  uint64_t sealed_routed = 0;   // SEALED frames routed on, unopened (device to device).
  uint64_t joins = 0;
  uint64_t leaves = 0;
  uint64_t joins_rejected = 0;  // Errors answered to a Hello (bad, exhausted, ...).
  uint64_t auth_failures = 0;   // Hellos without the right join token or certificate.
  uint64_t revoked = 0;         // Members disconnected because their token was revoked.
  uint64_t kicked = 0;          // Members disconnected by an operator.
  uint64_t connections_refused = 0;  // Failed the transport handshake (TLS, HTTP, ...).
  uint64_t accept_errors = 0;   // accept() failed (EMFILE: out of file descriptors, ...).
  uint64_t superseded = 0;      // Sessions replaced by a newer one of the same device.
  // Peer discovery: batches of joins and leaves sent (each one encoded once
  // and shared by every member that receives it), and the changes in them.
  uint64_t peer_batches = 0;
  uint64_t peer_changes = 0;
  // Packets a receiver's writer took from its queue (or the relay's TUN got):
  // delivered, not merely queued. Packets queued and then dropped are counted
  // only under their drop reason.
  uint64_t packets_forwarded = 0;
  uint64_t bytes_forwarded = 0;
  uint64_t broadcast_packets = 0;
  uint64_t pushbacks = 0;          // Times a sender was paused for a full receiver.
  uint64_t stalled_receivers = 0;  // Times a receiver failed to drain in max_pushback.
  // Times the relay stopped reading a sender for a while because its packets
  // only went to stalled receivers (a flood at a member that takes nothing).
  uint64_t flood_pauses = 0;
  uint64_t rate_limited = 0;  // Times a sender was paused for its --rate_limit.
  uint64_t mesh_auth_failures = 0;  // Mesh links refused: a wrong cluster secret, or no cluster here.
  std::array<uint64_t, static_cast<std::size_t>(DropReason::kCount)> drops{};

  uint64_t drop(DropReason reason) const { return drops[static_cast<std::size_t>(reason)]; }
};

struct RelayOptions {
  Prefix prefix{0x0a000000, 24};  // 10.0.0.0/24
  // The overlay's IPv6 /64 (see base/ipv6.h: a device's IPv6 address is this
  // prefix with its IPv4 host number); none: IPv4 only, IPv6 packets dropped.
  std::optional<base::Prefix6> prefix6;
  uint32_t mtu = 1400;
  // Super-packets: take them from members that send them and pass them on
  // whole to members that take them (cut into segments for the others and
  // for a TUN without offloads). False: every packet crosses as an ordinary one.
  bool super_packets = true;
  // Pass large frames between members on plain TCP with splice(2), their
  // bytes never in the relay's memory (FramedLink::set_splice_reads); not with
  // rate_limit, which counts every packet. False: every frame is read and
  // sent as ever.
  bool splice = true;
  // The relays of this network (this one included, as devices dial it), sent
  // in every Lease so a device given one relay can fail over to the others.
  std::vector<std::string> relays;
  // One relay of a cluster (with SetClusterStore): its name among the relays,
  // and the secret they share, which mesh links between them prove.
  std::string cluster_name;
  std::string cluster_secret;  // Also keys the mesh's TLS (accept.tls gains the key, or is made for it).
  // The UDP port ServeStun answers on (told to devices in the Lease, for
  // them to learn their outside address at the relay's address); 0: none.
  uint16_t stun_port = 0;
  link::LinkOptions link;
  // When a receiver's queue is full, the relay stops reading from the sender for
  // up to this long, so TCP inside the tunnel slows down instead of losing
  // packets (as it would on a real link). A receiver that does not drain within
  // it is marked stalled: packets to it are then dropped oldest-first, and
  // nobody waits for it, until it drains again.
  std::chrono::milliseconds max_pushback{100};
  // A sender whose last 64 packets all went to stalled receivers (and were
  // dropped there) is not read for this long: a flood at a member that takes
  // nothing costs the relay a read every so often, not one per packet.
  std::chrono::milliseconds flood_pause{10};
  // Bytes a second each device may send into the relay (0: no limit), with a
  // burst of a tenth of a second (at least 64 KiB). Over it, the relay reads
  // that device more slowly (TCP inside the tunnel slows down); nothing is dropped.
  uint64_t rate_limit = 0;
  // Connections served at once, handshaking ones included; more are closed on
  // accept (counted in connections_refused), so a flood cannot exhaust memory.
  std::size_t max_connections = 20000;
  // Where leases are kept across restarts; empty keeps them in memory only.
  std::string lease_file;
  // Where the public key each device is bound to (trust on first use) is kept
  // across restarts; empty keeps the bindings as long as the relay runs. Not
  // used with a cluster store, which keeps them for every relay.
  std::string device_keys_file;
  // Pre-shared join token; empty (and no device_tokens) admits anyone (the
  // server warns loudly).
  std::string join_token;
  // A token per device (device ID -> token): each device can be revoked alone,
  // and a listed ID can only be joined with its own token. See JoinPolicy;
  // SetJoinPolicy() also expresses an empty list (nobody may join).
  std::unordered_map<std::string, std::string> device_tokens;
  // With mutual TLS: a device may join only under an ID its client
  // certificate names (subject CN or a DNS/URI/email SAN).
  bool bind_device_to_certificate = false;
  // How connections are told apart and upgraded (TLS, WebSocket) on accept.
  transport::AcceptOptions accept;
  // Joins and leaves are gathered for 100 us per member (within these
  // bounds) and sent to every member as one batch: each batch costs a write
  // per member, so this bounds the writes announcements cost to about ten
  // thousand a second, whatever the fleet's size (below the cap), and a join
  // storm of N devices costs each member a few writes, not N. A fleet of 10
  // hears of a change within 1 ms, one of 1,000 within 0.1 s, 10,000 within 1 s.
  std::chrono::milliseconds min_announce_delay{1};
  std::chrono::milliseconds max_announce_delay{2000};
};

struct MemberInfo {
  std::string device_id;
  uint32_t address = 0;
  std::string transport;  // "tcp", ...
  std::string seen_from;  // ip:port
  std::string public_key;  // Base64; empty for a client that presented none.
  std::chrono::system_clock::time_point connected_since;
  link::LinkCounters link;
  std::size_t control_queued = 0;  // Control entries waiting for its writer.
  bool snapshot_pending = false;   // Its peer snapshot is still being sent.
};

class Session;

// Where a packet goes, in IPv4 terms: an IPv6 address of the overlay stands
// for the IPv4 address with the same host number (base/ipv6.h).
struct RouteAddresses {
  uint32_t source = 0;
  uint32_t destination = 0;
  bool fan_out = false;  // Broadcast or multicast: every member but the sender.
};

class Relay {
 public:
  Relay(boost::asio::any_io_executor executor, RelayOptions options);
  ~Relay();

  // Accepts connections until the acceptor is closed: native TCP, TLS, ws and
  // wss on the same port, as options().accept allows.
  boost::asio::awaitable<void> AcceptLoop(boost::asio::ip::tcp::acceptor& acceptor);
  // Serves one connection, of any transport, until it ends. The join must
  // complete within options().link.handshake_timeout of `accepted_at`.
  boost::asio::awaitable<void> Serve(
      std::unique_ptr<transport::Stream> stream,
      std::chrono::steady_clock::time_point accepted_at = std::chrono::steady_clock::now());

  // Loads options().lease_file and options().device_keys_file (missing files
  // are fine). Call once, before serving.
  bool RestoreLeases(std::string* error);
  // One relay of several: addresses come from `store` (the lease file is not
  // used), joins and leaves are recorded there, and the Lease lists the
  // relays it knows. Call before serving; `store` must outlive the relay.
  // When the store's relays change, every member is sent the new list.
  void SetClusterStore(ClusterStore* store);
  // Devices take at most this many relays from a Lease.
  static constexpr std::size_t kMaxRelaysInLease = 16;

  // The relay's own address: serves `tun` (configured with the relay's
  // address) until it is closed (returns no error) or fails for good (the
  // error); meanwhile packets to the relay's address go into it and what it
  // reads is routed like a member's packet. Without it, packets to the
  // relay's address are dropped (no_local_tun).
  boost::asio::awaitable<boost::system::error_code> ServeTun(tun::PacketPort& tun);
  // Answers STUN Binding requests on `socket` (see stun/responder.h) until
  // it is closed: how devices learn the outside address of their UDP socket
  // for a direct path. Set options().stun_port to its port.
  boost::asio::awaitable<void> ServeStun(boost::asio::ip::udp::socket& socket);
  // What every ServeStun so far answered and refused.
  stun::ResponderCounters stun_counters() const;
  // Routes one packet (or super-packet) as if the relay's TUN had read it.
  void SendFromLocal(std::span<const uint8_t> packet, packet::Gso gso = {});

  // Tells every member the relay is going away, and closes their connections.
  void Shutdown();

  // Replaces who may join (after the token files were re-read): every member
  // whose credentials no longer pass is told UNAUTHORIZED and disconnected.
  // Returns how many were.
  std::size_t SetJoinPolicy(JoinPolicy policy);
  const JoinPolicy& join_policy() const { return policy_; }
  // Closes a member's session, telling it (and the log) why. False if no such member.
  bool Kick(const std::string& device_id, const std::string& reason);
  // The operator's say that a device has a new key: its binding is dropped
  // (the next join binds the key it presents). False if it had none here.
  // With a cluster store, bindings live there (etcdctl del PREFIX/key/ID).
  bool ForgetKey(const std::string& device_id) { return keys_.Forget(device_id); }
  bool clustered() const { return cluster_ != nullptr; }
  std::optional<seal::PublicKey> BoundKey(const std::string& device_id) const { return keys_.Bound(device_id); }

  const RelayOptions& options() const { return options_; }
  // The IPv6 address that stands for an IPv4 address of the network (the
  // /64 with its host number); none without options().prefix6.
  std::optional<base::Ipv6Address> Ipv6Of(uint32_t address) const {
    if (!options_.prefix6) return std::nullopt;
    return options_.prefix6->AddressOf(address - options_.prefix.network);
  }
  const RelayCounters& counters() const { return counters_; }
  std::size_t member_count() const { return by_device_.size(); }
  // Connections being served, joined, joining or still in their transport
  // handshake; 0 once Shutdown() has completed.
  std::size_t connection_count() const {
    return all_sessions_.size() + handshaking_.size() + mesh_dialers_.size();
  }
  // The relay mesh: links to other relays up now, and the devices they serve.
  std::size_t mesh_link_count() const { return mesh_links_.size(); }
  std::size_t remote_member_count() const { return remote_by_address_.size(); }
  std::vector<MemberInfo> Members() const;
  // Every link's counters summed, those that have ended included.
  link::LinkCounters LinkTotals() const;

 private:
  friend class Session;
  // Join, leave and forwarding, called by sessions.
  void Join(Session& session, const protocol::Hello& hello);
  // With a cluster store: the join's address from it, then CompleteJoin.
  boost::asio::awaitable<void> FinishJoin(Session& session);
  void CompleteJoin(Session& session, uint32_t address);
  void RejectJoin(Session& session, protocol::Error::Code code, const std::string& why);
  // options().relays, then those the cluster store knows.
  std::vector<std::string> RelayList() const;
  void SendRelayList();
  void Leave(Session& session);
  // The cluster store says the device joined another relay since: its
  // connection here is stale, and goes.
  void MemberElsewhere(const std::string& device_id);
  // Where a packet or a SEALED frame goes, decided from its headers alone:
  // what Route and RouteSealed act on, and all SpliceRoute passes on (a
  // member). `head` holds at least the packet's IP header (or the sealed
  // header), `size` is its size in all.
  struct Destination {
    enum class Kind { kDrop, kFanOut, kRelayHost, kOtherRelay, kMember };
    Kind kind = Kind::kDrop;
    DropReason drop = DropReason::kMalformed;  // kDrop: why.
    uint32_t address = 0;                      // kRelayHost, kOtherRelay, kMember.
    Session* member = nullptr;                 // kMember.
    static Destination Dropped(DropReason reason) {
      Destination to;
      to.drop = reason;
      return to;
    }
    static Destination To(Kind kind, uint32_t address = 0, Session* member = nullptr) {
      Destination to;
      to.kind = kind;
      to.address = address;
      to.member = member;
      return to;
    }
  };
  // `from` is null for the relay's own TUN.
  Destination PacketDestination(const Session* from, std::span<const uint8_t> head, std::size_t size) const;
  Destination SealedDestination(const Session& from, std::span<const uint8_t> head) const;
  // Returns the member whose full queue the sender should wait for, or null
  // when the packet was forwarded or dropped.
  Session* Route(Session* from, std::span<const uint8_t> packet, packet::Gso gso = {});
  // The same for a SEALED frame's payload (its header is there: the link
  // checked its size), from a member or over a mesh link: routed by the
  // header's destination, its source checked as a packet's would be, to a
  // member that presented keys (or the relay that serves it).
  Session* RouteSealed(Session& from, std::span<const uint8_t> payload);
  void Drop(DropReason reason) { ++counters_.drops[static_cast<std::size_t>(reason)]; }
  // A packet's addresses; false (dropped and counted) if it is not an IPv4
  // packet, or an IPv6 one of the overlay's /64 or to a multicast group.
  bool ParseForRouting(std::span<const uint8_t> packet, RouteAddresses* addresses);
  // The same for a packet of `size` bytes that starts with `head`, without
  // counting: why it would be dropped, or nothing.
  std::optional<DropReason> ClassifyForRouting(std::span<const uint8_t> head, std::size_t size,
                                               RouteAddresses* addresses) const;
  // Splicing (--splice): the member a frame from `from` may be passed to
  // unread, or null to read and route it as usual.
  Session* SpliceRoute(Session& from, const link::SpliceOffer& offer);
  // Ipv6Of as the 16 bytes the protocol carries; empty without options().prefix6.
  std::string Address6Of(uint32_t address) const;
  // Into the relay's TUN (dropped as no_local_tun without one).
  void DeliverToRelayHost(std::span<const uint8_t> packet, packet::Gso gso);
  boost::asio::awaitable<void> ServeSocket(boost::asio::ip::tcp::socket socket);
  // Serve(), or with `mesh_peer` a mesh link this relay dialed.
  boost::asio::awaitable<void> ServeSession(std::unique_ptr<transport::Stream> stream,
                                            std::chrono::steady_clock::time_point accepted_at,
                                            std::string mesh_peer);
  // The relay mesh (mesh.cc).
  struct MeshDialer;
  void UpdateMesh();
  void StopMesh();  // Stops dialing (Shutdown closes the links).
  boost::asio::awaitable<void> MeshDialLoop(std::string name);
  void StartMeshAuth(Session& session, const std::string& peer);
  void OnMeshAuth(Session& session, const protocol::MeshAuth& auth);
  void EstablishMesh(Session& session);
  void MeshLinkEnded(Session& session);
  void OnMeshPeers(Session& session, const protocol::PeerList& list);
  // Like Route, for a packet that came over a mesh link, and for one to a
  // device of another relay.
  Session* RouteFromMesh(Session& from, std::span<const uint8_t> packet, packet::Gso gso);
  Session* RouteToMesh(Session* from, uint32_t destination, std::span<const uint8_t> packet, packet::Gso gso,
                       bool sealed = false);
  // Empty when the session may join as `device_id`; otherwise why not.
  std::string Authorize(const Session& session, const std::string& device_id) const;
  // Returns false, without queueing, when `may_wait` and `to` is full but not
  // stalled. `from` (null for the relay's TUN) learns whether a stalled
  // receiver dropped it. `sealed`: `packet` is a SEALED frame's payload.
  bool Forward(Session* from, Session& to, std::span<const uint8_t> packet, packet::Gso gso,
               bool may_wait, bool sealed = false);
  // Peer discovery (membership.cc): a change to send to every member soon;
  // sending the gathered batch; the next piece of a joining member's snapshot.
  void Announce(const Session& subject, bool gone);
  // A device of another relay joined or left (mesh.cc): told to the members here.
  void AnnounceRemote(std::string change, const std::string& device_id, bool gone);
  struct PendingChange;
  void QueueChange(PendingChange change);
  void SendAnnouncements();
  void ContinueSnapshot(Session& session);
  void StartSnapshot(Session& session);
  void SnapshotDone(Session& session);

  boost::asio::any_io_executor executor_;
  RelayOptions options_;
  LeaseKeeper leases_;
  KeyBindings keys_;
  ClusterStore* cluster_ = nullptr;
  // The mesh: the other relays, the link to each that is up, the dialers of
  // those this relay dials, and which relay serves each remote device.
  std::vector<RelayPeer> mesh_peers_;
  std::map<std::string, Session*> mesh_links_;
  // TLS keyed by the cluster secret, for the mesh links this relay dials.
  std::shared_ptr<boost::asio::ssl::context> mesh_tls_;
  std::map<std::string, MeshDialer*> mesh_dialers_;
  struct RemoteMember {
    std::string device_id;
    std::string relay;
    std::string change;  // Its encoded PeerChange, for snapshots.
  };
  // A remote device is gone from the directory (and from the members' view
  // unless it is a member here now).
  void ForgetRemote(uint32_t address, const RemoteMember& remote);
  std::unordered_map<uint32_t, RemoteMember> remote_by_address_;
  RelayCounters counters_;
  JoinPolicy policy_;
  tun::PacketPort* local_port_ = nullptr;  // While ServeTun runs.
  std::unordered_map<std::string, Session*> by_device_;
  std::unordered_map<uint32_t, Session*> by_address_;
  // Every device of the network in address order, for resumable snapshots:
  // the members here (`session` set) and, with a cluster, those of the other
  // relays (`session` null); where both name one address, the member here.
  struct DirectoryEntry {
    const std::string* change = nullptr;  // Its encoded PeerChange.
    Session* session = nullptr;
  };
  std::map<uint32_t, DirectoryEntry> directory_;
  struct PendingChange {
    std::string change;  // Serialized PeerChange.
    std::string device_id;
    bool gone = false;
    bool local = true;  // Of a member here: told to the other relays too.
  };
  std::vector<PendingChange> pending_changes_;
  uint64_t announce_round_ = 1;
  // Snapshots sent at once: a join storm's snapshots take their turn, so the
  // writers busy with them stay few and new Hellos are read without delay.
  std::size_t snapshots_sending_ = 0;
  std::size_t members_at_trim_ = 0;  // Peak membership since memory was last given back.
  std::list<stun::Responder> stun_responders_;
  std::list<Session*> snapshot_queue_;  // Which batch the changes now gathered go out in.
  boost::asio::steady_timer announce_timer_;
  // Its callback holds a weak reference: once the relay is gone, an expiry
  // already queued touches nothing.
  std::shared_ptr<Relay*> alive_;
  std::unordered_set<Session*> all_sessions_;  // Joined or not, for Shutdown().
  link::LinkCounters ended_links_;  // The counters of links that have ended.
  std::unordered_set<int> handshaking_;         // Sockets (fds) still in AcceptStream.
  transport::SocketStateReserve socket_states_;  // asio's per-socket state, kept together.
  bool shutting_down_ = false;
};

}  // namespace mnedc::relay
