#include "mnedc/cluster/etcd_client.h"

#include <openssl/evp.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <algorithm>
#include <charconv>

#include "mnedc/base/coro.h"

namespace mnedc::cluster {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using base::kUse;

// etcd answers a range of a whole network's keys in well under this.
constexpr std::size_t kMaxResponseBytes = 8 * 1024 * 1024;

// The gateway writes 64-bit integers as JSON strings.
int64_t Int(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  if (!value) return 0;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) return static_cast<int64_t>(value->as_uint64());
  if (!value->is_string()) return 0;
  const json::string& text = value->as_string();
  int64_t out = 0;
  std::from_chars(text.data(), text.data() + text.size(), out);
  return out;
}

// The store's revision a response was made at (after the write it reports).
int64_t HeaderRevision(const json::object& response) {
  const json::value* header = response.if_contains("header");
  return header && header->is_object() ? Int(header->as_object(), "revision") : 0;
}

std::string Text(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  return value && value->is_string() ? std::string(value->as_string()) : std::string();
}

// The kvs of a range response; false if one is not what etcd sends.
bool ReadKeyValues(const json::object& response, std::vector<KeyValue>* out) {
  const json::value* kvs = response.if_contains("kvs");
  if (!kvs) return true;  // None: the gateway leaves empty lists out.
  if (!kvs->is_array()) return false;
  for (const json::value& item : kvs->as_array()) {
    if (!item.is_object()) return false;
    const json::object& kv = item.as_object();
    auto key = Base64Decode(Text(kv, "key"));
    auto value = Base64Decode(Text(kv, "value"));
    if (!key || !value) return false;
    out->push_back({std::move(*key), std::move(*value), Int(kv, "create_revision"), Int(kv, "mod_revision"),
                    Int(kv, "lease")});
  }
  return true;
}
}  // namespace

std::optional<std::vector<KeyValue>> ParseRangeResponse(std::string_view body, std::string* error) {
  json::error_code parse_error;
  json::value parsed = json::parse(body, parse_error);
  std::vector<KeyValue> out;
  if (parse_error || !parsed.is_object() || !ReadKeyValues(parsed.as_object(), &out)) {
    *error = "etcd answered a range with something that is not key-values";
    return std::nullopt;
  }
  return out;
}

std::string Base64Encode(const std::string& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::optional<std::string> Base64Decode(const std::string& text) {
  if (text.size() % 4 != 0) return std::nullopt;
  // Strictly the alphabet, with at most two '=' and only at the end:
  // EVP_DecodeBlock alone would skip whitespace around the text (fuzzing found it).
  const std::size_t padding = text.size() - std::min(text.size(), text.find_last_not_of('=') + 1);
  if (padding > 2) return std::nullopt;
  for (std::size_t i = 0; i + padding < text.size(); ++i) {
    const char c = text[i];
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!ok) return std::nullopt;
  }
  std::string out(3 * (text.size() / 4), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<std::size_t>(n) - padding);
  return out;
}

