package e2e

// RUN end to end: the sandbox as the command sees it (PID 1, hostname,
// /proc, network modes), RUN forms, environment, users and failures. The
// layers RUN makes are checked in run_layer_test.go, interop with umoci in
// run_interop_test.go, scale (many steps, concurrent builds, big files,
// deep stacks) in run_scale_test.go.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runOutputs returns what RUN printed, by key: every progress line
// "#N 0.123 key=value" (step number, seconds since the build started)
// gives out[key] = value (the last one wins). It also checks
// that each such line carries the number of the step that printed it: the
// step header "#N [stage i/n] RUN ..." comes first with the same N.
func runOutputs(t *testing.T, stderr string) map[string]string {
	t.Helper()
	header := regexp.MustCompile(`^#(\d+) \[[^\]]+\] `)
	line := regexp.MustCompile(`^#(\d+) \d+\.\d{3} ([A-Za-z0-9_.-]+)=(.*)$`)
	out := map[string]string{}
	headed := map[string]bool{}
	for _, l := range strings.Split(stderr, "\n") {
		if m := header.FindStringSubmatch(l); m != nil {
			headed[m[1]] = true
			continue
		}
		if m := line.FindStringSubmatch(l); m != nil {
			if !headed[m[1]] {
				t.Errorf("output line %q has no step header #%s before it:\n%s", l, m[1], stderr)
			}
			out[m[2]] = m[3]
		}
	}
	return out
}

// wantOutputs checks runOutputs against want.
func wantOutputs(t *testing.T, stderr string, want map[string]string) {
	t.Helper()
	got := runOutputs(t, stderr)
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("RUN printed %s=%q, want %q (present: %v)", k, g, v, ok)
		}
	}
	if t.Failed() {
		t.Logf("build output:\n%s", stderr)
	}
}

// runInspect returns the config of ref as `builder inspect` prints it.
func (e *env) runInspect(ref string) runImage {
	e.t.Helper()
	var v runImage
	r := e.mustRun("inspect", ref)
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		e.t.Fatalf("parse inspect %s: %v\n%s", ref, err, r.stdout)
	}
	return v
}

type runImage struct {
	Digest   string `json:"digest"` // of the manifest
	Manifest struct {
		Layers []struct {
			MediaType string `json:"mediaType"`
			Digest    string `json:"digest"`
		} `json:"layers"`
	} `json:"manifest"`
	Config struct {
		Config struct {
			Env  []string `json:"Env"`
			User string   `json:"User"`
		} `json:"config"`
		History []struct {
			CreatedBy  string `json:"created_by"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
	} `json:"config"`
}

func TestRunSandbox(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
RUN echo "pid=$$" && echo "ppid=$PPID" && echo "hostname=$(hostname)" && echo "etchostname=$(cat /etc/hostname)"
RUN ps -o pid,comm | sed 1d | while read pid comm; do echo "ps.$pid=$comm"; done; echo "nprocs=$(ls /proc | grep -c '^[0-9]')"
RUN echo "proc=$(stat -f -c %T /proc)" && echo "cmdline=$(tr '\0' ' ' </proc/1/cmdline)" && echo "sys=$(stat -f -c %T /sys)" && echo "devnull=$(stat -c %F:%t,%T /dev/null)"
RUN touch /sys/x 2>/dev/null; echo "sysrw=$?"; echo "uts=$(uname -n)"; echo "hosts=$(grep -c localhost /etc/hosts)"
RUN sleep 60 & echo "background=1"
`})
	start := time.Now()
	r := e.mustRun("build", "--no-cache", dir, "-t", "sandbox:v1")
	// The namespace dies with its PID 1: a background process neither
	// outlives the RUN nor keeps its output pipe open.
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("build took %v: the RUN waited for its background sleep", d)
	}
	got := runOutputs(t, r.stderr)
	wantOutputs(t, r.stderr, map[string]string{
		"pid":         "1",
		"ppid":        "0",
		"hostname":    "buildkitsandbox", // BuildKit's RUN hostname
		"etchostname": "buildkitsandbox",
		"uts":         "buildkitsandbox",
		"proc":        "proc",
		"sys":         "sysfs",
		"sysrw":       "1",
		"devnull":     "character special file:1,3",
		"hosts":       "2",
		"background":  "1",
	})
	if c := got["cmdline"]; !strings.HasPrefix(c, `/bin/sh -c echo "proc=`) {
		t.Errorf("PID 1 runs %q, want the RUN's shell", c)
	}
	// Only the RUN's own processes: the shell as PID 1 and ps (and the
	// pipeline around it), never anything of the host.
	var procs []string
	for k, v := range got {
		if pid, ok := strings.CutPrefix(k, "ps."); ok {
			procs = append(procs, pid+":"+v)
			// exe: busybox sh runs applets through /proc/self/exe.
			if n, err := strconv.Atoi(pid); err != nil || n > 50 || !slices.Contains([]string{"sh", "ps", "sed", "exe"}, v) {
				t.Errorf("ps shows pid %s (%s): a host process?", pid, v)
			}
		}
	}
	if got["ps.1"] != "sh" || len(procs) > 6 {
		t.Errorf("ps in RUN shows %v, want sh as pid 1 and at most the pipeline", procs)
	}
	if n, _ := strconv.Atoi(got["nprocs"]); n < 1 || n > 6 {
		t.Errorf("RUN sees %s processes in /proc, want only its own", got["nprocs"])
	}
}

