#include <gtest/gtest.h>

#include <cstdlib>

#include "mnedc/dns/name_service.h"
#include "mnedc/dns/names.h"
#include "mnedc/dns/udp_exchange.h"
#include "mnedc/packet/checksum.h"
// Last: ldns's headers define `bool` for C, which breaks C++ headers after them.
#include <ldns/ldns.h>

namespace mnedc::dns {
namespace {

TEST(DeviceLabel, ValidLabelsStayAndOthersGetAStableMapping) {
  EXPECT_EQ(DeviceLabel("devb"), "devb");
  EXPECT_EQ(DeviceLabel("edge-7"), "edge-7");
  const std::string mapped = DeviceLabel("Dev_B");
  EXPECT_EQ(mapped.substr(0, 6), "dev-b-");
  EXPECT_EQ(mapped.size(), 14u);
  EXPECT_EQ(DeviceLabel("Dev_B"), mapped);   // The same every time, on every device.
  EXPECT_NE(DeviceLabel("dev_b"), mapped);   // Case alone keeps them apart.
  EXPECT_NE(DeviceLabel("dev-b"), mapped);
  EXPECT_EQ(DeviceLabel("!!!").substr(0, 7), "device-");
  EXPECT_EQ(DeviceLabel("-lead").substr(0, 5), "lead-");
  const std::string long_id(128, 'x');
  EXPECT_EQ(DeviceLabel(long_id).size(), 54u + 9u);
  EXPECT_EQ(DeviceLabel("a.b c").substr(0, 6), "a-b-c-");
}

TEST(DeviceLabel, DomainsAreChecked) {
  std::string error;
  EXPECT_TRUE(IsValidDomain("mnedc.internal", &error));
  EXPECT_TRUE(IsValidDomain("home", &error));
  EXPECT_FALSE(IsValidDomain("", &error));
  EXPECT_FALSE(IsValidDomain("mnedc.internal.", &error));
  EXPECT_FALSE(IsValidDomain("Mnedc.internal", &error));
  EXPECT_FALSE(IsValidDomain("a..b", &error));
  EXPECT_FALSE(IsValidDomain(std::string(101, 'a'), &error));
}

TEST(NameTable, CollidingLabelsGoToTheExactIdThenTheSmallest) {
  NameTable names;
  const std::string mapped = DeviceLabel("Dev_B");
  names.Put({"Dev_B", 0x0a000002, std::nullopt});
  EXPECT_EQ(names.FindLabel(mapped)->device_id, "Dev_B");
  names.Put({mapped, 0x0a000003, std::nullopt});  // An ID that is that label itself.
  EXPECT_EQ(names.FindLabel(mapped)->device_id, mapped);
  names.Remove(mapped);
  EXPECT_EQ(names.FindLabel(mapped)->device_id, "Dev_B");
  EXPECT_EQ(names.FindAddress(0x0a000003), nullptr);
  names.Put({"Dev_B", 0x0a000004, std::nullopt});  // Moved: the old address is free.
  EXPECT_EQ(names.FindAddress(0x0a000002), nullptr);
  EXPECT_EQ(names.FindAddress(0x0a000004)->device_id, "Dev_B");
  names.Remove("Dev_B");
  EXPECT_EQ(names.FindLabel(mapped), nullptr);
  EXPECT_EQ(names.size(), 0u);
}

// A query as a stub resolver sends it.
std::vector<uint8_t> Query(const char* name, ldns_rr_type type, uint16_t id = 0x1234, bool edns = false) {
  ldns_pkt* query = nullptr;
  EXPECT_EQ(ldns_pkt_query_new_frm_str(&query, name, type, LDNS_RR_CLASS_IN, LDNS_RD), LDNS_STATUS_OK);
  ldns_pkt_set_id(query, id);
  if (edns) ldns_pkt_set_edns_udp_size(query, 4096);
  uint8_t* wire = nullptr;
  std::size_t size = 0;
  EXPECT_EQ(ldns_pkt2wire(&wire, query, &size), LDNS_STATUS_OK);
  std::vector<uint8_t> out(wire, wire + size);
  std::free(wire);
  ldns_pkt_free(query);
  return out;
}

struct Parsed {
  int rcode = -1;
  uint16_t id = 0;
  bool tc = false, aa = false;
  std::vector<std::string> answers;  // "TYPE data"
};

Parsed Parse(const std::optional<std::vector<uint8_t>>& wire) {
  Parsed out;
  if (!wire) return out;
  ldns_pkt* packet = nullptr;
  EXPECT_EQ(ldns_wire2pkt(&packet, wire->data(), wire->size()), LDNS_STATUS_OK);
  if (!packet) return out;
  out.rcode = ldns_pkt_get_rcode(packet);
  out.id = ldns_pkt_id(packet);
  out.tc = ldns_pkt_tc(packet);
  out.aa = ldns_pkt_aa(packet);
  const ldns_rr_list* answers = ldns_pkt_answer(packet);
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
    const ldns_rr* rr = ldns_rr_list_rr(answers, i);
    char* data = ldns_rdf2str(ldns_rr_rdf(rr, 0));
    char* type = ldns_rr_type2str(ldns_rr_get_type(rr));
    out.answers.push_back(std::string(type) + " " + data);
    std::free(data);
    std::free(type);
  }
  ldns_pkt_free(packet);
  return out;
}

class NameServiceTest : public ::testing::Test {
 protected:
  NameServiceTest() : service_(Options()) {
    names_.Put({"devb", 0x0a000003, base::ParseIpv6("fd00:1:2::3")});
    names_.Put({"v4only", 0x0a000004, std::nullopt});
  }
  static ZoneOptions Options() {
    ZoneOptions options;
    options.prefix = {0x0a000000, 24};
    options.prefix6 = base::ParsePrefix6("fd00:1:2::/64", nullptr);
    return options;
  }
  Parsed Ask(const std::vector<uint8_t>& query) { return Parse(service_.Answer(query, names_)); }
  NameService service_;
  NameTable names_;
};

TEST_F(NameServiceTest, AnswersAAaaaAndPtrForTheOverlay) {
  Parsed a = Ask(Query("devb.mnedc.internal.", LDNS_RR_TYPE_A, 0x4242));
  EXPECT_EQ(a.rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(a.id, 0x4242);
  EXPECT_TRUE(a.aa);
  EXPECT_EQ(a.answers, std::vector<std::string>{"A 10.0.0.3"});
  EXPECT_EQ(Ask(Query("DevB.MNEDC.Internal.", LDNS_RR_TYPE_AAAA)).answers,
            std::vector<std::string>{"AAAA fd00:1:2::3"});
  EXPECT_EQ(Ask(Query("devb.mnedc.internal.", LDNS_RR_TYPE_ANY)).answers,
            (std::vector<std::string>{"A 10.0.0.3", "AAAA fd00:1:2::3"}));
  EXPECT_EQ(Ask(Query("3.0.0.10.in-addr.arpa.", LDNS_RR_TYPE_PTR)).answers,
            std::vector<std::string>{"PTR devb.mnedc.internal."});
  EXPECT_EQ(Ask(Query("3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.0.0.0.1.0.0.0.0.0.d.f.ip6.arpa.", LDNS_RR_TYPE_PTR))
                .answers,
            std::vector<std::string>{"PTR devb.mnedc.internal."});
  // A device without IPv6, or a type it has none of: no records, no error.
  const Parsed none = Ask(Query("v4only.mnedc.internal.", LDNS_RR_TYPE_AAAA));
  EXPECT_EQ(none.rcode, LDNS_RCODE_NOERROR);
  EXPECT_TRUE(none.answers.empty());
  EXPECT_TRUE(Ask(Query("devb.mnedc.internal.", LDNS_RR_TYPE_MX)).answers.empty());
  EXPECT_EQ(Ask(Query("mnedc.internal.", LDNS_RR_TYPE_A)).rcode, LDNS_RCODE_NOERROR);
  EXPECT_EQ(service_.counters().answered, 8u);
}

TEST_F(NameServiceTest, UnknownNamesAreNxdomainAndOthersAreRefused) {
  EXPECT_EQ(Ask(Query("deva.mnedc.internal.", LDNS_RR_TYPE_A)).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(Ask(Query("x.devb.mnedc.internal.", LDNS_RR_TYPE_A)).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(Ask(Query("9.0.0.10.in-addr.arpa.", LDNS_RR_TYPE_PTR)).rcode, LDNS_RCODE_NXDOMAIN);
  EXPECT_EQ(service_.counters().nxdomain, 3u);
  // Not the overlay's: never answered from it.
  EXPECT_EQ(Ask(Query("example.com.", LDNS_RR_TYPE_A)).rcode, LDNS_RCODE_REFUSED);
  EXPECT_EQ(Ask(Query("devb.internal.", LDNS_RR_TYPE_A)).rcode, LDNS_RCODE_REFUSED);
  EXPECT_EQ(Ask(Query("3.0.0.192.in-addr.arpa.", LDNS_RR_TYPE_PTR)).rcode, LDNS_RCODE_REFUSED);
  EXPECT_EQ(Ask(Query("0.10.in-addr.arpa.", LDNS_RR_TYPE_PTR)).rcode, LDNS_RCODE_REFUSED);
  EXPECT_EQ(service_.counters().refused, 4u);
  // Each of those is outside the overlay: a forwarder may pass it on.
  bool outside = false;
  service_.Answer(Query("example.com.", LDNS_RR_TYPE_A), names_, &outside);
  EXPECT_TRUE(outside);
  service_.Answer(Query("nobody.mnedc.internal.", LDNS_RR_TYPE_A), names_, &outside);
  EXPECT_FALSE(outside);
}

TEST_F(NameServiceTest, HostileQueriesAreAnsweredFormerrOrDropped) {
  const std::vector<uint8_t> good = Query("devb.mnedc.internal.", LDNS_RR_TYPE_A, 0x0101);
  // Truncated inside the question: FORMERR with the asker's ID.
  std::vector<uint8_t> truncated(good.begin(), good.begin() + 16);
  Parsed answer = Ask(truncated);
  EXPECT_EQ(answer.rcode, LDNS_RCODE_FORMERR);
  EXPECT_EQ(answer.id, 0x0101);
  // A name that points at itself (a compression loop).
  std::vector<uint8_t> loop = {0x00, 0x02, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                               0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01};
  EXPECT_EQ(Ask(loop).rcode, LDNS_RCODE_FORMERR);
  // Two questions, and none.
  std::vector<uint8_t> two = good;
  two[5] = 2;
  EXPECT_EQ(Ask(two).rcode, LDNS_RCODE_FORMERR);
  std::vector<uint8_t> zero(good.begin(), good.begin() + 12);
  zero[5] = 0;
  EXPECT_EQ(Ask(zero).rcode, LDNS_RCODE_FORMERR);
  EXPECT_EQ(service_.counters().formerr, 4u);
  // Another opcode (NOTIFY): not implemented.
  std::vector<uint8_t> notify = good;
  notify[2] = static_cast<uint8_t>((notify[2] & 0x87) | (4 << 3));
  EXPECT_EQ(Ask(notify).rcode, LDNS_RCODE_NOTIMPL);
  // An opcode no RFC defines (13): NOTIMP too (found by dns_fuzz: ldns's opcode enum cannot hold it).
  std::vector<uint8_t> undefined = good;
  undefined[2] = static_cast<uint8_t>((undefined[2] & 0x87) | (13 << 3));
  const auto raw = service_.Answer(undefined, names_);
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->size(), 12u);
  EXPECT_EQ((*raw)[2], 0x80 | (13 << 3) | 0x01);  // QR, the opcode, RD.
  EXPECT_EQ((*raw)[3] & 0x0f, LDNS_RCODE_NOTIMPL);
  // A response, and a datagram shorter than a header: no answer at all.
  std::vector<uint8_t> response = good;
  response[2] |= 0x80;
  EXPECT_FALSE(service_.Answer(response, names_));
  EXPECT_FALSE(service_.Answer(std::vector<uint8_t>(11, 0), names_));
  EXPECT_FALSE(service_.Answer({}, names_));
  EXPECT_EQ(service_.counters().dropped, 3u);
  // An oversized query of junk after the question still gets one answer.
  std::vector<uint8_t> oversized = good;
  oversized.resize(65000, 0xff);
  EXPECT_NE(Ask(oversized).rcode, -1);
  EXPECT_EQ(service_.counters().queries, 10u);
}

TEST_F(NameServiceTest, TheLargestAnswerFitsPlainUdp) {
  // The longest name there can be (a 63-character label under a 100-character
  // domain), with both records: within the 512 bytes of UDP without EDNS.
  ZoneOptions options = Options();
  options.domain = std::string(60, 'd') + "." + std::string(39, 'e');
  NameService service(options);
  const std::string id(63, 'l');
  names_.Put({id, 0x0a000005, base::ParseIpv6("fd00:1:2::5")});
  const std::string name = id + "." + options.domain + ".";
  const auto wire = service.Answer(Query(name.c_str(), LDNS_RR_TYPE_ANY), names_);
  ASSERT_TRUE(wire);
  EXPECT_LE(wire->size(), 512u);
  const Parsed answer = Parse(wire);
  EXPECT_FALSE(answer.tc);
  EXPECT_EQ(answer.answers.size(), 2u);
}

TEST(UdpExchange, FindsQueriesToTheServerAndAnswersWithValidChecksums) {
  const std::vector<uint8_t> payload = {1, 2, 3, 4, 5};
  for (int version : {4, 6}) {
    UdpFlow asked;
    asked.version = version;
    const auto client6 = *base::ParseIpv6("fd00:1:2::2");
    const auto server6 = *base::ParseIpv6("fd00:1:2::1");
    if (version == 4) {
      const uint8_t client[4] = {10, 0, 0, 2}, server[4] = {10, 0, 0, 1};
      std::memcpy(asked.source, client, 4);
      std::memcpy(asked.destination, server, 4);
    } else {
      std::memcpy(asked.source, client6.data(), 16);
      std::memcpy(asked.destination, server6.data(), 16);
    }
    asked.source_port = 40000;
    asked.destination_port = 53;
    // A query as the kernel would send it is the mirror of an answer.
    std::vector<uint8_t> query;
    UdpFlow mirror = asked;
    std::swap(mirror.source, mirror.destination);
    std::swap(mirror.source_port, mirror.destination_port);
    BuildUdpAnswer(mirror, payload, &query);
    const std::size_t udp = version == 4 ? 20 : 40;
    EXPECT_TRUE(packet::TransportChecksumValid(query, udp, 17));

    UdpFlow flow;
    const auto found = DnsQueryIn(query, 0x0a000001, server6, &flow);
    ASSERT_TRUE(found) << version;
    EXPECT_EQ(std::vector<uint8_t>(found->begin(), found->end()), payload);
    EXPECT_EQ(flow.source_port, 40000);
    // Not to the server, or not to port 53, or cut short: not ours.
    EXPECT_FALSE(DnsQueryIn(query, 0x0a000009, base::ParseIpv6("fd00:1:2::9"), &flow));
    std::vector<uint8_t> other_port = query;
    other_port[udp + 3] = 54;
    EXPECT_FALSE(DnsQueryIn(other_port, 0x0a000001, server6, &flow));
    EXPECT_FALSE(DnsQueryIn(std::span(query).first(udp + 4), 0x0a000001, server6, &flow));
    std::vector<uint8_t> long_udp = query;
    long_udp[udp + 5] += 1;  // UDP length past the packet.
    EXPECT_FALSE(DnsQueryIn(long_udp, 0x0a000001, server6, &flow));

    std::vector<uint8_t> answer;
    BuildUdpAnswer(flow, payload, &answer);
    EXPECT_TRUE(packet::TransportChecksumValid(answer, udp, 17));
    EXPECT_EQ(answer, query == answer ? query : answer);
    UdpFlow back;
    ASSERT_TRUE(DnsQueryIn(answer, 0, std::nullopt, &back) == std::nullopt);  // From the server: no query.
    EXPECT_EQ(answer.size(), udp + 8 + payload.size());
    EXPECT_EQ(answer[udp] << 8 | answer[udp + 1], 53);
    EXPECT_EQ(answer[udp + 2] << 8 | answer[udp + 3], 40000);
  }
  // An IPv4 fragment is never taken for a query.
  std::vector<uint8_t> fragment;
  UdpFlow flow;
  flow.version = 4;
  const uint8_t client[4] = {10, 0, 0, 2}, server[4] = {10, 0, 0, 1};
  // An "answer" to the server is a packet from the client to it.
  std::memcpy(flow.source, server, 4);
  std::memcpy(flow.destination, client, 4);
  flow.source_port = 53;
  flow.destination_port = 40000;
  BuildUdpAnswer(flow, std::vector<uint8_t>(8, 0), &fragment);  // 10.0.0.2:40000 -> 10.0.0.1:53.
  UdpFlow seen;
  EXPECT_TRUE(DnsQueryIn(fragment, 0x0a000001, std::nullopt, &seen));
  fragment[6] |= 0x20;  // More fragments.
  EXPECT_FALSE(DnsQueryIn(fragment, 0x0a000001, std::nullopt, &seen));
}

}  // namespace
}  // namespace mnedc::dns
