// mnedc relay: accepts devices, leases them virtual addresses, forwards packets.
#include <gflags/gflags.h>
#include <glog/logging.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <algorithm>
#include <functional>
#include <memory>
#include <unordered_map>
#include <string_view>
#include <vector>

#include "mnedc/admin/admin_server.h"
#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/cli/cli_support.h"
#include "mnedc/cli/network6.h"
#include "mnedc/cli/relay_listeners.h"
#include "mnedc/cli/server_cluster.h"
#include "mnedc/relay/join_policy.h"
#include "mnedc/relay/relay.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"
#include "mnedc/transport/tls_context.h"
#include "mnedc/tun/lasting_tun.h"

DEFINE_string(listen, "0.0.0.0:3334",
              "HOST:PORT to accept devices on, or several separated by commas (e.g. "
              "0.0.0.0:3334,0.0.0.0:443). Each port serves every transport. 3334 is MNEDC's "
              "port; [::]:3334 for IPv6.");
DEFINE_string(stun_listen, "auto",
              "Where to answer STUN Binding requests (RFC 8489) on UDP, so devices learn the outside "
              "address their NATs give them and can reach each other directly: 'auto' (the UDP port "
              "of each --listen address; a port another program holds is skipped with a warning), "
              "'none', or HOST:PORT list. Devices are told the first one's port in their Lease. "
              "Answers are rate-limited per source and never larger than 44 bytes.");
DEFINE_string(network, "10.0.0.0/24",
              "Virtual network (IPv4 CIDR, /8 to /30). The relay is its first host (.1); "
              "devices get the others.");
DEFINE_string(network6, "auto",
              "IPv6 of the virtual network: a /64 whose interface IDs are the devices' IPv4 host "
              "numbers (10.0.0.5 in 10.0.0.0/24 is PREFIX::5, the relay PREFIX::1), so a device "
              "keeps its IPv6 address exactly as long as its IPv4 one. 'auto': a unique-local "
              "fdXX:XXXX:XXXX::/64 (RFC 4193) made from this host's /etc/machine-id and --network "
              "(with --cluster, from the cluster secret, the same on every relay), unchanged across "
              "restarts; PREFIX/64: that one; 'none': IPv4 only (IPv6 packets dropped, counted as "
              "drops{reason=\"ipv6\"}).");
DEFINE_int32(mtu, 1400, "MTU that devices set on their TUN (576 to 65535).");
DEFINE_bool(offload, true,
            "Super-packets: take up to 64 KiB of one flow in one frame from devices that send "
            "them, pass them on whole to devices that take them (cut into packets for the others), "
            "and use the kernel's offloads on the relay's own TUN. --offload=false: every packet "
            "crosses the relay as an ordinary one.");
DEFINE_bool(splice, true,
            "Pass large frames (super-packets, 16 KiB and up) from one device's plain TCP connection "
            "to another's with splice(2): the relay peeks at each frame's headers to route and check "
            "it, and its bytes never enter the relay's memory. Off under --rate_limit, and for "
            "TLS and WebSocket connections, whose bytes the relay must decrypt or unwrap. "
            "--splice=false: every frame is read and written.");
DEFINE_string(relays, "",
              "The relays of this network, comma-separated, as devices pass them to --server "
              "(HOST:PORT, tls://, ws://, wss://...), this one included: sent to every device in "
              "its Lease, so a device given one relay fails over to the others. Default: none.");
DEFINE_int32(queue_packets, 64,
             "Packets queued per device. When full, the sender is paused up to --max_pushback_ms, then the oldest is dropped (counted as queue_full).");
DEFINE_int32(max_pushback_ms, 100,
             "How long a sender may be paused for a receiver's full queue before that receiver "
             "counts as stalled and packets to it are dropped instead.");
DEFINE_string(rate_limit, "0",
              "Most each device may send into the relay, per second: 10mbit, 500kbit, 1gbit, "
              "2MB, 100KB, or bytes (0: no limit). A device over it is read more slowly, so "
              "TCP inside the tunnel slows down; nothing is dropped. Bursts of a tenth of a "
              "second (at least 64 KiB) pass at once.");
DEFINE_int32(max_connections, 20000,
             "Connections served at once (joined or handshaking); more are refused on accept with "
             "an Error (BUSY) that makes devices retry seconds later. Lowered, with a warning, "
             "to what the open-file limit allows (the relay raises its soft limit to the hard "
             "one; raise that with LimitNOFILE= or ulimit -Hn).");
