package e2e

// Bad input gets a clear error and nothing is lost.
//
// Exit codes (cmd/builder/main.go) are what scripts rely on:
//
//	2  the command line is wrong, found before any work: unknown command or
//	   flag, malformed flag value (--build-arg =x, --output type=bogus,
//	   --progress bogus, -t 'Bad Tag'), missing context dir, Dockerfile or
//	   `load -i` file, --target naming no stage. docker exits 1 (or 125) for all of these;
//	   we keep 2 for "fix your command", as ARCHITECTURE.md promises.
//	1  the build failed: anything wrong inside the Dockerfile (syntax, unknown
//	   instruction, bad instruction flag, no FROM, missing source, missing
//	   base image, a failing RUN), hostile archives. Like docker, the message
//	   names the Dockerfile line: "Dockerfile:7: COPY missing.txt /: ...".
//	130 interrupted (SIGINT/SIGTERM), see errors_signal_test.go.
//
// After any failure the store is as it was (checkStore): index.json byte for
// byte, no work dir left in tmp/ or snapshots/active, no mount, and no cache
// record naming a missing blob. Unreferenced blobs are allowed.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// storeState is what a failed command must not change.
type storeState struct {
	index []byte
	dirs  map[string][]string // work dirs -> their entries
}

// storeWorkDirs are where work in progress lives; a finished command leaves
// nothing new in them.
var storeWorkDirs = []string{"tmp", "snapshots/tmp", "snapshots/active", "cache/tmp"}

func (e *env) snapState(t testing.TB) storeState {
	t.Helper()
	idx, err := os.ReadFile(filepath.Join(e.root, "index.json"))
	if err != nil {
		t.Fatalf("read index.json: %v", err)
	}
	s := storeState{index: idx, dirs: map[string][]string{}}
	for _, d := range storeWorkDirs {
		s.dirs[d] = listNames(t, filepath.Join(e.root, d))
	}
	return s
}

func listNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("read %s: %v", dir, err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// checkStore fails t when the store changed since before (nil: only the
// invariants that always hold are checked).
func (e *env) checkStore(t testing.TB, before *storeState) {
	t.Helper()
	now := e.snapState(t)
	if before != nil {
		if string(now.index) != string(before.index) {
			t.Errorf("index.json changed:\nbefore: %s\nafter:  %s", before.index, now.index)
		}
		for _, d := range storeWorkDirs {
			for _, n := range now.dirs[d] {
				if !slices.Contains(before.dirs[d], n) {
					t.Errorf("new entry left in <root>/%s: %s", d, n)
				}
			}
		}
	}
	checkNoMounts(t, e.root)
	e.checkRecords(t)
}

// checkNoMounts fails when any mount of this process's namespace is under root.
func checkNoMounts(t testing.TB, root string) {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatalf("read mountinfo: %v", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, root) {
			t.Errorf("mount left behind: %s", l)
		}
	}
}

// checkRecords fails when a cache record names a blob the store lacks.
func (e *env) checkRecords(t testing.TB) {
	t.Helper()
	dir := filepath.Join(e.root, "cache", "records", "sha256")
	for _, n := range listNames(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Errorf("read cache record %s: %v", n, err)
			continue
		}
		var rec struct{ Layer string }
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Errorf("cache record %s: %v", n, err)
			continue
		}
		if rec.Layer == "" {
			continue
		}
		hex := strings.TrimPrefix(rec.Layer, "sha256:")
		if _, err := os.Stat(filepath.Join(e.root, "blobs", "sha256", hex)); err != nil {
			t.Errorf("cache record %s names missing blob %s", n, rec.Layer)
		}
	}
}

// errorLine is the "error: ..." line of stderr.
func errorLine(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "error: ") {
			return l
		}
	}
	return ""
}

type errCase struct {
	name  string
	files map[string]string // the context; nil: just the Dockerfile
	df    string            // Dockerfile ("" with files == nil: none)
	args  []string          // after "build"; nil: CTX. CTX, OUT are replaced
	stdin string
	code  int
	// where is the expected "Dockerfile:N: " prefix of the message, as a
	// regexp; "" when the error is about the command line.
	where string
	want  []string // fragments of the error line
}

