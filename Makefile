# Thin wrapper over CMake. The two entry points a new user runs are `make test` and `make bench`.
# Each installs missing Debian packages (as root), configures build/ and builds, then runs.

BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
# Debian packages the build needs. librocksdb-dev (the benchmark's peer) and gnuplot-nox (its
# chart) are installed for `make test` too, so that the suite runs txbench's RocksDB and chart
# tests instead of skipping them.
PACKAGES := cmake g++ make pkg-config liblmdb-dev libabsl-dev libgtest-dev libgmock-dev \
            libbenchmark-dev libxxhash-dev librocksdb-dev gnuplot-nox libraft-dev libuv1-dev \
            libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc

.PHONY: test bench bench-long bench-micro build deps clean asan tsan

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

# About 6 minutes: 5 interleaved repetitions of the runs the targets of issues 5 and 19 compare.
bench: deps build
	$(BUILD_DIR)/bench/txbench --make-bench --json=$(BUILD_DIR)/bench-results.json \
	  --chart=$(BUILD_DIR)/bench-results.png

# About 40 minutes: the steady-state matrix (30 s windows, checkpoints and compactions inside).
bench-long: deps build
	$(BUILD_DIR)/bench/txbench --long-bench --json=$(BUILD_DIR)/bench-long-results.json \
	  --chart=$(BUILD_DIR)/bench-long-results.png

bench-micro: deps build
	$(BUILD_DIR)/bench/wal_bench

build:
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Sanitizer builds: `make asan` / `make tsan` build and run the suite in build-asan/ build-tsan/.
asan: deps
	$(MAKE) test BUILD_DIR=build-asan CMAKE_ARGS="-DSHARDTX_SANITIZER=asan -DCMAKE_BUILD_TYPE=RelWithDebInfo"
tsan: deps
	$(MAKE) test BUILD_DIR=build-tsan CMAKE_ARGS="-DSHARDTX_SANITIZER=tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo"

deps:
	@./tools/install-deps.sh $(PACKAGES)

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
