// Node identity at the DC (issue 4): the DC is the cluster's certificate
// authority. This module owns the DC's signing key and the files it keeps
// for node identity in its data_dir:
//   ca.key        the Ed25519 secret key (64 bytes, mode 0600; created on
//                 first use; refused if group/others can access it)
//   ca.pub        its public key (32 bytes), handed to every node
//   dc.key/.cert  the DC daemon's own node identity (role dc), self-issued
//   revoked       node ids revoked by `mistore-dc revoke`, one per line
// and the operator subcommands
//   mistore-dc issue ROLE NODE_ID REGION OUT_PREFIX [SUBSCRIBER|-] [VALID_MS]
//       creates a node key (OUT_PREFIX.key, 0600) and the certificate the DC
//       signs for it (OUT_PREFIX.cert): the offline form of enrolment, run
//       on the DC host; the files are then installed on the node.
//   mistore-dc revoke NODE_ID
//       adds NODE_ID to `revoked`; the DC daemon puts the set into the
//       cluster maps it serves, and POPs refuse the node's next handshakes.
//
// Not done (see the issue 4 report): one-time enrolment tokens redeemed over
// the network, renewal before expiry.
//
// Threads: plain functions run at start-up or by a subcommand (file I/O), on
// the calling thread; RevokedNodes runs on the DC's loop (one small read).
#pragma once

#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <vector>

#include "shared/core/config.h"
#include "shared/core/status.h"
#include "shared/crypto/cert.h"
#include "shared/uvio/connection.h"

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

// True for the subcommands this module handles ("issue", "revoke").
bool IsEnrollSubcommand(const std::string& name);
// Runs one of them; returns the process exit code (0 ok, 1 failure, 2 usage).
int RunEnrollSubcommand(const Config& cfg, const std::vector<std::string>& args, FILE* out,
                        FILE* err);

}  // namespace mistore::enroll
