#include "mnedc/relay/lease_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "mnedc/base/atomic_file.h"
#include "mnedc/base/device_id.h"
#include "mnedc/base/ipv4.h"


namespace mnedc::relay {

bool LoadLeaseFile(const std::string& path, LeasePool& pool, int* skipped, std::string* error) {
  *skipped = 0;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return true;
    *error = "cannot read lease file '" + path + "': " + std::strerror(errno);
    return false;
  }
  std::ostringstream content;
  content << in.rdbuf();
  *skipped = ParseLeases(content.str(), pool);
  return true;
}

int ParseLeases(std::string_view content, LeasePool& pool) {
  int skipped = 0;
  while (!content.empty()) {
    const std::size_t end = content.find('\n');
    const std::string_view line = content.substr(0, end);
    content = end == std::string_view::npos ? std::string_view() : content.substr(end + 1);
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields{std::string(line)};
    std::string address_text, device_id, extra;
    fields >> address_text >> device_id >> extra;
    const auto address = ParseIpv4(address_text);
    if (!address || !base::IsValidDeviceId(device_id) || !extra.empty() ||
        !pool.Remember(device_id, *address)) {
      ++skipped;
    }
  }
  return skipped;
}

bool SaveLeaseFile(const std::string& path, const LeasePool& pool, std::string* error) {
  std::ostringstream out;
  out << "# mnedc relay leases for " << pool.prefix().ToString() << ": address device_id\n";
  for (const auto& [device_id, address] : pool.Leases()) {
    out << base::Ipv4ToString(address) << " " << device_id << "\n";
  }
  std::string why;
  if (!base::WriteFileAtomically(path, out.str(), /*durable=*/true, &why)) {
    *error = "lease file: " + why;
    return false;
  }
  return true;
}

}  // namespace mnedc::relay
