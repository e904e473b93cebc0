# Runs `txbench --replicas=3 --workload=readonly` (TXBENCH: the binary) and fails unless it exits
# with status 2 and says why: the follower-read row is issue 17 step 9's, not built yet.
execute_process(COMMAND ${TXBENCH} --replicas=3 --workload=readonly --progress=false
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "txbench --replicas=3 --workload=readonly exited ${rc}, not 2:\n${out}${err}")
endif()
if(NOT err MATCHES "--replicas with --workload=readonly: .*issue 17 step 9")
  message(FATAL_ERROR "txbench's refusal does not name issue 17 step 9:\n${err}")
endif()
message(STATUS "refused as expected: ${err}")
