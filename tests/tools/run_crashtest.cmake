# Runs crashtest and checks how it ended. Invoked by ctest (see CMakeLists.txt):
#   cmake -DCRASHTEST=<binary> -DDIR=<work dir> -DEXPECT=clean|violation|too_little
#         [-DBUG=<deliberate bug>] -DCRASHTEST_ARGS="<flags>" -P run_crashtest.cmake
# EXPECT=clean: exit 0 and the final line "..., 0 lost, 0 violations (N shards, log layout L)"
# with the layout the arguments ask for (a run that found nothing wrong but verified too little
# exits 3 and fails here).
# EXPECT=violation: exit 1 and a "crashtest: VIOLATION" report with a lost acknowledged write or
# a partly applied transaction (the deliberately broken build was caught).
# EXPECT=too_little: exit 3 and "crashtest: TOO LITTLE VERIFIED" (a deliberately broken crashtest,
# --self_test_broken, did not count as a pass). $SHARDTX_SEED replays a run's plans.
separate_arguments(args UNIX_COMMAND "${CRASHTEST_ARGS}")
# The run's log layout (--log-layout, default shared) must be the one its report names.
set(layout "shared")
if(CRASHTEST_ARGS MATCHES "--log[-_]layout=([a-z-]+)")
  set(layout "${CMAKE_MATCH_1}")
endif()
if(DEFINED ENV{SHARDTX_SEED})
  list(APPEND args "--seed=$ENV{SHARDTX_SEED}")
endif()
if(BUG)
  set(ENV{SHARDTX_DELIBERATE_BUG} "${BUG}")
else()
  unset(ENV{SHARDTX_DELIBERATE_BUG})
endif()
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND "${CRASHTEST}" ${args} "--dir=${DIR}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ECHO_OUTPUT_VARIABLE)
if(EXPECT STREQUAL "clean")
  if(rc EQUAL 3)
    message(FATAL_ERROR "crashtest found no violation but verified too little to count "
      "(exit 3, see its TOO LITTLE VERIFIED lines); directory kept: ${DIR}")
  endif()
  if(NOT rc EQUAL 0 OR NOT out MATCHES "crashtest: [0-9]+ rounds, [0-9]+ acknowledged commits verified, 0 lost, 0 violations \\([0-9]+ shards, log layout ${layout}\\)")
    message(FATAL_ERROR "crashtest did not end clean (exit ${rc}); directory kept: ${DIR}")
  endif()
  file(REMOVE_RECURSE "${DIR}")
elseif(EXPECT STREQUAL "violation")
  # Both bugs lose acknowledged writes or apply a transaction partly; a violation of another
  # kind would be a different bug.
  if(NOT rc EQUAL 1 OR NOT out MATCHES "crashtest: VIOLATION" OR
     NOT out MATCHES "\\[lost\\]|partly applied" OR NOT out MATCHES "log layout ${layout};")
    message(FATAL_ERROR "crashtest did not catch the deliberate bug '${BUG}' (exit ${rc})")
  endif()
  string(REGEX MATCH "VIOLATION in round [0-9]+" caught "${out}")
  message(STATUS "deliberate bug '${BUG}' caught: ${caught}")
  file(REMOVE_RECURSE "${DIR}")
elseif(EXPECT STREQUAL "too_little")
  if(NOT rc EQUAL 3 OR NOT out MATCHES "crashtest: TOO LITTLE VERIFIED" OR
     out MATCHES "crashtest: VIOLATION")
    message(FATAL_ERROR "crashtest counted a run that verified too little (exit ${rc})")
  endif()
  string(REGEX MATCH "TOO LITTLE VERIFIED: [^\n]*" said "${out}")
  message(STATUS "not counted, as it must not be: ${said}")
  file(REMOVE_RECURSE "${DIR}")
else()
  message(FATAL_ERROR "EXPECT must be clean, violation or too_little")
endif()
