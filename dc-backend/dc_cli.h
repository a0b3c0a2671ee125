// Operator subcommands of mistore-dc (issue 7). They open the catalog
// directly (the SQLite file in data_dir, which WAL lets a second process
// read and write while the DC runs, or the PostgreSQL database named by
// catalog_pg_conninfo) rather than asking the running DC: they then work
// while the DC is down too, which is when an operator needs them most, and
// a catalog change (retention set) is one transaction like any other. They
// never change the cluster map (no OnDaemonStart).
//
//   mistore-dc [settings] catalog objects SUBSCRIBER   objects and versions
//   mistore-dc [settings] catalog gateway ID           a gateway's state
//   mistore-dc [settings] catalog pop ID               a POP's region, state
//   mistore-dc [settings] map                          the map and its epoch
//   mistore-dc [settings] retention show VOLUME
//   mistore-dc [settings] retention set VOLUME keep_last=N daily_days=D
//                         weekly_weeks=W history_bytes_max=Q  (any subset)
//   mistore-dc [settings] retention apply VOLUME      collect now what the
//                         policy drops; POPs and the backup store reclaim it
//   mistore-dc [settings] retention gc                collected and reclaimed totals
//   mistore-dc [settings] backup show VOLUME
//   mistore-dc [settings] backup set VOLUME none|latest|all   which versions
//                         the DC keeps a full encrypted copy of (dc_gc.h)
//   mistore-dc [settings] monitor [POP [FROM_MS [TO_MS]]]  stored summaries
//   mistore-dc [settings] share-key show SUBSCRIBER    the published share key
//   mistore-dc [settings] share-key forget SUBSCRIBER  drop it (trust on first
//                         publish: the subscriber may then publish another;
//                         issue 4, docs/security.md "Sharing")
//
// --json prints one JSON document; otherwise text for people. Main thread
// of the mistore-dc process; writes to the FILE* given.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dc-backend/catalog.h"
#include "shared/core/config.h"

namespace mistore {

// The catalog the DC's settings name (knobs catalog_backend, data_dir,
// catalog_pg_conninfo); OnDaemonStart not called.
Result<std::unique_ptr<Catalog>> OpenConfiguredCatalog(const Config& cfg);

// Runs one subcommand; returns the process exit code (0 ok, 1 failed,
// 2 usage). args: the positional words (args[0] is the subcommand).
int RunDcSubcommand(Catalog* catalog, const std::vector<std::string>& args, bool json,
                    std::FILE* out, std::FILE* err);

}  // namespace mistore
