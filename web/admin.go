package web

import (
	"crypto/subtle"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// isAdmin reports whether the request comes from the admin: anyone when no ADMIN_TOKEN is
// set (everything is open), else a request that presents the token as a Bearer credential.
func (s *Server) isAdmin(c *fiber.Ctx) bool {
	if s.cfg.AdminToken == "" {
		return true
	}
	auth := c.Get(fiber.HeaderAuthorization)
	token, ok := strings.CutPrefix(auth, "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(s.cfg.AdminToken)) == 1
}