// offlineEnv makes every registry connection fail at once, so base images
// missing from the store never reach the network: the proxy's name cannot
// resolve (RFC 2606 .invalid), an error the registry client does not retry
// (a refused connection is retried for seconds).
var offlineEnv = []string{"HTTPS_PROXY=http://proxy.invalid:1", "https_proxy=http://proxy.invalid:1",
	"HTTP_PROXY=http://proxy.invalid:1", "http_proxy=http://proxy.invalid:1", "NO_PROXY=", "no_proxy="}

func atLine(n int) string { return fmt.Sprintf(`^Dockerfile:%d: `, n) }

func buildErrCases(outside, hostFile string) []errCase {
	return []errCase{
		{name: "unknown instruction", df: "FROM busybox\nRUN true\nBOGUS x\n", code: 1, where: atLine(3),
			want: []string{"unknown instruction", "BOGUS"}},
		{name: "typo instruction", df: "FROM busybox\nRUNN true\n", code: 1, where: atLine(2),
			want: []string{"unknown instruction: RUNN (did you mean RUN?)"}},
		{name: "transposed instruction", df: "FROM busybox\nCPOY a.txt /\n", code: 1, where: atLine(2),
			want: []string{"unknown instruction: CPOY (did you mean COPY?)"}},
		{name: "typo --from", df: "FROM busybox AS name\nRUN true\nFROM busybox\nCOPY --from=nme /x /\n", code: 1, where: atLine(4),
			want: []string{"COPY --from=nme /x /", `--from=nme is neither an earlier stage (did you mean "name"?) nor an image`}},
		{name: "bad instruction flag", df: "FROM busybox\nCOPY --bogus a.txt /\n", code: 1, where: atLine(2),
			want: []string{"unknown flag: --bogus"}},
		{name: "missing source", df: "FROM busybox\nENV A=1\n# comment\nRUN true && \\\n  true\n\nCOPY missing.txt /\n",
			code: 1, where: atLine(7), want: []string{"COPY missing.txt /: no such file in context"}},
		{name: "one of two sources missing", df: "FROM busybox\nCOPY a.txt missing.txt /d/\n", code: 1, where: atLine(2),
			want: []string{"COPY a.txt missing.txt /d/: missing.txt: no such file in context"}},
		// BuildKit cleans "../x" to "x" inside the context; we refuse it:
		// clearer, and nothing outside the context is ever read.
		{name: "source outside context", df: "FROM busybox\nCOPY ../x /\n", code: 1, where: atLine(2),
			want: []string{"COPY ../x /", "outside the build context"}},
		// Symlinks resolve inside the context (BuildKit does the same):
		// link -> /etc/passwd means <context>/etc/passwd, absent here.
		{name: "symlink to host file",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY link /\n", "link": "->" + hostFile},
			code:  1, where: atLine(2), want: []string{"COPY link /: no such file in context", "link is a symlink to " + hostFile}},
		{name: "symlinked dir outside",
			files: map[string]string{"Dockerfile": "FROM busybox\nCOPY linkdir/passwd /\n", "linkdir": "->" + outside},
			code:  1, where: atLine(2), want: []string{"COPY linkdir/passwd /: no such file in context", "linkdir is a symlink"}},
		{name: "unknown --from", df: "FROM busybox\nCOPY --from=nope /x /\n", code: 1, where: atLine(2),
			want: []string{"COPY --from=nope /x /", `"nope"`, "builder load"}},
		{name: "invalid --chmod", df: "FROM busybox\nCOPY --chmod=99x a.txt /\n", code: 1, where: atLine(2),
			want: []string{"invalid --chmod=99x"}},
		{name: "empty Dockerfile", df: "", files: map[string]string{"Dockerfile": ""}, code: 1, where: `^Dockerfile: `,
			want: []string{"file with no instructions"}},
		{name: "only comments", df: "# syntax is fine\n# but nothing here\n", code: 1, where: `^Dockerfile(:\d+)?: `,
			want: []string{"file with no instructions"}},
		{name: "only ARG", df: "ARG A=1\nARG B\n", code: 1, where: atLine(1), want: []string{"no FROM instruction"}},
		{name: "base image not in store", df: "FROM busybox\nRUN true\nFROM alpine:3.19\n", code: 1, where: atLine(3),
			want: []string{"FROM alpine:3.19", `"alpine:3.19" is not in the store`, "builder load"}},
		{name: "failing RUN", df: "FROM busybox\nRUN true\nRUN exit 3\n", code: 1, where: atLine(3),
			want: []string{"RUN exit 3: exit code 3"}},
		{name: "stdin Dockerfile error", df: "", args: []string{"-f", "-", "CTX"}, stdin: "FROM busybox\n\nCOPY nope /\n",
			code: 1, where: atLine(3), want: []string{"COPY nope /: no such file in context"}},

		// Usage errors: exit 2, no Dockerfile line.
		{name: "unknown --target", df: "FROM busybox AS a\nFROM busybox AS b\n", args: []string{"--target", "nope", "CTX"},
			code: 2, want: []string{`target stage "nope" could not be found`, "a, b"}},
		{name: "typo --target", df: "FROM busybox AS build\nFROM busybox AS test\n", args: []string{"--target", "biuld", "CTX"},
			code: 2, want: []string{`target stage "biuld" could not be found (did you mean "build"? stages: build, test)`}},
		{name: "--progress tty without a terminal", df: "FROM busybox\n", args: []string{"--progress", "tty", "CTX"},
			code: 2, want: []string{"--progress tty: stderr is not a terminal"}},
		{name: "unknown --target unnamed", df: "FROM busybox\n", args: []string{"--target", "nope", "CTX"},
			code: 2, want: []string{`target stage "nope" could not be found`, "no named stages"}},
		{name: "malformed --build-arg", df: "FROM busybox\n", args: []string{"--build-arg", "=x", "CTX"},
			code: 2, want: []string{`malformed --build-arg "=x"`}},
		{name: "missing context", df: "FROM busybox\n", args: []string{"CTX/nonexistent"},
			code: 2, want: []string{"nonexistent", "is not a directory"}},
		{name: "missing Dockerfile", files: map[string]string{"a.txt": "a"},
			code: 2, want: []string{"read Dockerfile", "no such file"}},
		{name: "missing -f Dockerfile", df: "FROM busybox\n", args: []string{"-f", "CTX/Nope.dockerfile", "CTX"},
			code: 2, want: []string{"read Dockerfile", "Nope.dockerfile"}},
		{name: "unknown output type", df: "FROM busybox\n", args: []string{"-o", "type=bogus,dest=OUT", "CTX"},
			code: 2, want: []string{"type=bogus", "type must be"}},
		{name: "bogus progress", df: "FROM busybox\n", args: []string{"--progress", "bogus", "CTX"},
			code: 2, want: []string{"--progress", `"bogus"`}},
		{name: "unknown build flag", df: "FROM busybox\n", args: []string{"--bogus", "CTX"},
			code: 2, want: []string{"unknown flag: --bogus"}},
		{name: "invalid tag", df: "FROM busybox\n", args: []string{"-t", "Bad Tag", "CTX"},
			code: 2, want: []string{`invalid tag "Bad Tag"`}},
		{name: "two contexts", df: "FROM busybox\n", args: []string{"CTX", "CTX"},
			code: 2, want: []string{"expected 1 argument"}},
	}
}

