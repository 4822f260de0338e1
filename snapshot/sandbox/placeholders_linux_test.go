package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestPlaceholders checks that the mount points the sandbox creates never
// reach the upper dir, while what the command writes does.
func TestPlaceholders(t *testing.T) {
	requireRoot(t)
	withEtc := func(lower string) { writeFile(t, filepath.Join(lower, "etc", "passwd"), "root:x:0:0::/root:/bin/sh\n") }
	withAll := func(lower string) {
		withEtc(lower)
		for _, d := range []string{"proc", "sys", "dev"} {
			mustMkdir(t, filepath.Join(lower, d), 0o755)
		}
		for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
			writeFile(t, filepath.Join(lower, "etc", f), "image "+f+"\n")
		}
	}
	resolvLink := func(target string) func(string) {
		return func(lower string) {
			mustMkdir(t, filepath.Join(lower, "etc"), 0o755)
			if err := os.Symlink(target, filepath.Join(lower, "etc", "resolv.conf")); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name      string
		prepare   func(lower string)
		script    string
		want      string   // stdout
		wantUpper []string // tree of the upper dir afterwards
	}{
		{name: "bare rootfs", script: "true"},
		{name: "etc in lower", prepare: withEtc, script: "true"},
		{name: "all in lower", prepare: withAll, script: "cat /etc/resolv.conf", want: "nameserver 10.0.0.2"},
		{name: "hosts write not kept", script: "echo x > /etc/hosts; cat /etc/hosts", want: "x"},
		{name: "hosts write not kept over lower", prepare: withAll, script: "echo x >> /etc/hostname; cat /etc/hostname", want: "builder\nx"},
		{name: "new etc file kept", script: "echo a > /etc/new", wantUpper: []string{"etc/", "etc/new"}},
		{name: "new file in lower etc kept", prepare: withEtc, script: "echo a > /etc/new", wantUpper: []string{"etc/", "etc/new"}},
		{name: "chmod of lower etc kept", prepare: withEtc, script: "chmod 700 /etc", wantUpper: []string{"etc/"}},
		{name: "file in dev tmpfs not kept", script: "touch /dev/x /dev/shm/y"},
		{name: "relative resolv link", prepare: resolvLink("../run/resolve/stub.conf"),
			script: "cat /etc/resolv.conf", want: "nameserver 10.0.0.2"},
		{name: "absolute resolv link stays inside", prepare: resolvLink("/run/sandbox-test-missing/stub.conf"),
			script: "cat /run/sandbox-test-missing/stub.conf", want: "nameserver 10.0.0.2"},
		{name: "upper changes elsewhere", script: "mkdir /srv && echo b > /srv/f", wantUpper: []string{"srv/", "srv/f"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLayout(t, tt.prepare)
			cfg := l.config(tt.script)
			cfg.Resolv = []byte("nameserver 10.0.0.2\n")
			out, errOut, err := runOut(t, cfg)
			if err != nil {
				t.Fatalf("Run: %v\nstderr: %s", err, errOut)
			}
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("stdout %q, want %q (stderr: %s)", got, tt.want, errOut)
			}
			if upper := tree(t, l.upper); !slices.Equal(upper, tt.wantUpper) {
				t.Errorf("upper dir: %q, want %q", upper, tt.wantUpper)
			}
			if _, err := os.Lstat("/run/sandbox-test-missing"); err == nil {
				t.Errorf("a symlink in the rootfs reached the host's /run")
			}
		})
	}
}

// TestPlaceholdersBindRoot runs over a plain directory (no overlay): the
// placeholders land in the directory itself and must be gone afterwards.
func TestPlaceholdersBindRoot(t *testing.T) {
	requireRoot(t)
	l := newLayout(t, nil)
	before := tree(t, l.lower)
	cfg := Config{RootDir: l.lower, Args: []string{"/bin/sh", "-c", "echo x > /etc/hosts; mkdir /new"}}
	if _, errOut, err := runOut(t, cfg); err != nil {
		t.Fatalf("Run: %v\nstderr: %s", err, errOut)
	}
	want := append(before, "new/")
	slices.Sort(want)
	if got := tree(t, l.lower); !slices.Equal(got, want) {
		t.Errorf("rootfs after run: %q, want %q", got, want)
	}
	if m := mountsUnder(t, l.lower); len(m) > 0 {
		t.Errorf("mounts left on the host: %q", m)
	}
}

func TestResolveIn(t *testing.T) {
	root := t.TempDir()
	mustMkdir(t, filepath.Join(root, "etc"), 0o755)
	mustMkdir(t, filepath.Join(root, "usr", "lib"), 0o755)
	links := map[string]string{
		"etc/abs":   "/usr/lib",
		"etc/rel":   "../usr/lib",
		"etc/up":    "../../../../usr",
		"etc/loop":  "loop",
		"etc/dang":  "/missing/dir/file",
		"usr/lib/x": "../../etc",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "/etc", want: "/etc"},
		{in: "/etc/abs/f", want: "/usr/lib/f"},
		{in: "/etc/rel/f", want: "/usr/lib/f"},
		{in: "/etc/up/lib", want: "/usr/lib"},
		{in: "/../../etc", want: "/etc"},
		{in: "/etc/dang", want: "/missing/dir/file"},
		{in: "/usr/lib/x/abs", want: "/usr/lib"},
		{in: "/nope/a/b", want: "/nope/a/b"},
		{in: "/etc/loop", wantErr: true},
	}
	for _, tt := range tests {
		got, err := resolveIn(root, tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("resolveIn(%q) = %q, %v; want %q (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
