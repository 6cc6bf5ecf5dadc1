#pragma once
// The relay's --cluster flags: several relays that form one network through
// etcd (mnedc/cluster). Part of the server binary.
#include <boost/asio/any_io_executor.hpp>
#include <memory>
#include <string>

#include "mnedc/cluster/etcd_cluster.h"
#include "mnedc/relay/relay.h"

namespace mnedc::cli {

// Null without --cluster; otherwise the relay's part in the cluster, from the
// flags and `options` (its network; its cluster name and secret are set
// here), or Fail() with one line on nonsense.
// `listen` is the first --listen value (the default of --cluster_advertise).
std::unique_ptr<cluster::EtcdCluster> ClusterFromFlags(boost::asio::any_io_executor executor,
                                                       relay::RelayOptions& options,
                                                       const std::string& listen);

}  // namespace mnedc::cli
