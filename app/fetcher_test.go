package app

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestFetcherSSRFGuard(t *testing.T) {
	t.Parallel()
	delay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/delay/") {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.NotFound(w, r)
	}))
	defer delay.Close()
	away := httptest.NewServer(http.RedirectHandler("http://203.0.113.7/delay/0", http.StatusFound))
	defer away.Close()
	port := delay.Listener.Addr().String()[strings.LastIndex(delay.Listener.Addr().String(), ":"):]
	byName := "http://localhost" + port // a listed name that resolves to 127.0.0.1
	byIP := delay.URL
	f := NewFetcher(delay.URL, []string{byName, byIP})

	if _, err := f.Fetch(t.Context(), BuiltinTarget, 0); err != nil {
		t.Errorf("built-in target on loopback refused: %v", err)
	}
	tests := []struct {
		name, target string
	}{
		{"not on the allowlist", "http://203.0.113.7"},
		{"listed name resolving to loopback", byName},
		{"listed loopback address", byIP},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.Fetch(t.Context(), tt.target, 0)
			if !errors.Is(err, ErrRefusedTarget) {
				t.Errorf("Fetch(%s) = %v, want refused", tt.target, err)
			}
		})
	}
	t.Run("redirect away from the built-in target", func(t *testing.T) {
		g := NewFetcher(away.URL, nil)
		if _, err := g.Fetch(t.Context(), BuiltinTarget, 0); !errors.Is(err, ErrRefusedTarget) {
			t.Errorf("redirect followed: %v", err)
		}
	})
	t.Run("redirect out of the allowlist", func(t *testing.T) {
		req := &http.Request{URL: mustURL(t, "http://203.0.113.9/delay/0")}
		via := []*http.Request{{URL: mustURL(t, "http://198.51.100.1/delay/0")}}
		g := NewFetcher("", []string{"http://198.51.100.1"})
		if err := g.listed(req, via); !errors.Is(err, ErrRefusedTarget) {
			t.Errorf("redirect out of the allowlist allowed: %v", err)
		}
		req.URL = mustURL(t, "http://198.51.100.1/delay/1")
		if err := g.listed(req, via); err != nil {
			t.Errorf("redirect within the allowlist refused: %v", err)
		}
	})
}

func TestRefusePrivate(t *testing.T) {
	t.Parallel()
	for addr, refused := range map[string]bool{
		"127.0.0.1:80": true, "[::1]:80": true, "10.1.2.3:80": true, "172.16.0.1:80": true,
		"192.168.1.1:80": true, "169.254.169.254:80": true, "[fe80::1]:80": true, "0.0.0.0:80": true,
		"[::ffff:127.0.0.1]:80": true, "203.0.113.7:80": false, "[2001:db8::1]:443": false,
	} {
		err := refusePrivate("tcp", addr, nil)
		if got := err != nil; got != refused {
			t.Errorf("refusePrivate(%s) = %v, want refused %v", addr, err, refused)
		}
	}
}

func TestFetcherURL(t *testing.T) {
	f := NewFetcher("http://web:8080/httpbin", nil)
	if got := f.URL(BuiltinTarget, 2500*time.Millisecond); got != "http://web:8080/httpbin/delay/2.5" {
		t.Errorf("URL = %s", got)
	}
	if got := f.URL("http://a.test", 3*time.Second); got != "http://a.test/delay/3" {
		t.Errorf("URL = %s", got)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
