// Tests for shared/wire/noise: the published test vectors for
// Noise_*_25519_ChaChaPoly_BLAKE2b (cacophony, public domain; copied into
// testdata/noise_vectors.json), round trips of every pattern in the table,
// and the failure paths (tampering, truncation, replay, reordering, size
// limits, turn order, wrong static keys, nonce exhaustion).
#include "shared/wire/noise.h"

#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace mistore::noise {
namespace {

using crypto::SecretBytes;

#ifndef MISTORE_NOISE_VECTORS
#error "MISTORE_NOISE_VECTORS (path of testdata/noise_vectors.json) must be defined"
#endif

// ------------------------------------------------------------ tiny JSON
// Enough for the flat vector file: objects, arrays, strings (with simple
// escapes); numbers / true / false / null are accepted and kept as text.

struct Json {
  enum class Kind { kString, kArray, kObject, kScalar };
  Kind kind = Kind::kScalar;
  std::string text;  // kString / kScalar
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> fields;

  const Json* Get(std::string_view key) const {
    for (const auto& [k, v] : fields) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

class JsonParser {
 public:
  explicit JsonParser(std::string_view s) : s_(s) {}

  bool Parse(Json* out) {
    if (!Value(out)) return false;
    Ws();
    return pos_ == s_.size();
  }

 private:
  void Ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) pos_++;
  }
  bool Eat(char c) {
    Ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      pos_++;
      return true;
    }
    return false;
  }
  bool String(std::string* out) {
    if (!Eat('"')) return false;
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (pos_ >= s_.size()) return false;
        char e = s_[pos_++];
        switch (e) {
          case 'n': out->push_back('\n'); break;
          case 't': out->push_back('\t'); break;
          case 'r': out->push_back('\r'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          case 'u': return false;  // not needed for this file
          default: out->push_back(e);
        }
      } else {
        out->push_back(c);
      }
    }
    return false;
  }
  bool Value(Json* out) {
    Ws();
    if (pos_ >= s_.size()) return false;
    char c = s_[pos_];
    if (c == '"') {
      out->kind = Json::Kind::kString;
      return String(&out->text);
    }
    if (c == '[') {
      pos_++;
      out->kind = Json::Kind::kArray;
      if (Eat(']')) return true;
      do {
        out->items.emplace_back();
        if (!Value(&out->items.back())) return false;
      } while (Eat(','));
      return Eat(']');
    }
    if (c == '{') {
      pos_++;
      out->kind = Json::Kind::kObject;
      if (Eat('}')) return true;
      do {
        std::string key;
        Ws();
        if (!String(&key) || !Eat(':')) return false;
        out->fields.emplace_back(std::move(key), Json());
        if (!Value(&out->fields.back().second)) return false;
      } while (Eat(','));
      return Eat('}');
    }
    out->kind = Json::Kind::kScalar;
    size_t start = pos_;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                s_[pos_] == '-' || s_[pos_] == '+' || s_[pos_] == '.')) {
      pos_++;
    }
    out->text = std::string(s_.substr(start, pos_ - start));
    return pos_ > start;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// ------------------------------------------------------------ vectors

struct Vector {
  std::string protocol_name;
  std::string pattern;
  Bytes init_prologue, resp_prologue;
  Bytes init_ephemeral, resp_ephemeral;
  std::optional<Bytes> init_static, resp_static, init_remote_static, resp_remote_static;
  Bytes handshake_hash;
  std::vector<std::pair<Bytes, Bytes>> messages;  // (payload, ciphertext)
};

Bytes Hex(std::string_view hex) {
  Bytes out;
  MS_ASSERT(FromHex(hex, &out));
  return out;
}

std::optional<Bytes> OptHex(const Json& v, std::string_view key) {
  const Json* f = v.Get(key);
  if (f == nullptr) return std::nullopt;
  return Hex(f->text);
}

struct LoadedVectors {
  bool ok = false;
  std::string error;
  std::vector<Vector> vectors;
  size_t skipped = 0;  // PSK or other suites
};

