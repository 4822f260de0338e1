//go:build linux

package e2e

// builder run: a container of a stored image, as docker run resolves and
// runs it, in the sandbox of RUN, with volumes, limits, a terminal and
// signals; nothing is left behind, and escapes through the image's
// symlinks land inside its rootfs.

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runImages builds the images of the tests, one stage each.
func runImages(t *testing.T, e *env) {
	t.Helper()
	dir := writeContext(t, map[string]string{"Dockerfile": `FROM busybox AS cmd
CMD ["echo", "cmd"]
FROM busybox AS ep
ENTRYPOINT ["echo", "ep"]
FROM busybox AS both
ENTRYPOINT ["echo", "ep"]
CMD ["cmd"]
FROM busybox AS shell
ENTRYPOINT echo shell
CMD ["ignored"]
FROM busybox AS none
CMD []
FROM busybox AS cfg
ENV FROM_IMAGE=image OVER=image
WORKDIR /srv
USER 1000:1000
FROM busybox AS evil
RUN mkdir /etc/real && ln -s /../../../../../../../HOST /abs && ln -s ../../../../../../../HOST /rel && ln -s /etc/real /inside
`})
	for _, s := range []string{"cmd", "ep", "both", "shell", "none", "cfg", "evil"} {
		e.mustRun("build", "-q", "--target", s, "-t", "run-"+s, dir)
	}
}

