#include "mnedc/dns/name_service.h"

#include <algorithm>
#include <cstdlib>
#include <memory>

// Last: ldns's headers define `bool` for C, which breaks C++ headers after them.
#include <ldns/ldns.h>

namespace mnedc::dns {
namespace {

// Owners of ldns objects.
struct PacketFree {
  void operator()(ldns_pkt* packet) const { ldns_pkt_free(packet); }
};
using Packet = std::unique_ptr<ldns_pkt, PacketFree>;

// A name's labels, lowercased, from the uncompressed wire form ldns keeps.
std::vector<std::string> Labels(const ldns_rdf* name) {
  std::vector<std::string> labels;
  const uint8_t* data = ldns_rdf_data(name);
  const std::size_t size = ldns_rdf_size(name);
  std::size_t at = 0;
  while (at < size && data[at] != 0) {
    const std::size_t length = data[at];
    if (at + 1 + length > size) break;  // ldns checked this; never trusted twice.
    std::string label(reinterpret_cast<const char*>(data) + at + 1, length);
    for (char& c : label) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    labels.push_back(std::move(label));
    at += 1 + length;
  }
  return labels;
}

std::vector<std::string> SplitDomain(const std::string& domain) {
  std::vector<std::string> labels;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = domain.find('.', start);
    labels.push_back(domain.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return labels;
    start = dot + 1;
  }
}

bool EndsWith(const std::vector<std::string>& labels, const std::vector<std::string>& suffix) {
  return labels.size() >= suffix.size() && std::equal(suffix.begin(), suffix.end(), labels.end() - suffix.size());
}

// "5.0.0.10.in-addr.arpa" -> 10.0.0.5.
std::optional<uint32_t> ReverseIpv4(const std::vector<std::string>& labels) {
  if (labels.size() != 6) return std::nullopt;
  uint32_t address = 0;
  for (int i = 3; i >= 0; --i) {
    const std::string& part = labels[i];
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return std::nullopt;
    unsigned value = 0;
    for (char c : part) {
      if (c < '0' || c > '9') return std::nullopt;
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 255) return std::nullopt;
    address = (address << 8) | value;
  }
  return address;
}

// 32 nibble labels, lowest first, then ip6.arpa.
std::optional<base::Ipv6Address> ReverseIpv6(const std::vector<std::string>& labels) {
  if (labels.size() != 34) return std::nullopt;
  base::Ipv6Address address{};
  for (int i = 0; i < 32; ++i) {
    const std::string& nibble = labels[i];
    if (nibble.size() != 1) return std::nullopt;
    const char c = nibble[0];
    int value;
    if (c >= '0' && c <= '9') {
      value = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      value = c - 'a' + 10;
    } else {
      return std::nullopt;
    }
    const int position = 31 - i;  // Nibble index from the start of the address.
    address[position / 2] |= static_cast<uint8_t>(position % 2 ? value : value << 4);
  }
  return address;
}

ldns_rr* Record(const ldns_rdf* owner, ldns_rr_type type, uint32_t ttl, ldns_rdf* data) {
  ldns_rr* rr = ldns_rr_new();
  ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
  ldns_rr_set_type(rr, type);
  ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr, ttl);
  ldns_rr_push_rdf(rr, data);
  return rr;
}

std::optional<std::vector<uint8_t>> Wire(const ldns_pkt* packet) {
  uint8_t* wire = nullptr;
  std::size_t size = 0;
  if (ldns_pkt2wire(&wire, packet, &size) != LDNS_STATUS_OK) {
    std::free(wire);
    return std::nullopt;
  }
  std::vector<uint8_t> out(wire, wire + size);
  std::free(wire);
  return out;
}

}  // namespace

NameService::NameService(ZoneOptions options) : options_(std::move(options)) {}
NameService::~NameService() = default;

