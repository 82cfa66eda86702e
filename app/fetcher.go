package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// Fetcher makes the one IO-bound call every mode uses: GET {target}/delay/{seconds}.
//
// Outside targets are an SSRF risk: a shared demo must not become a way to reach the
// machine's own network. So an outside target must be on the allowlist, a redirect is
// followed only to another listed base URL, and the address actually dialed (after DNS,
// so rebinding cannot slip past) must be globally reachable (see special.go).
// The built-in target, this deployment's own /httpbin, is the one exception.
type Fetcher struct {
	builtin   string       // base URL of the built-in delay target, as this process reaches it
	allowlist []string     // base URLs of allowed outside targets
	local     *http.Client // for the built-in target
	outside   *http.Client // for allowlisted targets, guarded
}

// Result is the outcome of one call.
type Result struct {
	Status   int
	Duration time.Duration
}

// ErrRefusedTarget is returned for a call the SSRF guard refuses.
var ErrRefusedTarget = errors.New("target refused")

// NewFetcher returns a Fetcher whose "builtin" target is builtinURL and whose outside
// targets are limited to allowlist.
func NewFetcher(builtinURL string, allowlist []string) *Fetcher {
	f := &Fetcher{builtin: builtinURL, allowlist: allowlist}
	f.local = &http.Client{Transport: transport(nil), CheckRedirect: f.sameBase(func() string { return f.builtin })}
	guard := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: refusePrivate}
	f.outside = &http.Client{Transport: transport(guard), CheckRedirect: f.listed}
	return f
}

func transport(d *net.Dialer) *http.Transport {
	if d == nil {
		d = &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	}
	return &http.Transport{
		Proxy:               nil, // the targets are explicit; never route them elsewhere
		DialContext:         d.DialContext,
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
}

// refusePrivate runs for every connection the outside client makes, with the address
// DNS gave: the check that rebinding and redirects cannot bypass.
func refusePrivate(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrRefusedTarget, host)
	}
	if specialAddr(ip) {
		return fmt.Errorf("%w: %s is in a special-purpose block (loopback, private, shared, reserved, documentation, ...)", ErrRefusedTarget, ip)
	}
	return nil
}

// listed allows a redirect only to a base URL on the allowlist.
func (f *Fetcher) listed(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("%w: more than 5 redirects", ErrRefusedTarget)
	}
	if base := req.URL.Scheme + "://" + req.URL.Host; !slices.Contains(f.allowlist, base) {
		return fmt.Errorf("%w: redirect to %s, which is not on the allowlist", ErrRefusedTarget, base)
	}
	return nil
}

// sameBase allows a redirect only within the base URL that base returns.
func (f *Fetcher) sameBase(base func() string) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		u, err := url.Parse(base())
		if len(via) >= 5 || err != nil || req.URL.Scheme != u.Scheme || req.URL.Host != u.Host {
			return fmt.Errorf("%w: redirect away from the built-in target", ErrRefusedTarget)
		}
		return nil
	}
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
	client := f.local
	if target != BuiltinTarget && target != "" {
		// The payload came through Redis: check the target here too, not only at launch.
		if !slices.Contains(f.allowlist, target) {
			return Result{}, fmt.Errorf("%w: %s is not on this process's allowlist", ErrRefusedTarget, target)
		}
		client = f.outside
	}
	ctx, cancel := context.WithTimeout(ctx, TaskTimeout(delay))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.URL(target, delay), nil)
	if err != nil {
		return Result{}, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL is the task's business, not the message's
		}
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
func (f *Fetcher) Close() {
	f.local.CloseIdleConnections()
	f.outside.CloseIdleConnections()
}
