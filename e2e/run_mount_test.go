package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunMounts covers RUN --mount: cache (persists, not in the key),
// tmpfs, bind from the context (read-only; rw writes are thrown away; its
// content is in the key) and from a stage, and secrets (never in a layer
// or the key); no mount point is left in the image.
func TestRunMounts(t *testing.T) {
	e := newEnv(t)
	secret := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(secret, []byte("s3cr3t"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{
		"sub/f.txt": "from context\n",
		"Dockerfile": "FROM busybox AS gen\nRUN mkdir -p /out && echo generated > /out/g.txt\n" +
			"FROM busybox\n" +
			"RUN --mount=type=cache,target=/var/cache/app,id=c1 sh -c 'echo run >> /var/cache/app/log; wc -l < /var/cache/app/log > /cache-count'\n" +
			"RUN --mount=type=tmpfs,target=/scratch sh -c 'echo x > /scratch/y && cat /scratch/y > /tmpfs-ok'\n" +
			"RUN --mount=type=bind,source=sub,target=/mnt/sub sh -c 'cat /mnt/sub/f.txt > /bind-ro; touch /mnt/sub/new 2>/dev/null && echo writable > /bind-ro-write || echo read-only > /bind-ro-write'\n" +
			"RUN --mount=type=bind,source=sub,target=/mnt/rw,rw sh -c 'echo w > /mnt/rw/new && ls /mnt/rw > /bind-rw'\n" +
			"RUN --mount=type=bind,from=gen,source=/out,target=/mnt/gen cat /mnt/gen/g.txt > /bind-from\n" +
			"RUN --mount=type=secret,id=tok,mode=0440 sh -c 'stat -c %a /run/secrets/tok > /secret-mode; wc -c < /run/secrets/tok > /secret-len'\n",
	})
	build := func(extra ...string) result {
		t.Helper()
		out := filepath.Join(t.TempDir(), "rootfs")
		args := append([]string{"build", "--progress", "plain", "--secret", "id=tok,src=" + secret, ctx, "-o", "type=local,dest=" + out}, extra...)
		r := e.mustRun(args...)
		r.stdout = out // the rootfs dir, for the checks below
		return r
	}
	r := build()
	read := func(out, p string) string {
		data, _ := os.ReadFile(filepath.Join(out, p))
		return strings.TrimSpace(string(data))
	}
	out := r.stdout
	for p, want := range map[string]string{
		"cache-count": "1", "tmpfs-ok": "x", "bind-ro": "from context", "bind-ro-write": "read-only",
		"bind-rw": "f.txt\nnew", "bind-from": "generated", "secret-mode": "440", "secret-len": "6",
	} {
		if got := read(out, p); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	if _, err := os.Stat(filepath.Join(ctx, "sub", "new")); err == nil {
		t.Error("an rw bind mount wrote into the build context")
	}
	for _, p := range []string{"mnt", "scratch", "run", "var/cache"} {
		if _, err := os.Stat(filepath.Join(out, p)); err == nil {
			t.Errorf("mount point /%s left in the image", p)
		}
	}
	// The secret is in no layer: search every blob of the store.
	blobs, _ := filepath.Glob(filepath.Join(e.root, "blobs", "sha256", "*"))
	for _, b := range blobs {
		if data, _ := os.ReadFile(b); strings.Contains(string(data), "s3cr3t") {
			t.Errorf("secret found in blob %s", filepath.Base(b))
		}
	}
	// Rebuild: all hits, even with another secret value (not in the key).
	if err := os.WriteFile(secret, []byte("other!"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := stepStates(build().stderr); got != "HHHHHHH" {
		t.Errorf("rebuild with another secret: %q, want all hits", got)
	}
	// The cache mount persists across builds.
	if got := read(build("--no-cache").stdout, "cache-count"); got != "2" {
		t.Errorf("cache mount after a second run: count %q, want 2", got)
	}
	// prune --all empties the cache mounts too.
	if r := e.mustRun("prune", "--all"); !strings.Contains(r.stdout, "1 cache mounts") {
		t.Errorf("prune --all: %s", r.stdout)
	}
	if got := read(build().stdout, "cache-count"); got != "1" {
		t.Errorf("cache mount after prune --all: count %q, want 1", got)
	}
	// A change of the bound context files misses that step (and after).
	if err := os.WriteFile(filepath.Join(ctx, "sub", "f.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := stepStates(build().stderr); got != "HHHMMMM" {
		t.Errorf("after changing a bound file: %q, want HHHMMMM", got)
	}
	// A required secret that is missing is a clear error.
	ctx2 := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=need,required=true true\n"})
	if r := e.run("build", ctx2); r.code != 1 || !strings.Contains(r.stderr, `secret "need" is required`) || !strings.Contains(r.stderr, "Dockerfile:2:") {
		t.Errorf("missing required secret: exit %d\n%s", r.code, r.stderr)
	}
}

// TestRunMountEdges: nested targets and /dev targets mount (each point
// made after its parent), context binds honour .dockerignore (content and
// key), cache mount options are part of the key and the dir, secret ids
// follow BuildKit's defaults.
func TestRunMountEdges(t *testing.T) {
	e := newEnv(t)
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("abc"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := writeContext(t, map[string]string{
		".dockerignore": "src/ign.txt\n",
		"src/ok.txt":    "ok\n",
		"src/ign.txt":   "v1\n",
		"Dockerfile": "FROM busybox\n" +
			"RUN --mount=type=tmpfs,target=/a --mount=type=tmpfs,target=/a/b --mount=type=tmpfs,target=/dev/foo sh -c 'touch /a/b/x /dev/foo/y && echo nested > /nested'\n" +
			"RUN --mount=type=bind,source=src,target=/src sh -c 'ls /src > /bound && stat -c \"%Y %a\" /src /src/ok.txt > /bound-times'\n" +
			"RUN --mount=type=cache,target=/c,id=u,uid=1234,mode=0700 stat -c '%u %a' /c > /cache-owner\n" +
			"RUN --mount=type=secret,target=/root/tok wc -c < /root/tok > /secret-by-target\n",
	})
	// The filtered copy shows the context's times and modes, as a bind would.
	for _, p := range []string{"src/ok.txt", "src"} {
		if err := os.Chtimes(filepath.Join(ctx, p), time.Unix(1000, 0), time.Unix(1000, 0)); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(t.TempDir(), "rootfs")
	r := e.mustRun("build", "--progress", "plain", "--secret", "id=tok,src="+secret, ctx, "-o", "type=local,dest="+out)
	read := func(p string) string {
		data, _ := os.ReadFile(filepath.Join(out, p))
		return strings.TrimSpace(string(data))
	}
	for p, want := range map[string]string{"nested": "nested", "bound": "ok.txt", "cache-owner": "1234 700", "secret-by-target": "3",
		"bound-times": "1000 755\n1000 644"} {
		if got := read(p); got != want {
			t.Errorf("/%s = %q, want %q\n%s", p, got, want, r.stderr)
		}
	}
	for _, p := range []string{"a", "src", "c", "root/tok"} {
		if _, err := os.Stat(filepath.Join(out, p)); err == nil {
			t.Errorf("mount point /%s left in the image", p)
		}
	}
	// An ignored file is not part of the bind's key either.
	if err := os.WriteFile(filepath.Join(ctx, "src", "ign.txt"), []byte("v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.wantStates(t, "ignored file changed", ctx, "HHHH", "--secret", "id=tok,src="+secret)
	// Other cache mount options: another key and another dir.
	df := strings.Replace(mustRead(t, filepath.Join(ctx, "Dockerfile")), "uid=1234", "uid=4321", 1)
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(t.TempDir(), "rootfs")
	r = e.mustRun("build", "--progress", "plain", "--secret", "id=tok,src="+secret, ctx, "-o", "type=local,dest="+out2)
	if got := stepStates(r.stderr); got != "HHMM" {
		t.Errorf("cache uid changed: %q, want HHMM", got)
	}
	if data, _ := os.ReadFile(filepath.Join(out2, "cache-owner")); strings.TrimSpace(string(data)) != "4321 700" {
		t.Errorf("cache owner after uid change: %q", data)
	}
}

// TestOnbuildCopyFromStage: an ONBUILD COPY --from names a stage of the
// child Dockerfile that nothing else needs; it is built on demand.
func TestOnbuildCopyFromStage(t *testing.T) {
	e := newEnv(t)
	parent := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nONBUILD COPY --from=helper /h /h\n"})
	e.mustRun("build", parent, "-t", "onb:v1")
	child := writeContext(t, map[string]string{"Dockerfile": "FROM busybox AS helper\nRUN echo helped > /h\nFROM onb:v1\nRUN cat /h\n"})
	r := e.mustRun("build", "--progress", "plain", child)
	if !strings.Contains(r.stderr, "helped") {
		t.Errorf("ONBUILD COPY --from=helper did not see the helper stage:\n%s", r.stderr)
	}
}

func mustRead(t testing.TB, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestCacheMountLocked: sharing=locked lets one RUN at a time use the
// cache dir, across concurrent builds of one store.
func TestCacheMountLocked(t *testing.T) {
	e := newEnv(t)
	run := `RUN --mount=type=cache,target=/c,id=apt,sharing=locked sh -c 'if [ -e /c/busy ]; then echo overlap; else echo alone; fi > /res; touch /c/busy; sleep 0.6; rm /c/busy'` + "\n"
	var ctxs []string
	for i := range 3 {
		ctxs = append(ctxs, writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nENV N=" + string(rune('a'+i)) + "\n" + run}))
	}
	outs := make([]string, len(ctxs))
	done := make(chan result, len(ctxs))
	for i, c := range ctxs {
		outs[i] = filepath.Join(t.TempDir(), "rootfs")
		go func() { done <- e.run("build", c, "-o", "type=local,dest="+outs[i]) }()
	}
	for range ctxs {
		if r := <-done; r.code != 0 {
			t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
		}
	}
	for _, o := range outs {
		if got := strings.TrimSpace(mustRead(t, filepath.Join(o, "res"))); got != "alone" {
			t.Errorf("a locked cache mount was used by two RUNs at once (%s)", got)
		}
	}
}

// TestSecretAsEnv: type=secret,env=NAME puts the secret in RUN's
// environment only (no file without a target, nothing in the image).
func TestSecretAsEnv(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\n" +
		"RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo ${#TOKEN} > /envlen; test -e /run/secrets/tok || echo nofile > /envfile'\n"})
	out := filepath.Join(t.TempDir(), "rootfs")
	r := e.runEnv([]string{"MYTOKEN=hunter22"}, "", "build", "--secret", "id=tok,env=MYTOKEN", ctx, "-t", "senv:v1", "-o", "type=local,dest="+out)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if got := strings.TrimSpace(mustRead(t, filepath.Join(out, "envlen"))); got != "8" {
		t.Errorf("RUN saw a TOKEN of length %s, want 8", got)
	}
	if got := strings.TrimSpace(mustRead(t, filepath.Join(out, "envfile"))); got != "nofile" {
		t.Errorf("an env secret without target made a file: %q", got)
	}
	if insp := e.mustRun("inspect", "senv:v1"); strings.Contains(insp.stdout, "hunter22") {
		t.Error("secret value in the image config or history")
	}
}

// A cache mount with from= and source= starts from that content of the
// stage (owners kept), persists what RUNs write to it, and is another
// cache when the stage's content changes (which is also a miss).
func TestCacheMountFromStage(t *testing.T) {
	e := newEnv(t)
	df := func(seed string) string {
		return "FROM busybox AS seed\n" +
			"RUN mkdir -p /seed/sub && echo " + seed + " > /seed/sub/f && chown -R 1000:1000 /seed\n" +
			"FROM busybox\n" +
			"RUN --mount=type=cache,target=/c,from=seed,source=/seed cat /c/sub/f > /out && stat -c %u:%g /c/sub/f >> /out && echo more > /c/new\n" +
			"RUN --mount=type=cache,target=/c,from=seed,source=/seed ls /c > /ls\n" +
			"RUN --mount=type=cache,target=/e ls -A /e > /empty\n"
	}
	ctx := writeContext(t, map[string]string{"Dockerfile": df("seeded")})
	out := t.TempDir()
	e.mustRun("build", ctx, "-o", "type=local,dest="+out)
	for file, want := range map[string]string{"out": "seeded\n1000:1000\n", "ls": "new\nsub\n", "empty": ""} {
		got, err := os.ReadFile(filepath.Join(out, file))
		if err != nil || string(got) != want {
			t.Fatalf("/%s = %q, %v; want %q", file, got, err, want)
		}
	}
	// Another seed: the mount's base changed, so the RUN misses and its
	// cache starts from the new content (no "new" from the first build).
	if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df("again")), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := t.TempDir()
	e.mustRun("build", ctx, "-o", "type=local,dest="+out2)
	if got, _ := os.ReadFile(filepath.Join(out2, "out")); string(got) != "again\n1000:1000\n" {
		t.Fatalf("after the seed changed, /out = %q", got)
	}
	// The seed's files in its snapshot are untouched by the RUN's writes.
	if r := e.mustRun("build", ctx, "-o", "type=local,dest="+t.TempDir()); countLines(r.stderr, "CACHED") < 4 {
		t.Fatalf("unchanged rebuild is not cached:\n%s", r.stderr)
	}
}
