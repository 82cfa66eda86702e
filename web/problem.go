package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humafiber"
	"github.com/danielgtaylor/huma/v2/validation"
	"github.com/gofiber/fiber/v2"

	"github.com/taskrace/taskrace/app"
)

// Problem is an RFC 9457 problem detail: the body of every error response, served as
// application/problem+json.
type Problem struct {
	Type   string        `json:"type" doc:"What kind of problem this is: urn:taskrace:problem:<kind>, or about:blank"`
	Title  string        `json:"title" doc:"The HTTP status text"`
	Status int           `json:"status" doc:"The HTTP status code"`
	Detail string        `json:"detail" doc:"What went wrong, in words a person can act on"`
	Errors []*FieldError `json:"errors,omitempty" doc:"The offending inputs, for invalid requests"`
}

// FieldError names one offending input: where it is, what is wrong, and the value sent.
type FieldError struct {
	Location string `json:"location" doc:"Where the input is: body.tasks, query.delay, header.Last-Event-ID, ..."`
	Message  string `json:"message" doc:"What is wrong, naming the field, the limit and the value"`
	Value    any    `json:"value,omitempty" doc:"The value that was sent"`
}

// Error returns the problem's detail.
func (p *Problem) Error() string { return p.Detail }

// GetStatus is the problem's HTTP status, for huma.
func (p *Problem) GetStatus() int { return p.Status }

// ContentType makes huma send problems as application/problem+json.
func (p *Problem) ContentType(ct string) string {
	if ct == fiber.MIMEApplicationJSON {
		return "application/problem+json"
	}
	return ct
}

// problemKinds names the kind of problem behind each status, in the words of app's codes.
var problemKinds = map[int]string{
	http.StatusBadRequest:            app.EMalformed,
	http.StatusNotFound:              app.ENotFound,
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusConflict:              app.EConflict,
	http.StatusRequestEntityTooLarge: "too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusUnprocessableEntity:   app.EInvalid,
	http.StatusTooManyRequests:       app.ETooMany,
	http.StatusInternalServerError:   app.EInternal,
	http.StatusServiceUnavailable:    app.EUnavailable,
}

func newProblem(status int, detail string) *Problem {
	typ := "about:blank"
	if kind, ok := problemKinds[status]; ok {
		typ = "urn:taskrace:problem:" + kind
	}
	return &Problem{Type: typ, Title: http.StatusText(status), Status: status, Detail: detail}
}

// statusOf maps the domain's error codes to HTTP statuses.
func statusOf(code string) int {
	switch code {
	case app.EInvalid:
		return http.StatusUnprocessableEntity
	case app.EMalformed:
		return http.StatusBadRequest
	case app.ENotFound:
		return http.StatusNotFound
	case app.EConflict:
		return http.StatusConflict
	case app.ETooMany:
		return http.StatusTooManyRequests
	case app.EUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// inputError ties a domain validation error to the request input it is about, so that the
// problem can say where the offending value was sent and echo it.
type inputError struct {
	err    error
	in     string         // body, query
	values map[string]any // the inputs by field name
}

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// about ties err, if it is about a field, to the inputs in in.
func about(err error, in string, values map[string]any) error {
	if err == nil {
		return nil
	}
	return &inputError{err: err, in: in, values: values}
}

// problem turns any error into the problem a client sees. It is the one place that maps
// errors to HTTP statuses; internal error text is logged here and never sent.
func (s *Server) problem(ctx context.Context, err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		return s.fiberProblem(ctx, fe)
	}
	code := app.ErrorCode(err)
	if code == app.EInternal && errors.Is(err, context.DeadlineExceeded) {
		// A deadline that no domain call worded (those say what they were doing).
		err, code = app.Unavailable("the request took too long", err), app.EUnavailable
	}
	switch code {
	case app.EInternal:
		s.logger.ErrorContext(ctx, "internal error", "err", err)
		return newProblem(http.StatusInternalServerError, "internal error: the request could not be completed, and the cause has been logged")
	case app.EUnavailable:
		s.logger.WarnContext(ctx, "unavailable", "err", err)
	}
	p = newProblem(statusOf(code), app.ErrorMessage(err))
	var ae *app.Error
	if errors.As(err, &ae) && ae.Field != "" {
		f := &FieldError{Location: ae.Field, Message: ae.Message}
		var in *inputError
		if errors.As(err, &in) {
			f.Location = in.in + "." + ae.Field
			f.Value = echoable(in.values[ae.Field])
		}
		p.Errors = []*FieldError{f}
	}
	return p
}

// fiberProblem words the errors Fiber itself raises: routing, body limit, malformed HTTP.
func (s *Server) fiberProblem(ctx context.Context, fe *fiber.Error) *Problem {
	switch fe.Code {
	case fiber.StatusNotFound:
		// Fiber's message is "Cannot METHOD /path".
		return newProblem(fe.Code, "no such route: "+strings.TrimPrefix(fe.Message, "Cannot "))
	case fiber.StatusMethodNotAllowed:
		return newProblem(fe.Code, "this route does not answer to that method; see /docs for the API")
	case fiber.StatusRequestEntityTooLarge:
		return newProblem(fe.Code, fmt.Sprintf("the request body is larger than the limit of %d bytes", s.cfg.MaxBody))
	case fiber.StatusInternalServerError:
		s.logger.ErrorContext(ctx, "internal error", "err", fe.Message)
		return newProblem(fe.Code, "internal error: the request could not be completed, and the cause has been logged")
	case fiber.StatusBadRequest:
		// fasthttp's words for malformed HTTP quote the request, credentials and all.
		s.logger.DebugContext(ctx, "malformed request", "err", fe.Message)
		return newProblem(fe.Code, "the request could not be read as HTTP/1.1")
	}
	s.logger.DebugContext(ctx, "request refused by the HTTP server", "status", fe.Code, "err", fe.Message)
	return newProblem(fe.Code, http.StatusText(fe.Code))
}

// handleError is Fiber's error handler: every error a plain handler returns, every route
// that does not exist and every recovered panic ends here.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	return writeProblem(c, s.problem(c.UserContext(), err))
}

