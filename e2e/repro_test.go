//go:build linux

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// epoch is the SOURCE_DATE_EPOCH of these tests: older than every context
// file, so every COPY and RUN mtime is clamped to it.
const epoch = "1700000000"

// asOtherMachine makes e run builder as if on another machine: another
// hostname (its own UTS namespace), time zone, locale, umask, TMPDIR and
// GOMAXPROCS (compression and walk concurrency). Its --root differs anyway.
func asOtherMachine(t *testing.T, e *env) {
	t.Helper()
	needTool(t, "unshare")
	e.prefix = []string{"unshare", "--uts", "sh", "-c", `hostname other-machine && umask 027 && exec "$@"`, "sh"}
	e.env = append(e.env, "TZ=Asia/Tokyo", "LANG=de_DE.UTF-8", "GOMAXPROCS=1", "TMPDIR="+t.TempDir())
}

// explainDiff saves ref from other and diffs it against ref in e.
func explainDiff(t *testing.T, e, other *env, ref string) string {
	t.Helper()
	tar := filepath.Join(t.TempDir(), "other.tar")
	other.mustRun("save", ref, "-o", tar)
	r := e.run("diff", ref, tar)
	return r.stdout + r.stderr
}

// TestReproducibleGolden builds every conformance case twice, in two fresh
// stores, from two copies of its context made a second apart, the second
// time as if on another machine: with SOURCE_DATE_EPOCH every manifest
// digest is the same.
func TestReproducibleGolden(t *testing.T) {
	names := caseNames(t)
	a := &goldenRun{e: newEnv(t), done: map[string]bool{}}
	b := &goldenRun{e: newEnv(t), done: map[string]bool{}}
	a.e.env = []string{"SOURCE_DATE_EPOCH=" + epoch}
	b.e.env = []string{"SOURCE_DATE_EPOCH=" + epoch}
	asOtherMachine(t, b.e)
	first := map[string]string{}
	for _, name := range names {
		if _, err := a.build(t, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		first[name], _, _ = a.e.inspectImage("cases/" + name)
	}
	time.Sleep(1100 * time.Millisecond) // every file written from now on has another mtime
	for _, name := range names {
		if _, err := b.build(t, name); err != nil {
			t.Fatalf("%s (other machine): %v", name, err)
		}
		got, _, _ := b.e.inspectImage("cases/" + name)
		if got != first[name] {
			t.Errorf("%s: manifest %s, then %s on the other machine:\n%s", name, first[name], got,
				explainDiff(t, a.e, b.e, "cases/"+name))
		}
	}
}

// installDockerfile is a RUN that installs files of every kind and records
// its rootfs mount (which must not name the store), a script that records
// its own path, and a second stage that copies them out of
// the first and copies them again with their times (cp -a).
const installDockerfile = `FROM busybox AS build
RUN mkdir -p /opt/app/bin /opt/app/empty /var/log/app && echo hi > /opt/app/x && \
    cp /bin/busybox /opt/app/bin/tool && chmod 4755 /opt/app/bin/tool && \
    ln -s x /opt/app/link && ln /opt/app/x /opt/app/hard && mkfifo /opt/app/fifo && \
    chown 1000:1000 /opt/app/x && touch -d @1000 /opt/app/old && \
    echo 'bob:x:1000:1000::/home/bob:/bin/sh' >> /etc/passwd && rm /bin/ls && \
    grep ' / ' /proc/mounts > /opt/app/mounts
RUN <<EOF
#!/bin/sh
echo "$0" > /opt/app/script-name
EOF
FROM busybox
COPY --from=build /opt /opt
COPY --from=build / /r/
RUN cp -a /opt/app /opt/again && echo done > /opt/done
`

// TestReproducibleRun builds a RUN that installs files twice in two fresh
// stores, a second apart, the second time as if on another machine.
// Without SOURCE_DATE_EPOCH the layers are identical and only the config's
// created times differ; with it, the manifests are identical.
func TestReproducibleRun(t *testing.T) {
	ctx := writeContext(t, map[string]string{"Dockerfile": installDockerfile})
	for _, withEpoch := range []bool{false, true} {
		name := map[bool]string{false: "no-epoch", true: "epoch"}[withEpoch]
		t.Run(name, func(t *testing.T) {
			a, b := newEnv(t), newEnv(t)
			asOtherMachine(t, b)
			var args []string
			if withEpoch {
				args = []string{"--source-date-epoch", epoch}
			}
			outs := [2]string{t.TempDir(), t.TempDir()}
			for i, e := range []*env{a, b} {
				if i == 1 {
					time.Sleep(1100 * time.Millisecond)
				}
				e.mustRun(append([]string{"build", ctx, "-t", "app:v1", "-o", "type=local,dest=" + outs[i]}, args...)...)
			}
			// Without an epoch, files a RUN writes get the newest time of
			// its rootfs + 1 s (here the base's created time, then each
			// RUN's own stamp), copies keep theirs, the root of a snapshot
			// keeps the base's; with one, every newer time is clamped to it.
			_, _, bcfg := a.inspectImage("busybox")
			created, err := time.Parse(time.RFC3339, bcfg["created"].(string))
			if err != nil {
				t.Fatal(err)
			}
			base := created.Unix()
			want := map[string]int64{"opt/app/x": base + 1, "opt/again/x": base + 1, "opt/app/script-name": base + 2,
				"opt/done": base + 3, "r": 0, "opt/app/old": 1000, "opt/again/old": 1000}
			if withEpoch {
				for p, t := range want {
					if t != 1000 { // written by the build: real time, clamped
						want[p] = 1700000000
					}
				}
			}
			for _, out := range outs {
				for p, want := range want {
					fi, err := os.Lstat(filepath.Join(out, p))
					if err != nil {
						t.Fatal(err)
					}
					if got := fi.ModTime().Unix(); got != want {
						t.Errorf("%s: mtime %d, want %d", p, got, want)
					}
				}
				fi, err := os.Lstat(filepath.Join(out, "opt/again/bin/tool"))
				if err != nil || fi.Mode()&os.ModeSetuid == 0 || fi.Sys().(*syscall.Stat_t).Uid != 0 {
					t.Errorf("opt/again/bin/tool: %v %v", fi, err)
				}
			}
			tar := filepath.Join(t.TempDir(), "b.tar")
			b.mustRun("save", "app:v1", "-o", tar)
			r := a.run("diff", "--format", "json", "app:v1", tar)
			if withEpoch {
				if r.code != 0 {
					t.Fatalf("diff: exit %d, want 0 (identical)\n%s%s", r.code, r.stdout, r.stderr)
				}
				return
			}
			var rep struct {
				Identical bool
				Manifest  []json.RawMessage
				Config    []struct{ Path string }
				Layers    []json.RawMessage
			}
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
				t.Fatalf("diff: exit %d, %v\n%s%s", r.code, err, r.stdout, r.stderr)
			}
			if len(rep.Manifest) != 0 || len(rep.Layers) != 0 || len(rep.Config) == 0 {
				t.Errorf("want only config differences:\n%s", r.stdout)
			}
			for _, c := range rep.Config {
				if c.Path != "created" && !(strings.HasPrefix(c.Path, "history[") && strings.HasSuffix(c.Path, "].created")) {
					t.Errorf("config field %s differs; only created times may", c.Path)
				}
			}
		})
	}
}

