// HttpServer: a minimal HTTP/1.1 server on the daemon's libuv loop, for the
// operators' read-only endpoints (/metrics, the DC's admin API and
// dashboard). GET and HEAD only; no request bodies; keep-alive and
// pipelining (one request handled at a time per connection: reading pauses
// while a response is being written, so at most one response is buffered).
//
// Hard limits, each answered with the matching status and the connection
// closed: request line + headers size (431), header count (431), a body or
// Transfer-Encoding (413), other methods (405), malformed requests (400),
// other HTTP versions (505), connections beyond connections_max (503, then
// closed at once), and idle_timeout_ms without a complete request (closed).
//
// Handlers run synchronously on the loop thread and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shared/core/status.h"
#include "shared/uvio/loop.h"

struct uv_tcp_s;
struct uv_stream_s;

namespace mistore {

struct HttpLimits {
  size_t request_bytes_max = 8192;  // request line + headers, CRLFs included
  size_t headers_max = 32;
  size_t connections_max = 64;
  uint64_t idle_timeout_ms = 15000;
};

struct HttpRequest {
  std::string method;  // "GET" or "HEAD"
  std::string target;  // as sent: path[?query]
  std::string path;    // before '?', not decoded
  std::string query;   // after '?', not decoded
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string peer;    // "ip:port"

  // The first header of that (lower-case) name, or nullptr.
  const std::string* Header(std::string_view lower_name) const;
  // A query parameter, percent-decoded ("" when absent).
  std::string QueryParam(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  std::string body;

  static HttpResponse Text(int status, std::string body);
  static HttpResponse Json(int status, std::string body);
};

const char* HttpReason(int status);
std::string PercentDecode(std::string_view s);

struct HttpStats {
  uint64_t requests = 0;  // handled by the handler
  uint64_t refused = 0;   // answered 4xx/5xx by the server itself, or dropped
  size_t connections = 0;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;

  HttpServer(EventLoop* loop, HttpLimits limits, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and listens; returns the bound address (port 0 picks a free one).
  Result<std::string> Listen(const std::string& addr);
  // Stops listening and closes every connection.
  void Close();

  const HttpStats& stats() const { return stats_; }

  struct Conn;  // internal

 private:
  friend struct Conn;
  static void OnConnection(uv_stream_s* server, int status);
  void Process(Conn* c);
  void Respond(Conn* c, const HttpResponse& r, bool head, bool keep_alive);
  void Refuse(Conn* c, int status, const std::string& why);
  void CloseConn(Conn* c);
  void RestartIdle(Conn* c);
  void StartReading(Conn* c);
  void Linger(Conn* c);

  EventLoop* loop_;
  HttpLimits limits_;
  Handler handler_;
  uv_tcp_s* tcp_ = nullptr;
  std::map<uint64_t, Conn*> conns_;
  uint64_t next_conn_id_ = 1;
  HttpStats stats_;
};

}  // namespace mistore
