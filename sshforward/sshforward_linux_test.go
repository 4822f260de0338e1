package sshforward

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// newKey makes an ed25519 key with ssh-keygen and returns its path and its
// public key blob.
func newKey(t *testing.T) (string, []byte) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("ssh-keygen not installed (Debian: openssh-client)")
	}
	key := filepath.Join(t.TempDir(), "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(key + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Fields(string(pub))[1])
	if err != nil {
		t.Fatal(err)
	}
	return key, blob
}

// identities asks the agent at sock for its keys (SSH_AGENTC_REQUEST_IDENTITIES).
func identities(t *testing.T, sock string) [][]byte {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte{0, 0, 0, 1, 11}); err != nil {
		t.Fatal(err)
	}
	var n uint32
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, n)
	if _, err := io.ReadFull(c, msg); err != nil {
		t.Fatal(err)
	}
	if msg[0] != 12 {
		t.Fatalf("answer type %d, want 12", msg[0])
	}
	count := binary.BigEndian.Uint32(msg[1:])
	rest := msg[5:]
	var out [][]byte
	for range count {
		l := binary.BigEndian.Uint32(rest)
		out = append(out, rest[4:4+l])
		rest = rest[4+l:]
		l = binary.BigEndian.Uint32(rest) // comment
		rest = rest[4+l:]
	}
	return out
}

func TestKeyFileAgentThroughProxy(t *testing.T) {
	key, blob := newKey(t)
	dir := t.TempDir()
	a, err := Open(context.Background(), []Spec{{ID: "k", Paths: []string{key}}}, filepath.Join(dir, "work"))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Has("k") || a.Has("default") {
		t.Fatalf("ids %v", a.IDs())
	}
	child := a.children[0].cmd.Process.Pid
	p, stop, err := a.Listen("k", dir, os.Getuid(), os.Getgid(), 0o640)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o640 {
		t.Fatalf("socket %s: %v %v", p, fi.Mode(), err)
	}
	ids := identities(t, p)
	if len(ids) != 1 || !bytes.Equal(ids[0], blob) {
		t.Fatalf("identities through the proxy: %x, want %x", ids, blob)
	}
	// A socket spec forwards to that socket (here: the agent above).
	b, err := Open(context.Background(), []Spec{{ID: "default", Paths: []string{a.upstream["k"]}}}, filepath.Join(dir, "work2"))
	if err != nil {
		t.Fatal(err)
	}
	p2, stop2, err := b.Listen("default", dir, os.Getuid(), os.Getgid(), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if ids := identities(t, p2); len(ids) != 1 {
		t.Fatalf("identities through a socket spec: %d", len(ids))
	}
	if err := errors.Join(stop2(), b.Close(), stop()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after stop: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(child, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("ssh-agent %d still alive after Close: %v", child, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("work dir left after Close: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	key, _ := newKey(t)
	dir := t.TempDir()
	enc := filepath.Join(dir, "enc")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", enc).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	l, err := net.Listen("unix", filepath.Join(dir, "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tc := range []struct {
		specs []Spec
		want  string
	}{
		{[]Spec{{ID: "a", Paths: []string{key}}, {ID: "a", Paths: []string{key}}}, "duplicate id"},
		{[]Spec{{ID: "a"}}, "no agent socket"},
		{[]Spec{{ID: "a", Paths: []string{filepath.Join(dir, "missing")}}}, "no such file"},
		{[]Spec{{ID: "a", Paths: []string{dir}}}, "neither an agent socket nor a key file"},
		{[]Spec{{ID: "a", Paths: []string{filepath.Join(dir, "s"), key}}}, "only path"},
		{[]Spec{{ID: "a", Paths: []string{enc}}}, "passphrase"},
	} {
		a, err := Open(context.Background(), tc.specs, filepath.Join(t.TempDir(), "w"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			if a != nil {
				a.Close()
			}
			t.Errorf("Open(%v) = %v, want an error containing %q", tc.specs, err, tc.want)
		}
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Spec
		err  bool
	}{
		{in: "default", want: Spec{ID: "default"}},
		{in: "=/a", want: Spec{ID: "default", Paths: []string{"/a"}}},
		{in: "gh=/k1,/k2", want: Spec{ID: "gh", Paths: []string{"/k1", "/k2"}}},
		{in: "gh=/k1,", err: true},
		{in: "a b=/x", err: true},
	} {
		got, err := ParseSpec(tc.in)
		if (err != nil) != tc.err || err == nil && (got.ID != tc.want.ID || strings.Join(got.Paths, ",") != strings.Join(tc.want.Paths, ",")) {
			t.Errorf("ParseSpec(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