std::optional<std::vector<uint8_t>> NameService::Answer(std::span<const uint8_t> query_bytes, const NameTable& names,
                                                        bool* outside) {
  ++counters_.queries;
  if (outside) *outside = false;
  auto not_ours = [&] {
    if (outside) *outside = true;
  };
  // No header, or an answer rather than a question: never answered.
  if (query_bytes.size() < LDNS_HEADER_SIZE || (query_bytes[2] & 0x80) != 0) {
    ++counters_.dropped;
    return std::nullopt;
  }
  // Another opcode (IQUERY, NOTIFY, UPDATE, or none defined): NOTIMP, with
  // the asker's ID, opcode and RD, built here because ldns takes opcodes as
  // an enum that holds only the defined ones.
  if (const unsigned opcode = (query_bytes[2] >> 3) & 0x0f; opcode != LDNS_PACKET_QUERY) {
    ++counters_.notimp;
    std::vector<uint8_t> header(LDNS_HEADER_SIZE, 0);
    header[0] = query_bytes[0];
    header[1] = query_bytes[1];
    header[2] = static_cast<uint8_t>(0x80 | (query_bytes[2] & 0x79));  // QR, the opcode, RD.
    header[3] = LDNS_RCODE_NOTIMPL;
    return header;
  }
  Packet reply(ldns_pkt_new());
  ldns_pkt_set_id(reply.get(), static_cast<uint16_t>((query_bytes[0] << 8) | query_bytes[1]));
  ldns_pkt_set_qr(reply.get(), true);
  ldns_pkt_set_rd(reply.get(), (query_bytes[2] & 0x01) != 0);
  ldns_pkt_set_opcode(reply.get(), LDNS_PACKET_QUERY);
  auto finish = [&](uint8_t rcode, uint64_t& counter) {
    ldns_pkt_set_rcode(reply.get(), rcode);
    ++counter;
    return Wire(reply.get());
  };

  ldns_pkt* parsed = nullptr;
  if (ldns_wire2pkt(&parsed, query_bytes.data(), query_bytes.size()) != LDNS_STATUS_OK) {
    ldns_pkt_free(parsed);
    return finish(LDNS_RCODE_FORMERR, counters_.formerr);
  }
  const Packet query(parsed);
  if (ldns_pkt_qdcount(query.get()) != 1 || ldns_pkt_ancount(query.get()) != 0) {
    return finish(LDNS_RCODE_FORMERR, counters_.formerr);
  }
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(query.get()), 0);
  ldns_pkt_push_rr(reply.get(), LDNS_SECTION_QUESTION, ldns_rr_clone(question));
  const ldns_rdf* owner = ldns_rr_owner(question);
  const ldns_rr_type type = ldns_rr_get_type(question);
  const ldns_rr_class rr_class = ldns_rr_get_class(question);
  if (rr_class != LDNS_RR_CLASS_IN && rr_class != LDNS_RR_CLASS_ANY) {
    return finish(LDNS_RCODE_REFUSED, counters_.refused);
  }
  const std::vector<std::string> labels = Labels(owner);
  const std::vector<std::string> domain = SplitDomain(options_.domain);
  ldns_pkt_set_aa(reply.get(), true);

  const Member* member = nullptr;
  bool reverse = false;
  if (EndsWith(labels, domain)) {
    if (labels.size() == domain.size()) return finish(LDNS_RCODE_NOERROR, counters_.answered);  // The apex.
    if (labels.size() == domain.size() + 1) member = names.FindLabel(labels[0]);
    if (!member) return finish(LDNS_RCODE_NXDOMAIN, counters_.nxdomain);
  } else if (EndsWith(labels, {"in-addr", "arpa"})) {
    const auto address = ReverseIpv4(labels);
    if (!address || !options_.prefix.Contains(*address)) {
      not_ours();
      return finish(LDNS_RCODE_REFUSED, counters_.refused);
    }
    member = names.FindAddress(*address);
    if (!member) return finish(LDNS_RCODE_NXDOMAIN, counters_.nxdomain);
    reverse = true;
  } else if (EndsWith(labels, {"ip6", "arpa"})) {
    const auto address = ReverseIpv6(labels);
    if (!address || !options_.prefix6 || !options_.prefix6->Contains(*address)) {
      not_ours();
      return finish(LDNS_RCODE_REFUSED, counters_.refused);
    }
    member = names.FindAddress6(*address);
    if (!member) return finish(LDNS_RCODE_NXDOMAIN, counters_.nxdomain);
    reverse = true;
  } else {
    not_ours();
    return finish(LDNS_RCODE_REFUSED, counters_.refused);
  }

  const bool any = type == LDNS_RR_TYPE_ANY;
  if (reverse) {
    if (type == LDNS_RR_TYPE_PTR || any) {
      const std::string target = DeviceLabel(member->device_id) + "." + options_.domain + ".";
      ldns_rdf* name = ldns_dname_new_frm_str(target.c_str());
      if (name) ldns_pkt_push_rr(reply.get(), LDNS_SECTION_ANSWER, Record(owner, LDNS_RR_TYPE_PTR, options_.ttl, name));
    }
  } else {
    if (type == LDNS_RR_TYPE_A || any) {
      const uint8_t bytes[4] = {static_cast<uint8_t>(member->address >> 24), static_cast<uint8_t>(member->address >> 16),
                                static_cast<uint8_t>(member->address >> 8), static_cast<uint8_t>(member->address)};
      ldns_pkt_push_rr(reply.get(), LDNS_SECTION_ANSWER,
                       Record(owner, LDNS_RR_TYPE_A, options_.ttl, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, bytes)));
    }
    if ((type == LDNS_RR_TYPE_AAAA || any) && member->address6) {
      ldns_pkt_push_rr(reply.get(), LDNS_SECTION_ANSWER,
                       Record(owner, LDNS_RR_TYPE_AAAA, options_.ttl,
                              ldns_rdf_new_frm_data(LDNS_RDF_TYPE_AAAA, 16, member->address6->data())));
    }
  }
  // Never more than 512 bytes (UDP without EDNS), so never truncated: one
  // name of at most 165 bytes (a 63-byte label under a domain of at most
  // 100), and at most two records that point back at it.
  return finish(LDNS_RCODE_NOERROR, counters_.answered);
}

}  // namespace mnedc::dns
