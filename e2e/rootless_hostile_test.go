//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builderdev/builder/internal/testutil"
)

// The hostile cases, run by an unprivileged user (builder in its own user
// namespace): hostile archives, context symlinks pointing out, and the
// escapes a RUN tries give what they give as root, and nothing lands
// outside the user's dirs or on the host.
func TestRootlessHostile(t *testing.T) {
	u := newUserEnv(t)
	root := filepath.Join(u.home, "root-hostile")
	u.mustRun(root, "load", "-i", filepath.Join(u.home, "busybox.tar"))
	host, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("ADD", func(t *testing.T) {
		allowed := []string{filepath.Join(root, "snapshots")}
		for _, tc := range hostileTars() {
			ctx := u.context(map[string]string{"Dockerfile": "FROM busybox:latest\nADD hostile.tar /dst/\n"})
			tarPath := filepath.Join(ctx, "hostile.tar")
			testutil.WriteTar(t, tarPath, tc.ents...)
			if err := os.Chmod(tarPath, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(u.home, "out-"+strings.ReplaceAll(tc.name, " ", "-"))
			allowed = append(allowed, filepath.Join(out, "dst"))
			r := u.run(root, "build", ctx, "-o", "type=local,dest="+out)
			switch r.code {
			case 0:
				checkAddRootfs(t, out, host)
			case 1:
				if msg := errorLine(r.stderr); !strings.HasPrefix(msg, "error: Dockerfile:2: ADD hostile.tar /dst/: ") || !strings.Contains(msg, tc.entry) {
					t.Errorf("%s: error %q: want Dockerfile:2 and the entry %q named", tc.name, msg, tc.entry)
				}
			default:
				t.Errorf("%s: exit %d, want 0 or 1:\n%s", tc.name, r.code, r.stderr)
			}
			if evil := findEvil(t, u.home, allowed...); len(evil) > 0 {
				t.Errorf("%s: files escaped the destination: %v", tc.name, evil)
			}
			hostPathsUntouched(t)
		}
	})

	t.Run("context symlinks", func(t *testing.T) {
		// A symlink out of the context inside a copied dir is copied as a
		// symlink; a source path through one resolves inside the context,
		// where it is not.
		ctx := u.context(map[string]string{"Dockerfile": "FROM busybox:latest\nCOPY sub/ /s/\n", "sub/f": "f\n"})
		for name, target := range map[string]string{"sub/link": "/etc/passwd", "link": "/etc/passwd", "dir": "/etc"} {
			if err := os.Symlink(target, filepath.Join(ctx, name)); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(u.home, "out-links")
		if r := u.run(root, "build", ctx, "-o", "type=local,dest="+out); r.code != 0 {
			t.Fatalf("COPY sub/: exit %d\n%s", r.code, r.stderr)
		}
		if l, err := os.Readlink(filepath.Join(out, "s", "link")); err != nil || l != "/etc/passwd" {
			t.Errorf("/s/link = %q, %v: want the symlink itself", l, err)
		}
		for _, df := range []string{"COPY link /l", "COPY dir/passwd /p"} {
			if err := os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox:latest\n"+df+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if r := u.run(root, "build", ctx); r.code != 1 || !strings.Contains(r.stderr, "Dockerfile:2") || strings.Contains(r.stderr, "root:x:0:0") {
				t.Errorf("%s: exit %d, want 1 naming the line\n%s", df, r.code, r.stderr)
			}
		}
	})

	t.Run("RUN escapes", func(t *testing.T) {
		ctx := u.context(map[string]string{"Dockerfile": `FROM busybox:latest
RUN mount -t tmpfs none /mnt 2>/dev/null; echo "mount=$?"; echo 1 > /proc/sysrq-trigger 2>/dev/null; echo "sysrq=$?"; touch /sys/x 2>/dev/null; echo "sysrw=$?"; echo x > /proc/sys/kernel/domainname 2>/dev/null; echo "procsys=$?"; echo "seccomp=$(grep Seccomp: /proc/self/status | cut -f2)"; echo "nnp=$(grep NoNewPrivs: /proc/self/status | cut -f2)"; echo x > /proc/1/root/evil-escape 2>/dev/null; echo "evil=$(ls /evil-escape 2>/dev/null | wc -l)"
`})
		r := u.run(root, "build", "--progress", "plain", "--no-cache", ctx)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		wantOutputs(t, r.stderr, map[string]string{"mount": "1", "sysrq": "1", "sysrw": "1", "procsys": "1", "seccomp": "2", "nnp": "1", "evil": "1"})
		if _, err := os.Lstat("/evil-escape"); err == nil {
			t.Errorf("a rootless RUN wrote /evil-escape on the host")
		}
	})
}
