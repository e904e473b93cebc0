# Runs `txbench --replicas=3 --workload=readonly --shards-per-txn=1` (TXBENCH: the binary) and
# fails unless it exits with status 2 and says why: a follower read sums a group of accounts on at
# least two shards.
execute_process(COMMAND ${TXBENCH} --replicas=3 --workload=readonly --shards-per-txn=1
                        --progress=false
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "txbench --replicas=3 --workload=readonly --shards-per-txn=1 exited ${rc}, "
                      "not 2:\n${out}${err}")
endif()
if(NOT err MATCHES "--replicas with --workload=readonly reads groups of --shards_per_txn")
  message(FATAL_ERROR "txbench's refusal does not explain the group size:\n${err}")
endif()
message(STATUS "refused as expected: ${err}")
