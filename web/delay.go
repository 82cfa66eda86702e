package web

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// delay is the built-in delay target: GET /httpbin/delay/{seconds} waits that long and
// answers 200 with JSON, as httpbin's /delay does. It is all there is under /httpbin: being on
// taskrace's own origin, nothing there may set cookies, echo the request's headers, change
// the answer's headers or redirect.
func (s *Server) delay(c *fiber.Ctx) error {
	raw := c.Params("seconds")
	secs, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(secs) || math.IsInf(secs, 0) || secs < 0 {
		return newProblem(http.StatusBadRequest, "the delay must be a number of seconds, 0 or more; got "+strconv.Quote(raw))
	}
	// Compared in seconds, before a Duration can overflow.
	if s.cfg.MaxDelay > 0 && secs > s.cfg.MaxDelay.Seconds() {
		return newProblem(http.StatusBadRequest, "the delay must be at most "+s.cfg.MaxDelay.String()+" (MAX_DELAY); got "+raw+" s")
	}
	d := time.Duration(secs * float64(time.Second))
	if d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.base.Done():
			t.Stop()
			return newProblem(http.StatusServiceUnavailable, "the server is shutting down")
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(fiber.Map{"delay": secs})
}
