#pragma once
// Answers DNS queries for the overlay's names from a NameTable: A and AAAA
// for DEVICE_LABEL.DOMAIN, PTR for the overlay's addresses (in-addr.arpa of
// the IPv4 network, ip6.arpa of the /64). Messages are parsed and built with
// NLnet Labs' ldns. Everything else is refused (REFUSED), never answered
// wrongly; malformed queries get FORMERR, and responses (QR set) or datagrams
// too short for a header get nothing, so the service can never be made to
// answer an answer.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mnedc/base/ipv4.h"
#include "mnedc/base/ipv6.h"
#include "mnedc/dns/names.h"

namespace mnedc::dns {

struct ZoneOptions {
  std::string domain = "mnedc.internal";
  base::Prefix prefix;                  // The overlay's IPv4 network.
  std::optional<base::Prefix6> prefix6;  // Its IPv6 /64, if it has one.
  uint32_t ttl = 5;                      // Seconds: names follow joins and leaves.
};

struct DnsCounters {
  uint64_t queries = 0;    // Datagrams handed to Answer.
  uint64_t answered = 0;   // NOERROR, with records or none of the type asked.
  uint64_t nxdomain = 0;   // No such device (or address) in the overlay.
  uint64_t refused = 0;    // Outside the overlay's names and addresses.
  uint64_t formerr = 0;    // Malformed, truncated, or not exactly one question.
  uint64_t notimp = 0;     // An opcode other than QUERY.
  uint64_t dropped = 0;    // Shorter than a header, or a response: no answer.
};

class NameService {
 public:
  explicit NameService(ZoneOptions options);
  ~NameService();
  NameService(const NameService&) = delete;
  NameService& operator=(const NameService&) = delete;

  // The answer to one query (a DNS message, as a UDP payload), or nullopt
  // when it gets none. `outside` (if given) is set when the answer is
  // REFUSED because the name is not the overlay's: one a forwarder may pass on.
  std::optional<std::vector<uint8_t>> Answer(std::span<const uint8_t> query, const NameTable& names,
                                             bool* outside = nullptr);

  const ZoneOptions& options() const { return options_; }
  const DnsCounters& counters() const { return counters_; }

 private:
  ZoneOptions options_;
  DnsCounters counters_;
};

}  // namespace mnedc::dns