const LoadedVectors& Loaded() {
  static const LoadedVectors loaded = [] {
    LoadedVectors out;
    std::ifstream in(MISTORE_NOISE_VECTORS);
    if (!in) {
      out.error = std::string("cannot open ") + MISTORE_NOISE_VECTORS;
      return out;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    Json root;
    if (!JsonParser(text).Parse(&root)) {
      out.error = "malformed JSON";
      return out;
    }
    const Json* list = root.kind == Json::Kind::kArray ? &root : root.Get("vectors");
    if (list == nullptr || list->kind != Json::Kind::kArray) {
      out.error = "no vectors array";
      return out;
    }
    const std::string prefix = "Noise_", suffix = "_25519_ChaChaPoly_BLAKE2b";
    for (const Json& v : list->items) {
      const Json* name = v.Get("protocol_name");
      if (name == nullptr) continue;
      const std::string& n = name->text;
      if (n.rfind(prefix, 0) != 0 || n.size() <= prefix.size() + suffix.size() ||
          n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0 ||
          n.find("psk") != std::string::npos || v.Get("init_psks") || v.Get("resp_psks")) {
        out.skipped++;
        continue;
      }
      Vector vec;
      vec.protocol_name = n;
      vec.pattern = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
      vec.init_prologue = OptHex(v, "init_prologue").value_or(Bytes());
      vec.resp_prologue = OptHex(v, "resp_prologue").value_or(Bytes());
      vec.init_ephemeral = OptHex(v, "init_ephemeral").value_or(Bytes());
      vec.resp_ephemeral = OptHex(v, "resp_ephemeral").value_or(Bytes());
      vec.init_static = OptHex(v, "init_static");
      vec.resp_static = OptHex(v, "resp_static");
      vec.init_remote_static = OptHex(v, "init_remote_static");
      vec.resp_remote_static = OptHex(v, "resp_remote_static");
      vec.handshake_hash = OptHex(v, "handshake_hash").value_or(Bytes());
      if (const Json* msgs = v.Get("messages")) {
        for (const Json& m : msgs->items) {
          vec.messages.emplace_back(Hex(m.Get("payload")->text), Hex(m.Get("ciphertext")->text));
        }
      }
      out.vectors.push_back(std::move(vec));
    }
    out.ok = true;
    return out;
  }();
  return loaded;
}

std::vector<Vector> AllVectors() { return Loaded().vectors; }

// gtest prints a failing parameter with this instead of a raw byte dump.
void PrintTo(const Vector& v, std::ostream* os) { *os << v.protocol_name; }

SecretBytes Secret(const Bytes& b) { return SecretBytes(b.data(), b.size()); }

KeyPair FromPriv(const Bytes& priv) {
  auto kp = KeyPair::FromPrivate(priv);
  MS_ASSERT(kp.ok());
  return std::move(kp).value();
}

bool OneWay(std::string_view pattern) { return pattern.size() == 1; }

TEST(NoiseVectorFile, LoadsAndCoversRequiredPatterns) {
  const LoadedVectors& l = Loaded();
  ASSERT_TRUE(l.ok) << l.error;
  std::map<std::string, int> by_pattern;
  for (const Vector& v : l.vectors) by_pattern[v.pattern]++;
  // The source file has no one-way (N/K/X) vectors; those patterns are
  // covered by the round-trip and negative tests below.
  for (const char* p : {"NN", "NK", "KK", "IK", "XX"}) {
    EXPECT_GE(by_pattern[p], 1) << "no vector for " << p;
  }
  for (const Vector& v : l.vectors) {
    EXPECT_TRUE(IsKnownPattern(v.pattern)) << v.protocol_name;
  }
  std::cout << "[ noise    ] " << l.vectors.size() << " non-PSK vectors loaded, " << l.skipped
            << " skipped\n";
}

class NoiseVectorTest : public testing::TestWithParam<Vector> {};

TEST_P(NoiseVectorTest, ReproducesVector) {
  const Vector& v = GetParam();
  ASSERT_EQ(ProtocolName(v.pattern), v.protocol_name);

  std::optional<KeyPair> is, rs;
  if (v.init_static) is = FromPriv(*v.init_static);
  if (v.resp_static) rs = FromPriv(*v.resp_static);
  // The vector's remote keys are the peers' public keys.
  if (v.init_remote_static && rs) { EXPECT_EQ(*v.init_remote_static, rs->public_key); }
  if (v.resp_remote_static && is) { EXPECT_EQ(*v.resp_remote_static, is->public_key); }

  SecretBytes ie = Secret(v.init_ephemeral), re = Secret(v.resp_ephemeral);
  auto init_r = HandshakeState::Create(v.pattern, true, v.init_prologue, is ? &*is : nullptr,
                                       v.init_remote_static ? &*v.init_remote_static : nullptr,
                                       &ie);
  ASSERT_TRUE(init_r.ok()) << init_r.status().ToString();
  auto resp_r = HandshakeState::Create(v.pattern, false, v.resp_prologue, rs ? &*rs : nullptr,
                                       v.resp_remote_static ? &*v.resp_remote_static : nullptr,
                                       &re);
  ASSERT_TRUE(resp_r.ok()) << resp_r.status().ToString();
  HandshakeState& init = init_r.value();
  HandshakeState& resp = resp_r.value();

  size_t i = 0;
  for (; i < v.messages.size() && !(init.Complete() && resp.Complete()); i++) {
    SCOPED_TRACE("handshake message " + std::to_string(i));
    const bool init_sends = i % 2 == 0;
    HandshakeState& w = init_sends ? init : resp;
    HandshakeState& r = init_sends ? resp : init;
    ASSERT_TRUE(w.IsMyTurn());
    ASSERT_FALSE(r.IsMyTurn());
    auto ct = w.WriteMessage(v.messages[i].first);
    ASSERT_TRUE(ct.ok()) << ct.status().ToString();
    EXPECT_EQ(ToHex(*ct), ToHex(v.messages[i].second));
    auto pt = r.ReadMessage(v.messages[i].second);
    ASSERT_TRUE(pt.ok()) << pt.status().ToString();
    EXPECT_EQ(ToHex(*pt), ToHex(v.messages[i].first));
  }
  ASSERT_TRUE(init.Complete());
  ASSERT_TRUE(resp.Complete());
  EXPECT_EQ(ToHex(init.handshake_hash()), ToHex(v.handshake_hash));
  EXPECT_EQ(ToHex(resp.handshake_hash()), ToHex(v.handshake_hash));
  if (rs) { EXPECT_EQ(init.remote_static(), rs->public_key); }
  if (is) { EXPECT_EQ(resp.remote_static(), is->public_key); }

  auto ti = Transport::FromHandshake(init);
  auto tr = Transport::FromHandshake(resp);
  ASSERT_TRUE(ti.ok() && tr.ok());
  size_t transport_messages = 0;
  for (; i < v.messages.size(); i++, transport_messages++) {
    SCOPED_TRACE("transport message " + std::to_string(i));
    const bool init_sends = OneWay(v.pattern) || i % 2 == 0;
    Transport& w = init_sends ? *ti : *tr;
    Transport& r = init_sends ? *tr : *ti;
    auto ct = w.Encrypt(v.messages[i].first);
    ASSERT_TRUE(ct.ok()) << ct.status().ToString();
    EXPECT_EQ(ToHex(*ct), ToHex(v.messages[i].second));
    auto pt = r.Decrypt(v.messages[i].second);
    ASSERT_TRUE(pt.ok()) << pt.status().ToString();
    EXPECT_EQ(*pt, v.messages[i].first);
  }
  EXPECT_GE(transport_messages, 1u);
}

INSTANTIATE_TEST_SUITE_P(Cacophony, NoiseVectorTest, testing::ValuesIn(AllVectors()),
                         [](const testing::TestParamInfo<Vector>& info) {
                           return info.param.pattern;
                         });

// ------------------------------------------------------------ helpers

const std::vector<std::string> kAllPatterns = {"N",  "K",  "X",  "NN", "NK", "NX", "XN", "XK",
                                               "XX", "KN", "KK", "KX", "IN", "IK", "IX"};

// What each side needs, from the pattern's name (first letter: the
// initiator's static; second: the responder's; one-way N/K/X behave as
// NK/KK/XK).
struct Needs {
  bool init_static, resp_static, init_knows_resp, resp_knows_init;
};
Needs NeedsOf(const std::string& p) {
  char i = p[0];
  char r = OneWay(p) ? 'K' : p[1];
  return {i != 'N', r != 'N', r == 'K', i == 'K'};
}

struct Pair {
  HandshakeState init;
  HandshakeState resp;
};

// Both sides of `pattern` with the given static keys. `init_view_of_resp`
// / `resp_view_of_init` override what each side believes the peer's static
// key is (for wrong-key tests).
Pair MakePair(const std::string& pattern, const KeyPair& is, const KeyPair& rs,
              const Bytes& prologue = Hex("50726f6c6f677565"),
              const Bytes* init_view_of_resp = nullptr, const Bytes* resp_view_of_init = nullptr) {
  Needs n = NeedsOf(pattern);
  const Bytes* irs = n.init_knows_resp ? (init_view_of_resp ? init_view_of_resp : &rs.public_key)
                                       : nullptr;
  const Bytes* ris = n.resp_knows_init ? (resp_view_of_init ? resp_view_of_init : &is.public_key)
                                       : nullptr;
  auto i = HandshakeState::Create(pattern, true, prologue, n.init_static ? &is : nullptr, irs);
  auto r = HandshakeState::Create(pattern, false, prologue, n.resp_static ? &rs : nullptr, ris);
  MS_ASSERT(i.ok() && r.ok());
  return Pair{std::move(i).value(), std::move(r).value()};
}

// Runs the handshake; before message `target` is delivered, `mutate` edits
// it. Returns the index of the first message whose ReadMessage (or, after a
// failure of the peer, WriteMessage) failed, or -1 if both completed.
int Drive(Pair& p, int target = -1, const std::function<void(Bytes&)>& mutate = nullptr) {
  for (int i = 0; !(p.init.Complete() && p.resp.Complete()); i++) {
    HandshakeState& w = p.init.IsMyTurn() ? p.init : p.resp;
    HandshakeState& r = p.init.IsMyTurn() ? p.resp : p.init;
    if (!w.IsMyTurn()) return i;  // nobody can move
    Bytes payload(5 + i, uint8_t(0xa0 + i));
    auto ct = w.WriteMessage(payload);
    if (!ct.ok()) return i;
    Bytes msg = std::move(ct).value();
    if (i == target && mutate) mutate(msg);
    auto pt = r.ReadMessage(msg);
    if (!pt.ok()) return i;
    if (i != target) { EXPECT_EQ(*pt, payload); }
  }
  return -1;
}

std::vector<Bytes> HonestMessages(const std::string& pattern, const KeyPair& is,
                                  const KeyPair& rs) {
  Pair p = MakePair(pattern, is, rs);
  std::vector<Bytes> out;
  for (int i = 0; !(p.init.Complete() && p.resp.Complete()); i++) {
    HandshakeState& w = p.init.IsMyTurn() ? p.init : p.resp;
    HandshakeState& r = p.init.IsMyTurn() ? p.resp : p.init;
    auto ct = w.WriteMessage(Bytes(5 + i, uint8_t(0xa0 + i)));
    MS_ASSERT(ct.ok() && r.ReadMessage(*ct).ok());
    out.push_back(*ct);
  }
  return out;
}

std::pair<Transport, Transport> Connected(const std::string& pattern = "XX") {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  Pair p = MakePair(pattern, is, rs);
  MS_ASSERT(Drive(p) == -1);
  auto ti = Transport::FromHandshake(p.init);
  auto tr = Transport::FromHandshake(p.resp);
  MS_ASSERT(ti.ok() && tr.ok());
  return {std::move(ti).value(), std::move(tr).value()};
}

Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// ------------------------------------------------------------ round trips

TEST(NoiseHandshake, EveryPatternRoundTripsWithRandomKeys) {
  for (const std::string& pattern : kAllPatterns) {
    SCOPED_TRACE(pattern);
    ASSERT_TRUE(IsKnownPattern(pattern));
    KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
    Pair p = MakePair(pattern, is, rs);
    ASSERT_EQ(Drive(p), -1);
    EXPECT_EQ(p.init.handshake_hash(), p.resp.handshake_hash());
    EXPECT_EQ(p.init.handshake_hash().size(), kHashLen);
    Needs n = NeedsOf(pattern);
    EXPECT_EQ(p.init.remote_static(), n.resp_static ? rs.public_key : Bytes());
    EXPECT_EQ(p.resp.remote_static(), n.init_static ? is.public_key : Bytes());

    auto ti = Transport::FromHandshake(p.init);
    auto tr = Transport::FromHandshake(p.resp);
    ASSERT_TRUE(ti.ok() && tr.ok());
    for (int k = 0; k < 3; k++) {
      auto c = ti->Encrypt(Text("to responder"));
      ASSERT_TRUE(c.ok());
      auto d = tr->Decrypt(*c);
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(*d, Text("to responder"));
      if (OneWay(pattern)) continue;
      c = tr->Encrypt(Text("to initiator"));
      ASSERT_TRUE(c.ok());
      d = ti->Decrypt(*c);
      ASSERT_TRUE(d.ok());
      EXPECT_EQ(*d, Text("to initiator"));
    }
    EXPECT_EQ(ti->send_nonce(), 3u);
    EXPECT_EQ(tr->recv_nonce(), 3u);
    if (OneWay(pattern)) {
      // Only initiator -> responder exists.
      EXPECT_FALSE(tr->Encrypt(Text("x")).ok());
      EXPECT_FALSE(ti->Decrypt(Bytes(20)).ok());
    }
  }
}

TEST(NoiseHandshake, EmptyPayloadsAndFreshEphemeralsDiffer) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  Pair a = MakePair("XX", is, rs), b = MakePair("XX", is, rs);
  auto m1 = a.init.WriteMessage({});
  auto m2 = b.init.WriteMessage({});
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_EQ(m1->size(), kDhLen);  // "-> e" with no key: e || empty payload
  EXPECT_NE(*m1, *m2);
}

