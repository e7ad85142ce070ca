// Package devcluster runs Ladle's scaled-out shape on one machine: a
// three-node NATS JetStream cluster (nats-server from its Go module,
// in-process, loopback ports) with the event stream at three replicas,
// PostgreSQL from a URL, and API and worker processes as real OS processes
// (`ladle serve`, re-executed from the running binary) on loopback ports.
// `ladle dev cluster` and TestLoopbackCluster both run it; load.go drives it.
package devcluster

import (
	"bufio"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// FreePorts returns n TCP ports on 127.0.0.1 that were free a moment ago.
func FreePorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

// NATS is a JetStream cluster of nats-server nodes in this process.
type NATS struct {
	Servers []*server.Server
	// URL lists every node's client URL, comma-separated (--nats-url).
	URL string
}

// StartNATS starts n clustered nodes on loopback with file stores under
// dir and waits (up to 30 s) until JetStream has a meta leader and every
// node is current.
func StartNATS(dir string, n int) (*NATS, error) {
	ports, err := FreePorts(n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	c := &NATS{}
	var urls []string
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "ladle-dev", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(o)
		if err != nil {
			c.Shutdown()
			return nil, err
		}
		s.Start()
		c.Servers = append(c.Servers, s)
		if !s.ReadyForConnections(10 * time.Second) {
			c.Shutdown()
			return nil, fmt.Errorf("nats node n%d not ready", i+1)
		}
		urls = append(urls, s.ClientURL())
	}
	c.URL = strings.Join(urls, ",")
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, leader := true, false
		for _, s := range c.Servers {
			ok = ok && s.JetStreamIsClustered() && s.JetStreamIsCurrent() && s.NumRoutes() >= n-1
			leader = leader || s.JetStreamIsLeader()
		}
		if ok && leader {
			return c, nil
		}
		if time.Now().After(deadline) {
			c.Shutdown()
			return nil, errors.New("the NATS cluster did not form within 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Shutdown stops every node.
func (c *NATS) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
}

// ProcSpec describes one `ladle serve` child process.
type ProcSpec struct {
	// Name labels the process in errors and logs ("api-1").
	Name string
	// Exec is the command line that runs ladle up to its arguments: the
	// binary itself ([os.Executable()]), or a test binary re-executing
	// itself as ladle.
	Exec []string
	// Env is added to this process's environment (LADLE_* settings).
	Env map[string]string
	// Args follow "serve --addr 127.0.0.1:0 --data-dir DataDir
	// --metrics-addr 127.0.0.1:PORT".
	Args    []string
	DataDir string
	// Log receives the child's stderr (its JSON logs); nil discards it.
	Log io.Writer
}

// Proc is a running `ladle serve` child.
type Proc struct {
	Name string
	// Base is its HTTP address (http://127.0.0.1:PORT), Metrics its
	// /metrics URL.
	Base, Metrics string
	// Exited is closed when the process has exited.
	Exited chan struct{}
	cmd    *exec.Cmd
	stdout *lines
}

var listening = regexp.MustCompile(`Ladle is listening on (http://\S+)`)

// StartProc starts the process and waits until it prints where it listens
// (at most wait); an error carries its output.
func StartProc(spec ProcSpec, wait time.Duration) (*Proc, error) {
	ports, err := FreePorts(1)
	if err != nil {
		return nil, err
	}
	argv := append(append(append([]string{}, spec.Exec...), "serve", "--addr", "127.0.0.1:0",
		"--data-dir", spec.DataDir, "--metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[0])), spec.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for k, v := range spec.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out := &lines{}
	cmd.Stdout = out
	logs := &lines{}
	if spec.Log != nil {
		cmd.Stderr = io.MultiWriter(logs, spec.Log)
	} else {
		cmd.Stderr = logs
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Name, err)
	}
	p := &Proc{Name: spec.Name, Metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[0]),
		Exited: make(chan struct{}), cmd: cmd, stdout: out}
	go func() { _ = cmd.Wait(); close(p.Exited) }()
	deadline := time.After(wait)
	for {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			p.Base = strings.Replace(m[1], "localhost", "127.0.0.1", 1)
			return p, nil
		}
		select {
		case <-p.Exited:
			return nil, fmt.Errorf("%s exited at start:\n%s%s", spec.Name, out.String(), logs.tail(4096))
		case <-deadline:
			p.Kill()
			return nil, fmt.Errorf("%s did not start within %v:\n%s%s", spec.Name, wait, out.String(), logs.tail(4096))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stdout is what the process printed on its standard output so far.
func (p *Proc) Stdout() string { return p.stdout.String() }

// Kill ends the process at once (SIGKILL) and waits for it.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.Exited
}

// Stop asks the process to shut down gracefully (SIGTERM) and kills it if
// it has not exited within grace.
func (p *Proc) Stop(grace time.Duration) {
	select {
	case <-p.Exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Exited:
	case <-time.After(grace):
		p.Kill()
	}
}

// Gauge reads one sample of a metric with the label consumer from the
// process's /metrics (-1 when it does not answer or lacks the sample).
func (p *Proc) Gauge(name, consumer string) int {
	c := http.Client{Timeout: time.Second}
	resp, err := c.Get(p.Metrics)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	prefix := name + `{consumer="` + consumer + `"} `
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			return int(f)
		}
	}
	return -1
}

// Workers is the size of the consumer's pool in this process, from
// /metrics (ladle_consumer_workers).
func (p *Proc) Workers(consumer string) int { return p.Gauge("ladle_consumer_workers", consumer) }

// Config describes a cluster.
type Config struct {
	// DatabaseURL is the PostgreSQL database every process shares.
	DatabaseURL string
	// Dir holds the NATS stores and the processes' data dirs.
	Dir string
	// Exec runs ladle (ProcSpec.Exec).
	Exec []string
	// APIs and Workers are how many processes of each role to start.
	APIs, Workers int
	// WorkerArgs are added to every worker's serve flags (pool bounds).
	WorkerArgs []string
	// Env is added to every process's environment.
	Env map[string]string
	// Log receives every process's logs; nil discards them.
	Log io.Writer
	// StartTimeout bounds each process's start (default 60 s).
	StartTimeout time.Duration
}

// Cluster is a running loopback cluster.
type Cluster struct {
	NATS    *NATS
	APIs    []*Proc
	Workers []*Proc
	// Stream is the event stream's name (R3), Secret the processes'
	// shared --secret.
	Stream, Secret string
}

// Start starts the NATS cluster, then the API processes (the first seeds
// the demo restaurant) and the worker processes. On error everything
// started is stopped.
func Start(cfg Config) (*Cluster, error) {
	if !strings.HasPrefix(cfg.DatabaseURL, "postgres://") && !strings.HasPrefix(cfg.DatabaseURL, "postgresql://") {
		return nil, errors.New("devcluster: a PostgreSQL database URL is required (postgres://…): every process shares it")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = time.Minute
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &Cluster{Stream: "LADLE_DEV_" + strings.ToUpper(hex.EncodeToString(b[:4])), Secret: "dev-cluster-" + hex.EncodeToString(b[:])}
	var err error
	if c.NATS, err = StartNATS(filepath.Join(cfg.Dir, "nats"), 3); err != nil {
		return nil, err
	}
	env := map[string]string{
		"LADLE_DATABASE_URL": cfg.DatabaseURL, "LADLE_NATS_URL": c.NATS.URL, "LADLE_NATS_REPLICAS": "3",
		"LADLE_NATS_STREAM": c.Stream, "LADLE_SECRET": c.Secret,
	}
	for k, v := range cfg.Env {
		env[k] = v
	}
	start := func(name string, args ...string) (*Proc, error) {
		return StartProc(ProcSpec{Name: name, Exec: cfg.Exec, Env: env, Args: args,
			DataDir: filepath.Join(cfg.Dir, name), Log: cfg.Log}, cfg.StartTimeout)
	}
	for i := range cfg.APIs {
		// One after the other: the first seeds the demo, the next find it.
		p, err := start(fmt.Sprintf("api-%d", i+1), "--role", "api", "--demo")
		if err != nil {
			c.Stop(10 * time.Second)
			return nil, err
		}
		c.APIs = append(c.APIs, p)
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for i := range cfg.Workers {
		wg.Go(func() {
			p, err := start(fmt.Sprintf("worker-%d", i+1), append([]string{"--role", "worker"}, cfg.WorkerArgs...)...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			c.Workers = append(c.Workers, p)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		c.Stop(10 * time.Second)
		return nil, err
	}
	// In name order, whichever started first.
	slices.SortFunc(c.Workers, func(a, b *Proc) int { return cmp.Compare(a.Name, b.Name) })
	return c, nil
}

// Stop stops the processes (workers first, so they finish what they hold,
// each given grace to drain) and then the NATS nodes.
func (c *Cluster) Stop(grace time.Duration) {
	var wg sync.WaitGroup
	for _, p := range c.Workers {
		wg.Go(func() { p.Stop(grace) })
	}
	wg.Wait()
	for _, p := range c.APIs {
		wg.Go(func() { p.Stop(grace) })
	}
	wg.Wait()
	if c.NATS != nil {
		c.NATS.Shutdown()
	}
}

// lines is a concurrency-safe buffer of a child's output.
type lines struct {
	mu sync.Mutex
	b  []byte
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 1<<20 { // keep the last MiB
		l.b = append([]byte(nil), l.b[len(l.b)-1<<19:]...)
	}
	return len(p), nil
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *lines) tail(n int) string {
	s := l.String()
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return s
}

// WaitReady waits until every process answers /readyz (at most wait).
func (c *Cluster) WaitReady(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	hc := http.Client{Timeout: time.Second}
	for _, p := range append(append([]*Proc{}, c.APIs...), c.Workers...) {
		for {
			resp, err := hc.Get(p.Base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %v", p.Name, wait)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
