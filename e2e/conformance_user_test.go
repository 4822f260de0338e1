package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestConformanceUserID checks what `id` prints in a RUN after each form
// of USER, against what BuildKit with runc gives: BuildKit's executor/oci
// GetUser ("uid:gid" fast path, else moby/sys/user GetExecUser), with the
// gid always added to the supplementary groups (ensureAdditionalGids);
// runc then calls setgroups with exactly that list. The kernel sorts the
// groups, so busybox id prints them in ascending order.
func TestConformanceUserID(t *testing.T) {
	e := newEnv(t)
	passwd := "root:x:0:0:root:/root:/bin/sh\n" +
		"app:x:1000:1000:app:/home/app:/bin/sh\n" +
		"solo:x:1001:1001::/home/solo:/bin/sh\n"
	group := "root:x:0:\n" +
		"wheel:x:10:root,app\n" +
		"app:x:1000:\n" +
		"dev:x:2000:app,solo\n" +
		"extra:x:3000:\n"
	cases := []struct{ user, want, home string }{
		{"", "uid=0(root) gid=0(root) groups=0(root),10(wheel)", "/root"},
		{"root", "uid=0(root) gid=0(root) groups=0(root),10(wheel)", "/root"},
		{"0", "uid=0(root) gid=0(root) groups=0(root),10(wheel)", "/root"},
		{"root:root", "uid=0(root) gid=0(root) groups=0(root)", "/root"},
		{"0:0", "uid=0(root) gid=0(root) groups=0(root)", "/root"},
		{"app", "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),2000(dev)", "/home/app"},
		{"1000", "uid=1000(app) gid=1000(app) groups=10(wheel),1000(app),2000(dev)", "/home/app"},
		{"app:dev", "uid=1000(app) gid=2000(dev) groups=2000(dev)", "/home/app"},
		{"app:3000", "uid=1000(app) gid=3000(extra) groups=3000(extra)", "/home/app"},
		{"app:4242", "uid=1000(app) gid=4242 groups=4242", "/home/app"},
		{"1000:wheel", "uid=1000(app) gid=10(wheel) groups=10(wheel)", "/home/app"},
		{"1000:1000", "uid=1000(app) gid=1000(app) groups=1000(app)", "/home/app"},
		{"solo", "uid=1001(solo) gid=1001 groups=1001,2000(dev)", "/home/solo"},
		{"4000", "uid=4000 gid=0(root) groups=0(root)", "/"},
		{"4000:4001", "uid=4000 gid=4001 groups=4001", "/"},
		{"4000:dev", "uid=4000 gid=2000(dev) groups=2000(dev)", "/"},
	}
	var df strings.Builder
	df.WriteString("FROM busybox\nCOPY passwd group /etc/\n")
	want := map[string]string{}
	for i, c := range cases {
		if c.user != "" {
			fmt.Fprintf(&df, "USER %s\n", c.user)
		}
		fmt.Fprintf(&df, "RUN echo \"id%d=$(id)\" && echo \"home%d=$HOME\"\n", i, i)
		want[fmt.Sprintf("id%d", i)] = c.want
		want[fmt.Sprintf("home%d", i)] = c.home
	}
	dir := writeContext(t, map[string]string{"Dockerfile": df.String(), "passwd": passwd, "group": group})
	r := e.mustRun("build", "--no-cache", dir, "-t", "userid:v1")
	wantOutputs(t, r.stderr, want)

	// Errors: unknown names, and a gid out of GetExecUser's range.
	for _, c := range []struct{ user, msg string }{
		{"ghost", "unable to find user ghost: no matching entries in passwd file"},
		{"app:ghosts", "unable to find group ghosts: no matching entries in group file"},
		{"4000:ghosts", "unable to find group ghosts: no matching entries in group file"},
	} {
		dir := writeContext(t, map[string]string{
			"Dockerfile": "FROM busybox\nCOPY passwd group /etc/\nUSER " + c.user + "\nRUN id\n",
			"passwd":     passwd, "group": group,
		})
		r := e.run("build", dir)
		if r.code != 1 || !strings.Contains(r.stderr, c.msg) {
			t.Errorf("USER %s: exit %d, want 1 and %q:\n%s", c.user, r.code, c.msg, r.stderr)
		}
	}
}
