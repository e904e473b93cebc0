// The subcommands of the shardtx tool. Each takes the arguments after its name, prints its
// report and returns the exit status (cli::ExitCode).
#pragma once

#include <string>
#include <vector>

namespace shardtx::cli {

using Args = std::vector<std::string>;

int RunStat(const Args& args);              // stat.cc
int RunWalDump(const Args& args);           // wal_cmd.cc
int RunWalVerify(const Args& args);         // wal_cmd.cc
int RunCheck(const Args& args);             // check.cc
int RunDump(const Args& args);              // data_cmd.cc
int RunLoad(const Args& args);              // data_cmd.cc
int RunPreparedList(const Args& args);      // prepared_cmd.cc
int RunPreparedCommit(const Args& args);    // prepared_cmd.cc
int RunPreparedRollback(const Args& args);  // prepared_cmd.cc
int RunCheckpoint(const Args& args);        // prepared_cmd.cc
int RunBackup(const Args& args);            // backup_cmd.cc
int RunRestore(const Args& args);           // backup_cmd.cc

}  // namespace shardtx::cli
