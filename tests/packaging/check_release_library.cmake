# Checks that the library a host links carries no test switches. Invoked by ctest:
#   cmake -DLIBRARY=<libshardtx.a or .so> -DNM=<nm> -P check_release_library.cmake
# Fails if its symbol table names a kill point (the registrations SHARDTX_DEFINE_KILL_POINT
# makes, KillPoints::Arm/Reached) or if it contains the SHARDTX_DELIBERATE_BUG switches.
if(NOT EXISTS "${LIBRARY}")
  message(FATAL_ERROR "no library at '${LIBRARY}'")
endif()
execute_process(COMMAND "${NM}" -C "${LIBRARY}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE symbols ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${NM} -C ${LIBRARY} failed (exit ${rc}): ${err}")
endif()
if(NOT symbols MATCHES "shardtx::Database::Open")
  message(FATAL_ERROR "${NM} found no shardtx::Database::Open in ${LIBRARY}: wrong file?")
endif()
string(REGEX MATCHALL "[^\n]*(KillPointRegistration|kill_point_|KillPoints::)[^\n]*" found
  "${symbols}")
if(found)
  list(JOIN found "\n  " lines)
  message(FATAL_ERROR "${LIBRARY} has kill points:\n  ${lines}")
endif()
file(STRINGS "${LIBRARY}" found
  REGEX "SHARDTX_DELIBERATE_BUG|ack_before_fsync|commit_with_prepare_missing|async_complete_before_fsync")
if(found)
  list(JOIN found "\n  " lines)
  message(FATAL_ERROR "${LIBRARY} has the deliberate-bug switches:\n  ${lines}")
endif()
message(STATUS "${LIBRARY}: no kill points, no deliberate-bug switches")
