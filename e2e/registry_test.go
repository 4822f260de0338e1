package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// regEmptyEnv is a fresh --root with nothing loaded (no busybox).
func regEmptyEnv(t testing.TB) *env {
	t.Helper()
	testutil.RequiresRoot(t)
	return &env{t: t, bin: testutil.BuildBinary(t), root: filepath.Join(t.TempDir(), "root")}
}

// regInspect returns the manifest digest and the config of a stored image.
func regInspect(t testing.TB, e *env, ref string) (string, map[string]any) {
	t.Helper()
	r := e.mustRun("inspect", ref)
	var out struct {
		Digest string         `json:"digest"`
		Config map[string]any `json:"config"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("decode inspect %s: %v\n%s", ref, err, r.stdout)
	}
	return out.Digest, out.Config
}

// regBlobLines returns the progress lines of blobs for ref.
func regBlobLines(stderr, op, ref string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, op+" "+ref+": blob ") {
			out = append(out, l)
		}
	}
	return out
}

func regSkopeo(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestRegistryRoundTrip(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistry(t)
	ref := reg + "/app:v1"
	ctx := writeContext(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo built > /built\nCOPY hello /hello\n",
		"hello":      "hello v1\n",
	})

	// build --push: every blob uploaded (no provenance: the image alone).
	r := e.mustRun("build", ctx, "-t", ref, "--push", "--provenance=false")
	lines := regBlobLines(r.stderr, "push", ref)
	if len(lines) != 4 || countLines(strings.Join(lines, "\n"), " done") != 4 {
		t.Fatalf("first push: want 4 blobs done:\n%s", r.stderr)
	}
	digest, _ := regInspect(t, e, ref)

	// A second push uploads nothing.
	r = e.mustRun("push", ref)
	lines = regBlobLines(r.stderr, "push", ref)
	if len(lines) != 4 || countLines(strings.Join(lines, "\n"), "skipped (already in the registry)") != 4 {
		t.Fatalf("second push: want 4 blobs skipped:\n%s", r.stderr)
	}

	t.Run("skopeo", func(t *testing.T) {
		var info struct{ Digest, Architecture string }
		out := regSkopeo(t, "inspect", "--tls-verify=false", "docker://"+ref)
		if err := json.Unmarshal([]byte(out), &info); err != nil {
			t.Fatal(err)
		}
		if info.Digest != digest {
			t.Errorf("skopeo sees %s, we pushed %s", info.Digest, digest)
		}
		dir := filepath.Join(t.TempDir(), "layout")
		regSkopeo(t, "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+dir+":app")
		regSkopeo(t, "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "docker://"+ref, "docker://"+reg+"/copied:v1")
		out = regSkopeo(t, "inspect", "--tls-verify=false", "docker://"+reg+"/copied:v1")
		if !strings.Contains(out, digest) {
			t.Errorf("copied image has another digest:\n%s", out)
		}
	})

	t.Run("pull into a fresh root", func(t *testing.T) {
		f := regEmptyEnv(t)
		r := f.mustRun("pull", ref)
		if !strings.Contains(r.stdout, "pulled "+ref) || len(regBlobLines(r.stderr, "pull", ref)) != 4 {
			t.Fatalf("pull:\n%s\n%s", r.stdout, r.stderr)
		}
		if got, _ := regInspect(t, f, ref); got != digest {
			t.Errorf("pulled %s, pushed %s", got, digest)
		}
		r = f.mustRun("pull", ref)
		if n := countLines(r.stderr, "skipped (already in the store)"); n != 4 {
			t.Errorf("second pull fetched blobs again:\n%s", r.stderr)
		}
	})

	// FROM the pushed image in a root that has nothing: pulled on demand.
	g := regEmptyEnv(t)
	child := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + ref + "\nRUN cat /hello /built > /both\n",
	})
	out := t.TempDir()
	r = g.mustRun("build", child, "-t", "child:v1", "-o", "type=local,dest="+out)
	if data, _ := os.ReadFile(filepath.Join(out, "both")); string(data) != "hello v1\nbuilt\n" {
		t.Fatalf("/both = %q\n%s", data, r.stderr)
	}

	// A new app:v1 in the registry: a plain rebuild keeps the stored base,
	// --pull fetches the new one (only its new blobs).
	if err := os.WriteFile(filepath.Join(ctx, "hello"), []byte("hello v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.mustRun("build", ctx, "-t", ref, "--push")
	r = g.mustRun("build", child, "-t", "child:v1")
	if len(regBlobLines(r.stderr, "pull", ref)) != 0 || countLines(r.stderr, "CACHED") != 1 {
		t.Errorf("rebuild without --pull went to the registry or missed the cache:\n%s", r.stderr)
	}
	r = g.mustRun("build", child, "-t", "child:v1", "--pull", "-o", "type=local,dest="+out)
	pulled := strings.Join(regBlobLines(r.stderr, "pull", ref), "\n")
	if countLines(pulled, " done") != 2 || countLines(pulled, "skipped") != 2 {
		t.Errorf("--pull: want the new config and COPY layer fetched, the rest skipped:\n%s", r.stderr)
	}
	if data, _ := os.ReadFile(filepath.Join(out, "both")); string(data) != "hello v2\nbuilt\n" {
		t.Errorf("after --pull, /both = %q", data)
	}

	t.Run("output type=image push=true", func(t *testing.T) {
		dest := reg + "/out:v2"
		r := e.mustRun("build", ctx, "-o", "type=image,name="+dest+",push=true", "--provenance=false")
		if len(regBlobLines(r.stderr, "push", dest)) != 4 {
			t.Fatalf("no push progress:\n%s", r.stderr)
		}
		regSkopeo(t, "inspect", "--tls-verify=false", "docker://"+dest)
	})

	t.Run("skopeo-pushed base", func(t *testing.T) {
		base := reg + "/skopeo/busybox:latest"
		regSkopeo(t, "copy", "--dest-tls-verify=false", "oci-archive:"+busyboxTar(t), "docker://"+base)
		h := regEmptyEnv(t)
		dir := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nRUN echo ok > /ok\n"})
		out := t.TempDir()
		h.mustRun("build", dir, "-t", "x:v1", "-o", "type=local,dest="+out)
		if data, _ := os.ReadFile(filepath.Join(out, "ok")); string(data) != "ok\n" {
			t.Errorf("/ok = %q", data)
		}
	})
}

// regPutIndex PUTs an OCI index of repo's tags (with their platforms) as
// repo:tag, and returns the manifest digests by platform.
func regPutIndex(t testing.TB, reg, repo, tag string, platforms map[string]string) map[string]string {
	t.Helper()
	type platform struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	}
	type desc struct {
		MediaType string    `json:"mediaType"`
		Digest    string    `json:"digest"`
		Size      int64     `json:"size"`
		Platform  *platform `json:"platform,omitempty"`
	}
	var manifests []desc
	digests := map[string]string{}
	for _, src := range []string{"amd64", "arm64"} {
		plat := platforms[src]
		req, _ := http.NewRequest(http.MethodHead, "http://"+reg+"/v2/"+repo+"/manifests/"+src, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("HEAD %s:%s: %s", repo, src, resp.Status)
		}
		os, arch, _ := strings.Cut(plat, "/")
		d := resp.Header.Get("Docker-Content-Digest")
		digests[plat] = d
		manifests = append(manifests, desc{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: d,
			Size: resp.ContentLength, Platform: &platform{OS: os, Architecture: arch}})
	}
	data, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
	req, _ := http.NewRequest(http.MethodPut, "http://"+reg+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/vnd.oci.image.index.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT index: %s", resp.Status)
	}
	return digests
}

func TestRegistryMultiPlatform(t *testing.T) {
	e := regEmptyEnv(t)
	reg := testutil.StartRegistry(t)
	// One image per platform (FROM scratch: no RUN, so arm64 builds here).
	for _, arch := range []string{"amd64", "arm64"} {
		dir := writeContext(t, map[string]string{
			"Dockerfile": "FROM scratch\nARG TARGETARCH\nCOPY arch /arch\nLABEL built.for=$TARGETARCH\n",
			"arch":       arch + "\n",
		})
		e.mustRun("build", dir, "--platform", "linux/"+arch, "-t", reg+"/multi:"+arch, "--push", "--provenance=false")
		_, cfg := regInspect(t, e, reg+"/multi:"+arch)
		if cfg["architecture"] != arch {
			t.Fatalf("--platform linux/%s built a %v image", arch, cfg["architecture"])
		}
	}
	digests := regPutIndex(t, reg, "multi", "v1", map[string]string{"amd64": "linux/amd64", "arm64": "linux/arm64"})
	ref := reg + "/multi:v1"

	user := writeContext(t, map[string]string{
		"Dockerfile": "FROM " + ref + "\nARG TARGETPLATFORM\nLABEL target=$TARGETPLATFORM\n",
	})
	for _, arch := range []string{"arm64", "amd64"} {
		t.Run(arch, func(t *testing.T) {
			f := regEmptyEnv(t)
			out := t.TempDir()
			f.mustRun("build", user, "--platform", "linux/"+arch, "-t", "user:v1", "-o", "type=local,dest="+out)
			if data, _ := os.ReadFile(filepath.Join(out, "arch")); string(data) != arch+"\n" {
				t.Errorf("/arch = %q, want %s", data, arch)
			}
			_, cfg := regInspect(t, f, "user:v1")
			labels, _ := cfg["config"].(map[string]any)["Labels"].(map[string]any)
			if cfg["architecture"] != arch || labels["target"] != "linux/"+arch {
				t.Errorf("config: architecture %v, labels %v", cfg["architecture"], labels)
			}
			r := f.mustRun("pull", "--platform", "linux/"+arch, ref)
			if !strings.Contains(r.stdout, digests["linux/"+arch]) {
				t.Errorf("pull --platform linux/%s: %s, want manifest %s", arch, r.stdout, digests["linux/"+arch])
			}
		})
	}
	t.Run("FROM --platform", func(t *testing.T) {
		f := regEmptyEnv(t)
		dir := writeContext(t, map[string]string{
			"Dockerfile": "ARG OTHER=linux/arm64\nFROM --platform=$OTHER " + ref + " AS other\nFROM scratch\nCOPY --from=other /arch /other-arch\n",
		})
		out := t.TempDir()
		f.mustRun("build", dir, "--platform", "linux/amd64", "-o", "type=local,dest="+out)
		if data, _ := os.ReadFile(filepath.Join(out, "other-arch")); string(data) != "arm64\n" {
			t.Errorf("/other-arch = %q, want arm64", data)
		}
	})
	t.Run("wrong platform", func(t *testing.T) {
		f := regEmptyEnv(t)
		r := f.run("pull", "--platform", "linux/s390x", ref)
		want := "no image for platform linux/s390x (available: linux/amd64, linux/arm64)"
		if r.code != 1 || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr:\n%s\nwant %q", r.code, r.stderr, want)
		}
		r = f.run("build", user, "--platform", "linux/ppc64le")
		if r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:1") || !strings.Contains(r.stderr, "available: linux/amd64, linux/arm64") {
			t.Errorf("build: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if r := f.run("pull", "--platform", "linux/arm/v7/x", ref); r.code != 2 {
			t.Errorf("malformed --platform: exit %d", r.code)
		}
	})
}

func TestRegistryTLSAuth(t *testing.T) {
	e := newEnv(t)
	reg := testutil.StartRegistryTLSAuth(t)
	dockerCfg := t.TempDir()
	trust := []string{"DOCKER_CONFIG=" + dockerCfg, "SSL_CERT_FILE=" + reg.CAFile}
	ref := reg.Addr + "/secure/app:v1"
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\n", "f": "secret\n"})
	e.mustRun("build", ctx, "-t", ref)

	r := e.runEnv(trust, "", "push", ref)
	if r.code != 1 || !strings.Contains(r.stderr, "401 Unauthorized") || !strings.Contains(r.stderr, "no credentials for "+reg.Addr) {
		t.Fatalf("push without login: exit %d\n%s", r.code, r.stderr)
	}
	r = e.runEnv(trust, "wrong\n", "login", reg.Addr, "-u", reg.User, "--password-stdin")
	if r.code != 1 || !strings.Contains(r.stderr, "401") || !strings.Contains(r.stderr, "wrong user name or password") {
		t.Fatalf("login with a wrong password: exit %d\n%s", r.code, r.stderr)
	}
	r = e.runEnv([]string{"DOCKER_CONFIG=" + dockerCfg}, reg.Password+"\n", "login", reg.Addr, "-u", reg.User, "--password-stdin")
	if r.code != 1 || !strings.Contains(r.stderr, "certificate") {
		t.Fatalf("login to an untrusted certificate: exit %d\n%s", r.code, r.stderr)
	}
	r = e.runEnv(trust, reg.Password+"\n", "login", reg.Addr, "-u", reg.User, "--password-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	data, err := os.ReadFile(filepath.Join(dockerCfg, "config.json"))
	if err != nil || !strings.Contains(string(data), `"`+reg.Addr+`"`) {
		t.Fatalf("config.json after login: %s %v", data, err)
	}
	r = e.runEnv(trust, "", "push", ref)
	if r.code != 0 {
		t.Fatalf("push after login: exit %d\n%s", r.code, r.stderr)
	}
	// --tls-verify=false instead of trusting the certificate.
	f := regEmptyEnv(t)
	r = f.runEnv([]string{"DOCKER_CONFIG=" + dockerCfg}, "", "pull", "--tls-verify=false", ref)
	if r.code != 0 {
		t.Fatalf("pull --tls-verify=false: exit %d\n%s", r.code, r.stderr)
	}
	r = f.runEnv([]string{"DOCKER_CONFIG=" + dockerCfg}, "", "pull", "--insecure-registry", reg.Addr, ref)
	if r.code != 0 {
		t.Fatalf("pull --insecure-registry: exit %d\n%s", r.code, r.stderr)
	}
	r = e.runEnv(trust, "", "logout", reg.Addr)
	if r.code != 0 || !strings.Contains(r.stdout, "Removed login credentials for "+reg.Addr) {
		t.Fatalf("logout: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = e.runEnv(trust, "", "pull", ref)
	if r.code != 1 || !strings.Contains(r.stderr, "401") {
		t.Fatalf("pull after logout: exit %d\n%s", r.code, r.stderr)
	}
	if r = e.runEnv(trust, "", "logout", reg.Addr); !strings.Contains(r.stdout, "Not logged in to "+reg.Addr) {
		t.Errorf("second logout: %s%s", r.stdout, r.stderr)
	}
	if r := e.run("login", reg.Addr, "-u", reg.User); r.code != 2 {
		t.Errorf("login without a password: exit %d", r.code)
	}

	// A credential helper named by credHelpers in config.json.
	helperDir, helperCfg := t.TempDir(), t.TempDir()
	helper := "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread url\n" +
		"printf '{\"ServerURL\":\"%s\",\"Username\":\"" + reg.User + "\",\"Secret\":\"" + reg.Password + "\"}' \"$url\"\n"
	if err := os.WriteFile(filepath.Join(helperDir, "docker-credential-e2e"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := `{"credHelpers":{"` + reg.Addr + `":"e2e"}}`
	if err := os.WriteFile(filepath.Join(helperCfg, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	withHelper := []string{"DOCKER_CONFIG=" + helperCfg, "SSL_CERT_FILE=" + reg.CAFile, "PATH=" + helperDir + ":" + os.Getenv("PATH")}
	if r := regEmptyEnv(t).runEnv(withHelper, "", "pull", ref); r.code != 0 {
		t.Errorf("pull with a credential helper: exit %d\n%s", r.code, r.stderr)
	}
}
