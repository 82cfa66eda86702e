package web

import (
	"bytes"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// replayFrames is what a finished run's page needs to replay more than its rows and bars:
// its status, progress and summary at each moment before its end, as the projection at
// that instant has them (app.Moments), rendered by the components the page itself uses.
// The page fetches it when a replay starts: a big run's page stays as light as it was.
func (s *Server) replayFrames(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	p, _, err := s.core.ReadRun(ctx, c.Params("id"), time.Now())
	if err != nil {
		return s.pageError(c, err)
	}
	if !p.Ended {
		return s.pageError(c, app.Errorf(app.EConflict, "run %s has not ended: a replay starts once it has", p.Run.ID))
	}
	evs, err := s.core.Log.ReadAll(ctx, p.Run.ID)
	if err != nil {
		return s.pageError(c, err)
	}
	var buf bytes.Buffer
	if err := templates.ReplayFrames(p.Run, app.Moments(p.Run, evs)).Render(ctx, &buf); err != nil {
		return err
	}
	c.Status(http.StatusOK)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	// What a run was before its end never changes.
	c.Set(fiber.HeaderCacheControl, "private, max-age=86400, immutable")
	return c.Send(buf.Bytes())
}
