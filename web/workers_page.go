package web

import (
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/templates"
)

// workersPage lists the live workers; js/workers.js keeps the list live from
// /api/workers/stream.
func (s *Server) workersPage(c *fiber.Ctx) error {
	ctx, cancel := pageContext(c)
	defer cancel()
	v := templates.WorkersView{Page: s.page(c, "Workers", "workers")}
	v.Page.Scripts = []string{"js/workers.js"}
	list, err := s.workers(ctx)
	if err != nil {
		v.Error = app.ErrorMessage(err)
		return s.render(c, statusOf(app.ErrorCode(err)), templates.Workers(v))
	}
	v.Capacity, v.At = list.Capacity, list.At
	for _, w := range list.Servers {
		row := templates.WorkerServer{Host: w.Host, PID: w.PID, Concurrency: w.Concurrency, Queues: w.Queues,
			Started: w.Started, Status: w.Status}
		for _, t := range w.Active {
			row.Active = append(row.Active, templates.ActiveTask{TaskID: t.TaskID, RunID: t.RunID, Index: t.Index})
		}
		v.Servers = append(v.Servers, row)
	}
	return s.render(c, http.StatusOK, templates.Workers(v))
}