TEST(NoiseHandshake, PrologueMismatchFailsTheHandshake) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  for (const std::string& pattern : {std::string("NN"), std::string("XX"), std::string("IK")}) {
    SCOPED_TRACE(pattern);
    Needs n = NeedsOf(pattern);
    auto i = HandshakeState::Create(pattern, true, Text("mistore v1"), n.init_static ? &is : nullptr,
                                    n.init_knows_resp ? &rs.public_key : nullptr);
    auto r = HandshakeState::Create(pattern, false, Text("mistore v2"),
                                    n.resp_static ? &rs : nullptr,
                                    n.resp_knows_init ? &is.public_key : nullptr);
    ASSERT_TRUE(i.ok() && r.ok());
    Pair p{std::move(i).value(), std::move(r).value()};
    EXPECT_NE(Drive(p), -1);
  }
}

// ------------------------------------------------------------ tampering

// A message that carries no MAC (the first message of NN, XX, NX, XN, KN,
// IN, IX: "-> e" or "-> e, s" in clear) cannot be rejected when read, but the
// transcript hash then differs and the very next message fails. Everything
// else fails at once.
void ExpectFailsAtOrRightAfter(int failed_at, int target) {
  EXPECT_NE(failed_at, -1) << "tampered message " << target << " was not detected";
  if (failed_at != target) {
    EXPECT_EQ(target, 0) << "only a first message can lack a MAC";
    EXPECT_EQ(failed_at, target + 1);
  }
}

