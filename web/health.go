package web

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/taskrace/taskrace/app"
)

// Health is the answer of /healthz.
type Health struct {
	Status string `json:"status" example:"ok"`
}

// Readiness is the answer of /readyz when the server can serve.
type Readiness struct {
	Status  string `json:"status" example:"ready"`
	Storage string `json:"storage" enum:"redis,memory" doc:"memory: an embedded Redis, whose runs are gone when the server stops"`
}

type healthOutput struct {
	Body *Health
}

type readyOutput struct {
	Body *Readiness
}

func (s *Server) registerHealth() {
	register(s, open, huma.Operation{
		OperationID: "healthz",
		Method:      http.MethodGet,
		Path:        "/healthz",
		Tags:        []string{"health"},
		Summary:     "Liveness: the process answers",
	}, func(context.Context, *struct{}) (*healthOutput, error) {
		return &healthOutput{Body: &Health{Status: "ok"}}, nil
	})
	register(s, open, huma.Operation{
		OperationID: "readyz",
		Method:      http.MethodGet,
		Path:        "/readyz",
		Tags:        []string{"health"},
		Summary:     "Readiness: Redis answers",
		Errors:      []int{http.StatusServiceUnavailable},
	}, s.ready)
}

func (s *Server) ready(ctx context.Context, _ *struct{}) (*readyOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	// go-redis may retry past the context's deadline: the bound is kept here.
	pinged := make(chan error, 1)
	go func() { pinged <- s.core.Redis.Ping(ctx) }()
	select {
	case err := <-pinged:
		if err != nil {
			return nil, s.fail(ctx, err)
		}
	case <-ctx.Done():
		return nil, s.fail(ctx, app.Unavailable("cannot ping Redis within "+readyTimeout.String(), ctx.Err()))
	}
	storage := "redis"
	if s.cfg.Embedded {
		storage = "memory"
	}
	return &readyOutput{Body: &Readiness{Status: "ready", Storage: storage}}, nil
}
