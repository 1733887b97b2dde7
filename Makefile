# Kizuna: the two commands of the README, and the pieces they are made of.
#
#   make          build everything into build/ (normal) 
#   make run      install what is missing, build, run on 127.0.0.1:7350 (SQLite in ./data)
#   make test     install what is missing, build normal + sanitizer, run unit and
#                 end-to-end tests on SQLite and PostgreSQL
#
# Dependencies are Debian packages (installed with apt-get when missing) and,
# for the end-to-end tests, npm packages pinned in tests/e2e/package-lock.json.

DEBS := build-essential cmake pkg-config libuv1-dev libhttp-parser-dev libwslay-dev \
        libjansson-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev libpq-dev \
        libluajit2-5.1-dev libsodium-dev libcrypt-dev libyaml-dev libnats-dev \
        libcriterion-dev postgresql postgresql-client
NPROC := $(shell nproc 2>/dev/null || echo 2)
BUILD := build
ASAN_BUILD := build/asan
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build asan deps deps-node run test unit unit-asan e2e e2e-asan clean

all: build

# Installs only the packages that are missing, so a ready machine pays nothing.
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

deps-node: deps
	@cd tests/e2e && if [ ! -d node_modules ] || [ package-lock.json -nt node_modules ]; then npm ci --no-audit --no-fund; fi

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(NPROC)

asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DKZ_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(NPROC)

run: deps build
	@mkdir -p data
	./$(BUILD)/kizuna --data_dir ./data

# The test run starts one throwaway PostgreSQL cluster (tests/support/pg.sh),
# runs every suite against SQLite and PostgreSQL, normal and sanitizer builds,
# and stops the cluster by PID whatever happened.
test: deps deps-node build asan
	@bash tests/run.sh

clean:
	rm -rf $(BUILD)
