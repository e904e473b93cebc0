# Runs `txbench --replicas=3 --workload=cross` (TXBENCH: the binary) and fails unless it exits
# with status 2 and says why, naming issue 17.
execute_process(COMMAND ${TXBENCH} --replicas=3 --workload=cross --progress=false
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "txbench --replicas=3 --workload=cross exited ${rc}, not 2:\n${out}${err}")
endif()
if(NOT err MATCHES "--replicas with --workload=cross: .*issue 17")
  message(FATAL_ERROR "txbench's refusal does not name issue 17:\n${err}")
endif()
message(STATUS "refused as expected: ${err}")