// listenPong opens a TCP listener on 127.0.0.1 that answers "pong" and
// counts the connections it accepted.
func listenPong(t *testing.T) (int, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var n atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			fmt.Fprintln(c, "pong")
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, &n
}

func TestRunNetwork(t *testing.T) {
	e := newEnv(t)
	port, accepted := listenPong(t)
	probe := fmt.Sprintf(`echo "net=$(nc -w 5 127.0.0.1 %d </dev/null 2>/dev/null || echo down)"; echo "ifaces=$(ls /sys/class/net | tr '\n' ' ')"`, port)
	cases := []struct {
		name    string
		flags   []string
		run     string
		want    string
		ifaces  string // "" = any
		connect bool
	}{
		{name: "default is host", run: "RUN " + probe, want: "pong", connect: true},
		{name: "build --network none", flags: []string{"--network", "none"}, run: "RUN " + probe, want: "down", ifaces: "lo "},
		{name: "RUN --network=none", run: "RUN --network=none " + probe, want: "down", ifaces: "lo "},
		{name: "RUN --network=default under none", flags: []string{"--network", "none"}, run: "RUN --network=default " + probe, want: "down", ifaces: "lo "},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := accepted.Load()
			dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" + c.run + "\n"})
			args := append([]string{"build", "--no-cache", dir}, c.flags...)
			r := e.mustRun(args...)
			got := runOutputs(t, r.stderr)
			if got["net"] != c.want {
				t.Errorf("RUN reached the host listener: net=%q, want %q\n%s", got["net"], c.want, r.stderr)
			}
			if c.ifaces != "" && got["ifaces"] != c.ifaces {
				t.Errorf("interfaces %q, want %q", got["ifaces"], c.ifaces)
			}
			if conn := accepted.Load() > before; conn != c.connect {
				t.Errorf("listener accepted a connection: %v, want %v", conn, c.connect)
			}
		})
	}
}