DEFINE_int32(handshake_timeout_seconds, 10, "A connection must join within this many seconds.");
DEFINE_int32(keepalive_seconds, 15, "Ping each device after this much silence (jittered +-20%).");
DEFINE_int32(dead_after_seconds, 45, "Drop a device that sent nothing for this long.");
DEFINE_string(lease_file, "",
              "Keep leases in this file, so after a restart every device gets its address back "
              "even if a newcomer joins first. Without it, leases survive restarts only as far "
              "as devices ask for their previous address.");
DEFINE_string(device_keys_file, "",
              "Keep here the public key each device is bound to: the key it first joined with "
              "(later joins under its ID must hold the same key; 'ctl forget-key DEVICE' lets it "
              "bind a new one). Without it the bindings last as long as the relay runs. A relay of "
              "a cluster keeps them in etcd instead.");
DEFINE_string(token_file, "",
              "File holding the join token every device must present (its --token_file). "
              "Without it anyone who can reach the relay may join: a loud warning says so.");
DEFINE_string(tokens_file, "",
              "File with one line per device, 'device_id token [public_key]', so each device can be "
              "revoked alone: edit the file and send SIGHUP (or run 'ctl reload'); a device whose "
              "line is gone or changed is disconnected and cannot rejoin. A listed ID can only join "
              "with its own token, and, if the line names one, its own key (as its client logs it). "
              "Must not be readable by every user.");
DEFINE_bool(bind_device_to_certificate, false,
            "With --tls_client_ca: a device may join only under an ID its client certificate "
            "names (subject CN or a subject alternative name).");
DEFINE_string(admin_token_file, "",
              "Token that lets other hosts use the operations endpoint's POST /v1/kick and "
              "/v1/reload (Authorization: Bearer TOKEN). Without it only loopback may.");
DEFINE_string(tls_cert, "",
              "Certificate chain (PEM) for tls:// and wss:// clients. Plain TCP and ws:// stay "
              "available on the same port unless --require_tls.");
DEFINE_string(tls_key, "", "Private key (PEM) of --tls_cert.");
DEFINE_string(tls_client_ca, "",
              "If set, clients must present a certificate signed by these CAs (mutual TLS).");
DEFINE_bool(require_tls, false, "Refuse plaintext connections (native TCP and ws://).");
DEFINE_string(admin_listen, "127.0.0.1:9334",
              "HOST:PORT for the HTTP operations endpoint (/metrics, /healthz, /v1/peers); "
              "'none' to disable. Keep it off untrusted networks.");
DEFINE_bool(tun, true,
            "Give the relay host the network's first address (.1) on a TUN interface, so it is a "
            "member too. Without root it warns once and runs as a pure relay; --tun=false to "
            "not try.");
DEFINE_string(tun_name, "mnedc-relay", "Name of the relay's TUN interface (at most 15 characters).");

