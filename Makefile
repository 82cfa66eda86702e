VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test test-deps fuzz generate css check-generated lint bench bench-compare run screenshots

build:
	go build -trimpath -ldflags "-X main.version=$(VERSION)" -o bin/taskrace .

# The whole suite, on a fresh clone too: installs what is missing first (test-deps), then
# runs every test with the race detector and each fuzz target briefly.
test: test-deps
	go test -race -count=1 ./...
	$(MAKE) fuzz

test-deps:
	bash scripts/test-deps.sh

FUZZTIME ?= 10s

fuzz:
	go test -run '^$$' -fuzz '^FuzzSafeNext$$' -fuzztime $(FUZZTIME) ./web
	go test -run '^$$' -fuzz '^FuzzPlanJSON$$' -fuzztime $(FUZZTIME) ./web
	go test -run '^$$' -fuzz '^FuzzPlanForm$$' -fuzztime $(FUZZTIME) ./web

generate:
	go tool templ generate

# --no-install: never fetch a different Tailwind major when node_modules is missing.
css:
	npx --no-install tailwindcss -i static/css/input.css -o static/css/app.css --minify

# Regenerates everything and fails if the committed files differ or a
# generated file was never committed.
check-generated: generate css
	git diff --exit-code -- '*_templ.go' static/css/app.css
	@untracked=$$(git status --porcelain --untracked-files=all -- '*_templ.go' static/css/app.css | grep '^??' || true); \
	if [ -n "$$untracked" ]; then echo "generated files not committed:"; echo "$$untracked"; exit 1; fi

lint:
	@files=$$(gofmt -l .); if [ -n "$$files" ]; then echo "gofmt needed:"; echo "$$files"; exit 1; fi
	go vet ./...

bench:
	go test -run '^$$' -bench . -benchmem ./...

# taskrace beside bare asynq, in processes of their own on one redis-server: throughput and
# CPU per task, then idle cost (docs/benchmarks.md). COMPARE_FLAGS="-pairs 9 -window 60s" etc.
bench-compare: build
	go run ./bench/compare -taskrace bin/taskrace $(COMPARE_FLAGS)

run:
	go run . serve

# Retakes the README's screenshots (docs/screenshots/) from a real 10 × 3 s demo in the browser.
screenshots:
	UPDATE_SCREENSHOTS=1 go test -count=1 -run 'TestBrowserDemoScreenshots' ./web/
