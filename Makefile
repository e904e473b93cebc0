# Thin wrapper over CMake. The two entry points a new user runs are `make test` and `make bench`.
# Each installs missing Debian packages (as root), configures build/ and builds, then runs.

BUILD_DIR ?= build
JOBS      ?= $(shell nproc)
CMAKE_ARGS ?=
# Debian packages the build needs. librocksdb-dev and gnuplot are for the benchmark only.
PACKAGES := cmake g++ make pkg-config liblmdb-dev libabsl-dev libgtest-dev libgmock-dev \
            libbenchmark-dev libxxhash-dev
BENCH_PACKAGES := librocksdb-dev gnuplot-nox

.PHONY: test bench bench-micro build deps bench-deps clean asan tsan

test: deps build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: deps bench-deps build
	$(BUILD_DIR)/bench/txbench --make-bench --json=$(BUILD_DIR)/bench-results.json \
	  --chart=$(BUILD_DIR)/bench-results.png

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

bench-deps:
	@./tools/install-deps.sh $(BENCH_PACKAGES)

clean:
	rm -rf $(BUILD_DIR) build-asan build-tsan