namespace {
namespace asio = boost::asio;
using mnedc::cli::Fail;

constexpr char kUsage[] =
    "mnedc relay: gives devices under any number of NATs one virtual network.\n"
    "\n"
    "Usage: server [--listen=HOST:PORT] [--network=CIDR] [flags]\n"
    "       server --listen=0.0.0.0:443 --tls_cert=cert.pem --tls_key=key.pem --token_file=token\n"
    "  Devices connect with: client --server=THIS_HOST:PORT\n"
    "Example: bazel run //mnedc/cli:server -- --listen=0.0.0.0:3334 --network=10.0.0.0/24";

mnedc::relay::RelayOptions OptionsFromFlags() {
  mnedc::relay::RelayOptions options;
  std::string error;
  const auto prefix = mnedc::relay::ParsePrefix(FLAGS_network, &error);
  if (!prefix) Fail("--network=" + error);
  options.prefix = *prefix;
  if (FLAGS_mtu < 576 || FLAGS_mtu > 65535) Fail("--mtu must be from 576 to 65535");
  options.mtu = static_cast<uint32_t>(FLAGS_mtu);
  options.super_packets = FLAGS_offload;
  options.splice = FLAGS_splice;
  if (!mnedc::cli::SplitList(FLAGS_relays, &options.relays, &error)) Fail("--relays: " + error);
  for (const std::string& relay : options.relays) {
    if (!mnedc::transport::ParseServerAddress(relay, mnedc::transport::kDefaultRelayPort, &error)) {
      Fail("--relays: '" + relay + "': " + error);
    }
  }
  if (options.relays.size() > 16) Fail("--relays: at most 16 (devices take no more)");
  if (FLAGS_queue_packets < 1 || FLAGS_queue_packets > 65536) {
    Fail("--queue_packets must be from 1 to 65536");
  }
  options.link.data_queue_frames = static_cast<std::size_t>(FLAGS_queue_packets);
  if (FLAGS_max_pushback_ms < 0 || FLAGS_max_pushback_ms > 10000) {
    Fail("--max_pushback_ms must be from 0 to 10000");
  }
  options.max_pushback = std::chrono::milliseconds(FLAGS_max_pushback_ms);
  {
    std::string why;
    const auto rate = mnedc::cli::ParseRate(FLAGS_rate_limit, &why);
    if (!rate) Fail("--rate_limit=" + FLAGS_rate_limit + ": " + why);
    options.rate_limit = *rate;
  }
  if (FLAGS_max_connections < 1) Fail("--max_connections must be at least 1");
  options.max_connections = static_cast<std::size_t>(FLAGS_max_connections);
  // Each connection is a descriptor: what the file limit allows is what the
  // relay can hold, and beyond it refuses cleanly instead of failing accepts.
  unsigned long file_limit = 0;
  const std::size_t fits = mnedc::cli::RaiseFileLimit(/*reserved=*/64, &file_limit);
  if (fits > 0 && fits < options.max_connections) {
    LOG(WARNING) << "--max_connections=" << FLAGS_max_connections << " does not fit the open-file "
                 << "limit of " << file_limit << ": serving up to " << fits
                 << " connections (raise the hard limit: LimitNOFILE= in the unit, ulimit -Hn)";
    options.max_connections = fits;
  }
  LOG(INFO) << "serving up to " << options.max_connections << " connections (open-file limit "
            << file_limit << ")";
  const int backlog_cap = mnedc::cli::KernelListenBacklogCap();
  if (backlog_cap > 0 && static_cast<std::size_t>(backlog_cap) < std::min<std::size_t>(options.max_connections, 65535)) {
    LOG(INFO) << "the kernel caps the queue of connections waiting to be accepted at " << backlog_cap
              << " (net.core.somaxconn); for join storms larger than that, raise it: "
              << "sysctl -w net.core.somaxconn=" << std::min<std::size_t>(options.max_connections, 65535);
  }
  if (FLAGS_handshake_timeout_seconds < 1) Fail("--handshake_timeout_seconds must be at least 1");
  options.link.handshake_timeout = std::chrono::seconds(FLAGS_handshake_timeout_seconds);
  mnedc::cli::ApplyKeepaliveFlags(FLAGS_keepalive_seconds, FLAGS_dead_after_seconds, options.link);
  return options;
}

// Reads --token_file and --tokens_file into a policy; false with `error` when
// either cannot be used. Run at start-up and on every reload.
bool LoadJoinPolicy(mnedc::relay::JoinPolicy* policy, std::string* error) {
  *policy = {};
  if (!FLAGS_token_file.empty()) {
    std::string token;
    if (!mnedc::relay::ReadTokenFile(FLAGS_token_file, &token, error)) {
      *error = "--token_file: " + *error;
      return false;
    }
    policy->SetSharedToken(token);
  }
  if (!FLAGS_tokens_file.empty()) {
    std::string text;
    std::unordered_map<std::string, std::string> tokens;
    std::unordered_map<std::string, mnedc::seal::PublicKey> keys;
    if (!mnedc::relay::ReadSecretFile(FLAGS_tokens_file, 16 << 20, &text, error) ||
        !mnedc::relay::ParseDeviceTokens(text, &tokens, error, &keys)) {
      *error = "--tokens_file: " + *error;
      return false;
    }
    policy->SetDeviceTokens(tokens);
    policy->SetDeviceKeys(std::move(keys));
  }
  return true;
}

std::string PolicySummary(const mnedc::relay::JoinPolicy& policy) {
  if (policy.open()) return "anyone may join";
  return std::to_string(policy.device_count()) + " device tokens" +
         (FLAGS_token_file.empty() ? "" : " and the shared token");
}

void SecurityFromFlags(mnedc::relay::RelayOptions& options) {
  const bool tls = !FLAGS_tls_cert.empty() || !FLAGS_tls_key.empty();
  if (!FLAGS_tls_client_ca.empty() && !tls) Fail("--tls_client_ca needs --tls_cert and --tls_key");
  if (FLAGS_require_tls && !tls) Fail("--require_tls needs --tls_cert and --tls_key");
  if (FLAGS_bind_device_to_certificate && FLAGS_tls_client_ca.empty()) {
    Fail("--bind_device_to_certificate needs --tls_client_ca (client certificates to bind to)");
  }
  options.bind_device_to_certificate = FLAGS_bind_device_to_certificate;
  if (tls) {
    std::string error;
    options.accept.tls = mnedc::transport::MakeTlsServerContext(
        {FLAGS_tls_cert, FLAGS_tls_key, FLAGS_tls_client_ca}, &error);
    if (!options.accept.tls) Fail(error);
    const std::string pin = mnedc::transport::CertificateSha256(FLAGS_tls_cert, &error);
    LOG(INFO) << "TLS certificate " << FLAGS_tls_cert << " has SHA-256 " << pin
              << " (clients of a self-signed relay pass it as --pin_sha256)";
  }
  options.accept.allow_plaintext = !FLAGS_require_tls;
}
}  // namespace

