#pragma once
// MNEDC's client-config.yaml, read unchanged:
//   server-ip: "192.168.1.10"
//   port: "3334"
#include <optional>
#include <string>
#include <string_view>

#include "mnedc/transport/endpoint.h"
#include "mnedc/transport/server_address.h"

namespace mnedc::cli {

inline constexpr char kMnedcConfigPath[] = "/var/edge-orchestration/mnedc/client-config.yaml";
inline constexpr uint16_t kDefaultPort = transport::kDefaultRelayPort;

// Returns the relay named by the file, or nullopt with a one-line `error`.
std::optional<transport::HostPort> LoadClientConfig(const std::string& path, std::string* error);
// The same for the file's content (`error` without the path).
std::optional<transport::HostPort> ParseClientConfig(std::string_view content, std::string* error);

// A stable ID for this machine: hostname plus the start of /etc/machine-id.
std::string DefaultDeviceId();

}  // namespace mnedc::cli
