package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Docker's default capability set, as /proc/self/status prints it.
const dockerCaps = "00000000a80425fb"

func TestRun(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, nil)
	tests := []struct {
		name   string
		script string
		edit   func(*Config)
		want   string // exact stdout, after trimming
	}{
		{name: "pid 1", script: "echo $$", want: "1"},
		{name: "no host processes", script: "ps -o comm > /dev/shm/ps; tr '\\n' ' ' < /dev/shm/ps", want: "COMMAND sh ps"},
		{name: "hostname", script: "hostname; cat /etc/hostname", want: "builder\nbuilder"},
		{name: "custom hostname", script: "hostname", edit: func(c *Config) { c.Hostname = "box" }, want: "box"},
		{name: "proc", script: "test -e /proc/self/status && echo ok", want: "ok"},
		{name: "keys masked", script: "stat -c %t:%T /proc/keys; cat /proc/keys | wc -c", want: "1:3\n0"},
		{name: "acpi masked", script: "stat -f -c %T /proc/acpi; touch /proc/acpi/x 2>/dev/null || echo denied", want: "tmpfs\ndenied"},
		{name: "timer_list masked", script: "cat /proc/timer_list | wc -c", want: "0"},
		{name: "proc sys read-only", script: "echo x > /proc/sys/kernel/hostname 2>/dev/null || echo denied", want: "denied"},
		{name: "sysrq read-only", script: "echo h > /proc/sysrq-trigger 2>/dev/null || echo denied", want: "denied"},
		{name: "sys read-only", script: "touch /sys/x 2>/dev/null || echo denied; grep -c ' /sys .*ro,' /proc/mounts", want: "denied\n1"},
		{name: "firmware masked", script: "ls -A /sys/firmware | wc -l", want: "0"},
		{name: "dev", script: "ls /dev | grep -v mqueue | tr '\\n' ' '", want: "core fd full null ptmx pts random shm stderr stdin stdout tty urandom zero"},
		{name: "dev null and zero", script: "echo x > /dev/null && head -c 5 /dev/zero | wc -c", want: "5"},
		{name: "dev pts and shm", script: "test -e /dev/pts/ptmx && touch /dev/shm/x && echo ok", want: "ok"},
		{name: "stdin is dev null", script: "cat; echo done", want: "done"},
		{name: "etc hosts", script: "cat /etc/hosts", edit: func(c *Config) { c.Hosts = []byte("10.0.0.1 x\n") }, want: "10.0.0.1 x"},
		{name: "default hosts", script: "grep -c 'localhost builder' /etc/hosts", want: "1"},
		{name: "resolv", script: "cat /etc/resolv.conf", edit: func(c *Config) { c.Resolv = []byte("nameserver 10.0.0.2\n") }, want: "nameserver 10.0.0.2"},
		{name: "env", script: "echo $FOO", edit: func(c *Config) { c.Env = append(c.Env, "FOO=bar") }, want: "bar"},
		{name: "cwd", script: "pwd", edit: func(c *Config) { c.Cwd = "/tmp" }, want: "/tmp"},
		{name: "cwd default", script: "pwd", want: "/"},
		{name: "root caps", script: "grep -E '^(Cap|NoNewPrivs)' /proc/self/status",
			want: "CapInh:\t0000000000000000\nCapPrm:\t" + dockerCaps + "\nCapEff:\t" + dockerCaps +
				"\nCapBnd:\t" + dockerCaps + "\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1"},
		{name: "user caps", script: "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status", edit: asNobody,
			want: "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t" + dockerCaps},
		{name: "user ids", script: "id -u; id -g; id -G", edit: func(c *Config) { asNobody(c); c.Groups = []uint32{65534, 7} },
			want: "65534\n65534\n65534 7"},
		{name: "user cannot write root", script: "touch /root/x 2>/dev/null || echo denied", edit: asNobody, want: "denied"},
		{name: "root writes root", script: "touch /root/x && echo ok", want: "ok"},
		{name: "user cwd inaccessible", script: "pwd", edit: func(c *Config) { asNobody(c); c.Cwd = "/root" }, want: "/root"},
		{name: "absolute command", script: "", edit: func(c *Config) { c.Args = []string{"/bin/echo", "hi"} }, want: "hi"},
		{name: "default PATH", script: "", edit: func(c *Config) { c.Args = []string{"echo", "hi"}; c.Env = nil }, want: "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config(tt.script)
			if tt.edit != nil {
				tt.edit(&cfg)
			}
			out, errOut, err := runOut(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nstderr: %s", err, errOut)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("stdout:\n%s\nwant:\n%s\nstderr: %s", got, tt.want, errOut)
			}
		})
	}
	if m := mountsUnder(t, filepath.Dir(l.root)); len(m) > 0 {
		t.Errorf("mounts left on the host: %q", m)
	}
}

func asNobody(c *Config) { c.UID, c.GID = 65534, 65534 }

