// The client's DNS answering: a query from any application on the device,
// hostile or not, and the UDP/IP around it.
#include <cstdlib>
#include <cstring>

#include "mnedc/dns/name_service.h"
#include "mnedc/dns/udp_exchange.h"
// Last: ldns's headers define `bool` for C, which breaks C++ headers after them.
#include <ldns/ldns.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  using namespace mnedc;
  static dns::NameTable* names = [] {
    auto* table = new dns::NameTable;
    table->Put({"devb", 0x0a000003, base::ParseIpv6("fd00:1:2::3")});
    table->Put({"Dev_C", 0x0a000004, std::nullopt});
    return table;
  }();
  dns::ZoneOptions options;
  options.prefix = {0x0a000000, 24};
  options.prefix6 = base::ParsePrefix6("fd00:1:2::/64", nullptr);
  dns::NameService service(options);
  const auto answer = service.Answer({data, size}, *names);
  if (answer) {
    // Whatever it answers is a well-formed DNS response to that query.
    ldns_pkt* parsed = nullptr;
    if (ldns_wire2pkt(&parsed, answer->data(), answer->size()) != LDNS_STATUS_OK) std::abort();
    if (!ldns_pkt_qr(parsed) || ldns_pkt_id(parsed) != ((data[0] << 8) | data[1])) std::abort();
    if (answer->size() > 65535) std::abort();
    ldns_pkt_free(parsed);
  } else if (size >= 12 && (data[2] & 0x80) == 0) {
    std::abort();  // Only responses and header-less datagrams go unanswered.
  }
  // The same bytes as a packet out of the TUN.
  dns::UdpFlow flow;
  const auto query = dns::DnsQueryIn({data, size}, 0x0a000001, base::ParseIpv6("fd00:1:2::1"), &flow);
  if (query) {
    if (query->data() < data || query->data() + query->size() > data + size) std::abort();
    std::vector<uint8_t> packet;
    dns::BuildUdpAnswer(flow, *query, &packet);
    if (packet.size() != (flow.version == 4 ? 28u : 48u) + query->size()) std::abort();
  }
  return 0;
}
