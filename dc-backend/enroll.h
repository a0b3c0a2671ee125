// Node identity at the DC (issue 4): the DC is the cluster's certificate
// authority. This module owns the DC's signing key and the files it keeps
// for node identity in its data_dir:
//   ca.key        the Ed25519 secret key (64 bytes, mode 0600; created on
//                 first use; refused if group/others can access it)
//   ca.pub        its public key (32 bytes), handed to every node
//   dc.key/.cert  the DC daemon's own node identity (role dc), self-issued
//   revoked       node ids revoked by `mistore-dc revoke`, one per line
//   enrolment/    one-time enrolment tokens (<id>.token: the verifier,
//                 role, region, subscriber, expiry; renamed <id>.used when
//                 redeemed, which makes redemption atomic and single-use)
//                 and next_node_id (the ids the DC assigns at enrolment)
// and the operator subcommands
//   mistore-dc enroll --role gateway|pop|client --region R [--subscriber S]
//       [--expiry-s N]
//       prints a one-time enrolment token (shared/wire/enrolment.h) on
//       stdout; a new node started with it (enrolment_token, enrolment_dc)
//       redeems it at the DC's enrol_listen and receives its certificate.
//   mistore-dc issue ROLE NODE_ID REGION OUT_PREFIX [SUBSCRIBER|-] [VALID_MS]
//       creates a node key (OUT_PREFIX.key, 0600) and the certificate the DC
//       signs for it (OUT_PREFIX.cert): the offline form of enrolment, run
//       on the DC host; the files are then installed on the node.
//   mistore-dc revoke NODE_ID
//       adds NODE_ID to `revoked`; the DC daemon puts the set into the
//       cluster maps it serves, and POPs refuse the node's next handshakes.
//
// EnrolService runs the DC's side of enrolment and renewal (EnrolAuthority)
// on a plain framed listener of its own (enrol_listen; the exchange carries
// its own Noise handshake), over FileEnrolStore.
//
// Threads: plain functions run at start-up or by a subcommand (file I/O), on
// the calling thread; RevokedNodes, FileEnrolStore and EnrolService run on
// the DC's loop (small synchronous file reads and fsyncs per enrolment).
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/uvio/connection.h"
#include "shared/wire/enrolment.h"

namespace mistore::enroll {

inline constexpr uint64_t kCertValidMsDefault = 30ull * 24 * 3600 * 1000;  // 30 days
inline constexpr size_t kRevokedNodesMax = 100000;

// Loads data_dir/ca.key, or creates it (and ca.pub) if absent.
Result<crypto::CaKey> LoadOrCreateCa(const std::string& data_dir);

struct IssueRequest {
  crypto::NodeRole role = crypto::NodeRole::kPop;
  uint32_t node_id = 0;
  std::string region;
  std::string subscriber;
  uint64_t valid_ms = kCertValidMsDefault;
};

// Creates OUT_PREFIX.key (0600, must not exist) and OUT_PREFIX.cert.
Status IssueNodeFiles(const crypto::CaKey& ca, const IssueRequest& req,
                      const std::string& out_prefix, uint64_t now_ms);

// The node ids in data_dir/revoked (empty if the file does not exist).
Result<std::set<uint32_t>> RevokedNodes(const std::string& data_dir);

// The DC daemon's limits: `base` plus, when the `secure` knob is on, its own
// identity (data_dir/dc.key + dc.cert, issued on first start) accepting
// POPs. FatalExit on failure.
ConnectionLimits DcSecureLimits(ConnectionLimits base, const Config& cfg);

// ---- enrolment over the network ------------------------------------------

inline constexpr size_t kTokensOutstandingMax = 1000;
inline constexpr uint64_t kExpiredTokenKeptMs = 24ull * 3600 * 1000;

// enrol_listen, cert_lifetime_s, enrol_node_id_first, and the `enroll`
// subcommand's role, region, subscriber, expiry_s.
std::vector<Knob> EnrolKnobs();

// Token records as files in `dir` (data_dir/enrolment); see the file list above.
class FileEnrolStore : public enrol::EnrolStore {
 public:
  FileEnrolStore(std::string data_dir, uint32_t first_node_id);
  Result<std::optional<enrol::TokenRecord>> Find(const Bytes& token_id) override;
  Status Consume(const Bytes& token_id, uint32_t node_id) override;
  Result<uint32_t> AllocateNodeId() override;
  bool IsRevoked(uint32_t node_id) override;
  // Writes a new token record (`mistore-dc enroll`): prunes records expired
  // for more than kExpiredTokenKeptMs, refuses (kResourceExhausted) beyond
  // kTokensOutstandingMax unexpired ones.
  Status Add(const Bytes& token_id, const enrol::TokenRecord& rec, uint64_t now_ms);

 private:
  std::string data_dir_;
  std::string dir_;
  uint32_t first_node_id_;
};

// The CA key and the DC's own identity (dc.key/dc.cert, issued on first use).
struct DcIdentity {
  crypto::CaKey ca;
  std::shared_ptr<const secure::Identity> identity;
};
Result<DcIdentity> LoadOrCreateDcIdentity(const std::string& data_dir);

// The enrolment listener of the DC daemon. Loop thread.
class EnrolService {
 public:
  EnrolService(EventLoop* loop, const Config& cfg, MetricsRegistry* metrics);
  ~EnrolService();
  // Listens on enrol_listen; returns the bound address, or "off".
  // FatalExit if the CA or the DC identity cannot be loaded.
  Result<std::string> Start();
  void Close();

 private:
  void OnAccept(const Connection::Ptr& c);
  void OnRequest(const Connection::Ptr& c, pb::Envelope&& env);

  EventLoop* loop_;
  const Config& cfg_;
  std::unique_ptr<FileEnrolStore> store_;
  enrol::EnrolStats stats_;
  std::optional<DcIdentity> id_;
  std::unique_ptr<enrol::EnrolAuthority> authority_;
  std::unique_ptr<Listener> listener_;
  std::map<Connection::Ptr, uint64_t> conns_;  // connection -> session
  uint64_t next_session_ = 1;
  TimerId tick_ = 0;
};

// True for the subcommands this module handles ("enroll", "issue", "revoke").
bool IsEnrollSubcommand(const std::string& name);
// Runs one of them; returns the process exit code (0 ok, 1 failure, 2 usage).
int RunEnrollSubcommand(const Config& cfg, const std::vector<std::string>& args, FILE* out,
                        FILE* err);

}  // namespace mistore::enroll
