# The packaging test: shardtx used as its users use it. Invoked by ctest (see CMakeLists.txt):
#   cmake -DBUILD_DIR=<shardtx build tree> -DWORK_DIR=<scratch dir> -DCONSUMER_DIR=<consumer_cmake>
#         -DCXX=<C++ compiler> -DCC=<C compiler> -DGENERATOR=<generator> [-DMAKE_PROGRAM=<make/ninja>]
#         [-DREADELF=<readelf>] [-DEXTRA_FLAGS=<flags;...>] -P run_consumer.cmake
# Steps, each fatal on failure:
#   1. `cmake --install <build> --prefix <work>/staging`, then move the prefix to <work>/prefix
#      (an installed package must not depend on where it was installed);
#   2. configure, build and run consumer_cmake/ with find_package(shardtx) (CMAKE_PREFIX_PATH):
#      the C++ host (main.cc) on shardtx::shardtx, the C host (main.c) on shardtx::shardtx_shared
#      and on shardtx::shardtx, and the replicated host (three_nodes.cc: three members of one
#      cluster on 127.0.0.1 in one process, a failover);
#   3. with the compiler and pkg-config alone (PKG_CONFIG_PATH = the prefix's pkgconfig
#      directory): main.cc with the C++ compiler and `pkg-config --cflags --libs shardtx`;
#      main.c with the C compiler and the same flags (libshardtx.so; no C++ runtime named);
#      main.c with `pkg-config --static --cflags --libs shardtx`, libshardtx.a in place of
#      -lshardtx (the static line must be complete); each is run (LD_LIBRARY_PATH = the
#      prefix's lib directory, as ldconfig would give an installed prefix), and with READELF
#      the shared hosts must need libshardtx.so and the static one must not;
#   4. run the installed crashtest briefly (--help must say it is a test build).
# EXTRA_FLAGS are compile and link flags every consumer needs (a sanitizer build's -fsanitize).
# The scratch directory is removed after a pass and kept after a failure.
foreach(var BUILD_DIR WORK_DIR CONSUMER_DIR CXX CC GENERATOR)
  if(NOT ${var})
    message(FATAL_ERROR "run_consumer.cmake: -D${var}=... is required")
  endif()
endforeach()

# Runs a command; on failure prints what it printed and stops the test.
function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "packaging: ${what} FAILED (exit ${rc})\n$ ${cmd}\n${out}${err}\n"
                        "packaging: scratch directory kept: ${WORK_DIR}")
  endif()
  message(STATUS "packaging: ${what}: ok")
  set(step_output "${out}${err}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")
set(staging "${WORK_DIR}/staging")
set(prefix "${WORK_DIR}/prefix")

# 1. Install, then relocate.
step("cmake --install" "${CMAKE_COMMAND}" --install "${BUILD_DIR}" --prefix "${staging}")
file(RENAME "${staging}" "${prefix}")
file(GLOB_RECURSE pc_files "${prefix}/*/shardtx.pc")
file(GLOB_RECURSE config_files "${prefix}/*/shardtxConfig.cmake")
if(NOT pc_files OR NOT config_files OR NOT EXISTS "${prefix}/include/shardtx/database.h"
   OR NOT EXISTS "${prefix}/include/shardtx/c.h")
  message(FATAL_ERROR "packaging: the install lacks shardtx.pc ('${pc_files}'), "
                      "shardtxConfig.cmake ('${config_files}') or include/shardtx/{database,c}.h")
endif()
get_filename_component(pc_dir "${pc_files}" DIRECTORY)
get_filename_component(lib_dir "${pc_dir}" DIRECTORY)
if(NOT EXISTS "${lib_dir}/libshardtx.a" OR NOT EXISTS "${lib_dir}/libshardtx.so")
  message(FATAL_ERROR "packaging: ${lib_dir} lacks libshardtx.a or libshardtx.so")
endif()

# Fails unless `binary` needs libshardtx.so (want_shared) or does not (NOT want_shared).
function(check_needs_shared binary want_shared)
  if(NOT READELF)
    return()
  endif()
  execute_process(COMMAND "${READELF}" -d "${binary}" OUTPUT_VARIABLE dynamic RESULT_VARIABLE rc)
  set(needs FALSE)
  if(dynamic MATCHES "NEEDED[^\n]*libshardtx\\.so")
    set(needs TRUE)
  endif()
  if(NOT rc EQUAL 0 OR (want_shared AND NOT needs) OR (NOT want_shared AND needs))
    set(should "should")
    if(NOT want_shared)
      set(should "should not")
    endif()
    message(FATAL_ERROR "packaging: ${binary} ${should} need libshardtx.so "
                        "(readelf exit ${rc}):\n${dynamic}")
  endif()
endfunction()

# 2. A CMake host: find_package(shardtx).
set(make_program)
if(MAKE_PROGRAM)
  set(make_program "-DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM}")
endif()
list(JOIN EXTRA_FLAGS " " extra)
step("configure the find_package host" "${CMAKE_COMMAND}" -S "${CONSUMER_DIR}"
     -B "${WORK_DIR}/consumer-cmake" -G "${GENERATOR}" ${make_program}
     "-DCMAKE_CXX_COMPILER=${CXX}" "-DCMAKE_C_COMPILER=${CC}" -DCMAKE_BUILD_TYPE=Release
     "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_CXX_FLAGS=${extra}" "-DCMAKE_C_FLAGS=${extra}"
     "-DCMAKE_EXE_LINKER_FLAGS=${extra}")
