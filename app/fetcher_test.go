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

func TestRefuseSpecialAddresses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr    string
		refused bool
	}{
		{"127.0.0.1:80", true}, {"[::1]:80", true}, {"10.1.2.3:80", true}, {"172.16.0.1:80", true},
		{"192.168.1.1:80", true}, {"169.254.169.254:80", true}, {"[fe80::1]:80", true}, {"0.0.0.0:80", true},
		{"[::ffff:127.0.0.1]:80", true}, {"[::]:80", true},
		// Left open before the registries were the rule.
		{"100.64.0.1:80", true}, {"100.127.255.254:80", true}, {"0.1.2.3:80", true}, {"198.18.0.1:80", true},
		{"198.19.255.255:80", true}, {"[64:ff9b::7f00:1]:80", true}, {"[2002:7f00:1::1]:80", true},
		{"[fec0::1]:80", true},
		// The rest of the registries.
		{"192.0.0.8:80", true}, {"192.0.2.1:80", true}, {"198.51.100.1:80", true}, {"203.0.113.7:80", true},
		{"224.0.0.1:80", true}, {"239.255.255.250:80", true}, {"240.0.0.1:80", true}, {"255.255.255.255:80", true},
		{"192.88.99.1:80", true}, {"[2001:db8::1]:443", true}, {"[2001::1]:80", true}, {"[2001:2::1]:80", true},
		{"[3fff::1]:80", true}, {"[5f00::1]:80", true}, {"[fc00::1]:80", true}, {"[fd12:3456::1]:80", true},
		{"[ff02::1]:80", true}, {"[100::1]:80", true}, {"[64:ff9b:1::1]:80", true}, {"[::ffff:10.0.0.1]:80", true},
		// Globally reachable.
		{"8.8.8.8:53", false}, {"1.1.1.1:443", false}, {"192.0.0.9:80", true}, {"192.31.196.1:80", false},
		{"100.128.0.1:80", false}, {"198.20.0.1:80", false}, {"[2606:4700::1111]:443", false},
		{"[2a00:1450:4001::1]:80", false}, {"[::ffff:8.8.8.8]:53", false},
	}
	for _, tc := range cases {
		err := refusePrivate("tcp", tc.addr, nil)
		if got := err != nil; got != tc.refused {
			t.Errorf("refusePrivate(%s) = %v, want refused %v", tc.addr, err, tc.refused)
		}
		if err != nil && !errors.Is(err, ErrRefusedTarget) {
			t.Errorf("refusePrivate(%s) = %v, not ErrRefusedTarget", tc.addr, err)
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