TEST(NoiseHandshake, FlippedBitInAnyHandshakeMessageFails) {
  size_t runs = 0;
  for (const std::string& pattern : kAllPatterns) {
    SCOPED_TRACE(pattern);
    KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
    std::vector<Bytes> honest = HonestMessages(pattern, is, rs);
    for (size_t target = 0; target < honest.size(); target++) {
      for (size_t byte = 0; byte < honest[target].size(); byte++) {
        for (int bit : {int(byte % 8), 7}) {
          SCOPED_TRACE("message " + std::to_string(target) + " byte " + std::to_string(byte) +
                       " bit " + std::to_string(bit));
          Pair p = MakePair(pattern, is, rs);
          int failed = Drive(p, int(target), [&](Bytes& m) { m[byte] ^= uint8_t(1u << bit); });
          ExpectFailsAtOrRightAfter(failed, int(target));
          EXPECT_FALSE(p.init.Complete() && p.resp.Complete());
          runs++;
        }
      }
    }
  }
  std::cout << "[ noise    ] " << runs << " tampered handshakes, all rejected\n";
}

TEST(NoiseHandshake, TruncatedOrExtendedHandshakeMessageFails) {
  for (const std::string& pattern : kAllPatterns) {
    SCOPED_TRACE(pattern);
    KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
    std::vector<Bytes> honest = HonestMessages(pattern, is, rs);
    for (size_t target = 0; target < honest.size(); target++) {
      for (size_t len = 0; len < honest[target].size(); len++) {
        SCOPED_TRACE("message " + std::to_string(target) + " cut to " + std::to_string(len));
        Pair p = MakePair(pattern, is, rs);
        int failed = Drive(p, int(target), [&](Bytes& m) { m.resize(len); });
        ExpectFailsAtOrRightAfter(failed, int(target));
      }
      Pair p = MakePair(pattern, is, rs);
      int failed = Drive(p, int(target), [&](Bytes& m) { m.push_back(0); });
      ExpectFailsAtOrRightAfter(failed, int(target));
    }
  }
}

