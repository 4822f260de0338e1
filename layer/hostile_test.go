//go:build linux

package layer

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name    string
		members func(base string) []tarEntry
	}{
		{"dotdot", func(string) []tarEntry {
			return []tarEntry{{name: "../outside/x", typ: tar.TypeReg, body: "pwn"}}
		}},
		{"absolute", func(base string) []tarEntry {
			return []tarEntry{{name: base + "/outside/x", typ: tar.TypeReg, body: "pwn"}}
		}},
		{"inner dotdot", func(string) []tarEntry {
			return []tarEntry{{name: "a/../../outside/x", typ: tar.TypeReg, body: "pwn"}}
		}},
		{"symlink to slash", func(base string) []tarEntry {
			return []tarEntry{
				{name: "evil", typ: tar.TypeSymlink, link: "/"},
				{name: "evil" + base + "/outside/x", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"symlink to abs outside", func(base string) []tarEntry {
			return []tarEntry{
				{name: "evil", typ: tar.TypeSymlink, link: base + "/outside"},
				{name: "evil/x", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"symlink up", func(string) []tarEntry {
			return []tarEntry{
				{name: "d", typ: tar.TypeSymlink, link: "../../"},
				{name: "d/outside/x", typ: tar.TypeReg, body: "pwn"},
				{name: "d/x", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"symlink chain", func(string) []tarEntry {
			return []tarEntry{
				{name: "a", typ: tar.TypeSymlink, link: "b/.."},
				{name: "b", typ: tar.TypeSymlink, link: "../.."},
				{name: "a/outside/x", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"symlink dir then dir", func(string) []tarEntry {
			return []tarEntry{
				{name: "d", typ: tar.TypeSymlink, link: "../../outside"},
				{name: "d/", typ: tar.TypeDir},
				{name: "d/x", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"file over symlink", func(base string) []tarEntry {
			return []tarEntry{
				{name: "f", typ: tar.TypeSymlink, link: base + "/outside/secret"},
				{name: "f", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"hardlink dotdot", func(string) []tarEntry {
			return []tarEntry{{name: "h", typ: tar.TypeLink, link: "../../outside/secret"}}
		}},
		{"hardlink absolute", func(base string) []tarEntry {
			return []tarEntry{{name: "h", typ: tar.TypeLink, link: base + "/outside/secret"}}
		}},
		{"hardlink through symlink", func(base string) []tarEntry {
			return []tarEntry{
				{name: "s", typ: tar.TypeSymlink, link: base + "/outside"},
				{name: "h", typ: tar.TypeLink, link: "s/secret"},
				{name: "h", typ: tar.TypeReg, body: "pwn"},
			}
		}},
		{"hardlink relative symlink", func(string) []tarEntry {
			return []tarEntry{
				{name: "s", typ: tar.TypeSymlink, link: "../../outside"},
				{name: "h", typ: tar.TypeLink, link: "s/secret"},
			}
		}},
		{"whiteout escape", func(string) []tarEntry {
			return []tarEntry{
				{name: "s", typ: tar.TypeSymlink, link: "../../outside"},
				{name: "s/.wh.secret", typ: tar.TypeReg},
				{name: ".wh..", typ: tar.TypeReg},
			}
		}},
		{"opaque through symlink", func(string) []tarEntry {
			return []tarEntry{
				{name: "s", typ: tar.TypeSymlink, link: "../../outside"},
				{name: "s/.wh..wh..opq", typ: tar.TypeReg},
			}
		}},
	}
	for _, c := range cases {
		for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
			t.Run(fmt.Sprintf("%s/mode%d", c.name, mode), func(t *testing.T) {
				base := t.TempDir()
				target := filepath.Join(base, "a", "root")
				outside := filepath.Join(base, "outside")
				for _, d := range []string{target, outside} {
					if err := os.MkdirAll(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				secret := filepath.Join(outside, "secret")
				if err := os.WriteFile(secret, []byte("keep"), 0o644); err != nil {
					t.Fatal(err)
				}
				members := c.members(base)
				blob := buildTar(t, members...)
				_, err := Apply(context.Background(), target, bytes.NewReader(blob), ApplyOptions{Whiteouts: mode})
				if err != nil && !slices.ContainsFunc(members, func(m tarEntry) bool {
					return strings.Contains(err.Error(), `"`+m.name+`"`)
				}) {
					t.Errorf("error %q names no entry", err)
				}
				t.Logf("err = %v", err)
				assertOnly(t, base, "a", "outside")
				assertOnly(t, filepath.Join(base, "a"), "root")
				assertOnly(t, outside, "secret")
				var st unix.Stat_t
				if err := unix.Lstat(secret, &st); err != nil || st.Nlink != 1 || st.Size != 4 {
					t.Errorf("secret touched: err=%v nlink=%d size=%d", err, st.Nlink, st.Size)
				}
				if b, _ := os.ReadFile(secret); string(b) != "keep" {
					t.Errorf("secret content %q", b)
				}
			})
		}
	}
}

// assertOnly fails unless dir holds exactly names.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, de := range des {
		got = append(got, de.Name())
	}
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

func TestApplyLandsInside(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	blob := buildTar(t,
		tarEntry{name: "/abs/file", typ: tar.TypeReg, body: "1"},
		tarEntry{name: "./dot/file", typ: tar.TypeReg, body: "2"},
		tarEntry{name: "evil", typ: tar.TypeSymlink, link: "/"},
		tarEntry{name: "evil/via-root", typ: tar.TypeReg, body: "3"},
		tarEntry{name: "up", typ: tar.TypeSymlink, link: "../../.."},
		tarEntry{name: "up/via-up", typ: tar.TypeReg, body: "4"},
		tarEntry{name: "abs/hard", typ: tar.TypeLink, link: "/abs/file"},
		tarEntry{name: "hard2", typ: tar.TypeLink, link: "evil/abs/file"},
	)
	applyBytes(t, dir, blob, WhiteoutReject)
	for p, want := range map[string]string{"abs/file": "1", "dot/file": "2", "via-root": "3", "via-up": "4", "abs/hard": "1", "hard2": "1"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}
