// Package sshforward lends SSH agents to a build (`--ssh`), as BuildKit's
// session/sshforward does: a RUN --mount=type=ssh sees a unix socket that
// speaks the agent protocol and forwards every connection to an agent on
// the host. The RUN never sees a key file, and nothing of the agent reaches
// a layer, a config or a cache key.
//
// Lifecycle:
//
//	a, _ := sshforward.Open(ctx, []sshforward.Spec{{ID: "default", Paths: []string{sock}}}, dir)
//	defer a.Close()                                      // stops agents it started, removes dir
//	p, stop, _ := a.Listen("default", tmp, uid, gid, 0o600) // a socket for one RUN
//	... bind-mount p into the sandbox, run ...
//	stop()                                               // closes the socket and its connections
//
// A Spec names either one agent socket (--ssh default uses $SSH_AUTH_SOCK)
// or one or more private key files. For key files, Open starts Debian's
// ssh-agent (openssh-client) as a child that dies with builder, adds the
// keys with ssh-add, and forwards to it; the keys stay in that agent's
// memory. Layout of dir (a work dir of the caller, removed by Close):
//
//	agent-<id>-*/agent   the socket of an ssh-agent child holding <id>'s keys
//	ssh-*/agent          a forwarding socket of Listen (when dir's path is
//	                     short enough for a socket name; else under $TMPDIR)
//
// The forwarding socket is a proxy rather than the agent's own socket bind
// mounted: it carries the mode and owner the RUN asked for, works for any
// user of the RUN (ssh-agent refuses peers of another uid), and stops when
// the RUN ends.
package sshforward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// ErrNoAgent is returned (wrapped) by Listen for an id no Spec named.
var ErrNoAgent = errors.New("no such ssh agent")

// Spec is one --ssh value: ID=PATH[,PATH...]. Paths is one agent socket or
// private key files.
type Spec struct {
	ID    string
	Paths []string
}

// ParseSpec reads an --ssh value: "default", "ID=PATH[,PATH]". An empty
// id is "default"; no paths means the caller's default agent socket.
func ParseSpec(s string) (Spec, error) {
	id, paths, _ := strings.Cut(s, "=")
	if id == "" {
		id = "default"
	}
	if strings.ContainsAny(id, "/ \t") {
		return Spec{}, fmt.Errorf("--ssh %q: invalid id %q", s, id)
	}
	sp := Spec{ID: id}
	if paths != "" {
		for _, p := range strings.Split(paths, ",") {
			if p == "" {
				return Spec{}, fmt.Errorf("--ssh %q: empty path", s)
			}
			sp.Paths = append(sp.Paths, p)
		}
	}
	return sp, nil
}

// Agents are the agents of a build by id. Safe for concurrent use.
type Agents struct {
	dir      string
	upstream map[string]string // id -> agent socket
	children []*agentProcess
}

// Open checks every spec and starts an ssh-agent for each that names key
// files. dir is a work dir (made when missing) that Close removes.
func Open(ctx context.Context, specs []Spec, dir string) (*Agents, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	a := &Agents{dir: dir, upstream: map[string]string{}}
	ok := false
	defer func() {
		if !ok {
			_ = a.Close()
		}
	}()
	for _, sp := range specs {
		if _, dup := a.upstream[sp.ID]; dup {
			return nil, fmt.Errorf("--ssh %s: duplicate id", sp.ID)
		}
		if len(sp.Paths) == 0 {
			return nil, fmt.Errorf("--ssh %s: no agent socket or key file (is SSH_AUTH_SOCK set?)", sp.ID)
		}
		sock, err := a.open(ctx, sp)
		if err != nil {
			return nil, fmt.Errorf("--ssh %s: %w", sp.ID, err)
		}
		a.upstream[sp.ID] = sock
	}
	ok = true
	return a, nil
}

