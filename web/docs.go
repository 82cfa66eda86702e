package web

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"html/template"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/static"
)

// docsPage is the interactive API documentation: Swagger UI from vendored assets, started
// by a script of its own (no inline script), reading /openapi.json.
var docsPage = template.Must(template.New("docs").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>taskrace API</title>
<link rel="icon" href="{{.Icon}}" type="image/svg+xml">
<link rel="stylesheet" href="{{.SwaggerCSS}}">
<style>
  .taskrace-bar { font-family: system-ui, sans-serif; padding: .75rem 1.25rem; border-bottom: 1px solid #ddd; display: flex; gap: 1.5rem; align-items: baseline; }
  .taskrace-bar a { color: inherit; }
  .taskrace-note { color: #8a5300; }
</style>
</head>
<body>
<header class="taskrace-bar">
  <a href="/"><strong>taskrace</strong></a>
  <span>API {{.Version}}</span>
  <a href="/openapi.json">openapi.json</a>
  {{- if .Embedded}}
  <span class="taskrace-note">Embedded Redis: runs live in memory only and are gone when the server stops.</span>
  {{- end}}
</header>
<main id="swagger-ui"></main>
<noscript><p>The interactive docs need JavaScript. The API is described in <a href="/openapi.json">/openapi.json</a>.</p></noscript>
<script src="{{.SwaggerJS}}" defer></script>
<script src="{{.BootJS}}" defer></script>
</body>
</html>
`))

type docsData struct {
	Icon, SwaggerCSS, SwaggerJS, BootJS string
	Version                             string
	Embedded                            bool
}

func (s *Server) docs(c *fiber.Ctx) error {
	version := s.cfg.Version
	if version == "" {
		version = "dev"
	}
	var buf bytes.Buffer
	err := docsPage.Execute(&buf, docsData{
		Icon:       static.Path("img/favicon.svg"),
		SwaggerCSS: static.Path("vendor/swagger-ui.css"),
		SwaggerJS:  static.Path("vendor/swagger-ui-bundle.js"),
		BootJS:     static.Path("js/docs.js"),
		Version:    version,
		Embedded:   s.cfg.Embedded,
	})
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(buf.Bytes())
}

// static serves the embedded assets. A content-hashed URL never changes meaning, so it is
// cached for a year; a plain one is revalidated by ETag. Gzip is sent when accepted.
func (s *Server) static(c *fiber.Ctx) error {
	urlPath := strings.Clone(c.Params("*"))
	name, data, contentType, ok := static.Lookup(urlPath)
	if !ok {
		return newProblem(http.StatusNotFound, "no such asset: /static/"+urlPath)
	}
	c.Set(fiber.HeaderContentType, contentType)
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if name != urlPath {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		etag := s.etag(name, data)
		c.Set(fiber.HeaderETag, etag)
		c.Set(fiber.HeaderCacheControl, "no-cache")
		if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
			return c.SendStatus(fiber.StatusNotModified)
		}
	}
	if c.Context().Request.Header.HasAcceptEncoding("gzip") {
		if gz := static.Gzipped(name); gz != nil {
			data = gz
			c.Set(fiber.HeaderContentEncoding, "gzip")
		}
	}
	// The assets are shared, read-only bytes: stream them rather than hand fasthttp a body
	// it may consider its own.
	c.Response().SetBodyStream(bytes.NewReader(data), len(data))
	return nil
}

func (s *Server) etag(name string, data []byte) string {
	if v, ok := s.etags.Load(name); ok {
		return v.(string)
	}
	sum := sha256.Sum256(data)
	tag := `"` + hex.EncodeToString(sum[:12]) + `"`
	s.etags.Store(name, tag)
	return tag
}

// etagMatches reports whether an If-None-Match header names etag (weakly, as RFC 9110 says
// for If-None-Match).
func etagMatches(header, etag string) bool {
	for part := range strings.SplitSeq(header, ",") {
		part = strings.TrimSpace(part)
		if part == "*" || strings.TrimPrefix(part, "W/") == etag {
			return true
		}
	}
	return false
}
