package e2e

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// regTCPProxy forwards TCP connections from addr to target. Once more than
// limit bytes went to the target, it calls trip and then drops every
// connection and stops listening, as a dead registry would.
type regTCPProxy struct {
	t      testing.TB
	addr   string
	target string
	limit  int64
	trip   func()

	sent    atomic.Int64
	tripped atomic.Bool
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
}

func (p *regTCPProxy) listen() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("proxy listen: %v", err)
	}
	p.addr = ln.Addr().String()
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

func (p *regTCPProxy) serve(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, c, s)
	p.mu.Unlock()
	go func() { _, _ = io.Copy(c, s); c.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				break
			}
			if p.limit > 0 && p.sent.Add(int64(n)) > p.limit && p.tripped.CompareAndSwap(false, true) {
				p.trip()
				p.stop()
				break
			}
		}
		if err != nil {
			break
		}
	}
	s.Close()
}

// stop closes the listener and every connection.
func (p *regTCPProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestRegistryFaults(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	app := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "data\n"})
	e.mustRun("build", app, "-t", reg+"/app:v1", "--push")

	t.Run("unreachable", func(t *testing.T) {
		dead := "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
		r := e.run("pull", dead+"/app:v1")
		if r.code != 1 || !strings.Contains(r.stderr, "pull "+dead+"/app:v1: connect to registry "+dead) ||
			!strings.Contains(r.stderr, "connection refused") || !strings.HasSuffix(strings.TrimSpace(r.stderr), "after 5 attempts") {
			t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("unknown repo and tag", func(t *testing.T) {
		for _, ref := range []string{reg + "/nope:v1", reg + "/app:nope"} {
			r := e.run("pull", ref)
			if r.code != 1 || !strings.Contains(r.stderr, "pull "+ref+": get manifest") || !strings.Contains(r.stderr, "manifest unknown") {
				t.Errorf("pull %s: exit %d, stderr:\n%s", ref, r.code, r.stderr)
			}
		}
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + reg + "/nope:v1\nRUN true\n"})
		r := e.run("build", dir)
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:1") || !strings.Contains(r.stderr, "manifest unknown") {
			t.Errorf("build FROM an unknown image: exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("corrupt blob", func(t *testing.T) {
		p := testutil.StartRegistryProxy(t, reg)
		p.SetCorrupt(true)
		proxy := p.Addr
		f := regEmptyEnv(t)
		r := f.run("pull", proxy+"/app:v1")
		if r.code != 1 || !strings.Contains(r.stderr, "digest mismatch") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if left := testutil.BlobIngests(f.root); len(left) != 0 {
			t.Errorf("partial blobs left: %v", left)
		}
		blobs, _ := os.ReadDir(filepath.Join(f.root, "blobs", "sha256"))
		if len(blobs) != 0 {
			t.Errorf("%d blobs entered the store", len(blobs))
		}
		if r := f.mustRun("images"); strings.Contains(r.stdout, "app") {
			t.Errorf("failed pull is listed:\n%s", r.stdout)
		}
		f.mustRun("pull", reg+"/app:v1") // the real registry still works
		f.mustRun("check")
	})
}

func TestRegistryKilledDuringPush(t *testing.T) {
	e := newEnv(t)
	reg := testutil.RunRegistry(t, testutil.RegistryConfig{})
	proxy := &regTCPProxy{t: t, addr: "127.0.0.1:0", target: reg.Addr, limit: 1 << 20, trip: reg.Kill}
	proxy.listen()
	t.Cleanup(proxy.stop)

	big := testutil.RandomBytes(rand.New(rand.NewPCG(1, 2)), 4<<20)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY big /big\n"})
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := proxy.addr + "/big:v1"
	e.mustRun("build", dir, "-t", ref)
	r := e.run("push", ref)
	if r.code != 1 || !strings.Contains(r.stderr, "push "+ref+": ") || !strings.HasSuffix(strings.TrimSpace(r.stderr), "after 5 attempts") {
		t.Fatalf("push to a registry killed mid-push: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if !proxy.tripped.Load() {
		t.Fatal("the registry was never killed")
	}

	reg.Restart()
	proxy.limit = 0
	proxy.listen()
	r = e.mustRun("push", ref)
	if countLines(r.stderr, " done") == 0 {
		t.Errorf("re-push uploaded nothing:\n%s", r.stderr)
	}
	f := regEmptyEnv(t)
	out := t.TempDir()
	f.mustRun("pull", ref)
	f.mustRun("build", writeContext(t, map[string]string{"Dockerfile": "FROM " + ref + "\n"}), "-o", "type=local,dest="+out)
	if data, err := os.ReadFile(filepath.Join(out, "big")); err != nil || !bytes.Equal(data, big) {
		t.Errorf("pulled /big differs (%d bytes, %v)", len(data), err)
	}
}