// TestCheckReproducible: build --check-reproducible passes a reproducible
// build, and names the file and the Dockerfile line of one that is not.
func TestCheckReproducible(t *testing.T) {
	e := newEnv(t)
	good := writeContext(t, map[string]string{"Dockerfile": installDockerfile})
	outs := t.TempDir()
	goodTar, badTar := filepath.Join(outs, "good.tar"), filepath.Join(outs, "bad.tar")
	r := e.run("build", good, "-t", "good", "--source-date-epoch", epoch, "--check-reproducible", "-o", "type=oci,dest="+goodTar)
	manifest, _, _ := e.inspectImage("good")
	if r.code != 0 || !strings.Contains(r.stdout, "reproducible: "+manifest) {
		t.Fatalf("reproducible build: exit %d, want 0 and %q\n%s%s", r.code, "reproducible: "+manifest, r.stdout, r.stderr)
	}
	// Outputs run once the check passed, and only then.
	if r := e.run("diff", "good", goodTar); r.code != 0 {
		t.Errorf("the checked build's export: diff exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// A second check hits the cache for the first build and still agrees.
	if r := e.run("build", good, "-t", "good", "--source-date-epoch", epoch, "--check-reproducible"); r.code != 0 {
		t.Fatalf("cached build: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// Without an epoch, only the created times differ, and it says so.
	r = e.run("build", good, "--check-reproducible")
	if r.code != 1 || !strings.Contains(r.stdout, "only timestamps differ") || strings.Contains(r.stdout, "\nlayer ") {
		t.Fatalf("without an epoch: exit %d, want 1 with only timestamps\n%s%s", r.code, r.stdout, r.stderr)
	}

	bad := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo same > /same\n\nRUN sleep 1 && date > /stamp\n"})
	r = e.run("build", bad, "-t", "bad", "--source-date-epoch", epoch, "--check-reproducible", "-o", "type=oci,dest="+badTar)
	if r.code != 1 {
		t.Fatalf("non-reproducible build: exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(badTar); err == nil || !strings.Contains(r.stderr, "not exported or pushed") {
		t.Errorf("a build that failed the check was exported (or did not say it was not):\n%s", r.stderr)
	}
	for _, want := range []string{"not reproducible", "Dockerfile:4", "changed /stamp: content"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "/same") || strings.Contains(r.stdout, "config:") {
		t.Errorf("reports more than /stamp:\n%s", r.stdout)
	}
	// The temporary store is gone, and the first build is kept as usual.
	ents, _ := os.ReadDir(filepath.Join(e.root, "tmp"))
	if len(ents) != 0 {
		t.Errorf("tmp not empty after the check: %v", ents)
	}
	e.mustRun("inspect", "bad")
}

// TestRunTimesKeepOrder: without SOURCE_DATE_EPOCH, RUN-written times are
// fixed but after every time in the rootfs the RUN ran on, so make sees
// what a RUN built from a COPY'd source as up to date, and a source a later
// RUN changes as newer than an earlier RUN's output; a RUN that only
// chowns a file (copied up with its old time) keeps that time.
func TestRunTimesKeepOrder(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"src.c": "int main;\n", "v.txt": "1.2.3\n", "Dockerfile": "FROM busybox\n" +
		"COPY src.c v.txt /w/\n" +
		"RUN cp /w/src.c /w/out.o && chown 1000 /w/v.txt\n" +
		"RUN if [ /w/src.c -nt /w/out.o ]; then echo rebuild; else echo fresh; fi > /w/after-copy\n" +
		"RUN echo 'int main() {}' > /w/src.c\n" +
		"RUN if [ /w/src.c -nt /w/out.o ]; then echo rebuild; else echo stale; fi > /w/after-edit\n"})
	ctxTime, err := os.Stat(filepath.Join(ctx, "v.txt"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	for f, want := range map[string]string{"after-copy": "fresh\n", "after-edit": "rebuild\n"} {
		if got, _ := os.ReadFile(filepath.Join(out, "w", f)); string(got) != want {
			t.Errorf("/w/%s: make would see %q, want %q", f, got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "w/v.txt")); err != nil || fi.ModTime().Unix() != ctxTime.ModTime().Unix() {
		t.Errorf("/w/v.txt after chown: mtime %v, want the context's %v (%v)", fi.ModTime(), ctxTime.ModTime(), err)
	}
}