int main(int argc, char** argv) {
  mnedc::cli::Init(&argc, &argv, kUsage);
  auto options = OptionsFromFlags();
  SecurityFromFlags(options);
  mnedc::relay::JoinPolicy policy;
  {
    std::string error;
    if (!LoadJoinPolicy(&policy, &error)) Fail(error);
  }
  mnedc::admin::AdminOptions admin_options;
  if (!FLAGS_admin_token_file.empty()) {
    admin_options.admin_token = mnedc::cli::ReadTokenFile("--admin_token_file", FLAGS_admin_token_file);
  }
  std::vector<std::string> listen_values;
  std::string list_error;
  if (!mnedc::cli::SplitList(FLAGS_listen, &listen_values, &list_error)) Fail("--listen: " + list_error);

  asio::io_context io(1);
  // Room in each accept queue for a join storm between two turns of the
  // accept loop; the kernel caps it at net.core.somaxconn (said at start).
  const int backlog = std::clamp(FLAGS_max_connections, 4096, 65535);
  mnedc::cli::RelayListeners listeners;
  {
    std::string error;
    if (!mnedc::cli::OpenRelayListeners(io, listen_values, FLAGS_stun_listen, backlog, &listeners, &error)) {
      Fail(error);
    }
  }
  if (!listeners.stun.empty()) options.stun_port = listeners.stun.front()->local_endpoint().port();
  asio::ip::tcp::acceptor admin_acceptor(io);
  if (FLAGS_admin_listen != "none" && !FLAGS_admin_listen.empty()) {
    std::string error;
    const auto endpoint = mnedc::cli::BindEndpoint("--admin_listen", FLAGS_admin_listen, 9334, &error);
    if (!endpoint ||
        !mnedc::cli::ListenTcp(admin_acceptor, *endpoint, backlog, "--admin_listen", FLAGS_admin_listen, &error)) {
      Fail(error);
    }
  }

  options.lease_file = FLAGS_lease_file;
  options.device_keys_file = FLAGS_device_keys_file;
  // Before the relay, which uses it until it is destroyed.
  const auto cluster = mnedc::cli::ClusterFromFlags(io.get_executor(), options, listen_values[0]);
  if (!cluster) {
    std::string error;
    const std::string machine = mnedc::cli::MachineId();
    options.prefix6 = mnedc::cli::Network6FromFlag(
        FLAGS_network6, machine.empty() ? "" : machine + " " + options.prefix.ToString(), &error);
    if (!error.empty()) Fail("--network6: " + error);
  }
  if (options.prefix6 && options.mtu < 1280) {
    Fail("--mtu=" + std::to_string(options.mtu) + " leaves IPv6 no room (it needs 1280): raise --mtu, or "
         "give --network6=none");
  }
  mnedc::relay::Relay relay(io.get_executor(), options);
  if (cluster) {
    relay.SetClusterStore(cluster.get());
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          co_await cluster->Run();
          if (!cluster->fatal_error().empty()) Fail("--cluster: " + cluster->fatal_error());
        },
        asio::detached);
    LOG(INFO) << "one relay of a cluster: leases and membership in etcd";
  }
  relay.SetJoinPolicy(policy);
  // SIGHUP and POST /v1/reload: re-read the token files; members whose token
  // is gone or changed are disconnected. A file that cannot be read keeps the
  // old policy in force.
  auto reload = [&relay](std::string* message) {
    mnedc::relay::JoinPolicy fresh;
    std::string error;
    if (!LoadJoinPolicy(&fresh, &error)) {
      *message = "reload failed, the previous tokens stay in force: " + error;
      LOG(ERROR) << *message;
      return false;
    }
    const std::string summary = PolicySummary(fresh);
    const std::size_t revoked = relay.SetJoinPolicy(std::move(fresh));
    *message = "reloaded: " + summary + "; disconnected " + std::to_string(revoked) +
               " device(s) no longer allowed";
    LOG(INFO) << *message;
    return true;
  };
  admin_options.reload = reload;
  std::unique_ptr<mnedc::tun::PacketPort> tun;  // Opened below, when --tun.
  admin_options.tun_counters = [&tun]() -> const mnedc::tun::PortCounters* {
    return tun ? &tun->counters() : nullptr;
  };
  {
    std::string error;
    if (!relay.RestoreLeases(&error)) Fail("--lease_file or --device_keys_file: " + error);
  }
  for (auto& acceptor : listeners.tcp) asio::co_spawn(io, relay.AcceptLoop(*acceptor), asio::detached);
  for (auto& socket : listeners.stun) asio::co_spawn(io, relay.ServeStun(*socket), asio::detached);
  if (admin_acceptor.is_open()) {
    asio::co_spawn(io, mnedc::admin::ServeAdmin(admin_acceptor, relay, admin_options), asio::detached);
    LOG(INFO) << "operations endpoint on http://" << mnedc::cli::BoundText(admin_acceptor)
              << " (/metrics, /healthz, /v1/peers; POST /v1/kick, /v1/reload)";
  }
  if (policy.open()) {
    LOG(WARNING) << "*** NO JOIN TOKEN: anyone who can reach " << FLAGS_listen
                 << " can join this network and talk to every device on it. Give the relay and "
                    "the clients --token_file=FILE, or --tokens_file=FILE with a token per device. ***";
  } else {
    LOG(INFO) << "join tokens: " << PolicySummary(policy) << " (SIGHUP re-reads them)";
  }

  if (FLAGS_tun) {
    std::string error;
    // Created again with the relay's address if its interface is deleted.
    tun = mnedc::tun::OpenLastingTun(io.get_executor(), FLAGS_tun_name, &error,
                                     mnedc::tun::TunOptions{FLAGS_offload});
    if (tun && !tun->Configure(options.prefix.relay_address(), options.prefix.length, options.mtu,
                               &error)) {
      tun.reset();
    }
    if (tun && options.prefix6 && !tun->ConfigureIpv6(options.prefix6->AddressOf(1), 64, &error)) {
      LOG(WARNING) << error << ": the relay host has no IPv6 address of its own on the overlay (devices "
                   << "still reach each other over IPv6)";
    }
    if (!tun) {
      LOG(WARNING) << "running as a pure relay, without an address of its own: " << error;
    } else {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            const auto failure = co_await relay.ServeTun(*tun);
            if (!failure) co_return;
            LOG(ERROR) << "TUN " << tun->name() << " is gone (" << failure.message()
                       << "): relaying on without an address of its own";
          },
          asio::detached);
      LOG(INFO) << "relay host is " << mnedc::base::Ipv4ToString(options.prefix.relay_address())
                << (options.prefix6 ? " and " + mnedc::base::Ipv6ToString(options.prefix6->AddressOf(1)) : std::string())
                << " on " << tun->name();
    }
  }

  asio::signal_set hangups(io, SIGHUP);
  std::function<void()> wait_for_hangup = [&] {
    hangups.async_wait([&](const boost::system::error_code& error, int) {
      if (error) return;
      std::string message;
      reload(&message);
      wait_for_hangup();
    });
  };
  wait_for_hangup();
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& error, int signal) {
    if (error) return;
    LOG(INFO) << "signal " << signal << ": telling " << relay.member_count()
              << " members and shutting down";
    relay.Shutdown();
    if (cluster) cluster->Stop();  // Ends its lease in etcd: its members go at once.
    hangups.cancel();
    listeners.Close();
    boost::system::error_code ignored;
    admin_acceptor.close(ignored);
    if (tun) tun->Close();  // Ends ServeTun.
  });
  const char* transports = !options.accept.tls          ? "tcp, ws"
                           : options.accept.allow_plaintext ? "tcp, ws, tls, wss"
                                                            : "tls, wss";
  LOG(INFO) << "mnedc relay listening on " << listeners.TcpText() << " (" << transports
            << "); network " << options.prefix.ToString()
            << (options.prefix6 ? " and " + options.prefix6->ToString() : std::string(" (no IPv6)"))
            << ", relay address "
            << mnedc::base::Ipv4ToString(options.prefix.relay_address()) << ", mtu "
            << options.mtu;
  if (!listeners.stun.empty()) LOG(INFO) << "STUN on UDP " << listeners.StunText();
  io.run();
  const auto& counters = relay.counters();
  std::string drops;
  for (std::size_t i = 0; i < counters.drops.size(); ++i) {
    drops += " " + std::string(mnedc::relay::DropReasonName(static_cast<mnedc::relay::DropReason>(i))) +
             "=" + std::to_string(counters.drops[i]);
  }
  LOG(INFO) << "relay stopped; joins " << counters.joins << ", packets forwarded "
            << counters.packets_forwarded << ", drops:" << drops;
  return 0;
}
