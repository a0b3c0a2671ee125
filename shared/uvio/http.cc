#include "shared/uvio/http.h"

// Before <uv.h>: the generated protobuf header's LOCK_READ/LOCK_WRITE enum
// values clash with <fcntl.h>'s macros of the same names.
#include "shared/uvio/connection.h"  // ParseAddress

#include <uv.h>

#include <cstring>

#include "shared/core/log.h"

namespace mistore {

// ---- requests and responses -------------------------------------------

const std::string* HttpRequest::Header(std::string_view lower_name) const {
  for (auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

static int HexVal(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '%' && i + 2 < s.size() && HexVal(s[i + 1]) >= 0 && HexVal(s[i + 2]) >= 0) {
      out += char(HexVal(s[i + 1]) * 16 + HexVal(s[i + 2]));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string HttpRequest::QueryParam(std::string_view name) const {
  std::string_view q = query;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    size_t eq = part.find('=');
    std::string_view key = part.substr(0, eq);
    if (PercentDecode(key) == name)
      return eq == std::string_view::npos ? std::string() : PercentDecode(part.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return "";
}

HttpResponse HttpResponse::Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  if (!r.body.empty() && r.body.back() != '\n') r.body += '\n';
  return r;
}

HttpResponse HttpResponse::Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = std::move(body);
  return r;
}

const char* HttpReason(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

// ---- connections -------------------------------------------------------

struct HttpServer::Conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  HttpServer* server;
  uint64_t id;
  std::string peer;
  std::string buf;
  bool writing = false;
  bool closing = false;
  bool close_after_write = false;
  bool reading = false;
  bool draining = false;  // response sent, write side shut: discarding input
  int handles_open = 0;
};

namespace {

struct HttpWrite {
  uv_write_t req;
  std::string data;
  HttpServer::Conn* conn;
};

std::string SockName(const sockaddr_storage& ss) {
  char host[64] = {0};
  if (ss.ss_family == AF_INET6) {
    auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    uv_ip6_name(a, host, sizeof host);
    return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
  }
  auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
  uv_ip4_name(a, host, sizeof host);
  return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
}

void OnHandleClosed(uv_handle_t* h) {
  auto* c = static_cast<HttpServer::Conn*>(h->data);
  if (--c->handles_open == 0) delete c;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

std::string Lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) b++;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) e--;
  return std::string(s.substr(b, e - b));
}

}  // namespace

HttpServer::HttpServer(EventLoop* loop, HttpLimits limits, Handler handler)
    : loop_(loop), limits_(limits), handler_(std::move(handler)) {}

HttpServer::~HttpServer() { Close(); }

Result<std::string> HttpServer::Listen(const std::string& addr) {
  MS_ASSERT(tcp_ == nullptr);
  sockaddr_storage ss;
  MS_RETURN_IF_ERROR(ParseAddress(addr, &ss));
  tcp_ = new uv_tcp_t;
  uv_tcp_init(loop_->raw(), tcp_);
  tcp_->data = this;
  int rc = uv_tcp_bind(tcp_, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 64, &HttpServer::OnConnection);
  if (rc != 0) {
    Close();
    return Unavailable("cannot listen on " + addr + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(tcp_, reinterpret_cast<sockaddr*>(&bound), &len);
  return SockName(bound);
}

void HttpServer::Close() {
  if (tcp_) {
    uv_close(reinterpret_cast<uv_handle_t*>(tcp_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    tcp_ = nullptr;
  }
  while (!conns_.empty()) CloseConn(conns_.begin()->second);
}

void HttpServer::CloseConn(Conn* c) {
  if (c->closing) return;
  c->closing = true;
  conns_.erase(c->id);
  stats_.connections = conns_.size();
  uv_timer_stop(&c->timer);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnHandleClosed);
}

void HttpServer::RestartIdle(Conn* c) {
  uv_timer_start(&c->timer, [](uv_timer_t* t) {
    auto* c = static_cast<Conn*>(t->data);
    if (c->closing || c->writing) return;
    MS_DEBUG("http", "idle connection closed", "peer=" + c->peer);
    c->server->CloseConn(c);
  }, limits_.idle_timeout_ms, 0);
}

void HttpServer::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<HttpServer*>(server->data);
  if (status < 0) {
    MS_WARN("http", "accept failed", std::string("error=") + uv_strerror(status));
    return;
  }
  auto* c = new Conn;
  c->server = self;
  c->id = self->next_conn_id_++;
  uv_tcp_init(self->loop_->raw(), &c->tcp);
  c->tcp.data = c;
  uv_timer_init(self->loop_->raw(), &c->timer);
  c->timer.data = c;
  c->handles_open = 2;
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnHandleClosed);
    return;
  }
  sockaddr_storage peer;
  int len = sizeof peer;
  c->peer = "?";
  if (uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0)
    c->peer = SockName(peer);
  if (self->conns_.size() >= self->limits_.connections_max) {
    // Best effort 503 without queueing anything, then closed at once.
    self->stats_.refused++;
    static const char kBusy[] =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
        "Content-Length: 22\r\nConnection: close\r\n\r\ntoo many connections\r\n";
    uv_buf_t b = uv_buf_init(const_cast<char*>(kBusy), unsigned(sizeof kBusy - 1));
    uv_try_write(reinterpret_cast<uv_stream_t*>(&c->tcp), &b, 1);
    MS_WARN("http", "connection limit reached; refusing",
            "peer=" + c->peer + " max=" + std::to_string(self->limits_.connections_max));
    c->closing = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), OnHandleClosed);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), OnHandleClosed);
    return;
  }
  self->conns_[c->id] = c;
  self->stats_.connections = self->conns_.size();
  uv_tcp_nodelay(&c->tcp, 1);
  self->RestartIdle(c);
  self->StartReading(c);
}

