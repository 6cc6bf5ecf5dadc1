#include "mnedc/client/resolved_link.h"

#include <sys/socket.h>
#include <systemd/sd-bus.h>

#include <cstring>

namespace mnedc::client {
namespace {

constexpr const char* kService = "org.freedesktop.resolve1";
constexpr const char* kPath = "/org/freedesktop/resolve1";
constexpr const char* kManager = "org.freedesktop.resolve1.Manager";
constexpr uint64_t kCallTimeoutUsec = 1'000'000;

std::string Why(const char* what, int result, const sd_bus_error* error) {
  std::string text = std::string(what) + ": ";
  if (error && sd_bus_error_is_set(error)) {
    text += std::string(error->name) + (error->message ? std::string(": ") + error->message : "");
  } else {
    text += std::strerror(-result);
  }
  return text;
}

// Sends `message`, waits for the answer; 0 or a negative errno, with `why`.
int Call(sd_bus* bus, sd_bus_message* message, const char* what, std::string* why) {
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  const int result = sd_bus_call(bus, message, kCallTimeoutUsec, &error, &reply);
  if (result < 0 && why) *why = Why(what, result, &error);
  sd_bus_error_free(&error);
  sd_bus_message_unref(reply);
  return result < 0 ? result : 0;
}

}  // namespace

std::unique_ptr<ResolvedLink> ResolvedLink::Connect(std::string* why) {
  sd_bus* bus = nullptr;
  const int result = sd_bus_open_system(&bus);
  if (result < 0) {
    *why = std::string("no system bus: ") + std::strerror(-result);
    return nullptr;
  }
  sd_bus_set_method_call_timeout(bus, kCallTimeoutUsec);
  // Is resolved there? (Its name has an owner.)
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  const int owner = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetNameOwner", &error, &reply, "s", kService);
  sd_bus_message_unref(reply);
  if (owner < 0) {
    *why = "systemd-resolved is not running (" + Why("GetNameOwner", owner, &error) + ")";
    sd_bus_error_free(&error);
    sd_bus_flush_close_unref(bus);
    return nullptr;
  }
  sd_bus_error_free(&error);
  return std::unique_ptr<ResolvedLink>(new ResolvedLink(bus));
}

ResolvedLink::~ResolvedLink() {
  Revert();
  sd_bus_flush_close_unref(bus_);
}

bool ResolvedLink::Register(int ifindex, uint32_t server, const std::optional<base::Ipv6Address>& server6,
                            const std::string& domain, std::string* why) {
  if (ifindex_ != 0 && ifindex_ != ifindex) Revert();
  sd_bus_message* dns = nullptr;
  int result = sd_bus_message_new_method_call(bus_, &dns, kService, kPath, kManager, "SetLinkDNS");
  if (result >= 0) result = sd_bus_message_append(dns, "i", ifindex);
  if (result >= 0) result = sd_bus_message_open_container(dns, 'a', "(iay)");
  const uint8_t v4[4] = {static_cast<uint8_t>(server >> 24), static_cast<uint8_t>(server >> 16),
                         static_cast<uint8_t>(server >> 8), static_cast<uint8_t>(server)};
  if (result >= 0) result = sd_bus_message_open_container(dns, 'r', "iay");
  if (result >= 0) result = sd_bus_message_append(dns, "i", AF_INET);
  if (result >= 0) result = sd_bus_message_append_array(dns, 'y', v4, sizeof(v4));
  if (result >= 0) result = sd_bus_message_close_container(dns);
  if (server6 && result >= 0) {
    result = sd_bus_message_open_container(dns, 'r', "iay");
    if (result >= 0) result = sd_bus_message_append(dns, "i", AF_INET6);
    if (result >= 0) result = sd_bus_message_append_array(dns, 'y', server6->data(), server6->size());
    if (result >= 0) result = sd_bus_message_close_container(dns);
  }
  if (result >= 0) result = sd_bus_message_close_container(dns);
  if (result < 0) {
    sd_bus_message_unref(dns);
    *why = Why("SetLinkDNS message", result, nullptr);
    return false;
  }
  result = Call(bus_, dns, "SetLinkDNS", why);
  sd_bus_message_unref(dns);
  if (result < 0) return false;
  ifindex_ = ifindex;
  // Routing-only: only names under the domain go to this link's servers.
  sd_bus_message* domains = nullptr;
  result = sd_bus_message_new_method_call(bus_, &domains, kService, kPath, kManager, "SetLinkDomains");
  if (result >= 0) result = sd_bus_message_append(domains, "ia(sb)", ifindex, 1, domain.c_str(), 1);
  if (result < 0) {
    sd_bus_message_unref(domains);
    *why = Why("SetLinkDomains message", result, nullptr);
    return false;
  }
  result = Call(bus_, domains, "SetLinkDomains", why);
  sd_bus_message_unref(domains);
  return result >= 0;
}

void ResolvedLink::Revert() {
  if (ifindex_ == 0) return;
  sd_bus_error error = SD_BUS_ERROR_NULL;
  sd_bus_message* reply = nullptr;
  sd_bus_call_method(bus_, kService, kPath, kManager, "RevertLink", &error, &reply, "i", ifindex_);
  sd_bus_message_unref(reply);
  sd_bus_error_free(&error);
  ifindex_ = 0;
}

}  // namespace mnedc::client