file(STRINGS "${WORK_DIR}/consumer-cmake/CMakeCache.txt" found_dir REGEX "^shardtx_DIR:")
string(REGEX REPLACE "^[^=]*=" "" found_dir "${found_dir}")
get_filename_component(found_dir "${found_dir}" REALPATH)
get_filename_component(real_prefix "${prefix}" REALPATH)
string(FIND "${found_dir}" "${real_prefix}/" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "packaging: find_package(shardtx) found '${found_dir}', not the one "
                      "installed in ${prefix}")
endif()
step("build the find_package host" "${CMAKE_COMMAND}" --build "${WORK_DIR}/consumer-cmake")
step("run the find_package host" "${WORK_DIR}/consumer-cmake/consumer" "${WORK_DIR}/db-cmake")
step("run the find_package C host (shared)" "${WORK_DIR}/consumer-cmake/consumer_c"
     "${WORK_DIR}/db-cmake-c")
check_needs_shared("${WORK_DIR}/consumer-cmake/consumer_c" TRUE)
# The C host asked for one log shared by its shards: the directory has it, and no shard has a
# log of its own; the installed CLI reads it as a shared log and finds it clean.
if(NOT IS_DIRECTORY "${WORK_DIR}/db-cmake-c/log" OR EXISTS "${WORK_DIR}/db-cmake-c/shard-000/wal")
  message(FATAL_ERROR "packaging: the C host's database has no shared log:\n"
                      "packaging: scratch directory kept: ${WORK_DIR}")
endif()
step("the installed shardtx CLI verifies the shared log" "${prefix}/bin/shardtx" wal verify
     "${WORK_DIR}/db-cmake-c")
if(NOT step_output MATCHES "shared")
  message(FATAL_ERROR "packaging: `shardtx wal verify` does not say the log is shared:\n"
                      "${step_output}\npackaging: scratch directory kept: ${WORK_DIR}")
endif()
step("the installed shardtx CLI checks the database" "${prefix}/bin/shardtx" check
     "${WORK_DIR}/db-cmake-c")
step("the installed shardtx CLI dumps shard 1's records" "${prefix}/bin/shardtx" wal dump
     "${WORK_DIR}/db-cmake-c" --shard 1)
step("run the replicated host (three members, a failover)"
     "${WORK_DIR}/consumer-cmake/three_nodes" "${WORK_DIR}/three-nodes")
step("run the find_package C host (static)" "${WORK_DIR}/consumer-cmake/consumer_c_static"
     "${WORK_DIR}/db-cmake-c-static")
check_needs_shared("${WORK_DIR}/consumer-cmake/consumer_c_static" FALSE)

# 3. Hosts built with the compiler and pkg-config alone.
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
set(ENV{LD_LIBRARY_PATH} "${lib_dir}")
step("pkg-config --cflags --libs shardtx" pkg-config --cflags --libs shardtx)
string(STRIP "${step_output}" pc_flags)
message(STATUS "packaging: pkg-config --cflags --libs shardtx: ${pc_flags}")
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
step("build the pkg-config host" "${CXX}" -std=c++20 ${EXTRA_FLAGS}
     "${CONSUMER_DIR}/main.cc" -o "${WORK_DIR}/consumer-pkgconfig" ${pc_flags})
step("run the pkg-config host" "${WORK_DIR}/consumer-pkgconfig" "${WORK_DIR}/db-pkgconfig")
check_needs_shared("${WORK_DIR}/consumer-pkgconfig" TRUE)
step("build the pkg-config C host" "${CC}" -std=c99 ${EXTRA_FLAGS}
     "${CONSUMER_DIR}/main.c" -o "${WORK_DIR}/consumer-pkgconfig-c" ${pc_flags})
step("run the pkg-config C host" "${WORK_DIR}/consumer-pkgconfig-c" "${WORK_DIR}/db-pkgconfig-c")
check_needs_shared("${WORK_DIR}/consumer-pkgconfig-c" TRUE)

step("pkg-config --static --cflags --libs shardtx"
     pkg-config --static --cflags --libs shardtx)
string(STRIP "${step_output}" pc_static_flags)
message(STATUS "packaging: pkg-config --static --cflags --libs shardtx: ${pc_static_flags}")
separate_arguments(pc_static_flags UNIX_COMMAND "${pc_static_flags}")
list(FIND pc_static_flags -lshardtx at)
if(at EQUAL -1)
  message(FATAL_ERROR "packaging: no -lshardtx in the static link line")
endif()
list(TRANSFORM pc_static_flags REPLACE "^-lshardtx$" "${lib_dir}/libshardtx.a")
step("build the static pkg-config C host" "${CC}" -std=c99 ${EXTRA_FLAGS}
     "${CONSUMER_DIR}/main.c" -o "${WORK_DIR}/consumer-pkgconfig-c-static" ${pc_static_flags})
step("run the static pkg-config C host" "${WORK_DIR}/consumer-pkgconfig-c-static"
     "${WORK_DIR}/db-pkgconfig-c-static")
check_needs_shared("${WORK_DIR}/consumer-pkgconfig-c-static" FALSE)
unset(ENV{LD_LIBRARY_PATH})

# 4. The installed crash tool runs, and says what it is.
# (absl's --help exits 1, so only the text is checked.)
execute_process(COMMAND "${prefix}/bin/crashtest" --help OUTPUT_VARIABLE help ERROR_VARIABLE help)
if(NOT help MATCHES "test build")
  message(FATAL_ERROR "packaging: crashtest --help does not say it is a test build:\n${help}")
endif()
step("crashtest, 2 rounds" "${prefix}/bin/crashtest" --mode=blackbox --rounds=2 --shards=2
     --threads=2 "--dir=${WORK_DIR}/crashtest")

file(REMOVE_RECURSE "${WORK_DIR}")
message(STATUS "packaging: find_package(shardtx) and pkg-config hosts, C++ and C, shared and "
               "static, built and ran against the installed, relocated library")
