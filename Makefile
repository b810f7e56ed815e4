# The few verbs of this project. Each script installs what it needs and says what it does.
.PHONY: run test bench web

run:    ## build everything and start a server node and the gateway (SQLite), print the URL
	scripts/run.sh

test:   ## set up and run every test (Rust, PostgreSQL, MLS vectors in Chromium, fuzzing, Playwright)
	scripts/test.sh

bench:  ## run the benchmarks recorded in BENCHMARKS.md
	scripts/bench.sh

web:    ## build the browser client into pkg/
	scripts/build-web.sh
