package app

import (
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// expireEvery is how often embedded Redis ages its TTLs and drops the keys whose time is up.
//
// miniredis can age TTLs by itself (ClockTTL), but then every command, and every
// redis.call inside a Lua script, first walks and sorts all keys of every database. asynq
// keeps one key per task and runs a script per enqueue, so a 10,000-task launch cost
// O(keys × log keys) per call, about a minute in all. Aging them from one goroutine costs
// one walk a second, whatever the traffic; TTLs here are whole seconds or more anyway.
const expireEvery = time.Second

// EmbeddedRedis is an in-memory Redis inside this process, for `serve` without REDIS_URL:
// its data is lost on exit.
type EmbeddedRedis struct {
	m    *miniredis.Miniredis
	stop chan struct{}
	done chan struct{}
}

// StartEmbeddedRedis starts an in-memory Redis on a free loopback port.
func StartEmbeddedRedis() (*EmbeddedRedis, error) {
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("cannot start embedded Redis: %w", err)
	}
	e := &EmbeddedRedis{m: m, stop: make(chan struct{}), done: make(chan struct{})}
	go e.expire()
	return e, nil
}

// URL is the redis:// URL of the embedded Redis.
func (e *EmbeddedRedis) URL() string { return "redis://" + e.m.Addr() }

// Close stops the embedded Redis; its data is gone.
func (e *EmbeddedRedis) Close() {
	close(e.stop)
	<-e.done
	e.m.Close()
}

// expire ages every TTL by the time that passed since the last tick.
func (e *EmbeddedRedis) expire() {
	defer close(e.done)
	t := time.NewTicker(expireEvery)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			now := time.Now()
			e.m.FastForward(now.Sub(last))
			last = now
		}
	}
}
