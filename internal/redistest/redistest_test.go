package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartAnswersPing(t *testing.T) {
	t.Parallel()
	s := Start(t)

	if got := do(t, s.Addr(), "PING"); got != "PONG" {
		t.Fatalf("PING = %q, want PONG", got)
	}
	want := fmt.Sprintf("redis://127.0.0.1:%d/3", s.port)
	if got := s.URL(3); got != want {
		t.Errorf("URL(3) = %q, want %q", got, want)
	}
}

func TestNextDBIsDistinct(t *testing.T) {
	t.Parallel()
	s := Start(t, WithDatabases(4))

	var (
		mu   sync.Mutex
		seen = map[int]bool{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			db := s.NextDB()
			mu.Lock()
			defer mu.Unlock()
			seen[db] = true
		})
	}
	wg.Wait()
	for db := range 4 {
		if !seen[db] {
			t.Errorf("NextDB never returned %d; got %v", db, seen)
		}
	}

	defer func() {
		if recover() == nil {
			t.Error("NextDB past the last database did not panic")
		}
	}()
	s.NextDB()
}

func TestDatabasesAreSeparate(t *testing.T) {
	t.Parallel()
	s := Start(t)

	doDB(t, s.Addr(), 1, "SET", "k", "one")
	if got := doDB(t, s.Addr(), 2, "GET", "k"); got != "(nil)" {
		t.Errorf("GET k in db 2 = %q, want (nil)", got)
	}
}

func TestRestart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts []Option
		down func(*Server)
		want string
	}{
		{"AOF survives kill", []Option{WithAOF()}, (*Server).Kill, "v"},
		{"AOF survives stop", []Option{WithAOF()}, (*Server).Stop, "v"},
		{"no AOF loses data", nil, (*Server).Kill, "(nil)"},
		{"restart while running", []Option{WithAOF()}, func(*Server) {}, "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Start(t, tt.opts...)
			port := s.port
			do(t, s.Addr(), "SET", "k", "v")

			tt.down(s)
			s.Restart(t)

			if s.port != port {
				t.Errorf("port after Restart = %d, want %d", s.port, port)
			}
			if got := do(t, s.Addr(), "GET", "k"); got != tt.want {
				t.Errorf("GET k after restart = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKillRefusesConnections(t *testing.T) {
	t.Parallel()
	s := Start(t)
	s.Kill()
	s.Kill() // a second Kill is harmless

	if err := ping(s.Addr()); err == nil {
		t.Fatal("PING after Kill succeeded")
	}
}

func TestStartProcessClose(t *testing.T) {
	t.Parallel()
	s, err := StartProcess()
	if err != nil {
		t.Fatal(err)
	}
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("PING: %v", err)
	}
	s.Close()
	s.Close()

	if err := ping(s.Addr()); err == nil {
		t.Error("PING after Close succeeded")
	}
	if _, err := os.Stat(s.Dir()); !os.IsNotExist(err) {
		t.Errorf("directory %s still there after Close: %v", s.Dir(), err)
	}
}

// Not parallel: it empties PATH for the whole process.
func TestMissingBinaryFails(t *testing.T) {
	t.Setenv("PATH", t.TempDir())

	_, err := StartProcess()
	if err == nil || err.Error() != notFound {
		t.Fatalf("StartProcess with no redis-server: err = %v, want %q", err, notFound)
	}
}

// do runs one command on db 0 and returns its reply as text.
func do(t *testing.T, addr string, args ...string) string {
	t.Helper()
	return doDB(t, addr, 0, args...)
}

// doDB runs one command on db and returns its reply as text: a status or
// bulk string as is, a nil bulk as "(nil)". Errors fail the test.
func doDB(t *testing.T, addr string, db int, args ...string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)

	send := func(args ...string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
		}
		if _, err := conn.Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch line[0] {
		case '+', ':':
			return line[1:]
		case '$':
			n, err := strconv.Atoi(line[1:])
			if err != nil {
				t.Fatalf("bad bulk header %q", line)
			}
			if n < 0 {
				return "(nil)"
			}
			buf := make([]byte, n+2)
			if _, err := io.ReadFull(r, buf); err != nil {
				t.Fatal(err)
			}
			return string(buf[:n])
		default:
			t.Fatalf("%v: %s", args, line)
			return ""
		}
	}
	if db != 0 {
		send("SELECT", strconv.Itoa(db))
	}
	return send(args...)
}