func TestRunCmd(t *testing.T) {
	e := boundedEnv(t)
	runImages(t, e)

	t.Run("EntrypointCmd", func(t *testing.T) {
		for _, tc := range []struct {
			image string
			flags []string
			args  []string
			out   string
			code  int
		}{
			{image: "cmd", out: "cmd"},
			{image: "cmd", args: []string{"echo", "x"}, out: "x"},
			{image: "ep", out: "ep"},
			{image: "ep", args: []string{"a", "b"}, out: "ep a b"},
			{image: "both", out: "ep cmd"},
			{image: "both", args: []string{"x"}, out: "ep x"},
			// --entrypoint drops the image's Cmd too.
			{image: "both", flags: []string{"--entrypoint", "echo"}, out: ""},
			{image: "both", flags: []string{"--entrypoint", "echo"}, args: []string{"y"}, out: "y"},
			// --entrypoint "": no entrypoint, the image's Cmd ("cmd": not found).
			{image: "both", flags: []string{"--entrypoint="}, code: 127},
			{image: "cmd", flags: []string{"--entrypoint="}, args: []string{"echo", "z"}, out: "z"},
			// A shell-form entrypoint ignores Cmd and arguments.
			{image: "shell", args: []string{"x"}, out: "shell"},
			{image: "none", code: 125},
			{image: "cmd", args: []string{"--", "sh", "-c", "exit 3"}, code: 3},
		} {
			args := append(append(append([]string{"run"}, tc.flags...), "run-"+tc.image), tc.args...)
			r := e.run(args...)
			if r.code != tc.code || tc.code == 0 && strings.TrimSpace(r.stdout) != tc.out {
				t.Errorf("builder %s: exit %d, stdout %q (want %d, %q)\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, tc.code, tc.out, r.stderr)
			}
		}
	})

	t.Run("Config", func(t *testing.T) {
		envFile := filepath.Join(t.TempDir(), "env")
		if err := os.WriteFile(envFile, []byte("# comment\nFILE=file\nOVER=file\nPASSED\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.runEnv([]string{"PASSED=from-host"}, "", "run", "--env-file", envFile, "-e", "OVER=flag", "--hostname", "box",
			"run-cfg", "sh", "-c", `echo "$FROM_IMAGE $FILE $OVER $PASSED $(id -u):$(id -g) $(pwd) $(hostname) $HOME"`)
		if want := "image file flag from-host 1000:1000 /srv box /home/www\n"; r.code != 0 || r.stdout != want {
			t.Errorf("exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
		}
		// -u and -w override the image's; a missing workdir is made, the user's.
		r = e.run("run", "-u", "root", "-w", "/new/dir", "run-cfg", "sh", "-c", `echo "$(id -u) $(pwd) $(stat -c %u /new/dir)"`)
		if want := "0 /new/dir 0\n"; r.code != 0 || r.stdout != want {
			t.Errorf("exit %d, stdout %q, want %q\n%s", r.code, r.stdout, want, r.stderr)
		}
		// The container's writes are gone with it.
		e.mustRun("run", "run-cmd", "sh", "-c", "echo x > /written")
		if r := e.run("run", "run-cmd", "test", "-e", "/written"); r.code != 1 {
			t.Errorf("a file written by a container is in the next one (exit %d)", r.code)
		}
		// Made before the rootfs turns read-only, as docker creates it.
		if r := e.run("run", "--read-only", "-w", "/made", "run-cmd", "pwd"); r.code != 0 || r.stdout != "/made\n" {
			t.Errorf("--read-only -w /made: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
		if r := e.run("run", "run-cmd", "/etc/passwd"); r.code != 126 {
			t.Errorf("not executable: exit %d, want 126\n%s", r.code, r.stderr)
		}
		if r := e.run("run", "run-cmd", "no-such-command"); r.code != 127 {
			t.Errorf("missing command: exit %d, want 127\n%s", r.code, r.stderr)
		}
		if r := e.run("run", "no-such-image"); r.code != 125 || !strings.Contains(r.stderr, "no-such-image") {
			t.Errorf("missing image: exit %d, want 125\n%s", r.code, r.stderr)
		}
	})

	t.Run("Sandbox", func(t *testing.T) {
		// The escapes a hostile RUN tries, tried by a container: the same
		// namespaces, capabilities, seccomp filter and masked paths.
		script := `echo "pid=$$"
echo "seccomp=$(grep Seccomp: /proc/self/status | cut -f2)"
echo "nnp=$(grep NoNewPrivs: /proc/self/status | cut -f2)"
echo "capeff=$(grep CapEff: /proc/self/status | cut -f2)"
echo "userns=$(unshare -r true 2>&1)"
mount -t tmpfs none /mnt 2>/dev/null; echo "mount=$?"
echo 1 > /proc/sysrq-trigger 2>/dev/null; echo "sysrq=$?"
touch /sys/x 2>/dev/null; echo "sysrw=$?"
echo x > /proc/sys/kernel/domainname 2>/dev/null; echo "procsys=$?"
[ "$(ls /proc | grep -c '^[0-9]')" -le 4 ] && echo "fewprocs=yes"
echo "netdevs=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ,)"`
		r := e.mustRun("run", "--network", "none", "busybox", "sh", "-c", script)
		for k, want := range map[string]string{
			"pid": "1", "seccomp": "2", "nnp": "1", "capeff": "00000000a80425fb",
			"userns": "unshare: unshare(0x10000000): Operation not permitted",
			"mount":  "1", "sysrq": "1", "sysrw": "1", "procsys": "1", "fewprocs": "yes", "netdevs": "lo,",
		} {
			if !strings.Contains(r.stdout, "\n"+k+"="+want+"\n") && !strings.HasPrefix(r.stdout, k+"="+want+"\n") {
				t.Errorf("%s: want %q in\n%s", k, want, r.stdout)
			}
		}
	})

	t.Run("Volumes", func(t *testing.T) {
		host := t.TempDir()
		e.mustRun("run", "-v", host+":/data", "run-cmd", "sh", "-c", "echo from-container > /data/out")
		if got := mustRead(t, filepath.Join(host, "out")); got != "from-container\n" {
			t.Errorf("bind volume: host reads %q", got)
		}
		if r := e.run("run", "-v", host+":/data:ro", "run-cmd", "sh", "-c", "echo x > /data/out"); r.code == 0 {
			t.Error("a write to a :ro bind succeeded")
		}
		if r := e.run("run", "--mount", "type=bind,src="+host+",dst=/data,readonly", "run-cmd", "cat", "/data/out"); r.code != 0 || r.stdout != "from-container\n" {
			t.Errorf("--mount bind: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
		if r := e.run("run", "-v", filepath.Join(host, "missing")+":/data", "run-cmd", "true"); r.code != 125 || !strings.Contains(r.stderr, "does not exist") {
			t.Errorf("missing bind source: exit %d\n%s", r.code, r.stderr)
		}
		// A named volume survives its container.
		e.mustRun("run", "-v", "cache1:/cache", "run-cmd", "sh", "-c", "echo one >> /cache/log")
		r := e.mustRun("run", "--mount", "type=volume,src=cache1,dst=/cache", "run-cmd", "sh", "-c", "echo two >> /cache/log; cat /cache/log")
		if r.stdout != "one\ntwo\n" {
			t.Errorf("named volume across two runs: %q", r.stdout)
		}
		if r := e.mustRun("volume", "ls"); !strings.Contains(r.stdout, "cache1") {
			t.Errorf("volume ls:\n%s", r.stdout)
		}
		e.mustRun("volume", "rm", "cache1")
		if r := e.mustRun("volume", "ls"); strings.Contains(r.stdout, "cache1") {
			t.Errorf("volume ls after rm:\n%s", r.stdout)
		}
		// --read-only: the rootfs refuses writes; tmpfs and volumes take them.
		r = e.run("run", "--read-only", "--tmpfs", "/scratch", "-v", "/anon", "run-cmd", "sh", "-c",
			"echo x > /scratch/f && echo x > /anon/f && echo ok; echo x > /root/f")
		if r.code == 0 || r.stdout != "ok\n" || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("--read-only: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("Commit", func(t *testing.T) {
		// The layer holds what the command changed: no mount point, no
		// generated /etc file, nothing of the volumes.
		host := t.TempDir()
		e.mustRun("run", "--commit", "run-committed:v1", "-v", host+":/data", "--tmpfs", "/scratch", "-w", "/work",
			"run-cmd", "sh", "-c", "echo hi > f; echo x > /data/x; rm /etc/group")
		_, layers := e.manifestLayers(t, "run-committed:v1")
		out, err := exec.Command("tar", "tzf", e.blobPath(layers[len(layers)-1])).Output()
		if got := strings.Fields(string(out)); err != nil || !slices.Equal(got, []string{"etc/", "etc/.wh.group", "work/", "work/f"}) {
			t.Errorf("committed layer: %q, %v", got, err)
		}
		if r := e.run("run", "run-committed:v1"); r.code != 0 || r.stdout != "cmd\n" {
			t.Errorf("committed image keeps the config: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
		}
		if r := e.run("run", "--commit", "run-failed:v1", "run-cmd", "false"); r.code != 1 || e.run("inspect", "run-failed:v1").code == 0 {
			t.Errorf("a failed command: exit %d, and committed", r.code)
		}
	})

	t.Run("Hostile", func(t *testing.T) {
		// /abs and /rel point far above the rootfs: mount points, the
		// workdir and a tmpfs land inside it, never on the host.
		host := t.TempDir()
		if err := os.WriteFile(filepath.Join(host, "f"), []byte("f\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"-v", host + ":/abs/x", "run-evil", "cat", "/HOST/x/f"},
			{"-v", host + ":/rel/../../../x", "run-evil", "cat", "/x/f"},
			{"--mount", "type=bind,src=" + host + ",dst=/../../../y", "run-evil", "cat", "/y/f"},
			{"--tmpfs", "/rel/t", "run-evil", "test", "-d", "/HOST/t"},
			{"-w", "/abs/wd", "run-evil", "pwd"},
			{"-v", host + ":/inside/z", "run-evil", "cat", "/etc/real/z/f"},
		} {
			r := e.run(append([]string{"run"}, args...)...)
			if r.code != 0 {
				t.Errorf("builder run %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
			}
		}
		for _, p := range []string{"/HOST", "/x", "/y"} {
			if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s made on the host (%v)", p, err)
			}
		}
		for _, v := range []string{"type=volume,src=../etc,dst=/v", "type=volume,src=a/b,dst=/v", "type=bind,src=" + host + ",dst=/"} {
			if r := e.run("run", "--mount", v, "run-evil", "true"); r.code != 125 {
				t.Errorf("--mount %s: exit %d, want 125\n%s", v, r.code, r.stderr)
			}
		}
		checkNoMounts(t, e.root)
	})
}

func TestRunCmdLimits(t *testing.T) {
	e := boundedEnv(t)
	r := e.run("run", "--memory", "16m", "busybox", "sh", "-c", cgroupLines+`; x=a; while true; do x="$x$x"; done`)
	if r.code != 137 || !strings.Contains(r.stderr, "memory limit 16MiB reached (OOM)") {
		t.Errorf("memory hog: exit %d\n%s", r.code, r.stderr)
	}
	dirs := runCgroups(t, strings.ReplaceAll(r.stdout, "cg_", "#1 0.000 cg_"))
	r = e.run("run", "--pids-limit", "20", "busybox", "sh", "-c", "for i in $(seq 40); do sleep 9 & done; wait")
	if r.code == 0 || !strings.Contains(r.stderr, "pids limit 20 reached") {
		t.Errorf("fork bomb: exit %d\n%s", r.code, r.stderr)
	}
	noCgroupsLeft(t, dirs)
}

// startContainer starts builder run with a command that prints ready on
// stdout once it runs, and waits for that.
func startContainer(t *testing.T, e *env, args ...string) (*exec.Cmd, <-chan error, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(e.bin, append([]string{"--root", e.root, "run"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	cmd.Stderr = &syncWriter{b: &log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
			}
			if strings.HasPrefix(sc.Text(), "cg_") {
				cmd.Stderr.Write([]byte("#1 0.000 " + sc.Text() + "\n")) // as runCgroups reads a build's
			}
		}
		done <- cmd.Wait()
	}()
	select {
	case <-ready:
	case <-done:
		t.Fatalf("builder run ended before the container was ready\n%s", log.String())
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("container not ready within 20s")
	}
	return cmd, done, &log
}

// syncWriter is a strings.Builder written by two goroutines.
type syncWriter struct {
	mu sync.Mutex
	b  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func TestRunCmdSignals(t *testing.T) {
	e := boundedEnv(t)
	for _, tc := range []struct {
		name string
		sig  os.Signal
		args []string
		code int
	}{
		// PID 1 gets the signal and exits as it likes.
		{"SIGTERM", syscall.SIGTERM, []string{"busybox", "sh", "-c", cgroupLines + `; trap "exit 42" TERM; echo ready; sleep 987651 & wait`}, 42},
		{"SIGINT", os.Interrupt, []string{"busybox", "sh", "-c", `trap "exit 43" INT; echo ready; sleep 987652 & wait`}, 43},
		// PID 1 without a handler ignores it: killed after --stop-timeout.
		{"ignored", syscall.SIGTERM, []string{"--stop-timeout", "1", "-v", "sigvol:/v", "--tmpfs", "/t", "busybox", "sh", "-c", `echo ready; exec sleep 987653`}, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd, done, log := startContainer(t, e, tc.args...)
			procs := descendants(cmd.Process.Pid)
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			if code := waitExit(t, cmd, done, 10*time.Second); code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, log.String())
			}
			checkGone(t, procs, time.Second)
			checkNoMounts(t, e.root)
			if strings.Contains(log.String(), "cg_") {
				noCgroupsLeft(t, runCgroups(t, log.String()))
			}
			if n := listNames(t, filepath.Join(e.root, "snapshots", "active")); len(n) != 0 {
				t.Errorf("snapshots/active not empty: %v", n)
			}
		})
	}
	if r := e.mustRun("volume", "ls"); !strings.Contains(strings.Join(strings.Fields(r.stdout), " "), "sigvol no") {
		t.Errorf("volume of a killed container still in use:\n%s", r.stdout)
	}
}

func TestRunCmdTTY(t *testing.T) {
	e := boundedEnv(t)
	r := e.run("run", "-t", "-u", "1000", "busybox", "sh", "-c", "test -t 0 && test -t 1 && echo tty; stty size; tty; stat -c %u $(tty)")
	if r.code != 0 || r.stdout != "tty\r\n24 80\r\n/dev/pts/0\r\n1000\r\n" {
		t.Errorf("-t: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	r = e.runEnv(nil, "piped\n", "run", "-i", "busybox", "sh", "-c", "test -t 0 || cat")
	if r.code != 0 || r.stdout != "piped\n" {
		t.Errorf("-i: exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
	}
	// -it in a terminal (script gives builder one): what is typed reaches
	// the container's terminal.
	if _, err := exec.LookPath("script"); err != nil {
		t.Skip("no script(1): -it in a terminal untested")
	}
	line := e.bin + " --root " + e.root + " run -it busybox sh -c 'read x; echo got-$x; test -t 0 && echo tty-in'"
	cmd := exec.Command("script", "-qec", line, "/dev/null")
	cmd.Stdin = strings.NewReader("typed\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "got-typed") || !strings.Contains(string(out), "tty-in") {
		t.Errorf("-it under script: %v\n%s", err, out)
	}
}
