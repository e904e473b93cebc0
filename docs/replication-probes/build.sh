#!/bin/sh
# Builds the libraft 0.15 probes of docs/replication-plan.md (Debian 12: apt-get install libraft-dev libuv1-dev; not part of the CMake build).
set -e
cd "$(dirname "$0")"
CF="-O2 -g -Wall"
gcc $CF -o fixture_test fixture_test.c -lraft      # 1,000-seed fixture scenario (REDRAW=1 ./fixture_test 1 1000)
gcc $CF -o fixture_cost fixture_cost.c -lraft      # step cost vs log length
gcc $CF -o noop_check noop_check.c -lraft          # new leader: own-term entry? commit of old entries
gcc $CF -o fig8 fig8.c -lraft                      # Raft Figure 8 on 0.15 (./fig8 200, ./fig8 1000)
gcc $CF -o fig8_gate fig8_gate.c -lraft            # same with the release gate (+ NOOP=1 term-start entry)
gcc $CF -o membership membership.c -lraft          # add / assign / remove / transfer on the fixture
gcc $CF -o uv_bench uv_bench.c -lraft -luv         # 3 raft_uv processes on 127.0.0.1 (lat|tput|kill)
gcc $CF -o snap_mem snap_mem.c -lraft -luv         # snapshot memory (./snap_mem 64), V3=1: async snapshot
gcc $CF -o port_clash port_clash.c -lraft -luv     # two groups, one address
# C++: the header without extern "C" (expected to fail at link), and a C++-style use of raft_apply
g++ -std=c++20 cxx_include.cc -o cxx_include -lraft 2>cxx_include.err || echo "cxx_include: link fails as expected (see cxx_include.err)"
g++ -std=c++20 -Wall -Wextra -Werror cxx_include2.cc -o cxx_include2 -lraft 2>cxx_include2.err || echo "cxx_include2: compile fails as expected (see cxx_include2.err)"
echo built