TEST(NoiseHandshake, FailureAtReadPoisonsTheState) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  std::vector<Bytes> honest = HonestMessages("XX", is, rs);
  Pair p = MakePair("XX", is, rs);
  auto m1 = p.init.WriteMessage({});
  ASSERT_TRUE(m1.ok());
  ASSERT_TRUE(p.resp.ReadMessage(*m1).ok());
  auto m2 = p.resp.WriteMessage({});
  ASSERT_TRUE(m2.ok());
  Bytes bad = *m2;
  bad.back() ^= 1;
  auto r = p.init.ReadMessage(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kCorrupt);
  EXPECT_TRUE(p.init.Failed());
  EXPECT_FALSE(p.init.IsMyTurn());
  // The genuine message no longer helps: the state is dead.
  auto again = p.init.ReadMessage(*m2);
  EXPECT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), Code::kAborted);
  EXPECT_FALSE(p.init.WriteMessage({}).ok());
  EXPECT_FALSE(p.init.Split().ok());
}

// ------------------------------------------------------------ turn order

TEST(NoiseHandshake, OutOfTurnIsAnErrorAndPoisons) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  {
    Pair p = MakePair("XX", is, rs);
    auto r = p.init.ReadMessage(Bytes(48));  // initiator must write first
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kProtocol);
    EXPECT_FALSE(p.init.WriteMessage({}).ok());  // poisoned
  }
  {
    Pair p = MakePair("XX", is, rs);
    EXPECT_FALSE(p.resp.WriteMessage({}).ok());  // responder cannot start
    EXPECT_TRUE(p.resp.Failed());
  }
  {
    Pair p = MakePair("XX", is, rs);
    auto m1 = p.init.WriteMessage({});
    ASSERT_TRUE(m1.ok());
    EXPECT_FALSE(p.init.WriteMessage({}).ok());  // two in a row
  }
  {
    Pair p = MakePair("NN", is, rs);
    EXPECT_FALSE(p.init.Split().ok());  // before completion
    EXPECT_TRUE(p.init.Failed());
  }
  {
    Pair p = MakePair("NN", is, rs);
    ASSERT_EQ(Drive(p), -1);
    EXPECT_FALSE(p.init.IsMyTurn());
    EXPECT_FALSE(p.resp.ReadMessage(Bytes(64)).ok());  // after completion
    EXPECT_FALSE(p.init.WriteMessage({}).ok());
  }
  {
    Pair p = MakePair("NN", is, rs);
    ASSERT_EQ(Drive(p), -1);
    ASSERT_TRUE(p.init.Split().ok());
    EXPECT_FALSE(p.init.Split().ok());  // twice
  }
}

// ------------------------------------------------------------ wrong keys

TEST(NoiseHandshake, WrongRemoteStaticFailsInIkAndKk) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  KeyPair other = KeyPair::Generate();
  for (const std::string& pattern :
       {std::string("IK"), std::string("KK"), std::string("NK"), std::string("XK"),
        std::string("N"), std::string("K"), std::string("X")}) {
    SCOPED_TRACE(pattern);
    // The initiator expects a different responder.
    Pair p = MakePair(pattern, is, rs, Hex(""), &other.public_key, nullptr);
    int failed = Drive(p);
    EXPECT_EQ(failed, 0);
    EXPECT_TRUE(p.resp.Failed());
  }
  for (const std::string& pattern : {std::string("KK"), std::string("KN"), std::string("KX"),
                                     std::string("K")}) {
    SCOPED_TRACE(pattern + " responder expects another initiator");
    Pair p = MakePair(pattern, is, rs, Hex(""), nullptr, &other.public_key);
    int failed = Drive(p);
    EXPECT_NE(failed, -1);
    EXPECT_FALSE(p.init.Complete() && p.resp.Complete());
  }
  {
    // IK: the responder holds a different static key than the one the
    // initiator pinned (an impostor without the real private key).
    Needs n = NeedsOf("IK");
    ASSERT_TRUE(n.init_knows_resp);
    auto i = HandshakeState::Create("IK", true, {}, &is, &rs.public_key);
    auto r = HandshakeState::Create("IK", false, {}, &other);
    ASSERT_TRUE(i.ok() && r.ok());
    Pair p{std::move(i).value(), std::move(r).value()};
    EXPECT_EQ(Drive(p), 0);
  }
}