func TestRunErrors(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, nil)
	tests := []struct {
		name      string
		edit      func(*Config)
		wantCode  int      // ExitError code, or 0 for a setup error
		wantIn    []string // substrings of the error
		wantErrno error
	}{
		{name: "exit code", edit: func(c *Config) { c.Args = []string{"sh", "-c", "exit 3"} }, wantCode: 3},
		{name: "false", edit: func(c *Config) { c.Args = []string{"false"} }, wantCode: 1},
		{name: "missing cwd", edit: func(c *Config) { c.Cwd = "/nope" },
			wantIn: []string{"sandbox: chdir:", "/nope"}, wantErrno: fs.ErrNotExist},
		{name: "missing command", edit: func(c *Config) { c.Args = []string{"nope"} },
			wantIn: []string{`sandbox: exec: find "nope" in $PATH`}, wantErrno: fs.ErrNotExist},
		{name: "missing file", edit: func(c *Config) { c.Args = []string{"/bin/nope"} },
			wantIn: []string{"sandbox: exec:", "/bin/nope"}, wantErrno: fs.ErrNotExist},
		{name: "not executable", edit: func(c *Config) { c.Args = []string{"/tmp"} },
			wantIn: []string{"sandbox: exec:"}, wantErrno: fs.ErrPermission},
		{name: "bad mount", edit: func(c *Config) { c.Rootfs[0].Options[0] = "lowerdir=/nonexistent-lower" },
			wantIn: []string{"sandbox: mount rootfs:", "mount overlay"}, wantErrno: fs.ErrNotExist},
		{name: "no command", edit: func(c *Config) { c.Args = nil }, wantIn: []string{"no command"}},
		{name: "bad network", edit: func(c *Config) { c.Network = "bridge" }, wantIn: []string{"unknown network"}},
		{name: "relative root", edit: func(c *Config) { c.Rootfs = nil; c.RootDir = "rel" }, wantIn: []string{"not an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := l.config("true")
			tt.edit(&cfg)
			_, errOut, err := runOut(t, cfg)
			if err == nil {
				t.Fatalf("Run succeeded, want an error")
			}
			var ee *ExitError
			if tt.wantCode != 0 {
				if !errors.As(err, &ee) || ee.Code != tt.wantCode {
					t.Fatalf("Run: %v, want exit code %d (stderr: %s)", err, tt.wantCode, errOut)
				}
				return
			}
			if errors.As(err, &ee) {
				t.Fatalf("Run: %v, want a setup error", err)
			}
			for _, s := range tt.wantIn {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			if tt.wantErrno != nil && !errors.Is(err, tt.wantErrno) {
				t.Errorf("error %q is not %v", err, tt.wantErrno)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		ws   syscall.WaitStatus
		want int
	}{
		{ws: 3 << 8, want: 3},
		{ws: 255 << 8, want: 255},
		{ws: syscall.WaitStatus(syscall.SIGKILL), want: 137},
		{ws: syscall.WaitStatus(syscall.SIGTERM), want: 143},
	}
	for _, tt := range tests {
		if got := exitCode(tt.ws); got != tt.want {
			t.Errorf("exitCode(%#x) = %d, want %d", uint32(tt.ws), got, tt.want)
		}
	}
	if got := (&ExitError{Code: 2}).Error(); got != "exit code 2" {
		t.Errorf("ExitError.Error() = %q", got)
	}
}

func TestNetwork(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, nil)
	// A host listener on 127.0.0.1 that greets and hangs up. (Debian's static
	// busybox wget crashes in its resolver, so nc does the connecting.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "reached")
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	fetch := "nc -w 2 127.0.0.1 " + port + " 2>/dev/null || echo unreachable"
	tests := []struct {
		network, script, want string
	}{
		{network: "", script: fetch, want: "reached"},
		{network: "host", script: fetch, want: "reached"},
		{network: "none", script: fetch, want: "unreachable"},
		{network: "none", script: "ip -o link | grep -c .; ip -o link show lo | grep -c '[<,]UP[,>]'", want: "1\n1"},
	}
	for _, tt := range tests {
		t.Run(tt.network+"/"+strings.Fields(tt.script)[0], func(t *testing.T) {
			cfg := l.config(tt.script)
			cfg.Network = tt.network
			out, errOut, err := runOut(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nstderr: %s", err, errOut)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("stdout %q, want %q (stderr: %s)", got, tt.want, errOut)
			}
		})
	}
}

func TestCancel(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, nil)
	// Two sleeps with arguments no other process has: PID 1 and a child.
	marks := []string{strconv.Itoa(7_000_000 + os.Getpid()), strconv.Itoa(8_000_000 + os.Getpid())}
	cfg := l.config("sleep " + marks[0] + " & exec sleep " + marks[1])
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg) }()

	deadline := time.Now().Add(10 * time.Second)
	for len(sleepers(t, marks)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("sleeps never started")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	start := time.Now()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run took %v to return after cancel", d)
	}
	if left := sleepers(t, marks); len(left) > 0 {
		t.Errorf("processes left after cancel: %v", left)
	}
	if m := mountsUnder(t, filepath.Dir(l.root)); len(m) > 0 {
		t.Errorf("mounts left on the host: %q", m)
	}
	if got := tree(t, l.upper); len(got) > 0 {
		t.Errorf("upper dir after cancel: %q", got)
	}
}

// sleepers returns the host pids of live "sleep <mark>" processes.
func sleepers(t *testing.T, marks []string) []int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited meanwhile
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) != 2 || !strings.HasSuffix(args[0], "sleep") {
			continue
		}
		stat, err := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if err != nil || strings.Contains(string(stat), ") Z ") {
			continue // gone, or a zombie waiting for its reaper
		}
		for _, m := range marks {
			if args[1] == m {
				pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

func BenchmarkRunTrue(b *testing.B) {
	requireRoot(b)
	l := newLayout(b, nil)
	cfg := Config{Rootfs: l.mounts(), Args: []string{"/bin/busybox", "true"}}
	ctx := context.Background()
	for b.Loop() {
		if err := Run(ctx, cfg); err != nil {
			b.Fatal(err)
		}
	}
}
