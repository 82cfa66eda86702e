package wake

import (
	"context"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultTaskCheckInterval is the TaskCheckInterval NewServer sets when the config has none.
// The server sleeps it only when a wait of the hook ends with the queues still empty (every
// 10 s when idle), so it can be small: a task enqueued in that gap waits this long.
const DefaultTaskCheckInterval = 10 * time.Millisecond

// Server is an asynq.Server whose idle processor waits for wake signals rather than polling.
// Its Start, Run, Stop and Shutdown replace asynq's; the rest is asynq's.
type Server struct {
	*asynq.Server
	waker *Waker
}

// NewServer returns an asynq server on rdb with cfg, woken by signals on its queues. It
// adds a hook to rdb, so rdb should serve this server alone. Nothing is dialed until Start.
func NewServer(rdb redis.UniversalClient, cfg asynq.Config) *Server {
	if cfg.TaskCheckInterval <= 0 {
		cfg.TaskCheckInterval = DefaultTaskCheckInterval
	}
	return &Server{Server: asynq.NewServerFromRedisClient(rdb, cfg), waker: NewWaker(rdb, QueuesOf(cfg))}
}

// QueuesOf returns the names of the queues a server with cfg serves, as asynq does.
func QueuesOf(cfg asynq.Config) []string {
	if len(cfg.Queues) == 0 {
		return []string{"default"}
	}
	var qs []string
	for q, p := range cfg.Queues {
		if p > 0 {
			qs = append(qs, q)
		}
	}
	if len(qs) == 0 {
		return []string{"default"}
	}
	slices.Sort(qs)
	return qs
}

// Start subscribes to the wake signals, then starts the server.
func (s *Server) Start(h asynq.Handler) error {
	if err := s.waker.Listen(context.Background()); err != nil {
		return err
	}
	if err := s.Server.Start(h); err != nil {
		s.waker.Close()
		return err
	}
	return nil
}

// Run starts the server and shuts it down on SIGINT or SIGTERM.
func (s *Server) Run(h asynq.Handler) error {
	if err := s.Start(h); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	s.Shutdown()
	return nil
}

// Stop stops waiting, then stops taking tasks (asynq's Stop).
func (s *Server) Stop() {
	s.waker.Close()
	s.Server.Stop()
}

// Shutdown stops waiting, then shuts the server down (asynq's Shutdown).
func (s *Server) Shutdown() {
	s.waker.Close()
	s.Server.Shutdown()
}