// open returns the socket of the agent sp names: its socket, or one
// started for its keys.
func (a *Agents) open(ctx context.Context, sp Spec) (string, error) {
	var keys []string
	for _, p := range sp.Paths {
		fi, err := os.Stat(p)
		if err != nil {
			return "", err
		}
		switch {
		case fi.Mode().Type() == fs.ModeSocket:
			if len(sp.Paths) != 1 {
				return "", fmt.Errorf("%s: an agent socket must be the only path of its id", p)
			}
			return p, nil
		case fi.Mode().IsRegular():
			keys = append(keys, p)
		default:
			return "", fmt.Errorf("%s is neither an agent socket nor a key file", p)
		}
	}
	d, err := socketDir(a.dir, "agent-"+sp.ID+"-")
	if err != nil {
		return "", err
	}
	ap, err := startAgent(ctx, filepath.Join(d, "agent"), keys)
	if ap != nil {
		a.children = append(a.children, ap)
	}
	if err != nil {
		return "", err
	}
	return ap.sock, nil
}

// IDs lists the ids of the agents, sorted.
func (a *Agents) IDs() []string {
	out := make([]string, 0, len(a.upstream))
	for id := range a.upstream {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// Has reports whether an agent has this id.
func (a *Agents) Has(id string) bool {
	_, ok := a.upstream[id]
	return ok
}

// Close stops the agents Open started and removes the work dir.
func (a *Agents) Close() error {
	var errs []error
	for _, c := range a.children {
		errs = append(errs, c.stop())
	}
	a.children = nil
	errs = append(errs, os.RemoveAll(a.dir))
	return errors.Join(errs...)
}

// maxSocketPath is the longest socket path the kernel takes (sun_path is
// 108 bytes with its NUL), less a margin.
const maxSocketPath = 100

// socketDir makes a fresh dir under dir for a socket named "agent", or
// under $TMPDIR when that name would be too long for a socket.
func socketDir(dir, pattern string) (string, error) {
	if len(dir)+len(pattern)+len("/123456789/agent") > maxSocketPath {
		dir = ""
	}
	return os.MkdirTemp(dir, pattern)
}

// Listen makes a socket in a new dir under dir, owned by uid:gid with mode
// perm, that forwards each connection to agent id. stop closes it, closes
// the connections it forwards and removes its dir.
func (a *Agents) Listen(id, dir string, uid, gid int, perm fs.FileMode) (path string, stop func() error, err error) {
	up, ok := a.upstream[id]
	if !ok {
		return "", nil, fmt.Errorf("ssh %q: %w", id, ErrNoAgent)
	}
	d, err := socketDir(dir, "ssh-")
	if err != nil {
		return "", nil, err
	}
	p := filepath.Join(d, "agent")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: p, Net: "unix"})
	if err == nil {
		err = os.Chmod(p, perm)
		if err == nil {
			err = os.Lchown(p, uid, gid)
		}
		if err != nil {
			l.Close()
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return "", nil, fmt.Errorf("ssh %q: listen: %w", id, err)
	}
	px := &proxy{l: l, upstream: up, conns: map[net.Conn]bool{}}
	px.wg.Add(1)
	go px.serve()
	var once sync.Once
	return p, func() error {
		var err error
		once.Do(func() {
			px.close()
			err = os.RemoveAll(d)
		})
		return err
	}, nil
}

// proxy forwards the connections of one socket to an agent.
type proxy struct {
	l        *net.UnixListener
	upstream string
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]bool
	closed   bool
}

func (px *proxy) serve() {
	defer px.wg.Done()
	for {
		c, err := px.l.Accept()
		if err != nil {
			return
		}
		if !px.track(c) {
			c.Close()
			return
		}
		px.wg.Add(1)
		go func() {
			defer px.wg.Done()
			defer px.untrack(c)
			px.forward(c)
		}()
	}
}

func (px *proxy) track(c net.Conn) bool {
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.closed {
		return false
	}
	px.conns[c] = true
	return true
}

func (px *proxy) untrack(c net.Conn) {
	px.mu.Lock()
	delete(px.conns, c)
	px.mu.Unlock()
	c.Close()
}

// forward copies both ways between c and a new connection to the agent.
func (px *proxy) forward(c net.Conn) {
	u, err := net.Dial("unix", px.upstream)
	if err != nil {
		return // the client sees its connection closed
	}
	if !px.track(u) {
		u.Close()
		return
	}
	defer px.untrack(u)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}

// close stops accepting, closes every forwarded connection and waits for
// the goroutines.
func (px *proxy) close() {
	px.l.Close() // also unlinks the socket
	px.mu.Lock()
	px.closed = true
	for c := range px.conns {
		c.Close()
	}
	px.mu.Unlock()
	px.wg.Wait()
}