TEST(NoiseHandshake, LowOrderPublicKeyIsAnError) {
  KeyPair is = KeyPair::Generate();
  Bytes zero(kDhLen, 0);
  auto i = HandshakeState::Create("IK", true, {}, &is, &zero);
  ASSERT_TRUE(i.ok());
  auto m = i->WriteMessage({});
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.status().code(), Code::kProtocol);

  // A responder receiving an all-zero ephemeral fails on its DH.
  KeyPair rs = KeyPair::Generate();
  auto r = HandshakeState::Create("NK", false, {}, &rs);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ReadMessage(Bytes(kDhLen + kTagLen, 0)).ok());
}

TEST(NoiseHandshake, CreateValidatesConfiguration) {
  KeyPair kp = KeyPair::Generate();
  Bytes pub = KeyPair::Generate().public_key;
  EXPECT_FALSE(HandshakeState::Create("ZZ", true, {}).ok());
  EXPECT_FALSE(HandshakeState::Create("Noise_XX_25519_ChaChaPoly_BLAKE2b", true, {}).ok());
  EXPECT_FALSE(HandshakeState::Create("XX", true, {}).ok());        // static missing
  EXPECT_FALSE(HandshakeState::Create("IK", true, {}, &kp).ok());   // peer key missing
  EXPECT_FALSE(HandshakeState::Create("NN", true, {}, &kp).ok());   // static unused
  EXPECT_FALSE(HandshakeState::Create("XX", true, {}, &kp, &pub).ok());  // XX transmits it
  Bytes short_pub(31, 1);
  EXPECT_FALSE(HandshakeState::Create("IK", true, {}, &kp, &short_pub).ok());
  SecretBytes short_e(16);
  EXPECT_FALSE(HandshakeState::Create("NN", true, {}, nullptr, nullptr, &short_e).ok());
  EXPECT_FALSE(KeyPair::FromPrivate(Bytes(31)).ok());

  EXPECT_TRUE(HandshakeState::Create("XX", true, {}, &kp).ok());
  EXPECT_TRUE(HandshakeState::Create("XX", false, {}, &kp).ok());
  EXPECT_TRUE(HandshakeState::Create("IK", true, {}, &kp, &pub).ok());
  EXPECT_TRUE(HandshakeState::Create("IK", false, {}, &kp).ok());
  EXPECT_TRUE(HandshakeState::Create("NN", false, {}).ok());
  EXPECT_EQ(ProtocolName("IK"), "Noise_IK_25519_ChaChaPoly_BLAKE2b");
}

// ------------------------------------------------------------ size limits

TEST(NoiseHandshake, MessagesOverMaximumAreRejected) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  {
    Pair p = MakePair("XX", is, rs);
    // "-> e": 32 + payload, no key yet.
    auto m = p.init.WriteMessage(Bytes(kMaxMessageLen - kDhLen + 1));
    ASSERT_FALSE(m.ok());
    EXPECT_EQ(m.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(p.init.Failed());
  }
  {
    Pair p = MakePair("XX", is, rs);
    auto m = p.init.WriteMessage(Bytes(kMaxMessageLen - kDhLen, 7));
    ASSERT_TRUE(m.ok());
    EXPECT_EQ(m->size(), kMaxMessageLen);
    auto r = p.resp.ReadMessage(*m);
    ASSERT_TRUE(r.ok());
    // "<- e, ee, s, es": 32 + 48 + payload + 16.
    const size_t max2 = kMaxMessageLen - kDhLen - (kDhLen + kTagLen) - kTagLen;
    auto m2 = p.resp.WriteMessage(Bytes(max2));
    ASSERT_TRUE(m2.ok());
    EXPECT_EQ(m2->size(), kMaxMessageLen);
    EXPECT_TRUE(p.init.ReadMessage(*m2).ok());
  }
  {
    Pair p = MakePair("XX", is, rs);
    auto m = p.init.WriteMessage({});
    ASSERT_TRUE(m.ok());
    ASSERT_TRUE(p.resp.ReadMessage(*m).ok());
    const size_t max2 = kMaxMessageLen - kDhLen - (kDhLen + kTagLen) - kTagLen;
    EXPECT_FALSE(p.resp.WriteMessage(Bytes(max2 + 1)).ok());
  }
  {
    Pair p = MakePair("NN", is, rs);
    auto r = p.resp.ReadMessage(Bytes(kMaxMessageLen + 1));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Code::kProtocol);
  }
  auto [ti, tr] = Connected();
  auto c = ti.Encrypt(Bytes(kMaxTransportPlaintext, 3));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->size(), kMaxMessageLen);
  auto d = tr.Decrypt(*c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->size(), kMaxTransportPlaintext);
  EXPECT_FALSE(ti.Encrypt(Bytes(kMaxTransportPlaintext + 1)).ok());
  EXPECT_TRUE(ti.failed());
  EXPECT_FALSE(tr.Decrypt(Bytes(kMaxMessageLen + 1)).ok());
  EXPECT_TRUE(tr.failed());
}