void HttpServer::StartReading(Conn* c) {
  c->reading = true;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static thread_local char scratch[16 * 1024];
        buf->base = scratch;
        buf->len = sizeof scratch;
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* c = static_cast<Conn*>(s->data);
        if (c->closing) return;
        if (c->draining) {
          if (n < 0) c->server->CloseConn(c);
          return;
        }
        if (n < 0) {
          if (c->writing) c->close_after_write = true;
          else c->server->CloseConn(c);
          return;
        }
        // Bound what one connection may buffer: the largest request we accept
        // plus one read's worth (pipelined requests beyond it wait in TCP).
        c->buf.append(buf->base, size_t(n));
        if (c->buf.size() > c->server->limits_.request_bytes_max) {
          uv_read_stop(s);
          c->reading = false;
        }
        c->server->Process(c);
      });
}

// Closing a socket with unread input makes the kernel send a reset, which can
// destroy the response before the client reads it. So: shut our side, read
// and drop what the client still sends for up to a second, then close.
void HttpServer::Linger(Conn* c) {
  auto* req = new uv_shutdown_t;
  c->draining = true;
  c->buf.clear();
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&c->tcp),
                  [](uv_shutdown_t* r, int) { delete r; }) != 0) {
    delete req;
    return CloseConn(c);
  }
  StartReading(c);
  uv_timer_start(&c->timer, [](uv_timer_t* t) {
    auto* c = static_cast<Conn*>(t->data);
    if (!c->closing) c->server->CloseConn(c);
  }, 1000, 0);
}

void HttpServer::Refuse(Conn* c, int status, const std::string& why) {
  stats_.refused++;
  MS_DEBUG("http", "request refused",
           "peer=" + c->peer + " status=" + std::to_string(status) + " why=\"" + why + "\"");
  HttpResponse r = HttpResponse::Text(status, why);
  if (status == 405) r.headers.push_back({"Allow", "GET, HEAD"});
  Respond(c, r, false, false);
}