func TestRunForms(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
SHELL ["/bin/sh", "-ec"]
RUN echo "flags=$-" && echo "shell0=$0"
RUN ["/bin/echo", "exec=$HOME"]
RUN <<EOT
x=1
echo "plain=$((x+1))"
echo "plain0=$0"
EOT
RUN <<EOT
#!/bin/awk -f
BEGIN { print "awk=" 1+2 }
EOT
RUN cat <<A >/a.txt && cat <<B >/b.txt
alpha
A
beta
B
RUN echo "ab=$(cat /a.txt /b.txt | tr '\n' ,)" && echo "root=$(ls -A / | grep -c heredoc)"
`})
	r := e.mustRun("build", "--no-cache", dir, "-t", "forms:v1")
	got := runOutputs(t, r.stderr)
	if !strings.Contains(got["flags"], "e") {
		t.Errorf("SHELL -ec: $- = %q, want the e flag", got["flags"])
	}
	wantOutputs(t, r.stderr, map[string]string{
		"shell0": "/bin/sh",
		"exec":   "$HOME", // exec form: no shell, no expansion
		"plain":  "2",
		"plain0": "/bin/sh",
		"awk":    "3", // the shebang picks the interpreter
		"ab":     "alpha,beta,",
		"root":   "0", // the heredoc script file is gone
	})
	img := e.runInspect("forms:v1")
	// Base layer + one per RUN (as BuildKit): only the one that wrote
	// a.txt and b.txt has entries; the others (the shebang script
	// included) leave empty layers.
	if n := len(img.Manifest.Layers); n != 7 {
		t.Errorf("image has %d layers, want 7 (base + 6 RUN)", n)
	}
	for i := 1; i < len(img.Manifest.Layers); i++ {
		want := []string{}
		if i == 5 {
			want = []string{"a.txt", "b.txt"}
		}
		if names := runEntryNames(e.runLayerEntries(img, i)); !slices.Equal(names, want) {
			t.Errorf("layer %d: %q, want %q", i, names, want)
		}
	}
	var runs []string
	for _, h := range img.Config.History {
		if strings.HasPrefix(h.CreatedBy, "RUN ") {
			runs = append(runs, h.CreatedBy)
		}
	}
	if len(runs) != 6 || !strings.HasPrefix(runs[0], "RUN /bin/sh -ec ") || !strings.HasPrefix(runs[1], "RUN /bin/echo exec=$HOME") {
		t.Errorf("RUN history = %q", runs)
	}
}

func TestRunEnv(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `ARG GLOBAL=g
FROM busybox AS main
ARG A1=fromarg
ARG SHARED=arg
ENV SHARED=env E1=env1
RUN echo "A1=$A1" && echo "SHARED=$SHARED" && echo "E1=$E1" && echo "GLOBAL=${GLOBAL-unset}" && echo "HOME=$HOME" && echo "PATH=$PATH"

FROM scratch AS bare
COPY --from=busybox /bin/busybox /bin/sh
RUN echo "barepath=$PATH" && echo "bareuser=$USER"
`})
	r := e.mustRun("build", "--no-cache", dir, "--target", "main", "-t", "env:v1", "--build-arg", "A1=cli")
	wantOutputs(t, r.stderr, map[string]string{
		"A1":     "cli",
		"SHARED": "env", // ENV overrides ARG
		"E1":     "env1",
		"GLOBAL": "unset", // a global ARG is not in scope without a redeclaration
		"HOME":   "/root",
		"PATH":   "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	})
	env := e.runInspect("env:v1").Config.Config.Env
	if !slices.Contains(env, "SHARED=env") || !slices.Contains(env, "E1=env1") {
		t.Errorf("image Env %q lacks the ENV values", env)
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "A1=") || strings.HasPrefix(kv, "GLOBAL=") || strings.HasPrefix(kv, "HOME=") {
			t.Errorf("image Env has %q: build args and RUN's HOME must not reach the config", kv)
		}
	}

	// An image with no Env at all: RUN still gets the default PATH, and
	// the sandbox's mount points (/proc, /sys, /dev, /etc/...) that the
	// rootfs lacks leave nothing behind: the RUN's layer is empty (as
	// BuildKit, every RUN is a layer).
	r = e.mustRun("build", "--no-cache", dir, "--target", "bare", "-t", "bare:v1")
	wantOutputs(t, r.stderr, map[string]string{
		"barepath": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"bareuser": "",
	})
	bare := e.runInspect("bare:v1")
	if n := len(bare.Manifest.Layers); n != 2 {
		t.Errorf("FROM scratch + COPY + RUN echo: %d layers, want 2", n)
	} else if ents := e.runLayerEntries(bare, 1); len(ents) != 0 {
		t.Errorf("the RUN's layer has %q: the sandbox's mount points must not reach it", runEntryNames(ents))
	}
}

func TestRunUser(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox
USER nobody
RUN if touch /root/x 2>/dev/null; then echo "nobodywrite=yes"; else echo "nobodywrite=no"; fi; echo "nobody=$(id -u):$(id -g)" && echo "nobodyhome=$HOME"
USER www
RUN echo "www=$(id -u):$(id -g)" && echo "wwwgroups=$(id -G)" && echo "wwwhome=$HOME" && echo "wwwpwd=$(pwd)" && touch /home/www/made
USER 1000:1000
RUN echo "num=$(id -u):$(id -g)" && echo "numgroups=$(id -G)"
USER 1000:wheel
RUN echo "mixed=$(id -u):$(id -g)"
USER root
RUN echo "rootgroups=$(id -G)" && echo "caps=$(grep CapEff /proc/self/status | cut -f2)"
`})
	r := e.mustRun("build", "--no-cache", dir, "-t", "user:v1")
	got := runOutputs(t, r.stderr)
	wantOutputs(t, r.stderr, map[string]string{
		"nobodywrite": "no",
		"nobody":      "65534:65534",
		"nobodyhome":  "/nonexistent",
		"www":         "1000:1000",
		"wwwhome":     "/home/www",
		"wwwpwd":      "/",
		"num":         "1000:1000",
		"numgroups":   "1000", // uid:gid: no supplementary groups (as runc)
		"mixed":       "1000:10",
		"caps":        "00000000a80425fb", // Docker's default set
	})
	if g := strings.Fields(got["wwwgroups"]); !slices.Contains(g, "10") || !slices.Contains(g, "1000") {
		t.Errorf("www's groups = %q, want 1000 and wheel (10) from /etc/group", got["wwwgroups"])
	}
	if g := strings.Fields(got["rootgroups"]); !slices.Contains(g, "10") {
		t.Errorf("root's groups = %q, want wheel (10) from /etc/group", got["rootgroups"])
	}
	img := e.runInspect("user:v1")
	var h *runEntry
	for i := 1; i < len(img.Manifest.Layers) && h == nil; i++ {
		h = findRunEntry(e.runLayerEntries(img, i), "home/www/made")
	}
	if h == nil || h.uid != 1000 || h.gid != 1000 {
		t.Errorf("file made by USER www: %+v, want owner 1000:1000", h)
	}
}