// ------------------------------------------------------------ transport

TEST(NoiseTransport, ReplayedMessageIsRejected) {
  auto [ti, tr] = Connected();
  auto m1 = ti.Encrypt(Text("one"));
  auto m2 = ti.Encrypt(Text("two"));
  ASSERT_TRUE(m1.ok() && m2.ok());
  ASSERT_TRUE(tr.Decrypt(*m1).ok());
  auto replay = tr.Decrypt(*m1);
  ASSERT_FALSE(replay.ok());
  EXPECT_EQ(replay.status().code(), Code::kCorrupt);
  // Poisoned: even the genuine next message is refused now.
  EXPECT_FALSE(tr.Decrypt(*m2).ok());
  EXPECT_TRUE(tr.failed());
}

TEST(NoiseTransport, ReorderedMessageIsRejected) {
  auto [ti, tr] = Connected();
  auto m1 = ti.Encrypt(Text("one"));
  auto m2 = ti.Encrypt(Text("two"));
  ASSERT_TRUE(m1.ok() && m2.ok());
  EXPECT_FALSE(tr.Decrypt(*m2).ok());
  EXPECT_FALSE(tr.Decrypt(*m1).ok());
}

TEST(NoiseTransport, DroppedMessageBreaksTheStream) {
  auto [ti, tr] = Connected();
  ASSERT_TRUE(ti.Encrypt(Text("lost")).ok());
  auto m2 = ti.Encrypt(Text("two"));
  ASSERT_TRUE(m2.ok());
  EXPECT_FALSE(tr.Decrypt(*m2).ok());
}

TEST(NoiseTransport, TamperedOrTruncatedMessageIsRejected) {
  Bytes msg = Text("a transport payload");
  for (size_t len = 0; len < msg.size() + kTagLen; len++) {
    auto [ti, tr] = Connected("NN");
    auto c = ti.Encrypt(msg);
    ASSERT_TRUE(c.ok());
    c->resize(len);
    EXPECT_FALSE(tr.Decrypt(*c).ok()) << "truncated to " << len;
  }
  auto [ti, tr] = Connected("NN");
  auto c = ti.Encrypt(msg);
  ASSERT_TRUE(c.ok());
  // Each flip against a receiver in the right state.
  for (size_t bit = 0; bit < c->size() * 8; bit++) {
    auto [a, b] = Connected("NN");
    auto good = a.Encrypt(msg);
    ASSERT_TRUE(good.ok());
    Bytes bad = *good;
    bad[bit / 8] ^= uint8_t(1u << (bit % 8));
    EXPECT_FALSE(b.Decrypt(bad).ok()) << "bit " << bit;
  }
}

// The in-place forms interoperate with Encrypt/Decrypt (one nonce sequence
// per direction), work in place, and refuse what Decrypt refuses.
TEST(NoiseTransport, InPlaceFormsMatchTheCopyingOnes) {
  auto [a1, b1] = Connected("NN");
  auto [ti, tr] = Connected();
  for (size_t n : {size_t(0), size_t(1), size_t(1000), kMaxTransportPlaintext}) {
    Bytes msg(n);
    for (size_t i = 0; i < n; i++) msg[i] = uint8_t(i * 13 + 1);
    auto c = ti.Encrypt(msg);
    ASSERT_TRUE(c.ok());
    // Encrypt (nonce k) then EncryptInPlace (nonce k+1): DecryptTo reads
    // both back in order, the second in place.
    Bytes buf = msg;
    buf.resize(n + kTagLen);
    ASSERT_TRUE(ti.EncryptInPlace(buf.data(), n).ok());
    EXPECT_NE(buf, *c);  // next nonce, different ciphertext
    Bytes out(n);
    ASSERT_TRUE(tr.DecryptTo(*c, out.data()).ok());
    EXPECT_EQ(out, msg);
    ASSERT_TRUE(tr.DecryptTo(buf, buf.data()).ok());  // in place
    buf.resize(n);
    EXPECT_EQ(buf, msg);
  }
  EXPECT_FALSE(ti.EncryptInPlace(Bytes(kMaxMessageLen + 1).data(), kMaxTransportPlaintext + 1).ok());
  EXPECT_TRUE(ti.failed());
  // A flipped bit, a replay and a short ciphertext fail DecryptTo.
  auto good = a1.Encrypt(Text("payload"));
  ASSERT_TRUE(good.ok());
  Bytes bad = *good;
  bad[3] ^= 1;
  Bytes out(good->size());
  EXPECT_EQ(b1.DecryptTo(bad, out.data()).code(), Code::kCorrupt);
  EXPECT_TRUE(b1.failed());
  auto [a2, b2] = Connected("NN");
  auto m = a2.Encrypt(Text("x"));
  ASSERT_TRUE(m.ok());
  ASSERT_TRUE(b2.DecryptTo(*m, out.data()).ok());
  EXPECT_EQ(b2.DecryptTo(*m, out.data()).code(), Code::kCorrupt);
  auto [a3, b3] = Connected("NN");
  EXPECT_EQ(b3.DecryptTo(Bytes(kTagLen - 1), out.data()).code(), Code::kCorrupt);
}

