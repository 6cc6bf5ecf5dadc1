#pragma once
// A client of etcd's v3 API (Debian's etcd-server 3.4 and later) through the
// JSON gateway every etcd serves beside gRPC (POST /v3/kv/range, /v3/kv/txn,
// /v3/lease/grant, ...; keys and values base64 in JSON), over Beast on the
// caller's io_context.
//
// Why the gateway and not gRPC's C++ library: the relay is one thread on one
// io_context, and gRPC C++ brings its own completion-queue threads that every
// call would have to cross; the gateway is a few HTTP POSTs a join, which
// Beast (already used for WebSocket) and Boost.JSON (already used by ctl) do
// on the relay's own thread, with the same deadlines as everything else, and
// no generated code or new packages beyond etcd itself.
//
// Each call goes to the first endpoint that answers (the one that answered
// last is tried first), on a connection an earlier call left open if there
// is one (at most kMaxIdleConnections are kept), is bounded by `timeout` as
// a whole, and reports failure as a value: nullopt (or false) and a one-line
// `error`.
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mnedc/transport/endpoint.h"

namespace mnedc::cluster {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class EtcdClient {
 public:
  EtcdClient(boost::asio::any_io_executor executor, std::vector<transport::HostPort> endpoints,
             std::chrono::steady_clock::duration timeout = std::chrono::seconds(3));
  ~EtcdClient();
  // Calls in flight beyond this open connections of their own, closed after.
  static constexpr std::size_t kMaxIdleConnections = 4;
  // Connections opened so far (a busy client reuses them).
  uint64_t connections_opened() const { return connections_opened_; }

  // The keys in [key, range_end); with range_end empty, `key` alone. Only
  // those written at `min_mod_revision` or later, if it is not 0.
  boost::asio::awaitable<std::optional<std::vector<KeyValue>>> Range(std::string key, std::string range_end,
                                                                     std::string* error, int64_t min_mod_revision = 0);
  // One transaction: if none of `absent` exists, puts every pair of `puts`
  // (attached to `lease` unless 0). true: put; false: one of `absent`
  // existed and nothing was written.
  boost::asio::awaitable<std::optional<bool>> PutIfAbsent(std::vector<std::string> absent,
                                                          std::vector<std::pair<std::string, std::string>> puts,
                                                          int64_t lease, std::string* error);
  // The revision of the put.
  boost::asio::awaitable<std::optional<int64_t>> Put(std::string key, std::string value, int64_t lease,
                                                     std::string* error);
  // Puts `key` only if nobody has written it since `revision` (it is absent,
  // or was last written at or before it): the revision of the put, or 0 if
  // the key was written since and nothing was put.
  boost::asio::awaitable<std::optional<int64_t>> PutUnlessWrittenSince(std::string key, std::string value,
                                                                       int64_t lease, int64_t revision,
                                                                       std::string* error);
  boost::asio::awaitable<bool> Delete(std::string key, std::string* error);
  // Deletes `key` only if it holds `value` (true: deleted; false: it held
  // something else, or nothing).
  boost::asio::awaitable<std::optional<bool>> DeleteIfValue(std::string key, std::string value, std::string* error);
  // Ends a lease now: every key attached to it goes at once.
  boost::asio::awaitable<bool> RevokeLease(int64_t lease, std::string* error);
  // A lease of `ttl_seconds`: its ID.
  boost::asio::awaitable<std::optional<int64_t>> GrantLease(int64_t ttl_seconds, std::string* error);
  // Refreshes a lease: the seconds it has left now, 0 if it had expired.
  boost::asio::awaitable<std::optional<int64_t>> KeepAlive(int64_t lease, std::string* error);

  // The range_end that makes Range() return every key starting with `prefix`.
  static std::string PrefixEnd(std::string prefix);

 private:
  // POSTs `body` to `path`; the response's JSON object.
  boost::asio::awaitable<std::optional<boost::json::object>> Call(std::string path, std::string body,
                                                                  std::string* error);

  boost::asio::any_io_executor executor_;
  std::vector<transport::HostPort> endpoints_;
  std::chrono::steady_clock::duration timeout_;
  std::size_t preferred_ = 0;
  struct Connection;
  std::vector<std::unique_ptr<Connection>> idle_;
  uint64_t connections_opened_ = 0;
};

// The key-values of a range response's JSON body (`kvs`, keys and values
// base64); nullopt and `error` for a body that is not one. What Range() does
// with what etcd answered, apart for the fuzz target.
std::optional<std::vector<KeyValue>> ParseRangeResponse(std::string_view body, std::string* error);

// Base64 (RFC 4648, padded), as the gateway carries bytes.
std::string Base64Encode(const std::string& bytes);
std::optional<std::string> Base64Decode(const std::string& text);

}  // namespace mnedc::cluster