func TestBuildErrors(t *testing.T) {
	e := newEnv(t)
	// A tree outside every context, with what a leak would copy.
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "passwd"), []byte("host-secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range buildErrCases(outside, "/etc/passwd") {
		t.Run(tc.name, func(t *testing.T) {
			files := tc.files
			if files == nil {
				files = map[string]string{"Dockerfile": tc.df, "a.txt": "a\n"}
			}
			ctx := writeContextLinks(t, files)
			// ../x next to the context: what COPY ../x must never read.
			if err := os.WriteFile(filepath.Join(filepath.Dir(ctx), "x"), []byte("outside\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "out")
			args := tc.args
			if args == nil {
				args = []string{"CTX"}
			}
			full := []string{"build"}
			for _, a := range args {
				a = strings.ReplaceAll(a, "CTX", ctx)
				full = append(full, strings.ReplaceAll(a, "OUT", out))
			}
			before := e.snapState(t)
			r := e.runEnv(offlineEnv, tc.stdin, full...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tc.code, r.stderr)
			}
			msg := strings.TrimPrefix(errorLine(r.stderr), "error: ")
			if msg == "" {
				t.Fatalf("no error line in stderr:\n%s", r.stderr)
			}
			if tc.where != "" && !regexp.MustCompile(tc.where).MatchString(msg) {
				t.Errorf("error %q does not start with %s", msg, tc.where)
			}
			if tc.where == "" && strings.HasPrefix(msg, "Dockerfile") {
				t.Errorf("usage error %q names a Dockerfile line", msg)
			}
			if strings.Contains(msg, "usage error") {
				t.Errorf("error %q shows the internal usage-error prefix", msg)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q lacks %q", msg, w)
				}
			}
			if strings.Contains(r.stdout+r.stderr, "host-secret") {
				t.Errorf("output shows a file from outside the context:\n%s", r.stderr)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("failed build wrote its output %s", out)
			}
			e.checkStore(t, &before)
		})
	}
}

