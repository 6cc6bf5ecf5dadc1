#include "mnedc/cli/client_config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace mnedc::cli {
namespace {
constexpr std::size_t kMaxClientConfigBytes = 64 * 1024;
}  // namespace

std::optional<std::vector<transport::HostPort>> LoadClientConfig(const std::string& path, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot read the file";
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  auto result = ParseClientConfig(content.str(), error);
  if (!result) *error = path + ": " + *error;
  return result;
}

std::optional<std::vector<transport::HostPort>> ParseClientConfig(std::string_view content, std::string* error) {
  auto fail = [&](const std::string& why) -> std::optional<std::vector<transport::HostPort>> {
    *error = why;
    return std::nullopt;
  };
  // The file holds two short keys. yaml-cpp parses nesting by recursion, so
  // a file of many brackets would exhaust the stack: such input is refused
  // before it is parsed.
  if (content.size() > kMaxClientConfigBytes) return fail("larger than 64 KiB: not a client config");
  int depth = 0;
  for (const char c : content) {
    if (c == '[' || c == '{') ++depth;
    if (depth > 16) return fail("nested more than 16 levels deep: not a client config");
  }
  YAML::Node root;
  try {
    // yaml-cpp reports problems only by exception; it is caught here, at start-up.
    root = YAML::Load(std::string(content));
  } catch (const YAML::Exception& e) {
    return fail("not valid YAML: " + e.msg);
  }
  if (!root.IsMap()) return fail("expected keys 'server-ip' and 'port'");
  const YAML::Node server = root["server-ip"];
  std::vector<std::string> hosts;
  if (server && server.IsScalar() && !server.Scalar().empty()) {
    hosts.push_back(server.Scalar());
  } else if (server && server.IsSequence() && server.size() > 0) {
    for (const YAML::Node& one : server) {
      if (!one.IsScalar() || one.Scalar().empty()) return fail("'server-ip' must list addresses");
      hosts.push_back(one.Scalar());
    }
  } else {
    return fail("missing 'server-ip' (the relay's address, or a list of them)");
  }
  const YAML::Node port = root["port"];
  if (port && (!port.IsScalar() || port.Scalar().empty())) return fail("'port' must be a number");
  std::vector<transport::HostPort> relays;
  for (const std::string& host : hosts) {
    std::string text = host;
    // The port applies to a bare host or address: no colon, or an IPv6
    // address (two or more, no brackets); HOST:PORT and [V6]:PORT keep theirs.
    const auto colons = std::count(host.begin(), host.end(), ':');
    const bool v6 = colons >= 2 && host[0] != '[';
    if (port && (colons == 0 || v6)) text = (v6 ? "[" + host + "]" : host) + ":" + port.Scalar();
    std::string parse_error;
    auto relay = transport::ParseHostPort(text, kDefaultPort, &parse_error);
    if (!relay) return fail(parse_error);
    relays.push_back(*relay);
  }
  return relays;
}

std::string DefaultDeviceId() {
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  std::string id = host[0] ? host : "device";
  std::ifstream machine_id("/etc/machine-id");
  std::string line;
  if (std::getline(machine_id, line) && line.size() >= 12) id += "-" + line.substr(0, 12);
  return id;
}

}  // namespace mnedc::cli
