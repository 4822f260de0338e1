package e2e

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sshKey is an ed25519 key made by ssh-keygen: its file, the public key
// blob and a line of the private key file (what must never leak).
type sshKey struct {
	path   string
	blob   []byte
	secret string
}

func newSSHKey(t *testing.T) sshKey {
	t.Helper()
	for _, tool := range []string{"ssh-keygen", "ssh-agent", "ssh-add"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian: openssh-client)", tool)
		}
	}
	k := sshKey{path: filepath.Join(t.TempDir(), "id_ed25519")}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", k.path).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(k.path + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if k.blob, err = base64.StdEncoding.DecodeString(strings.Fields(string(pub))[1]); err != nil {
		t.Fatal(err)
	}
	priv, err := os.ReadFile(k.path)
	if err != nil {
		t.Fatal(err)
	}
	// The private half is in the key file's last full base64 lines.
	lines := strings.Split(strings.TrimSpace(string(priv)), "\n")
	k.secret = lines[len(lines)-3]
	return k
}

// startAgent starts an ssh-agent holding key, as a user's session has one;
// it is stopped (by its pid) when the test ends.
func startAgent(t *testing.T, key string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		if i == 200 {
			t.Fatal("ssh-agent did not listen")
		}
		time.Sleep(10 * time.Millisecond)
	}
	add := exec.Command("ssh-add", "-q", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	return sock
}

// checkSignature verifies a line of sshsign: the key is k and the
// signature of challenge is good.
func checkSignature(t *testing.T, what, line string, k sshKey, challenge string) {
	t.Helper()
	f := strings.Fields(line)
	if len(f) != 2 {
		t.Fatalf("%s: sshsign printed %q", what, line)
	}
	blob, err1 := base64.StdEncoding.DecodeString(f[0])
	sig, err2 := base64.StdEncoding.DecodeString(f[1])
	if err1 != nil || err2 != nil || !bytes.Equal(blob, k.blob) {
		t.Fatalf("%s: the agent signed with another key (%q)", what, line)
	}
	field := func(b []byte, i int) []byte { // the i-th SSH string of b
		for ; i > 0; i-- {
			b = b[4+binary.BigEndian.Uint32(b):]
		}
		return b[4 : 4+binary.BigEndian.Uint32(b)]
	}
	if string(field(sig, 0)) != "ssh-ed25519" || !ed25519.Verify(field(blob, 1), []byte(challenge), field(sig, 1)) {
		t.Fatalf("%s: the signature of the challenge does not verify", what)
	}
}

