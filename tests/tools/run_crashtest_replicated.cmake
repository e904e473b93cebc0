# Runs `crashtest --mode=replicated` and checks how it ended. Invoked by ctest:
#   cmake -DCRASHTEST=<binary> -DDIR=<work dir> -DEXPECT=clean|finding
#         -DCRASHTEST_ARGS="<flags>" -P run_crashtest_replicated.cmake
# EXPECT=clean: exit 0 and the summary "..., 0 lost, 0 violations, 0 divergent replicas".
# EXPECT=finding: exit 1 and a "crashtest: VIOLATION" report naming a lost acknowledged commit
# (a node that lies about its acknowledgements was caught), or, with -DREQUIRE_MATCH, a report
# matching that instead. $SHARDTX_SEED replays a run's plans.
# -DREQUIRE_FAULTS="kind ..." (optional; not checked with $SHARDTX_SEED, whose plan differs): a
# clean run must also have made each of these faults at least once (its "crashtest: faults:" line).
# -DREQUIRE_MATCH="<regex>" (optional): a clean run's output must also match it.
separate_arguments(args UNIX_COMMAND "${CRASHTEST_ARGS}")
if(DEFINED ENV{SHARDTX_SEED})
  list(APPEND args "--seed=$ENV{SHARDTX_SEED}")
endif()
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND "${CRASHTEST}" --mode=replicated ${args} "--dir=${DIR}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ECHO_OUTPUT_VARIABLE)
if(EXPECT STREQUAL "clean")
  if(NOT rc EQUAL 0 OR NOT out MATCHES "crashtest: replicated: [0-9]+ rounds, [1-9][0-9]* acknowledged commits verified, .* 0 lost, 0 violations, 0 divergent replicas")
    message(FATAL_ERROR "crashtest --mode=replicated did not end clean (exit ${rc}); directory kept: ${DIR}")
  endif()
  if(REQUIRE_MATCH AND NOT out MATCHES "${REQUIRE_MATCH}")
    message(FATAL_ERROR "crashtest --mode=replicated ended clean but its output does not match '${REQUIRE_MATCH}'")
  endif()
  if(NOT DEFINED ENV{SHARDTX_SEED})
    separate_arguments(required UNIX_COMMAND "${REQUIRE_FAULTS}")
    foreach(kind IN LISTS required)
      if(NOT out MATCHES "crashtest: faults: [^\n]*${kind} [1-9]")
        message(FATAL_ERROR "crashtest --mode=replicated made no ${kind} fault (its seed's plan has one)")
      endif()
    endforeach()
  endif()
  file(REMOVE_RECURSE "${DIR}")
elseif(EXPECT STREQUAL "finding")
  set(want "\\[lost\\]")
  if(REQUIRE_MATCH)
    set(want "${REQUIRE_MATCH}")
  endif()
  if(NOT rc EQUAL 1 OR NOT out MATCHES "crashtest: VIOLATION" OR NOT out MATCHES "${want}")
    message(FATAL_ERROR "crashtest --mode=replicated with broken nodes was not caught (exit ${rc})")
  endif()
  file(REMOVE_RECURSE "${DIR}")
else()
  message(FATAL_ERROR "EXPECT must be clean or finding")
endif()
