package static

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
)

func testCatalog(t *testing.T, files map[string]string) *catalog {
	t.Helper()
	fsys := fstest.MapFS{}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	c, err := newCatalog(fsys)
	if err != nil {
		t.Fatalf("newCatalog: %v", err)
	}
	return c
}

func TestPathHashesContent(t *testing.T) {
	t.Parallel()
	hashed := regexp.MustCompile(`^/static/css/app\.[0-9a-f]{8}\.css$`)
	tests := []struct {
		name     string
		a, b     string
		wantSame bool
	}{
		{name: "same content, same URL", a: "body{}", b: "body{}", wantSame: true},
		{name: "changed content, new URL", a: "body{}", b: "body{color:red}", wantSame: false},
		{name: "one byte differs", a: "a{}\n", b: "a{} ", wantSame: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pa := testCatalog(t, map[string]string{"css/app.css": tt.a}).path("css/app.css")
			pb := testCatalog(t, map[string]string{"css/app.css": tt.b}).path("css/app.css")
			for _, p := range []string{pa, pb} {
				if !hashed.MatchString(p) {
					t.Errorf("path = %q, want it to match %s", p, hashed)
				}
			}
			if (pa == pb) != tt.wantSame {
				t.Errorf("paths %q and %q: same = %v, want %v", pa, pb, pa == pb, tt.wantSame)
			}
		})
	}
}

