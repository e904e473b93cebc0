// What a node of `crashtest --mode=replicated` and its parent say to each other. Each line is
// one write(2) (never torn: at most PIPE_BUF bytes).
//
// Node -> parent (fd 3), from the workload threads at any time:
//   R <incarnation>                          the database is open: the node takes commands
//   I <txn> <shard> <from> <to> <amount> [<to shard>]
//                                            transfer <txn> (its id, decimal) is about to commit:
//                                            from account <from> of <shard> to account <to> of
//                                            <to shard> (default <shard>; another shard: a
//                                            cross-shard transfer, a marker on each shard)
//   A <txn> <term before> <term after>       ... returned OK: acknowledged. The terms are the
//                                            node's Raft term of the shard just before and just
//                                            after Commit, as Leadership() said (0: not the
//                                            ready leader then)
//   F <txn> <code> <leader id>               ... returned kAborted or kUnavailable: no effect
//                                            (the leader named by kUnavailable, 0 if none)
//   U <txn> <code>                           ... returned anything else: outcome unknown
//   N <txn> <shard> <from> <to> <amount> <to shard>
//                                            a named transfer (as I) is about to be prepared
//                                            (Transaction::Prepare(ReplNamedName(txn))); then
//                                            F or U as above, or
//   PA <txn>                                 ... Prepare returned OK: prepared, to be decided
//   DC <txn> | DR <txn>                      the decider (the host's coordinator, a thread of
//                                            this node) is about to CommitPrepared (DC) or
//                                            RollbackPrepared (DR) named transfer <txn>; then
//   DA <txn>                                 ... it returned OK (a commit: acknowledged)
//   DF <txn> <code>                          ... nothing decided by this call (kUnavailable,
//                                            kFailedPrecondition, kNotFound)
//   DU <txn> <code>                          ... anything else: outcome unknown
//   V <text>                                 a follower reader saw a broken invariant
//   E <message>                              the node cannot go on (e.g. Open failed)
// and replies to the parent's commands, every line starting "= ", each reply ending "= .".
//
// Parent -> node (stdin), one command at a time, each answered before the next is sent:
//   W 1 | W 0        start | stop the workload (W 0 answers once every thread has returned)
//   L                leadership: "= L <shard> <role> <ready 0|1> <term> <leader id>" per shard
//   O <txn> <key>    GetOutcomeOfKey: "= O <committed|aborted|unknown|prepared|indoubt|
//                    unavailable> <leader id>" (indoubt: kUnavailable because a part of the
//                    transaction is prepared on the key's shard and not decided, "being resolved")
//   S <shard>        a confirmed scan of the shard on this node: "= K <key> <value>" per key,
//                    then "= C <ok|code>" (ok: the read-only commit confirmed leadership)
//   H                per shard, after the workload stopped: "= H <shard> <applied index>
//                    <keys> <hash>" (the digest of what the replica applied, taken with the
//                    applied index the same before and after it; "= H <shard> busy" otherwise)
//   P <peer> <out|in> <1|0>   block (1) or unblock (0) one direction of this node's link with node
//                    <peer> (out: what it sends the peer; in: what it receives from it), through
//                    the testing library's link filter (replication/link_filter.h): "= P ok"
//   P clear          unblock every link of this node: "= P ok"
//   MA <id> <addr>   AddMember of member <id> at <addr> ("= M <shard> <code>" per shard, the
//   MR <id>          code absl's name of its status, OK when done), or RemoveMember of <id>;
//                    "= M all <code>" when the call was refused as a whole
//   G                per shard: "= G <shard> <commit index> <applied index> <snapshots
//                    installed> <voters>", from the node's replication stats
//   K <point>        arm a 2PC kill point (kRepl2pcPointNames): the node exits (status 9) when
//                    a cross-shard commit it coordinates reaches it: after-first-prepare (the
//                    first participant's prepare proposed, the second's not), after-prepares
//                    (every prepare committed, the decision not proposed), after-decision (the
//                    decision entry, with the first part's commit, proposed, the second part's
//                    commit not); through the coordinator's propose hook (TEST ONLY)
//   N                decide every named transfer ListPrepared lists here, if this node is the
//                    ready leader of every shard (retried up to 10 s): "= N <decided> <left>"
//                    (left: names still listed; -1 when this node does not lead every shard)
//   LP               ListPrepared here: "= LP <txn>" per named transfer listed
//   RC               follower reads since the last RC: "= RC <served> <on a node leading no
//                    shard> <refused>" (the counts are reset)
//   Q                close the database and exit 0
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace shardtx::crashtest {

constexpr int kReplAccounts = 8;  // accounts per shard: sNNN/bank/AA, absent = 0
constexpr int kRepl2pcPoints = 3;
inline constexpr const char* kRepl2pcPointNames[kRepl2pcPoints] = {
    "after-first-prepare", "after-prepares", "after-decision"};

// The marker a transfer writes beside its two accounts: its id makes it unique, so that the
// parent can tell, for any transfer, whether it committed.
std::string ReplMarkerKey(int shard, uint64_t txn);
std::string ReplMarkerValue(int from, int to, int64_t amount);
// A cross-shard transfer's marker value (the same on both shards): "<from shard>.<from>:<to
// shard>.<to>:<amount>"; the one above when the shards are equal.
std::string ReplMarkerValue(int from_shard, int from, int to_shard, int to, int64_t amount);
// The prefix of every key of `shard`.
std::string ReplShardPrefix(int shard);

// The cycle workload (--workload=cycle): kReplCycleNodes nodes per shard, node i (global,
// 0..kReplCycleNodes * shards - 1) on shard i / kReplCycleNodes at ReplCycleKey(i), its value the
// index of its successor (absent: i + 1, modulo the node count). A swap reads a, b = next(a),
// c = next(b), d = next(c) and writes a -> c, c -> b, b -> d: the nodes stay one cycle. Each swap
// writes a marker on every shard it writes (as a transfer of 0 from account 0 to account 1 of
// those shards: ReplMarkerValue(shard, 0, to shard, 1, 0)), so the checks of the bank's transfers
// (present, settled, atomic) apply to it unchanged.
constexpr int kReplCycleNodes = 4;
std::string ReplCycleKey(int node);
// Whether `key` is a cycle node's key; its index then.
bool ReplCycleNode(const std::string& key, int* node);
// Whether `next` (successor per node; absent: the default) makes one cycle through all `count`
// nodes; otherwise a description of the break.
bool ReplOneCycle(const std::map<int, int>& next, int count, std::string* broken);

// Named transfers (issue 17): the name a transfer is prepared under, and back (false: not one).
std::string ReplNamedName(uint64_t txn);
bool ReplNamedTxn(const std::string& name, uint64_t* txn);
// The decision the host's coordinator makes for named transfer `txn`, the same on every node
// and in the parent (so a marker of a transfer it rolls back is a violation): commit or not,
// drawn from the run's seed and the id (about three in four commit).
bool ReplNamedCommits(uint64_t seed, uint64_t txn);

}  // namespace shardtx::crashtest