// writeContextLinks is writeContext where a content "->target" makes a symlink.
func writeContextLinks(t testing.TB, files map[string]string) string {
	t.Helper()
	plain := map[string]string{}
	links := map[string]string{}
	for name, data := range files {
		if target, ok := strings.CutPrefix(data, "->"); ok {
			links[name] = target
			continue
		}
		plain[name] = data
	}
	dir := writeContext(t, plain)
	for name, target := range links {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBuildSymlinkSources: symlinks of the context never bring host files
// in. A source that is a symlink is followed inside the context (as
// BuildKit does); links below a copied dir are copied as links.
func TestBuildSymlinkSources(t *testing.T) {
	e := newEnv(t)
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	ctx := writeContextLinks(t, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY link /copied\nCOPY dir /d/\nCOPY linkdir/passwd /p2\n",
		"etc/passwd": "ctx-passwd\n",
		"link":       "->/etc/passwd",
		"dir/l":      "->/etc/passwd",
		"dir/up":     "->../../../../../../etc/passwd",
		"linkdir":    "->/etc",
	})
	out := filepath.Join(t.TempDir(), "out")
	e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	for _, f := range []string{"copied", "p2"} {
		got, err := os.ReadFile(filepath.Join(out, f))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "ctx-passwd\n" {
			t.Errorf("/%s = %q, want the context's etc/passwd", f, got)
		}
	}
	for l, want := range map[string]string{"d/l": "/etc/passwd", "d/up": "../../../../../../etc/passwd"} {
		fi, err := os.Lstat(filepath.Join(out, l))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("/%s is %v, want a symlink", l, fi.Mode())
			continue
		}
		if got, _ := os.Readlink(filepath.Join(out, l)); got != want {
			t.Errorf("/%s -> %q, want %q", l, got, want)
		}
	}
	// The host's passwd must be nowhere in the rootfs.
	err = filepath.WalkDir(out, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err == nil && len(host) > 0 && string(data) == string(host) {
			t.Errorf("%s holds the host's /etc/passwd", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.checkStore(t, nil)
}

// TestBuildDockerfileFromStdin: -f - reads the Dockerfile from stdin; the
// context still comes from the directory.
func TestBuildDockerfileFromStdin(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"a.txt": "from context\n"})
	out := filepath.Join(t.TempDir(), "out")
	df := "FROM busybox\nCOPY a.txt /a.txt\nRUN cp /a.txt /b.txt\n"
	r := e.runEnv(nil, df, "build", "-f", "-", ctx, "-o", "type=local,dest="+out)
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(out, "b.txt"))
	if err != nil || string(got) != "from context\n" {
		t.Fatalf("/b.txt = %q, %v", got, err)
	}
	e.checkStore(t, nil)
	if n := len(listNames(t, filepath.Join(e.root, "tmp"))); n != 0 {
		t.Errorf("a successful build left %d entries in <root>/tmp", n)
	}
}