// TestSSHForward: a RUN proves it can use a key (the agent signs a
// challenge through the forwarded socket) from the user's agent (--ssh
// default) and from a key file (builder's own agent), as root with
// BuildKit's default socket and as another user with its own target in a
// RUN with no network; the key is in no file of the state dir or the
// image, the sockets are not in the layer, no agent outlives the build,
// and an ssh mount does not change the cache key (as in BuildKit).
func TestSSHForward(t *testing.T) {
	e := newEnv(t)
	k := newSSHKey(t)
	sock := startAgent(t, k.path)
	ctx := writeContext(t, map[string]string{
		"Dockerfile": `FROM busybox
COPY sshsign /usr/local/bin/sshsign
ARG CHALLENGE
RUN --mount=type=ssh sshsign "$CHALLENGE" > /sig-default && echo "$SSH_AUTH_SOCK" > /sock-default
USER 1000
RUN --network=none --mount=type=ssh,id=kf,target=/tmp/a.sock,uid=1000,mode=0600 \
    SSH_AUTH_SOCK=/tmp/a.sock sshsign "$CHALLENGE" > /tmp/sig-user && stat -c '%u %a %F' /tmp/a.sock > /tmp/sock-user
`,
	})
	helper := exec.Command("go", "build", "-o", filepath.Join(ctx, "sshsign"), "./testdata/sshsign")
	helper.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := helper.CombinedOutput(); err != nil {
		t.Fatalf("build sshsign: %v\n%s", err, out)
	}
	challenge := hex.EncodeToString(randomBytes(t, 16))
	out := t.TempDir()
	r := e.runEnv([]string{"SSH_AUTH_SOCK=" + sock}, "", "build", "--ssh", "default", "--ssh", "kf="+k.path,
		"--build-arg", "CHALLENGE="+challenge, "-t", "ssh:v1", "-o", "type=local,dest="+out, ctx)
	if r.code != 0 {
		t.Fatalf("build: exit %d\n%s", r.code, r.stderr)
	}
	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(data))
	}
	checkSignature(t, "--ssh default", read("sig-default"), k, challenge)
	checkSignature(t, "--ssh kf=KEYFILE", read("tmp/sig-user"), k, challenge)
	if got := read("sock-default"); got != "/run/buildkit/ssh_agent.0" {
		t.Errorf("SSH_AUTH_SOCK = %q, want BuildKit's /run/buildkit/ssh_agent.0", got)
	}
	if got := read("tmp/sock-user"); got != "1000 600 socket" {
		t.Errorf("socket owner, mode, type = %q", got)
	}
	for _, p := range []string{"run/buildkit", "tmp/a.sock"} {
		if _, err := os.Lstat(filepath.Join(out, p)); err == nil {
			t.Errorf("/%s is in the image", p)
		}
	}
	// The private key is in no file of the state dir (blobs, configs,
	// cache records, snapshots) nor of the image's rootfs.
	for _, dir := range []string{e.root, out} {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			if data, err := os.ReadFile(p); err == nil && bytes.Contains(data, []byte(k.secret)) {
				t.Errorf("the private key is in %s", p)
			}
			return nil
		})
	}
	if ents, _ := filepath.Glob(filepath.Join(e.root, "tmp", "*", "ssh-*")); len(ents) > 0 {
		t.Errorf("ssh dirs left in the state dir: %v", ents)
	}
	if pids := agentsUsing(e.root); len(pids) > 0 {
		t.Errorf("ssh-agent processes left running: %v", pids)
	}
	// The agent is not an input: a rebuild with the agents swapped is all hits.
	r = e.runEnv([]string{"SSH_AUTH_SOCK=" + sock}, "", "build", "--ssh", "default="+k.path, "--ssh", "kf",
		"--build-arg", "CHALLENGE="+challenge, "-t", "ssh:v1", ctx)
	if r.code != 0 || countLines(r.stderr, "CACHED") != 3 {
		t.Errorf("rebuild: exit %d, want 3 CACHED steps:\n%s", r.code, r.stderr)
	}
}

// agentsUsing lists ssh-agent processes whose socket is under root.
func agentsUsing(root string) []string {
	var pids []string
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err == nil && bytes.HasPrefix(data, []byte("ssh-agent\x00")) && bytes.Contains(data, []byte(root)) {
			pids = append(pids, filepath.Base(filepath.Dir(p)))
		}
	}
	return pids
}

// TestSSHMountMissing: required=true with no such --ssh is an error at
// its line; an optional mount whose id was not given runs without a socket.
func TestSSHMountMissing(t *testing.T) {
	e := newEnv(t)
	ctx := writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\nRUN --mount=type=ssh,id=gh,required=true true\n"})
	r := e.run("build", ctx)
	if r.code != 1 || !strings.Contains(r.stderr, `ssh agent "gh" is required`) || !strings.Contains(r.stderr, "Dockerfile:3") {
		t.Errorf("missing required agent: exit %d\n%s", r.code, r.stderr)
	}
	// Bad --ssh values are usage errors.
	if r := e.runEnv([]string{"SSH_AUTH_SOCK="}, "", "build", "--ssh", "default", ctx); r.code != 2 || !strings.Contains(r.stderr, "SSH_AUTH_SOCK is not set") {
		t.Errorf("--ssh default with no agent: exit %d\n%s", r.code, r.stderr)
	}
	if r := e.run("build", "--ssh", "gh=/nonexistent/key", ctx); r.code == 0 || !strings.Contains(r.stderr, "--ssh gh") {
		t.Errorf("--ssh with a missing key file: exit %d\n%s", r.code, r.stderr)
	}
	ctx = writeContext(t, map[string]string{"Dockerfile": "FROM busybox\nRUN --mount=type=ssh test ! -e /run/buildkit/ssh_agent.0 && echo \"sock=$SSH_AUTH_SOCK\"\n"})
	r = e.run("build", "--progress", "plain", ctx)
	if r.code != 0 || !strings.Contains(r.stderr, "sock=/run/buildkit/ssh_agent.0") {
		t.Errorf("optional agent not given: exit %d\n%s", r.code, r.stderr)
	}
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}
