// Package redistest runs a real redis-server on a free 127.0.0.1 port for a
// test package, so tests exercise the same Redis that production uses.
//
// One server per test package is the intended use: start it in a test (or in
// TestMain with StartProcess) and give each test its own database with
// NextDB.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// notFound is the whole message when redis-server is missing: tests must
// fail, not skip, so a CI image without Redis is noticed.
const notFound = "redis-server not found: install it with 'apt-get install -y redis-server'"

// startTimeout bounds how long a fresh or restarted server may take to
// answer PING (loading a large AOF included).
const startTimeout = 15 * time.Second

// Option changes how the server is started.
type Option func(*config)

type config struct {
	aof       bool
	databases int
}

// WithAOF turns on the append-only file, synced on every write, so that
// Restart after Kill or Stop finds the data written before.
func WithAOF() Option {
	return func(c *config) { c.aof = true }
}

// WithDatabases sets how many logical databases the server has (default 16),
// and so how many times NextDB can be called.
func WithDatabases(n int) Option {
	return func(c *config) { c.databases = n }
}

// Server is one redis-server process listening on 127.0.0.1.
type Server struct {
	bin     string
	port    int
	dir     string
	cfg     config
	ownsDir bool // StartProcess made dir, so Close removes it
	nextDB  atomic.Int64

	mu     sync.Mutex
	proc   *process
	closed bool
}

// process is one run of redis-server; done closes when it has exited.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// Start starts a redis-server that is killed when tb's test ends. It fails
// tb if redis-server is not installed or does not answer PING in time.
func Start(tb testing.TB, opts ...Option) *Server {
	tb.Helper()
	s, err := start(tb.TempDir(), false, opts)
	if err != nil {
		tb.Fatal(err)
	}
	// Registered after TempDir, so it runs first: the directory is removed
	// only once the server has stopped writing to it.
	tb.Cleanup(s.Close)
	return s
}

// StartProcess starts a redis-server without a testing.TB, for TestMain.
// The caller must call Close, which also removes the server's directory.
func StartProcess(opts ...Option) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, fmt.Errorf("redistest: %w", err)
	}
	s, err := start(dir, true, opts)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return s, nil
}

func start(dir string, ownsDir bool, opts []Option) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New(notFound)
	}
	cfg := config{databases: 16}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.databases < 1 {
		return nil, fmt.Errorf("redistest: WithDatabases(%d): need at least 1", cfg.databases)
	}
	s := &Server{bin: bin, dir: dir, cfg: cfg, ownsDir: ownsDir}

	// The free port is found by listening and closing, so another process
	// can take it before redis-server binds; try a few fresh ports.
	for attempt := 0; ; attempt++ {
		if s.port, err = freePort(); err != nil {
			return nil, err
		}
		p, err := s.launch()
		if err == nil {
			s.proc = p
			return s, nil
		}
		if attempt == 2 || !errors.Is(err, errAddrInUse) {
			return nil, err
		}
	}
}

var errAddrInUse = errors.New("address already in use")

// launch runs redis-server on s.port and waits until it answers PING.
func (s *Server) launch() (*process, error) {
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--databases", strconv.Itoa(s.cfg.databases),
		"--loglevel", "warning",
		"--logfile", "",
		"--daemonize", "no",
	}
	if s.cfg.aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	out := &syncBuffer{}
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("redistest: start redis-server: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), out: out}
	go func() {
		cmd.Wait()
		close(p.done)
	}()

	deadline := time.Now().Add(startTimeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := ping(s.Addr())
		if err == nil {
			return p, nil
		}
		if time.Now().After(deadline) {
			p.kill()
			return nil, fmt.Errorf("redistest: redis-server on %s did not answer PING within %s: %v\n%s",
				s.Addr(), startTimeout, err, out.String())
		}
		select {
		case <-p.done:
			log := out.String()
			if strings.Contains(log, "Address already in use") {
				return nil, fmt.Errorf("redistest: port %d: %w", s.port, errAddrInUse)
			}
			return nil, fmt.Errorf("redistest: redis-server exited before answering PING (%s):\n%s",
				cmd.ProcessState, log)
		case <-tick.C:
		}
	}
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns redis://127.0.0.1:port/db.
func (s *Server) URL(db int) string {
	return fmt.Sprintf("redis://%s/%d", s.Addr(), db)
}

// Dir returns the server's working directory, where the AOF lives.
func (s *Server) Dir() string { return s.dir }

// NextDB hands out a database number no earlier call returned, from 0 up,
// safe for parallel tests. It panics once every database is taken: start the
// server WithDatabases(n) for more.
func (s *Server) NextDB() int {
	n := s.nextDB.Add(1) - 1
	if n >= int64(s.cfg.databases) {
		panic(fmt.Sprintf("redistest: all %d databases handed out; start the server WithDatabases(n) for more",
			s.cfg.databases))
	}
	return int(n)
}

// Kill sends SIGKILL and waits for the process to exit, as a crash would.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
}

// Stop sends SIGTERM and waits for redis-server to shut down cleanly.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
}

// Restart starts the server again on the same port and directory and waits
// until it answers PING; a server still running is stopped first. With
// WithAOF the data written before is back.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		tb.Fatal("redistest: Restart after Close")
	}
	if s.proc != nil {
		s.proc.stop()
		s.proc = nil
	}
	p, err := s.launch()
	if err != nil {
		tb.Fatal(err)
	}
	s.proc = p
}

// Close kills the server and, for StartProcess, removes its directory. It
// is safe to call more than once.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.proc != nil {
		s.proc.kill()
		s.proc = nil
	}
	if s.ownsDir {
		os.RemoveAll(s.dir)
	}
}

func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.kill()
	}
}

// ping sends an inline PING and expects +PONG; a server still loading its
// AOF answers -LOADING, which counts as not ready.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line = strings.TrimRight(line, "\r\n"); line != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer collects redis-server's output for error messages.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
