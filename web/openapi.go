package web

import (
	"context"
	"maps"
	"net/http"
	"reflect"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"

	"github.com/taskrace/taskrace/app"
	"github.com/taskrace/taskrace/live"
)

const apiDescription = `taskrace launches the same batch of IO-bound tasks (HTTP calls to a /delay/N endpoint)
sequentially, concurrently in one process, or distributed over asynq workers on Redis, and
streams every task's progress as server-sent events.

Errors are application/problem+json (RFC 9457). An invalid input answers 422 with a message
naming the field, the limit and the value.`

const embeddedNote = `

This server runs on an embedded Redis: its runs live in memory only and are gone when it stops.`

// newAPI makes the huma API on the Fiber app: OpenAPI 3.1 at /openapi.json, problem+json
// errors, no docs page of its own (it would load from a CDN; /docs serves vendored assets).
// schemaName names a type's schema: huma's name, with Recorded before the types of package
// live, whose Task, Event and Worker are not the app's.
func schemaName(t reflect.Type, hint string) string {
	name := huma.DefaultSchemaNamer(t, hint)
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.PkgPath() == reflect.TypeFor[live.Task]().PkgPath() {
		return "Recorded" + name
	}
	return name
}

func (s *Server) newAPI() huma.API {
	useProblemsInHuma()
	version := s.cfg.Version
	if version == "" {
		version = "dev"
	}
	hc := huma.DefaultConfig("taskrace API", version)
	hc.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", schemaName)
	hc.DocsPath = ""
	hc.SchemasPath = ""
	hc.CreateHooks = nil                // no $schema field or Link header in responses
	hc.Formats = maps.Clone(hc.Formats) // huma's default map is shared by every API
	hc.Formats["application/json"], hc.Formats["json"] = strictJSON, strictJSON
	hc.Info.Description = apiDescription
	if s.cfg.Embedded {
		hc.Info.Description += embeddedNote
	}
	server := &huma.Server{URL: "/", Description: "this server"}
	if s.cfg.PublicURL != "" {
		server.URL = s.cfg.PublicURL
	}
	hc.Servers = []*huma.Server{server}
	if s.cfg.AdminToken != "" {
		hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{bearerScheme: {
			Type:        "http",
			Scheme:      "bearer",
			Description: "The admin's token (ADMIN_TOKEN). Launching (unless PUBLIC_LAUNCH), canceling, pinning and deleting need it; reading never does.",
		}}
	}
	hc.Tags = []*huma.Tag{
		{Name: "runs", Description: "Launch, follow and cancel runs"},
		{Name: "tasks", Description: "One task of a run, and the tasks of any asynq application that records them with package live"},
		{Name: "seed", Description: "Routes compatible with the original FastAPI + Celery demo"},
		{Name: "health", Description: "Liveness and readiness"},
	}
	// app.Time marshals as an RFC 3339 string (null when unset), not as the struct it is.
	hc.Components.Schemas.RegisterTypeAlias(reflect.TypeFor[app.Time](), reflect.TypeFor[time.Time]())
	api := humafiber.New(s.app, hc)
	// huma serves the document itself, in these forms.
	for _, form := range []string{".json", ".yaml", "-3.0.json", "-3.0.yaml"} {
		s.declare(http.MethodGet, hc.OpenAPIPath+form, open)
	}
	api.UseMiddleware(s.bound)
	return api
}

// bound gives every API call a deadline, so that a Redis that does not answer turns into a
// 503 rather than a hang. Routes that wait on purpose detach from it.
func (s *Server) bound(ctx huma.Context, next func(huma.Context)) {
	c, cancel := context.WithTimeout(ctx.Context(), s.apiTimeout)
	defer cancel()
	next(huma.WithContext(ctx, c))
}

// limitSchema sets the bounds of a property of a registered schema from the configured
// limits, which struct tags cannot know.
func (s *Server) limitSchema(name, prop string, min, max float64) {
	sc := s.api.OpenAPI().Components.Schemas.Map()[name]
	if sc == nil || sc.Properties[prop] == nil {
		panic("web: no schema property " + name + "." + prop) // a renamed type: caught by any test
	}
	setBounds(sc.Properties[prop], min, max)
}