func TestPathNames(t *testing.T) {
	t.Parallel()
	c := testCatalog(t, map[string]string{
		"css/app.css":       "body{}",
		"vendor/lib.min.js": "lib",
		"img/LICENSE":       "text",
	})
	tests := []struct {
		name    string
		asset   string
		pattern string
	}{
		{name: "hash goes before the extension", asset: "css/app.css", pattern: `^/static/css/app\.[0-9a-f]{8}\.css$`},
		{name: "only the last extension counts", asset: "vendor/lib.min.js", pattern: `^/static/vendor/lib\.min\.[0-9a-f]{8}\.js$`},
		{name: "no extension", asset: "img/LICENSE", pattern: `^/static/img/LICENSE\.[0-9a-f]{8}$`},
		{name: "unknown name stays plain", asset: "css/missing.css", pattern: `^/static/css/missing\.css$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := c.path(tt.asset); !regexp.MustCompile(tt.pattern).MatchString(got) {
				t.Errorf("path(%q) = %q, want it to match %s", tt.asset, got, tt.pattern)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	c := testCatalog(t, map[string]string{
		"css/app.css":     "body{}",
		"js/live.js":      "export {}",
		"img/favicon.svg": "<svg/>",
	})
	hashedCSS := strings.TrimPrefix(c.path("css/app.css"), "/static/")
	tests := []struct {
		name     string
		urlPath  string
		wantOK   bool
		wantName string
		wantData string
	}{
		{name: "plain", urlPath: "css/app.css", wantOK: true, wantName: "css/app.css", wantData: "body{}"},
		{name: "hashed", urlPath: hashedCSS, wantOK: true, wantName: "css/app.css", wantData: "body{}"},
		{name: "full hashed URL", urlPath: c.path("js/live.js"), wantOK: true, wantName: "js/live.js", wantData: "export {}"},
		{name: "leading slash", urlPath: "/img/favicon.svg", wantOK: true, wantName: "img/favicon.svg", wantData: "<svg/>"},
		{name: "full plain URL", urlPath: "/static/css/app.css", wantOK: true, wantName: "css/app.css", wantData: "body{}"},
		{name: "stale hash", urlPath: "css/app.00000000.css", wantOK: false},
		{name: "unknown", urlPath: "css/missing.css", wantOK: false},
		{name: "directory", urlPath: "css", wantOK: false},
		{name: "empty", urlPath: "", wantOK: false},
		{name: "traversal", urlPath: "../static.go", wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := c.lookup(tt.urlPath)
			if (a != nil) != tt.wantOK {
				t.Fatalf("lookup(%q) found = %v, want %v", tt.urlPath, a != nil, tt.wantOK)
			}
			if a == nil {
				return
			}
			if a.name != tt.wantName || string(a.data) != tt.wantData {
				t.Errorf("lookup(%q) = %q %q, want %q %q", tt.urlPath, a.name, a.data, tt.wantName, tt.wantData)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		want string
	}{
		{name: "css/app.css", want: "text/css; charset=utf-8"},
		{name: "js/live.js", want: "text/javascript; charset=utf-8"},
		{name: "img/favicon.svg", want: "image/svg+xml"},
		{name: "vendor/swagger-ui-bundle.js.LICENSE.txt", want: "text/plain; charset=utf-8"},
		{name: "img/LOGO.PNG", want: "image/png"},
		{name: "img/blob", want: "application/octet-stream"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := contentType(tt.name); got != tt.want {
				t.Errorf("contentType(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestGzipped(t *testing.T) {
	t.Parallel()
	noise := make([]byte, 4096)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	text := strings.Repeat(".btn{color:red}", 200)
	c := testCatalog(t, map[string]string{"css/app.css": text, "img/noise.png": string(noise)})

	t.Run("round trip, by plain and hashed name, concurrently", func(t *testing.T) {
		t.Parallel()
		var wg sync.WaitGroup
		results := make([][]byte, 8)
		for i := range results {
			name := "css/app.css"
			if i%2 == 1 {
				name = c.path(name)
			}
			wg.Go(func() { results[i] = c.lookup(name).gzipped() })
		}
		wg.Wait()
		for i, gz := range results {
			if len(gz) == 0 || len(gz) >= len(text) {
				t.Fatalf("result %d: %d gzipped bytes for %d plain bytes", i, len(gz), len(text))
			}
			if got := gunzip(t, gz); got != text {
				t.Errorf("result %d: gunzip gave %d bytes, want the original %d", i, len(got), len(text))
			}
		}
	})
	t.Run("incompressible gives nil", func(t *testing.T) {
		t.Parallel()
		if gz := c.lookup("img/noise.png").gzipped(); gz != nil {
			t.Errorf("gzipped noise = %d bytes, want nil", len(gz))
		}
	})
	t.Run("unknown gives nil", func(t *testing.T) {
		t.Parallel()
		if gz := Gzipped("css/missing.css"); gz != nil {
			t.Errorf("Gzipped(unknown) = %d bytes, want nil", len(gz))
		}
	})
}

func gunzip(t *testing.T, gz []byte) string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatalf("gzip.NewReader: %v", err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return string(data)
}

// TestEmbedded checks the files the pages rely on are in the binary and reachable through
// the package API.
func TestEmbedded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
	}{
		{name: "css/app.css", contentType: "text/css; charset=utf-8"},
		{name: "js/theme.js", contentType: "text/javascript; charset=utf-8"},
		{name: "js/live.js", contentType: "text/javascript; charset=utf-8"},
		{name: "js/docs.js", contentType: "text/javascript; charset=utf-8"},
		{name: "img/favicon.svg", contentType: "image/svg+xml"},
		{name: "vendor/swagger-ui-bundle.js", contentType: "text/javascript; charset=utf-8"},
		{name: "vendor/swagger-ui.css", contentType: "text/css; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := Path(tt.name)
			if url == "/static/"+tt.name {
				t.Fatalf("Path(%q) = %q, want a hashed URL", tt.name, url)
			}
			name, data, ct, ok := Lookup(url)
			if !ok || name != tt.name || ct != tt.contentType || len(data) == 0 {
				t.Fatalf("Lookup(%q) = %q, %d bytes, %q, %v; want %q, content, %q, true",
					url, name, len(data), ct, ok, tt.name, tt.contentType)
			}
			// Source maps are not shipped; a dangling reference makes devtools fetch a 404.
			if bytes.Contains(data, []byte("sourceMappingURL")) {
				t.Errorf("%s refers to a source map", tt.name)
			}
		})
	}
}
