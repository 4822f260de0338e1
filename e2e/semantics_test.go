package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestArgAfterEnvWins: BuildKit applies ENV and ARG to the build state in
// order, so an ARG declared after an ENV of the same name is what RUN and
// later expansions see; the image config keeps the ENV value.
func TestArgAfterEnvWins(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nENV X=env\nARG X=arg\n" +
		"RUN echo \"X=$X\" > /x\nENV Y=$X\nENV X=env2\nRUN echo \"X=$X\" > /x2\n"})
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun("build", ctx, "-t", "argenv:v1", "-o", "type=local,dest="+out)
	for file, want := range map[string]string{"x": "X=arg\n", "x2": "X=env2\n"} {
		if got, _ := os.ReadFile(filepath.Join(out, file)); string(got) != want {
			t.Errorf("/%s = %q, want %q", file, got, want)
		}
	}
	r := e.mustRun("inspect", "argenv:v1")
	for _, want := range []string{`"X=env2"`, `"Y=arg"`, `RUN |1 X=arg /bin/sh -c echo \"X=$X\" \u003e /x`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("inspect lacks %s:\n%s", want, r.stdout)
		}
	}
}

// TestSourceDateEpochInCacheKey: layers clamped to SOURCE_DATE_EPOCH are
// other bytes than unclamped ones, so they must not share cache records.
func TestSourceDateEpochInCacheKey(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"a.txt": "a\n", "Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN echo x > /b\n"})
	e.wantStates(t, "first build", ctx, "MM")
	r := e.runEnv([]string{"SOURCE_DATE_EPOCH=1000"}, "", "build", "--progress", "plain", ctx)
	if got := stepStates(r.stderr); got != "MM" {
		t.Fatalf("with SOURCE_DATE_EPOCH after a build without it: %q, want MM\n%s", got, r.stderr)
	}
	fresh := newEnv(t)
	r2 := fresh.runEnv([]string{"SOURCE_DATE_EPOCH=1000"}, "", "build", "--progress", "plain", ctx)
	if manifestOf(t, r.stderr) != manifestOf(t, r2.stderr) {
		t.Fatalf("SOURCE_DATE_EPOCH=1000 build differs from a fresh store's")
	}
	r3 := e.runEnv([]string{"SOURCE_DATE_EPOCH=1000"}, "", "build", "--progress", "plain", ctx)
	if got := stepStates(r3.stderr); got != "HH" {
		t.Fatalf("same epoch again: %q, want HH", got)
	}
}

// TestProxyArgsNotInKey: proxy build args reach RUN but, as in BuildKit,
// changing them does not invalidate the cache.
func TestProxyArgsNotInKey(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo \"p=$HTTP_PROXY\" > /p\n"})
	out := filepath.Join(t.TempDir(), "rootfs")
	r := e.mustRun("build", "--progress", "plain", ctx, "--build-arg", "HTTP_PROXY=http://a:1", "-o", "type=local,dest="+out)
	if got, _ := os.ReadFile(filepath.Join(out, "p")); string(got) != "p=http://a:1\n" {
		t.Errorf("RUN saw %q", got)
	}
	if strings.Contains(r.stderr, "were not consumed") {
		t.Errorf("proxy arg reported unused:\n%s", r.stderr)
	}
	e.wantStates(t, "other proxy", ctx, "H", "--build-arg", "HTTP_PROXY=http://b:2")
}

// TestCopyParentsAndExclude: --parents keeps the source path (and the
// "/./" pivot), --exclude matches paths inside the copied source.
func TestCopyParentsAndExclude(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{
		"src/sub/c.txt": "c", "src/sub/b.log": "log", "src/keep.log": "top", "x/y/a.txt": "a",
		"Dockerfile": "FROM busybox\nCOPY --parents src/sub/c.txt /p/\nCOPY --parents ./x/./y/a.txt /q/\n" +
			"COPY --exclude=sub/*.log src /ex/\n",
	})
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	for _, p := range []string{"p/src/sub/c.txt", "q/y/a.txt", "ex/sub/c.txt", "ex/keep.log"} {
		if _, err := os.Stat(filepath.Join(out, p)); err != nil {
			t.Errorf("missing /%s: %v", p, err)
		}
	}
	for _, p := range []string{"p/c.txt", "q/x", "ex/sub/b.log"} {
		if _, err := os.Stat(filepath.Join(out, p)); err == nil {
			t.Errorf("/%s should not exist", p)
		}
	}
}

// TestCopyFromRules: --from takes no variables and names an earlier stage.
func TestCopyFromRules(t *testing.T) {
	e := newEnv(t)
	for name, df := range map[string]string{
		"variable": "ARG SRC=a\nFROM busybox AS a\nFROM busybox\nCOPY --from=$SRC /etc/passwd /p\n",
		// The copying stage must be one the target needs: BuildKit builds
		// a Dockerfile whose only bad reference is in an unneeded stage.
		"later stage": "FROM busybox AS early\nCOPY --from=later /etc/passwd /p\nFROM busybox AS later\nFROM early\n",
	} {
		ctx := writeContext(t, map[string]string{"Dockerfile": df})
		r := e.run("build", ctx)
		want := map[string]string{"variable": "variable expansion is not supported for --from", "later stage": "needs to be defined before the current stage"}[name]
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "Dockerfile:") {
			t.Errorf("%s: exit %d, stderr:\n%s", name, r.code, r.stderr)
		}
	}
}

// TestUnpackKeepsParentDirs: a layer that adds /home/www/app/nested lists
// no entry for /home/www/app; unpacked alone, that dir must keep the owner
// and mode of the layer below (www, as WORKDIR made it under USER www),
// or the RUN after it, as www, could not write there. Docker runs this.
func TestUnpackKeepsParentDirs(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
		"RUN echo 'www:x:1000:1000::/home/www:/bin/sh' >> /etc/passwd && echo 'www:x:1000:' >> /etc/group\n" +
		"USER www\nWORKDIR /home/www/app\nWORKDIR /home/www/app/nested\n" +
		"RUN touch /home/www/app/y && stat -c '%U %a' /home/www/app > /home/www/app/owner\n"})
	out := filepath.Join(t.TempDir(), "rootfs")
	e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	if got, _ := os.ReadFile(filepath.Join(out, "home/www/app/owner")); string(got) != "www 755\n" {
		t.Errorf("/home/www/app as RUN saw it: %q, want %q", got, "www 755\n")
	}
}
