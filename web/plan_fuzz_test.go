package web

import (
	"math"
	"net/url"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"

	"github.com/taskrace/taskrace/app"
)

// checkPlan fails when a plan that validates is outside the limits, or when a plan that does
// not validates without naming a field.
func checkPlan(t *testing.T, p app.Plan) {
	p = p.Normalize()
	err := p.Validate(app.DefaultLimits)
	if err != nil {
		if app.ErrorCode(err) != app.EInvalid || app.ErrorMessage(err) == "" {
			t.Fatalf("plan %+v: error %v is no named invalid field", p, err)
		}
		return
	}
	l := app.DefaultLimits
	if p.Tasks < 1 || p.Tasks > l.MaxTasks || p.DelayMS < 0 || p.DelayMS > l.MaxDelay.Milliseconds() ||
		p.FailureRate < 0 || p.FailureRate > 1 || math.IsNaN(p.FailureRate) {
		t.Fatalf("plan %+v validates but is outside the limits", p)
	}
	if ideal := p.IdealMS(); ideal < 0 || math.IsInf(ideal, 0) || ideal > float64(l.MaxTasks)*float64(l.MaxDelay.Milliseconds()) {
		t.Fatalf("plan %+v: ideal %v ms", p, ideal)
	}
}

// FuzzPlanJSON: any body POST /api/runs may get, read as the API reads it.
func FuzzPlanJSON(f *testing.F) {
	for _, s := range []string{`{"mode":"sequential","tasks":10,"delay_ms":3000}`, `{"mode":"concurrent","parallelism":-1}`,
		`{"mode":"distributed","tasks":1e99}`, `{"failure_rate":"NaN"}`, `{"tasks":1,"tasks":2}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req RunRequest
		if err := strictJSON.Unmarshal(body, &req); err != nil {
			return
		}
		checkPlan(t, req.plan())
	})
}

// FuzzPlanForm: any launch form the dashboard may get.
func FuzzPlanForm(f *testing.F) {
	f.Add("sequential", "10", "3", "5", "0")
	f.Add("concurrent", "1e3", "-0", "0x10", "NaN")
	f.Add("distributed", "99999999999999999999", "1e300", "", "1")
	a := fiber.New()
	f.Fuzz(func(t *testing.T, mode, tasks, delay, parallelism, failure string) {
		form := url.Values{"tasks": {tasks}, "delay": {delay}, "parallelism": {parallelism}, "failure_rate": {failure}}
		fctx := &fasthttp.RequestCtx{}
		fctx.Request.Header.SetMethod(fiber.MethodPost)
		fctx.Request.Header.SetContentType(fiber.MIMEApplicationForm)
		fctx.Request.SetBodyString(form.Encode())
		c := a.AcquireCtx(fctx)
		defer a.ReleaseCtx(c)
		p, _, err := formPlan(c, app.Mode(mode))
		if err != nil {
			if app.ErrorCode(err) != app.EInvalid {
				t.Fatalf("form %v: error %v is no named invalid field", form, err)
			}
			return
		}
		checkPlan(t, p)
	})
}
