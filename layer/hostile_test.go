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

	"github.com/builderdev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name    string
		members func(base string) []testutil.TarEntry
	}{
		{"dotdot", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{testutil.TarFile("../outside/x", "pwn")}
		}},
		{"absolute", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{testutil.TarFile(base+"/outside/x", "pwn")}
		}},
		{"inner dotdot", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{testutil.TarFile("a/../../outside/x", "pwn")}
		}},
		{"symlink to slash", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("evil", "/", tar.TypeSymlink),
				testutil.TarFile("evil"+base+"/outside/x", "pwn"),
			}
		}},
		{"symlink to abs outside", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("evil", base+"/outside", tar.TypeSymlink),
				testutil.TarFile("evil/x", "pwn"),
			}
		}},
		{"symlink up", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("d", "../../", tar.TypeSymlink),
				testutil.TarFile("d/outside/x", "pwn"),
				testutil.TarFile("d/x", "pwn"),
			}
		}},
		{"symlink chain", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("a", "b/..", tar.TypeSymlink),
				testutil.TarLink("b", "../..", tar.TypeSymlink),
				testutil.TarFile("a/outside/x", "pwn"),
			}
		}},
		{"symlink dir then dir", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("d", "../../outside", tar.TypeSymlink),
				testutil.TarDir("d/"),
				testutil.TarFile("d/x", "pwn"),
			}
		}},
		{"file over symlink", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("f", base+"/outside/secret", tar.TypeSymlink),
				testutil.TarFile("f", "pwn"),
			}
		}},
		{"hardlink dotdot", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{testutil.TarLink("h", "../../outside/secret", tar.TypeLink)}
		}},
		{"hardlink absolute", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{testutil.TarLink("h", base+"/outside/secret", tar.TypeLink)}
		}},
		{"hardlink through symlink", func(base string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("s", base+"/outside", tar.TypeSymlink),
				testutil.TarLink("h", "s/secret", tar.TypeLink),
				testutil.TarFile("h", "pwn"),
			}
		}},
		{"hardlink relative symlink", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("s", "../../outside", tar.TypeSymlink),
				testutil.TarLink("h", "s/secret", tar.TypeLink),
			}
		}},
		{"whiteout escape", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("s", "../../outside", tar.TypeSymlink),
				testutil.TarFile("s/.wh.secret", ""),
				testutil.TarFile(".wh..", ""),
			}
		}},
		{"opaque through symlink", func(string) []testutil.TarEntry {
			return []testutil.TarEntry{
				testutil.TarLink("s", "../../outside", tar.TypeSymlink),
				testutil.TarFile("s/.wh..wh..opq", ""),
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
				blob := testutil.TarBytes(t, members...)
				_, err := Apply(context.Background(), target, bytes.NewReader(blob), ApplyOptions{Whiteouts: mode})
				if err != nil && !slices.ContainsFunc(members, func(m testutil.TarEntry) bool {
					return strings.Contains(err.Error(), `"`+m.Header.Name+`"`)
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
	blob := testutil.TarBytes(t,
		testutil.TarFile("/abs/file", "1"),
		testutil.TarFile("./dot/file", "2"),
		testutil.TarLink("evil", "/", tar.TypeSymlink),
		testutil.TarFile("evil/via-root", "3"),
		testutil.TarLink("up", "../../..", tar.TypeSymlink),
		testutil.TarFile("up/via-up", "4"),
		testutil.TarLink("abs/hard", "/abs/file", tar.TypeLink),
		testutil.TarLink("hard2", "evil/abs/file", tar.TypeLink),
	)
	applyBytes(t, dir, blob, WhiteoutReject)
	for p, want := range map[string]string{"abs/file": "1", "dot/file": "2", "via-root": "3", "via-up": "4", "abs/hard": "1", "hard2": "1"} {
		if b, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}