TEST(NoiseTransport, DirectionsAreIndependentAndKeysDiffer) {
  auto [ti, tr] = Connected();
  auto a = ti.Encrypt(Text("same"));
  auto b = tr.Encrypt(Text("same"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);  // different keys per direction, same nonce 0
  // A message reflected back to its sender does not decrypt.
  EXPECT_FALSE(ti.Decrypt(*a).ok());
  EXPECT_TRUE(tr.Decrypt(*a).ok());
}

TEST(NoiseTransport, NonceExhaustionIsAnError) {
  Bytes key(kKeyLen, 0x42);
  CipherState cs;
  cs.InitializeKey(key);
  cs.SetNonce(kMaxNonce - 1);
  Bytes out;
  ASSERT_TRUE(cs.EncryptWithAd({}, Text("last"), &out).ok());
  EXPECT_EQ(cs.nonce(), kMaxNonce);
  Bytes out2;
  Status st = cs.EncryptWithAd({}, Text("one too many"), &out2);
  EXPECT_EQ(st.code(), Code::kResourceExhausted);
  EXPECT_TRUE(out2.empty());

  // The same through Transport, both directions.
  auto make = [&](uint64_t send_n, uint64_t recv_n) {
    CipherPair pair;
    pair.send.InitializeKey(key);
    pair.send.SetNonce(send_n);
    pair.recv.InitializeKey(key);
    pair.recv.SetNonce(recv_n);
    return Transport(std::move(pair));
  };
  Transport sender = make(kMaxNonce - 1, 0);
  Transport receiver = make(0, kMaxNonce - 1);
  auto c = sender.Encrypt(Text("last"));
  ASSERT_TRUE(c.ok());
  auto d = receiver.Decrypt(*c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Text("last"));
  auto c2 = sender.Encrypt(Text("more"));
  ASSERT_FALSE(c2.ok());
  EXPECT_EQ(c2.status().code(), Code::kResourceExhausted);
  auto d2 = receiver.Decrypt(*c);
  ASSERT_FALSE(d2.ok());
  EXPECT_EQ(d2.status().code(), Code::kResourceExhausted);
}

TEST(NoiseTransport, RekeyMustBeMatched) {
  auto [ti, tr] = Connected();
  ASSERT_TRUE(ti.RekeySend().ok());
  ASSERT_TRUE(tr.RekeyRecv().ok());
  auto c = ti.Encrypt(Text("after rekey"));
  ASSERT_TRUE(c.ok());
  auto d = tr.Decrypt(*c);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, Text("after rekey"));

  ASSERT_TRUE(ti.RekeySend().ok());  // the receiver does not follow
  c = ti.Encrypt(Text("x"));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(tr.Decrypt(*c).ok());
}

TEST(NoiseCipherState, NoKeyPassesThroughAndDecryptFailureKeepsNonce) {
  CipherState none;
  Bytes out;
  ASSERT_TRUE(none.EncryptWithAd(Text("ad"), Text("plain"), &out).ok());
  EXPECT_EQ(out, Text("plain"));
  EXPECT_EQ(none.nonce(), 0u);

  CipherState a, b;
  a.InitializeKey(Bytes(kKeyLen, 1));
  b.InitializeKey(Bytes(kKeyLen, 1));
  Bytes c;
  ASSERT_TRUE(a.EncryptWithAd(Text("ad"), Text("msg"), &c).ok());
  Bytes p;
  EXPECT_FALSE(b.DecryptWithAd(Text("other ad"), c, &p).ok());
  EXPECT_EQ(b.nonce(), 0u);  // Noise 5.1: n unchanged on failure
  EXPECT_TRUE(p.empty());
  ASSERT_TRUE(b.DecryptWithAd(Text("ad"), c, &p).ok());
  EXPECT_EQ(p, Text("msg"));
  EXPECT_EQ(b.nonce(), 1u);
}

// ------------------------------------------------------------ timing

TEST(NoiseTiming, XxHandshakesPerSecond) {
  KeyPair is = KeyPair::Generate(), rs = KeyPair::Generate();
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto budget = std::chrono::milliseconds(500);
  size_t n = 0;
  while (Clock::now() - start < budget || n < 50) {
    Pair p = MakePair("XX", is, rs);
    ASSERT_EQ(Drive(p), -1);
    auto ti = Transport::FromHandshake(p.init);
    auto tr = Transport::FromHandshake(p.resp);
    ASSERT_TRUE(ti.ok() && tr.ok());
    n++;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << "[ noise    ] XX handshakes (both sides in-process, incl. split): " << n
            << " in " << secs << " s = " << static_cast<long>(n / secs) << " handshakes/s\n";
}

}  // namespace
}  // namespace mistore::noise
