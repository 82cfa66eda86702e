package web

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
)

const headerRequestID = "X-Request-ID"

// A request ID a client or proxy sends is kept when it is short and plain.
var plainID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// requestID gives every request an ID, answered in X-Request-ID and carried by its context,
// so every line it causes in the log names it; it also writes the request's own line.
func (s *Server) requestID(c *fiber.Ctx) error {
	id := c.Get(headerRequestID)
	if !plainID.MatchString(id) {
		b := make([]byte, 8)
		rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(headerRequestID, id)
	c.SetUserContext(app.WithRequestID(c.UserContext(), id))
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		if fe, ok := err.(*fiber.Error); ok {
			status = fe.Code
		}
	}
	level := slog.LevelInfo
	switch {
	case status >= 500:
		level = slog.LevelWarn
	case strings.HasPrefix(c.Path(), "/httpbin/") || strings.HasPrefix(c.Path(), "/static/"):
		level = slog.LevelDebug // the tasks' own calls and assets: one line each would drown the rest
	}
	s.logger.Log(c.UserContext(), level, "request", "method", c.Method(), "path", c.Path(),
		"status", status, "duration_ms", float64(time.Since(start).Microseconds())/1000)
	return err
}
