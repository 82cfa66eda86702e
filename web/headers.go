package web

import (
	"strings"

	"github.com/gofiber/fiber/v2"
)

// contentPolicy is the one Content-Security-Policy of every answer: scripts from our own
// origin (and the inline scripts named by hash, the monitor's), nothing from any other host,
// never framed. Inline style attributes are allowed: bars are sized by them, and Swagger UI
// and asynqmon set their own.
func contentPolicy(scriptHashes ...string) string {
	script := "'self'"
	if len(scriptHashes) > 0 {
		script += " " + strings.Join(scriptHashes, " ")
	}
	return "default-src 'self'; script-src " + script + "; style-src 'self' 'unsafe-inline'; " +
		"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
		"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

const scriptsLocal = "taskrace.scripts"

// allowScripts lets the answer's page run the inline scripts with these hashes.
func allowScripts(c *fiber.Ctx, hashes []string) { c.Locals(scriptsLocal, hashes) }

// securityHeaders sets the headers every answer carries, over whatever a handler set: no
// route can widen the policy but through allowScripts.
func securityHeaders(c *fiber.Ctx) error {
	err := c.Next()
	hashes, _ := c.Locals(scriptsLocal).([]string)
	h := &c.Response().Header
	h.Set(fiber.HeaderContentSecurityPolicy, contentPolicy(hashes...))
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set(fiber.HeaderReferrerPolicy, "same-origin")
	return err
}
