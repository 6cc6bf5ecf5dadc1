#pragma once
// MNEDC's client-config.yaml, read unchanged:
//   server-ip: "192.168.1.10"
//   port: "3334"
// and, for a network of several relays, a list (the port, if given, is each
// one's that does not name its own):
//   server-ip: ["192.168.1.10", "192.168.1.11"]
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"

namespace mnedc::cli {

inline constexpr char kMnedcConfigPath[] = "/var/edge-orchestration/mnedc/client-config.yaml";
inline constexpr uint16_t kDefaultPort = transport::kDefaultRelayPort;

// Returns the relays named by the file (one or more, in its order), or
// nullopt with a one-line `error`.
std::optional<std::vector<transport::HostPort>> LoadClientConfig(const std::string& path, std::string* error);
// The same for the file's content (`error` without the path).
std::optional<std::vector<transport::HostPort>> ParseClientConfig(std::string_view content, std::string* error);

// A stable ID for this machine: hostname plus the start of /etc/machine-id.
std::string DefaultDeviceId();

}  // namespace mnedc::cli
