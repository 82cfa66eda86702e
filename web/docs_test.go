package web

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/static"
)

func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	t.Parallel()
	h := start(t)
	res := h.get("/openapi.json")
	if res.status != http.StatusOK {
		t.Fatalf("status %d", res.status)
	}
	var doc struct {
		OpenAPI    string                               `json:"openapi"`
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]map[string]any `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	res.json(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi = %q, want 3.1.x", doc.OpenAPI)
	}
	routes := map[string][]string{
		"/api/runs":             {"get", "post"},
		"/api/runs/{id}":        {"get", "delete"},
		"/api/workers":          {"get"},
		"/api/workers/stream":   {"get"},
		"/api/runs/{id}/events": {"get"},
		"/api/runs/{id}/cancel": {"post"},
		"/api/runs/{id}/pin":    {"post", "delete"},
		"/api/tasks/{task_id}":  {"get"},
		// The tasks recorded with package live.
		"/api/tasks":              {"get"},
		"/api/tasks/{queue}/{id}": {"get"},
		"/api/tasks/events":       {"get"},
		"/api/stats":              {"get"},
		"/sequential":             {"get"},
		"/sequential_celery":      {"get"},
		"/distributed":            {"get"},
		"/concurrent":             {"get"},
		"/result/{task_id}":       {"get"},
		"/healthz":                {"get"},
		"/readyz":                 {"get"},
	}
	for path, methods := range routes {
		for _, m := range methods {
			if doc.Paths[path][m] == nil {
				t.Errorf("no %s %s in the document", strings.ToUpper(m), path)
			}
		}
	}
	if len(doc.Paths) != len(routes) {
		t.Errorf("%d paths: %v", len(doc.Paths), keys(doc.Paths))
	}
	tasks := doc.Components.Schemas["RunRequest"].Properties["tasks"]
	if tasks["minimum"] != 1.0 || tasks["maximum"] != 10000.0 {
		t.Errorf("RunRequest.tasks = %v, want the configured limits", tasks)
	}
	if _, ok := doc.Components.Schemas["Problem"]; !ok {
		t.Error("no Problem schema")
	}
	if _, ok := doc.Components.Schemas["Event"]; !ok {
		t.Error("no Event schema")
	}
	// Every task state is documented wherever a task's state is answered.
	for _, prop := range []struct{ schema, field string }{{"Task", "state"}, {"TaskDetail", "state"}, {"TaskResult", "state"}, {"SeedResult", "state"}} {
		enum, _ := doc.Components.Schemas[prop.schema].Properties[prop.field]["enum"].([]any)
		var got []string
		for _, v := range enum {
			got = append(got, fmt.Sprint(v))
		}
		if !slices.Equal(got, app.TaskStates) {
			t.Errorf("%s.%s enum %v, want %v", prop.schema, prop.field, got, app.TaskStates)
		}
	}
	if summary := doc.Components.Schemas["Summary"].Properties; summary["retries"] == nil || summary["speed_up"] == nil {
		t.Errorf("the Summary schema lacks retries or speed_up: %v", keys(summary))
	}
	if events := doc.Paths["/api/runs/{id}/events"]["get"]["responses"]; !strings.Contains(mustJSON(t, events), "text/event-stream") {
		t.Errorf("the events route does not say it streams: %s", mustJSON(t, events))
	}
}

func keys[M ~map[string]V, V any](m M) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestDocsPageIsSelfContained(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.Embedded = true }))
	res := h.get("/docs")
	if res.status != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, Content-Type %q", res.status, res.header.Get("Content-Type"))
	}
	html := string(res.body)
	if regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).MatchString(html) {
		t.Errorf("the docs page names an outside host:\n%s", html)
	}
	if strings.Contains(html, "<script>") || regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`).MatchString(html) {
		t.Error("the docs page has an inline script")
	}
	if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
	if !strings.Contains(html, `id="swagger-ui"`) || !strings.Contains(html, "in memory") {
		t.Error("the docs page lacks the Swagger UI mount or the in-memory note")
	}
	refs := regexp.MustCompile(`(?:src|href)="(/static/[^"]+)"`).FindAllStringSubmatch(html, -1)
	want := []string{static.Path("vendor/swagger-ui-bundle.js"), static.Path("vendor/swagger-ui.css"), static.Path("js/docs.js")}
	for _, w := range want {
		if !strings.Contains(html, `"`+w+`"`) {
			t.Errorf("the docs page does not load %s", w)
		}
	}
	for _, ref := range refs {
		if r := h.get(ref[1]); r.status != http.StatusOK || len(r.body) == 0 {
			t.Errorf("GET %s: %d", ref[1], r.status)
		}
	}
}