// limitParam sets the bounds of a query parameter of GET path from the configured limits.
func (s *Server) limitParam(path, name string, min, max float64) {
	if item := s.api.OpenAPI().Paths[path]; item != nil && item.Get != nil {
		for _, p := range item.Get.Parameters {
			if p.Name == name {
				setBounds(p.Schema, min, max)
				return
			}
		}
	}
	panic("web: no parameter " + name + " of GET " + path)
}

// setBounds sets a schema's bounds; huma validates with them and documents them.
func setBounds(sc *huma.Schema, min, max float64) {
	sc.Minimum, sc.Maximum = &min, &max
	sc.PrecomputeMessages()
}

// describeByHand adds to the OpenAPI document the routes huma does not serve itself.
func (s *Server) describeByHand() {
	oapi := s.api.OpenAPI()
	reg := oapi.Components.Schemas
	problem := reg.Schema(reflect.TypeFor[Problem](), true, "Problem")
	event := reg.Schema(reflect.TypeFor[app.Event](), true, "Event")
	problemContent := func(desc string) *huma.Response {
		return &huma.Response{Description: desc, Content: map[string]*huma.MediaType{
			"application/problem+json": {Schema: problem},
		}}
	}
	s.describe(&huma.Operation{
		OperationID: "stream-run-events",
		Method:      http.MethodGet,
		Path:        "/api/runs/{id}/events",
		Tags:        []string{"runs"},
		Summary:     "Stream a run's events",
		Description: "Server-sent events: every event of the run after the resume position, live, " +
			"ending after the terminal event (run.finished, run.canceled or run.interrupted). " +
			"Each frame is `id: <stream entry ID>`, `event: <type>` and `data: <the event as JSON>`; " +
			"a `: ping` comment comes every 15 s. A reconnecting EventSource sends Last-Event-ID and " +
			"misses nothing. A run that has ended, asked to resume at its last event, answers 204.\n\n" +
			"If the run's data vanishes from Redis while it is streamed (a Redis restarted without " +
			"persistence, a flush, the run's retention), the stream ends with a `run.interrupted` event " +
			"whose reason is \"" + app.ReasonGone + "\". That event is not in the log, so its frame has " +
			"no `id:`; a reconnect then gets 404.\n\n" +
			"A viewer that accepts nothing for STREAM_WRITE_TIMEOUT (10 s by default) is disconnected; " +
			"it resumes with Last-Event-ID. One that falls far behind the live events is served from " +
			"the log until it has caught up. Past MAX_VIEWERS open streams, a new one gets 503.",
		Parameters: []*huma.Param{
			{Name: "id", In: "path", Required: true, Description: "Run ID", Schema: &huma.Schema{Type: "string"}},
			{Name: "Last-Event-ID", In: "header", Description: "Resume after this event ID (sent by EventSource on reconnect)",
				Schema: &huma.Schema{Type: "string", Pattern: `^\d+-\d+$`}},
			{Name: "after", In: "query", Description: "Resume after this event ID, when no Last-Event-ID header is sent",
				Schema: &huma.Schema{Type: "string", Pattern: `^\d+-\d+$`}},
		},
		Responses: map[string]*huma.Response{
			"200": {Description: "The event stream. The data of each frame is an Event (see x-event-data).", Content: map[string]*huma.MediaType{
				"text/event-stream": {
					Schema:     &huma.Schema{Type: "string", Description: "text/event-stream frames whose data is an Event"},
					Extensions: map[string]any{"x-event-data": event},
				},
			}},
			"204": {Description: "The run has ended and the resume position is its last event: nothing more will come"},
			"400": problemContent("The resume position is not an event ID"),
			"404": problemContent("No such run"),
			"503": problemContent("Redis is unreachable, or the server already serves MAX_VIEWERS streams"),
		},
	})
}