std::string EtcdClient::PrefixEnd(std::string prefix) {
  // The next key after every key with this prefix: its last byte that is
  // not 0xff, plus one, and nothing after it.
  while (!prefix.empty()) {
    if (static_cast<unsigned char>(prefix.back()) != 0xff) {
      prefix.back() = static_cast<char>(static_cast<unsigned char>(prefix.back()) + 1);
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\0');  // Every key.
}

EtcdClient::EtcdClient(asio::any_io_executor executor, std::vector<transport::HostPort> endpoints,
                       std::chrono::steady_clock::duration timeout)
    : executor_(std::move(executor)), endpoints_(std::move(endpoints)), timeout_(timeout) {}

// A connection to one endpoint, kept between calls (HTTP/1.1 keep-alive).
struct EtcdClient::Connection {
  std::size_t endpoint = 0;
  beast::tcp_stream stream;
};

EtcdClient::~EtcdClient() = default;

asio::awaitable<std::optional<json::object>> EtcdClient::Call(std::string path, std::string body,
                                                            std::string* error) {
  co_await base::NoThrowOnCancel();
  if (endpoints_.empty()) {
    *error = "no etcd endpoint given";
    co_return std::nullopt;
  }
  std::string why;
  for (std::size_t tried = 0; tried < endpoints_.size(); ++tried) {
    const std::size_t index = (preferred_ + tried) % endpoints_.size();
    const transport::HostPort& endpoint = endpoints_[index];
    const std::string where = "etcd " + endpoint.ToString();
    // A connection a call before this one left open, else a new one. etcd may
    // have closed an idle one meanwhile: a request it never read (the write
    // fails, or the answer is an end with nothing before it) goes again on a
    // new connection, once.
    std::unique_ptr<Connection> connection;
    for (auto it = idle_.begin(); it != idle_.end(); ++it) {
      if ((*it)->endpoint != index) continue;
      connection = std::move(*it);
      idle_.erase(it);
      break;
    }
    const bool reused = connection != nullptr;
    if (!connection) {
      connection = std::make_unique<Connection>(Connection{index, beast::tcp_stream(executor_)});
      connection->stream.expires_after(timeout_);  // For the whole call: resolve aside, connect, write, read.
      asio::ip::tcp::resolver resolver(executor_);
      auto [resolve_error, results] =
          co_await resolver.async_resolve(endpoint.host, std::to_string(endpoint.port), kUse);
      if (resolve_error) {
        why = where + ": " + resolve_error.message();
        continue;
      }
      auto [connect_error, connected] = co_await connection->stream.async_connect(results, kUse);
      if (connect_error) {
        why = where + ": " + connect_error.message();
        continue;
      }
      ++connections_opened_;
    }
    connection->stream.expires_after(timeout_);
    // Reached: from here on a failure is this call's, not the endpoint's.
    preferred_ = index;
    http::request<http::string_body> request(http::verb::post, path, 11);
    request.set(http::field::host, endpoint.ToString());
    request.set(http::field::content_type, "application/json");
    request.body() = body;
    request.prepare_payload();
    auto [write_error, written] = co_await http::async_write(connection->stream, request, kUse);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxResponseBytes);
    beast::error_code read_error;
    if (!write_error) {
      auto [ec, read] = co_await http::async_read(connection->stream, buffer, parser, kUse);
      read_error = ec;
    }
    const bool unread = write_error || (read_error == http::error::end_of_stream && buffer.size() == 0 &&
                                        !parser.got_some());
    if (reused && unread) {
      --tried;  // The same endpoint again, on a new connection.
      continue;
    }
    if (write_error || read_error) {
      const beast::error_code failed = write_error ? write_error : read_error;
      *error = where + ": " + (failed == beast::error::timeout ? std::string("timed out") : failed.message());
      co_return std::nullopt;
    }
    const auto& response = parser.get();
    if (response.keep_alive() && idle_.size() < kMaxIdleConnections) {
      connection->stream.expires_never();
      idle_.push_back(std::move(connection));
    }
    json::error_code parse_error;
    json::value parsed = json::parse(response.body(), parse_error);
    if (parse_error || !parsed.is_object()) {
      *error = where + ": answered " + std::to_string(response.result_int()) + " without a JSON object";
      co_return std::nullopt;
    }
    if (response.result() != http::status::ok) {
      const std::string message = Text(parsed.as_object(), "message");
      *error = where + ": " + (message.empty() ? "HTTP " + std::to_string(response.result_int()) : message);
      co_return std::nullopt;
    }
    co_return std::move(parsed.as_object());
  }
  *error = why;
  co_return std::nullopt;
}

asio::awaitable<std::optional<std::vector<KeyValue>>> EtcdClient::Range(std::string key, std::string range_end,
                                                                        std::string* error, int64_t min_mod_revision) {
  json::object request{{"key", Base64Encode(key)}};
  if (!range_end.empty()) request["range_end"] = Base64Encode(range_end);
  if (min_mod_revision != 0) request["min_mod_revision"] = std::to_string(min_mod_revision);
  auto response = co_await Call("/v3/kv/range", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  std::vector<KeyValue> out;
  if (!ReadKeyValues(*response, &out)) {
    *error = "etcd answered a range with something that is not key-values";
    co_return std::nullopt;
  }
  co_return out;
}

asio::awaitable<std::optional<bool>> EtcdClient::PutIfAbsent(std::vector<std::string> absent,
                                                             std::vector<std::pair<std::string, std::string>> puts,
                                                             int64_t lease, std::string* error) {
  json::array compare, success;
  for (const std::string& key : absent) {
    // A key that does not exist has create revision 0.
    compare.push_back(json::object{{"target", "CREATE"}, {"result", "EQUAL"}, {"key", Base64Encode(key)},
                                   {"create_revision", "0"}});
  }
  for (const auto& [key, value] : puts) {
    json::object put{{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
    if (lease != 0) put["lease"] = std::to_string(lease);
    success.push_back(json::object{{"request_put", std::move(put)}});
  }
  json::object request{{"compare", std::move(compare)}, {"success", std::move(success)}};
  auto response = co_await Call("/v3/kv/txn", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  const json::value* succeeded = response->if_contains("succeeded");
  co_return succeeded && succeeded->is_bool() && succeeded->as_bool();
}

asio::awaitable<std::optional<int64_t>> EtcdClient::Put(std::string key, std::string value, int64_t lease,
                                                        std::string* error) {
  json::object request{{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) request["lease"] = std::to_string(lease);
  auto response = co_await Call("/v3/kv/put", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  co_return HeaderRevision(*response);
}

asio::awaitable<std::optional<int64_t>> EtcdClient::PutUnlessWrittenSince(std::string key, std::string value,
                                                                          int64_t lease, int64_t revision,
                                                                          std::string* error) {
  // An absent key's mod revision is 0: less than anything.
  json::array compare{json::object{{"target", "MOD"}, {"result", "LESS"}, {"key", Base64Encode(key)},
                                   {"mod_revision", std::to_string(revision + 1)}}};
  json::object put{{"key", Base64Encode(key)}, {"value", Base64Encode(value)}};
  if (lease != 0) put["lease"] = std::to_string(lease);
  json::array success{json::object{{"request_put", std::move(put)}}};
  json::object request{{"compare", std::move(compare)}, {"success", std::move(success)}};
  auto response = co_await Call("/v3/kv/txn", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  const json::value* succeeded = response->if_contains("succeeded");
  if (!succeeded || !succeeded->is_bool() || !succeeded->as_bool()) co_return 0;
  co_return HeaderRevision(*response);
}

asio::awaitable<bool> EtcdClient::Delete(std::string key, std::string* error) {
  json::object request{{"key", Base64Encode(key)}};
  co_return (co_await Call("/v3/kv/deleterange", json::serialize(request), error)).has_value();
}

asio::awaitable<std::optional<bool>> EtcdClient::DeleteIfValue(std::string key, std::string value,
                                                               std::string* error) {
  json::array compare{json::object{{"target", "VALUE"}, {"result", "EQUAL"}, {"key", Base64Encode(key)},
                                   {"value", Base64Encode(value)}}};
  json::array success{json::object{{"request_delete_range", json::object{{"key", Base64Encode(key)}}}}};
  json::object request{{"compare", std::move(compare)}, {"success", std::move(success)}};
  auto response = co_await Call("/v3/kv/txn", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  const json::value* succeeded = response->if_contains("succeeded");
  co_return succeeded && succeeded->is_bool() && succeeded->as_bool();
}

asio::awaitable<bool> EtcdClient::RevokeLease(int64_t lease, std::string* error) {
  json::object request{{"ID", std::to_string(lease)}};
  co_return (co_await Call("/v3/lease/revoke", json::serialize(request), error)).has_value();
}

asio::awaitable<std::optional<int64_t>> EtcdClient::GrantLease(int64_t ttl_seconds, std::string* error) {
  json::object request{{"TTL", std::to_string(ttl_seconds)}};
  auto response = co_await Call("/v3/lease/grant", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  const int64_t id = Int(*response, "ID");
  if (id == 0) {
    *error = "etcd granted no lease: " + Text(*response, "error");
    co_return std::nullopt;
  }
  co_return id;
}

asio::awaitable<std::optional<int64_t>> EtcdClient::KeepAlive(int64_t lease, std::string* error) {
  json::object request{{"ID", std::to_string(lease)}};
  auto response = co_await Call("/v3/lease/keepalive", json::serialize(request), error);
  if (!response) co_return std::nullopt;
  // A stream of one: {"result": {..., "TTL": "5"}}; TTL absent once expired.
  const json::value* result = response->if_contains("result");
  if (!result || !result->is_object()) {
    *error = "etcd answered a keepalive without a result";
    co_return std::nullopt;
  }
  co_return Int(result->as_object(), "TTL");
}

}  // namespace mnedc::cluster
