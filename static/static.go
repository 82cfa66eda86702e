// Package static holds the files the pages load (built CSS, the app's scripts, vendored
// libraries and images), embedded in the binary so the app serves every asset itself.
//
// Pages link assets through Path, which puts a hash of the content in the URL; a hashed URL
// never changes meaning, so the web layer can let browsers cache it for a year, and a new
// build gets new URLs.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"path"
	"strings"
	"sync"
)

// FS holds the embedded assets, named relative to this directory ("css/app.css").
//
//go:embed css js vendor img
var FS embed.FS

// assets is built once from FS. The files never change while the process runs, so this is
// the one piece of package state, and it is read-only after initialisation.
var assets = mustCatalog(FS)

// Path returns the content-hashed URL of an asset, like "/static/css/app.3f2a9c1b.css" for
// "css/app.css"; an unknown name gets its plain URL, "/static/" + name.
func Path(name string) string {
	return assets.path(name)
}

// Lookup resolves a URL path under /static/ ("css/app.3f2a9c1b.css" or "css/app.css"; a
// leading "/" or "/static/" is ignored) to the asset's plain name, content and Content-Type.
// A hashed path resolves only with the current hash. The path named a hashed URL, which
// may be cached as immutable, exactly when the returned name differs from it.
func Lookup(urlPath string) (name string, data []byte, contentType string, ok bool) {
	a := assets.lookup(urlPath)
	if a == nil {
		return "", nil, "", false
	}
	return a.name, a.data, a.contentType, true
}

// Gzipped returns the gzip-compressed content of an asset (by plain or hashed name),
// compressed on first use and kept. It returns nil for an unknown name, and for an asset
// that gzip does not make smaller; serve the plain content then.
func Gzipped(name string) []byte {
	a := assets.lookup(name)
	if a == nil {
		return nil
	}
	return a.gzipped()
}

type asset struct {
	name        string // plain name, "css/app.css"
	hashed      string // "css/app.3f2a9c1b.css"
	data        []byte
	contentType string
	gzipped     func() []byte
}

type catalog struct {
	byName   map[string]*asset
	byHashed map[string]*asset
}

func mustCatalog(fsys fs.FS) *catalog {
	c, err := newCatalog(fsys)
	if err != nil {
		// Only a broken embed can get here; the binary is unusable without its assets.
		panic(fmt.Sprintf("static: %v", err))
	}
	return c
}

func newCatalog(fsys fs.FS) (*catalog, error) {
	c := &catalog{byName: map[string]*asset{}, byHashed: map[string]*asset{}}
	err := fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		a := &asset{
			name:        name,
			hashed:      hashedName(name, hex.EncodeToString(sum[:4])),
			data:        data,
			contentType: contentType(name),
		}
		// Compressing the Swagger bundle takes a noticeable moment: do it for the files
		// actually requested, not at start-up.
		a.gzipped = sync.OnceValue(func() []byte { return compress(data) })
		c.byName[name] = a
		c.byHashed[a.hashed] = a
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *catalog) path(name string) string {
	if a, ok := c.byName[name]; ok {
		return "/static/" + a.hashed
	}
	return "/static/" + name
}

func (c *catalog) lookup(urlPath string) *asset {
	p := strings.TrimPrefix(urlPath, "/")
	p = strings.TrimPrefix(p, "static/")
	// A plain name wins over a hashed one, should a file's name ever look hashed.
	if a, ok := c.byName[p]; ok {
		return a
	}
	return c.byHashed[p]
}

// hashedName puts the hash before the extension, so the URL keeps the extension that
// browsers, proxies and the Content-Type lookup go by.
func hashedName(name, hash string) string {
	ext := path.Ext(name)
	return strings.TrimSuffix(name, ext) + "." + hash + ext
}

// contentTypes fixes the types of the files shipped here. The mime package reads the
// system's tables, which differ between hosts (text/javascript or application/javascript),
// and a test or a cache key should not depend on the machine.
var contentTypes = map[string]string{
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".webp":  "image/webp",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
	".md":    "text/markdown; charset=utf-8",
	".html":  "text/html; charset=utf-8",
}

func contentType(name string) string {
	ext := strings.ToLower(path.Ext(name))
	if t, ok := contentTypes[ext]; ok {
		return t
	}
	if t := mime.TypeByExtension(ext); t != "" {
		return t
	}
	return "application/octet-stream"
}

// compress gzips data at the best ratio (it is done once per file), or returns nil when
// that saves nothing, as for already-compressed images.
func compress(data []byte) []byte {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil
	}
	if _, err := zw.Write(data); err != nil {
		return nil
	}
	if err := zw.Close(); err != nil {
		return nil
	}
	if buf.Len() >= len(data) {
		return nil
	}
	return buf.Bytes()
}