void HttpServer::Process(Conn* c) {
  while (!c->closing && !c->writing) {
    size_t end = c->buf.find("\r\n\r\n");
    if (end == std::string::npos) {
      if (c->buf.size() > limits_.request_bytes_max)
        return Refuse(c, 431, "request line and headers exceed " +
                                  std::to_string(limits_.request_bytes_max) + " bytes");
      // Everything read so far is an incomplete request: read on.
      if (!c->reading) StartReading(c);
      return;
    }
    if (end + 4 > limits_.request_bytes_max)
      return Refuse(c, 431, "request line and headers exceed " +
                                std::to_string(limits_.request_bytes_max) + " bytes");
    std::string head = c->buf.substr(0, end);
    c->buf.erase(0, end + 4);

    HttpRequest req;
    req.peer = c->peer;
    size_t eol = head.find("\r\n");
    std::string line = head.substr(0, eol);
    size_t sp1 = line.find(' ');
    size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
    if (sp1 == std::string::npos || sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos)
      return Refuse(c, 400, "malformed request line");
    req.method = line.substr(0, sp1);
    req.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string version = line.substr(sp2 + 1);
    for (char ch : req.method)
      if (!IsTokenChar(ch)) return Refuse(c, 400, "malformed method");
    if (version != "HTTP/1.1" && version != "HTTP/1.0")
      return Refuse(c, version.rfind("HTTP/", 0) == 0 ? 505 : 400, "HTTP/1.1 or HTTP/1.0 only");
    if (req.target.empty() || req.target[0] != '/')
      return Refuse(c, 400, "request target must be an absolute path");
    for (char ch : req.target)
      if (ch <= ' ' || ch == 0x7f) return Refuse(c, 400, "bad character in request target");
    size_t q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos) req.query = req.target.substr(q + 1);

    size_t pos = eol == std::string::npos ? head.size() : eol + 2;
    while (pos < head.size()) {
      size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string_view h(head.data() + pos, next - pos);
      pos = next + 2;
      if (h.empty()) continue;
      if (h[0] == ' ' || h[0] == '\t') return Refuse(c, 400, "folded header lines are not accepted");
      size_t colon = h.find(':');
      if (colon == std::string_view::npos || colon == 0) return Refuse(c, 400, "malformed header");
      for (size_t i = 0; i < colon; i++)
        if (!IsTokenChar(h[i])) return Refuse(c, 400, "malformed header name");
      if (req.headers.size() >= limits_.headers_max)
        return Refuse(c, 431, "more than " + std::to_string(limits_.headers_max) + " headers");
      req.headers.emplace_back(Lower(std::string(h.substr(0, colon))), Trim(h.substr(colon + 1)));
    }

    const std::string* te = req.Header("transfer-encoding");
    const std::string* cl = req.Header("content-length");
    if (te || (cl && *cl != "0")) return Refuse(c, 413, "requests carry no body here");
    if (req.method != "GET" && req.method != "HEAD") return Refuse(c, 405, "GET and HEAD only");

    bool keep_alive = version == "HTTP/1.1";
    if (const std::string* conn = req.Header("connection")) {
      std::string v = Lower(*conn);
      if (v.find("close") != std::string::npos) keep_alive = false;
      else if (v.find("keep-alive") != std::string::npos) keep_alive = true;
    }
    stats_.requests++;
    HttpResponse r = handler_(req);
    Respond(c, r, req.method == "HEAD", keep_alive);
  }
}

void HttpServer::Respond(Conn* c, const HttpResponse& r, bool head, bool keep_alive) {
  std::string out;
  out.reserve(256 + (head ? 0 : r.body.size()));
  out += "HTTP/1.1 " + std::to_string(r.status) + " " + HttpReason(r.status) + "\r\n";
  out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  bool has_cache_control = false;
  for (auto& [k, v] : r.headers) {
    out += k + ": " + v + "\r\n";
    if (Lower(k) == "cache-control") has_cache_control = true;
  }
  if (!has_cache_control) out += "Cache-Control: no-store\r\n";
  out += "X-Content-Type-Options: nosniff\r\n\r\n";
  if (!head) out += r.body;

  auto* w = new HttpWrite{{}, std::move(out), c};
  w->req.data = w;
  c->writing = true;
  c->close_after_write = c->close_after_write || !keep_alive;
  uv_timer_stop(&c->timer);
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->reading = false;
  uv_buf_t buf = uv_buf_init(w->data.data(), unsigned(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<HttpWrite*>(req->data);
                      Conn* c = w->conn;
                      delete w;
                      if (c->closing) return;  // server may be gone; handles closing
                      c->writing = false;
                      if (status < 0) return c->server->CloseConn(c);
                      if (c->close_after_write) return c->server->Linger(c);
                      c->server->RestartIdle(c);
                      c->server->StartReading(c);
                      c->server->Process(c);
                    });
  if (rc != 0) {
    delete w;
    c->writing = false;
    CloseConn(c);
  }
}

}  // namespace mistore