func TestRunFailure(t *testing.T) {
	e := newEnv(t)
	dir := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo \"before=ok\"\n\nRUN echo \"partial=yes\"; exit 3\nRUN echo never\n"})
	r := e.run("build", dir, "-t", "fail:v1")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	if want := "Dockerfile:4: RUN echo \"partial=yes\"; exit 3: exit code 3"; !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
	}
	wantOutputs(t, r.stderr, map[string]string{"before": "ok", "partial": "yes"})
	// (The excerpt under the error shows the line; a step that started
	// shows as a progress line "#4 [stage-0 4/4] RUN echo never".)
	if regexp.MustCompile(`(?m)^#\d+ \d+\.\d{3} never$`).MatchString(r.stderr) || strings.Contains(r.stderr, "] RUN echo never") {
		t.Errorf("a step after the failure ran:\n%s", r.stderr)
	}
	if rr := e.run("inspect", "fail:v1"); rr.code == 0 {
		t.Errorf("a failed build tagged fail:v1")
	}

	dir = writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN exit 3\n"})
	r = e.run("build", dir)
	if want := "Dockerfile:2: RUN exit 3: exit code 3"; r.code != 1 || !strings.Contains(r.stderr, want) {
		t.Errorf("exit %d, want 1 and %q:\n%s", r.code, want, r.stderr)
	}
}

// TestRunOutputStreams checks that RUN output reaches the progress output
// while the command runs: the RUN blocks on a host listener that answers
// only once the test has seen the line printed before.
func TestRunOutputStreams(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		select {
		case <-release:
			fmt.Fprintln(c, "go")
		case <-time.After(30 * time.Second):
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	dir := writeContext(t, map[string]string{"Dockerfile": fmt.Sprintf(
		"FROM busybox\nRUN echo \"waiting=1\" && echo \"answer=$(nc -w 40 127.0.0.1 %d </dev/null)\"\n", port)})
	cmd := exec.Command(e.bin, "--root", e.root, "build", "--no-cache", dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var all strings.Builder
	seen := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			all.WriteString(sc.Text() + "\n")
			if !once && regexp.MustCompile(`^#\d+ \d+\.\d{3} waiting=1$`).MatchString(sc.Text()) {
				once = true
				close(seen)
			}
		}
	}()
	select {
	case <-seen:
		close(release)
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		t.Fatalf("the RUN's first line did not reach the progress output while it ran:\n%s", all.String())
	}
	<-done
	if err := cmd.Wait(); err != nil {
		t.Fatalf("build: %v\n%s", err, all.String())
	}
	wantOutputs(t, all.String(), map[string]string{"waiting": "1", "answer": "go"})
}
