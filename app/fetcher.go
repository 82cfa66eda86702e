package app

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Fetcher makes the one IO-bound call every mode uses: GET {target}/delay/{seconds}.
type Fetcher struct {
	client  *http.Client
	builtin string // base URL of the built-in delay target, as this process reaches it
}

// Result is the outcome of one call.
type Result struct {
	Status   int
	Duration time.Duration
}

// NewFetcher returns a Fetcher whose "builtin" target is builtinURL.
func NewFetcher(builtinURL string) *Fetcher {
	tr := &http.Transport{
		Proxy:               nil, // the targets are explicit; never route them elsewhere
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Fetcher{client: &http.Client{Transport: tr}, builtin: builtinURL}
}

// SetBuiltin sets the base URL of the built-in target, once the serving address is known.
func (f *Fetcher) SetBuiltin(url string) { f.builtin = url }

// URL returns the URL a task of the given target and delay calls.
func (f *Fetcher) URL(target string, delay time.Duration) string {
	base := target
	if target == BuiltinTarget || target == "" {
		base = f.builtin
	}
	return base + "/delay/" + strconv.FormatFloat(delay.Seconds(), 'f', -1, 64)
}

// Fetch calls the target and waits for its answer, at most delay + 10 s.
func (f *Fetcher) Fetch(ctx context.Context, target string, delay time.Duration) (Result, error) {
	ctx, cancel := context.WithTimeout(ctx, TaskTimeout(delay))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL(target, delay), nil)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return Result{Duration: time.Since(start)}, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	res := Result{Status: resp.StatusCode, Duration: time.Since(start)}
	if err != nil {
		return res, err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return res, fmt.Errorf("target answered %s", resp.Status)
	}
	return res, nil
}

// Close releases idle connections.
func (f *Fetcher) Close() { f.client.CloseIdleConnections() }
