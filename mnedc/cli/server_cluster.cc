#include "mnedc/cli/server_cluster.h"

#include <gflags/gflags.h>
#include <unistd.h>

#include <cctype>

#include "mnedc/base/ipv4.h"
#include "mnedc/cli/cli_support.h"
#include "mnedc/cli/network6.h"
#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"

DEFINE_string(cluster, "",
              "etcd://HOST:PORT[,HOST:PORT...]: this relay is one of several that form one network, "
              "with leases and membership kept in that etcd (Debian's etcd-server; port 2379 if "
              "none). Devices keep their address on whichever relay they join, learn every relay "
              "from their Lease, and fail over between them. Replaces --lease_file. Empty: a "
              "relay on its own.");
DEFINE_string(cluster_name, "",
              "This relay's name in the cluster, unique among its relays (default: the host name).");
DEFINE_string(cluster_advertise, "",
              "How devices reach this relay, as they would pass it to --server (e.g. "
              "tcp://203.0.113.7:3334 or wss://relay1.example.org/mnedc); sent to every device in "
              "its Lease. Default: the first --listen address, if it is not 0.0.0.0 or [::].");
DEFINE_string(cluster_secret_file, "",
              "File holding the secret every relay of the cluster shares (required with --cluster; "
              "not readable by others): it keys the TLS of the links between relays, so a "
              "stranger can neither join the mesh nor read it. E.g. openssl rand -hex 32 > cluster.secret");
DEFINE_string(cluster_mesh, "",
              "HOST:PORT other relays reach this one at for the mesh (native TCP, one of --listen). "
              "Default: the host and port of --cluster_advertise when that is native TCP.");
DEFINE_string(cluster_prefix, "/mnedc/",
              "Where this network's keys live in etcd (starts and ends with '/'): relays with the "
              "same prefix form one network; another prefix is another network in the same etcd.");

DECLARE_string(network6);  // server_main.cc

namespace mnedc::cli {

std::unique_ptr<cluster::EtcdCluster> ClusterFromFlags(boost::asio::any_io_executor executor,
                                                       relay::RelayOptions& options,
                                                       const std::string& listen) {
  if (FLAGS_cluster.empty()) {
    for (const char* flag : {"cluster_name", "cluster_advertise", "cluster_secret_file", "cluster_mesh"}) {
      gflags::CommandLineFlagInfo info;
      if (gflags::GetCommandLineFlagInfo(flag, &info) && !info.is_default) {
        Fail(std::string("--") + flag + " needs --cluster=etcd://HOST:PORT");
      }
    }
    return nullptr;
  }
  if (!options.lease_file.empty()) {
    Fail("--lease_file and --cluster do not go together: with a cluster, leases live in etcd");
  }
  cluster::ClusterOptions cluster;
  std::string text = FLAGS_cluster;
  constexpr std::string_view kScheme = "etcd://";
  if (text.rfind(kScheme, 0) != 0) Fail("--cluster: expected etcd://HOST:PORT[,HOST:PORT...], got '" + text + "'");
  std::vector<std::string> items;
  std::string error;
  if (!SplitList(text.substr(kScheme.size()), &items, &error)) Fail("--cluster: " + error);
  if (items.empty()) Fail("--cluster: no etcd endpoint in '" + text + "'");
  for (std::string item : items) {
    if (item.rfind(kScheme, 0) == 0) item.erase(0, kScheme.size());
    auto endpoint = transport::ParseHostPort(item, 2379, &error);
    if (!endpoint) Fail("--cluster: '" + item + "': " + error);
    cluster.etcd.push_back(*endpoint);
  }
  cluster.prefix = FLAGS_cluster_prefix;
  if (cluster.prefix.size() < 2 || cluster.prefix.front() != '/' || cluster.prefix.back() != '/') {
    Fail("--cluster_prefix must start and end with '/' (e.g. /mnedc/), got '" + cluster.prefix + "'");
  }
  cluster.name = FLAGS_cluster_name;
  if (cluster.name.empty()) {
    char host[256] = {};
    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') Fail("--cluster_name: cannot read the host name");
    cluster.name = host;
  }
  for (char c : cluster.name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
      Fail("--cluster_name: letters, digits, '-', '_' and '.' only, got '" + cluster.name + "'");
    }
  }
  cluster.advertise = FLAGS_cluster_advertise;
  if (cluster.advertise.empty()) {
    auto endpoint = transport::ParseHostPort(listen, 3334, &error);
    if (!endpoint || endpoint->host == "0.0.0.0" || endpoint->host == "::" || endpoint->host.empty()) {
      Fail("--cluster needs --cluster_advertise=ADDRESS (how devices reach this relay): --listen=" + listen +
           " does not say");
    }
    cluster.advertise = "tcp://" + endpoint->ToString();
  }
  if (!transport::ParseServerAddress(cluster.advertise, transport::kDefaultRelayPort, &error)) {
    Fail("--cluster_advertise: '" + cluster.advertise + "': " + error);
  }
  cluster.mesh = FLAGS_cluster_mesh;
  if (cluster.mesh.empty()) {
    const auto advertised = transport::ParseServerAddress(cluster.advertise, transport::kDefaultRelayPort, &error);
    if (advertised->scheme != transport::Scheme::kTcp) {
      Fail("--cluster needs --cluster_mesh=HOST:PORT (where other relays reach this one over native "
           "TCP): --cluster_advertise=" + cluster.advertise + " is not native TCP");
    }
    cluster.mesh = advertised->endpoint.ToString();
  }
  if (!transport::ParseHostPort(cluster.mesh, 3334, &error)) Fail("--cluster_mesh: '" + cluster.mesh + "': " + error);
  if (FLAGS_cluster_secret_file.empty()) {
    Fail("--cluster needs --cluster_secret_file=FILE, the secret every relay of the cluster shares "
         "(e.g. openssl rand -hex 32 > cluster.secret, copied to each relay)");
  }
  options.cluster_secret = ReadTokenFile("--cluster_secret_file", FLAGS_cluster_secret_file);
  options.cluster_name = cluster.name;
  cluster.network = options.prefix.ToString();
  // Made from the secret by default: the same on every relay, with no more to agree on.
  options.prefix6 = Network6FromFlag(FLAGS_network6,
                                     "cluster " + options.cluster_secret + " " + cluster.network, &error);
  if (!error.empty()) Fail("--network6: " + error);
  if (options.prefix6) cluster.network6 = options.prefix6->ToString();
  // Every host address but the relays' own (.1): network and broadcast never.
  cluster.pool = cluster::AddressPool{options.prefix.network + 1, options.prefix.broadcast() - 1,
                                      options.prefix.relay_address()};
  return std::make_unique<cluster::EtcdCluster>(std::move(executor), std::move(cluster));
}

}  // namespace mnedc::cli