func writeProblem(c *fiber.Ctx, p *Problem) error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	c.Status(p.Status)
	c.Set(fiber.HeaderContentType, "application/problem+json")
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Send(b)
}

// fail is what a huma handler returns for err.
func (s *Server) fail(ctx context.Context, err error) error { return s.problem(ctx, err) }

// jsonOnly answers 415 to a body that says it is not JSON, before huma reads it.
func (s *Server) jsonOnly(ctx huma.Context, next func(huma.Context)) {
	c := humafiber.Unwrap(ctx)
	ct := string(c.Request().Header.ContentType())
	if ct == "" {
		next(ctx) // huma takes an unlabelled body as JSON
		return
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != fiber.MIMEApplicationJSON && !strings.HasSuffix(mt, "+json")) {
		p := newProblem(http.StatusUnsupportedMediaType,
			fmt.Sprintf("the request body must be JSON, sent with Content-Type: application/json; got Content-Type %q", ct))
		p.Errors = []*FieldError{{Location: "header.Content-Type", Message: "must be application/json", Value: ct}}
		s.answer(c, p)
		return
	}
	next(ctx)
}

var problemsInHuma sync.Once

// useProblemsInHuma makes huma speak our problem format. huma.NewError is huma's one hook
// for this and it is process-wide; every Server sets the same function, once.
func useProblemsInHuma() {
	problemsInHuma.Do(func() { huma.NewError = humaProblem })
}

// humaProblem builds the problem for an error huma raises: unparsable or invalid input,
// mostly. Each message names the field, the limit and the value.
func humaProblem(status int, msg string, errs ...error) huma.StatusError {
	p := newProblem(status, msg)
	var details []string
	for _, err := range errs {
		d, ok := err.(huma.ErrorDetailer)
		if !ok {
			// A plain error may carry internal text: huma's own summary is all we say.
			continue
		}
		f := fieldProblem(status, d.ErrorDetail())
		p.Errors = append(p.Errors, f)
		details = append(details, f.Message)
	}
	switch {
	case status >= 500:
		p.Errors = nil
		p.Detail = "internal error: the request could not be completed"
	case status == http.StatusRequestEntityTooLarge:
		p.Detail = "the request body is too large"
	case len(details) > 0:
		p.Detail = strings.Join(details, "; ")
	}
	return p
}

const maxEchoed = 200 // longest string value echoed back in a problem

func fieldProblem(status int, d *huma.ErrorDetail) *FieldError {
	f := &FieldError{Location: d.Location, Message: d.Message, Value: echoable(d.Value)}
	if s, ok := f.Value.(string); ok && len(s) > maxEchoed {
		f.Value = s[:maxEchoed] + "…"
	}
	_, field, nested := strings.Cut(d.Location, ".")
	switch {
	case d.Location == "body" && status == http.StatusBadRequest:
		f.Message = "the request body is not valid JSON: " + d.Message
		f.Value = nil
	case d.Location == "body" && status == http.StatusUnsupportedMediaType:
		f.Message = "the request body must be JSON: " + d.Message
		f.Value = nil
	case d.Message == validation.MsgUnexpectedProperty && nested:
		// huma's value is the whole object; the field's name says it all.
		f.Message = field + ": unexpected property; see /docs for the fields this route takes"
		f.Value = nil
	case strings.HasPrefix(d.Message, "expected required property "):
		name := strings.TrimSuffix(strings.TrimPrefix(d.Message, "expected required property "), " to be present")
		f.Location = d.Location + "." + name
		f.Message = name + ": is required"
		f.Value = nil
	case nested && field != "":
		f.Message = field + ": " + d.Message + "; got " + echo(d.Value)
	}
	return f
}

// echo writes a value as the client sent it: strings quoted, numbers plain.
func echo(v any) string {
	if s, ok := v.(string); ok {
		if len(s) > maxEchoed {
			s = s[:maxEchoed] + "…"
		}
		return fmt.Sprintf("%q", s)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// echoable is v as JSON can carry it: NaN and the infinities become strings.
func echoable(v any) any {
	if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
		return fmt.Sprint(f)
	}
	return v
}

func stack() string { return string(debug.Stack()) }