func TestStaticAssets(t *testing.T) {
	t.Parallel()
	h := start(t)
	raw := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	get := func(path string, header ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", h.base+path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := raw.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	_, plain, contentType, _ := static.Lookup("js/docs.js")

	hashed := get(static.Path("js/docs.js"))
	if hashed.StatusCode != http.StatusOK || !strings.Contains(hashed.Header.Get("Cache-Control"), "immutable") ||
		hashed.Header.Get("Content-Type") != contentType {
		t.Errorf("hashed asset: %d, %v", hashed.StatusCode, hashed.Header)
	}
	if b, _ := io.ReadAll(hashed.Body); string(b) != string(plain) {
		t.Error("hashed asset body differs from the file")
	}

	first := get("/static/js/docs.js")
	etag := first.Header.Get("ETag")
	if first.StatusCode != http.StatusOK || etag == "" || strings.Contains(first.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("plain asset: %d, %v", first.StatusCode, first.Header)
	}
	if again := get("/static/js/docs.js", "If-None-Match", etag); again.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the ETag: %d, want 304", again.StatusCode)
	}

	gz := get(static.Path("vendor/swagger-ui-bundle.js"), "Accept-Encoding", "gzip")
	if gz.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(gz.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip not served: %v", gz.Header)
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	unzipped, err := io.ReadAll(zr)
	_, bundle, _, _ := static.Lookup("vendor/swagger-ui-bundle.js")
	if err != nil || string(unzipped) != string(bundle) {
		t.Errorf("gzipped bundle does not unzip to the file (%v)", err)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	h := start(t)
	res := h.get("/healthz")
	if res.status != http.StatusOK || strings.TrimSpace(string(res.body)) != `{"status":"ok"}` {
		t.Errorf("/healthz: %d %s", res.status, res.body)
	}
	var ready Readiness
	if h.getOK("/readyz", &ready); ready.Status != "ready" || ready.Storage != "redis" {
		t.Errorf("/readyz = %+v", ready)
	}
}

func TestHTTPBinIsMounted(t *testing.T) {
	t.Parallel()
	h := start(t)
	if res := h.get("/httpbin/delay/0.05"); res.status != http.StatusOK {
		t.Errorf("/httpbin/delay/0.05: %d %s", res.status, res.body)
	}
	if res := h.get("/httpbin/delay/31"); res.status != http.StatusBadRequest {
		t.Errorf("/httpbin/delay/31 past the 30 s maximum: %d", res.status)
	}
}

// TestOpenAPIPassesRedoclyLint runs a standard linter's recommended rules over the document,
// as served with ADMIN_TOKEN set, and wants no error.
func TestOpenAPIPassesRedoclyLint(t *testing.T) {
	t.Parallel()
	h := start(t, withWebConfig(func(c *Config) { c.AdminToken = speakerToken }))
	res := h.get("/openapi.json")
	if res.status != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d", res.status)
	}
	var doc struct {
		Servers    []struct{ URL string } `json:"servers"`
		Components struct {
			SecuritySchemes map[string]struct{ Type, Scheme string } `json:"securitySchemes"`
		} `json:"components"`
		Paths map[string]map[string]struct {
			Security []map[string][]string `json:"security"`
		} `json:"paths"`
	}
	res.json(t, &doc)
	if len(doc.Servers) == 0 || doc.Servers[0].URL == "" {
		t.Error("the document names no server")
	}
	if sc := doc.Components.SecuritySchemes[bearerScheme]; sc.Type != "http" || sc.Scheme != "bearer" {
		t.Errorf("no bearer scheme: %+v", doc.Components.SecuritySchemes)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			need := h.srv.levels[routeKey{strings.ToUpper(method), fiberPath(path)}]
			wantsToken := need == admin || need == launch || need == restricted
			if hasToken := len(op.Security) > 0 && op.Security[0][bearerScheme] != nil; hasToken != wantsToken {
				t.Errorf("%s %s (%s): security %v", method, path, need, op.Security)
			}
		}
	}

	file := filepath.Join(t.TempDir(), "openapi.json")
	writeFile(t, file, res.body)
	cli := filepath.Join(repoRoot(t), "node_modules", "@redocly", "cli", "bin", "cli.js")
	if _, err := os.Stat(cli); err != nil {
		t.Fatalf("Redocly CLI is missing (make test installs it with npm ci): %v", err)
	}
	cmd := exec.Command("node", cli, "lint", "--extends=recommended", "--format=summary", file)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true", "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("error ")) {
		t.Errorf("redocly lint reports errors:\n%s", out)
	}
}
