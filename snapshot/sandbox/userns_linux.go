package sandbox

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// usernsEnv marks the steps of the rootless re-exec: "wait" in the process
// started in the new namespaces (it waits for its id maps, then execs
// itself again to become root there with every capability of the
// namespace), "root" in that second exec.
const usernsEnv = "_BUILDER_USERNS"

// EnterUserNS makes builder run by a user who is not root work like root:
// it runs this program again in a new user and mount namespace, mapped
// from the user's subordinate ids (/etc/subuid, /etc/subgid, through
// newuidmap/newgidmap), where it is root, can chown to those ids, mount
// overlayfs and start sandboxes. main() calls it first, after IsInit.
//
// It returns (code, true) in the original process, once the re-executed
// one exited with code; (0, false) where builder goes on: as root of the
// host, in the re-executed process, or already in a user namespace of
// someone else (root of a pod's namespace), which needs no re-exec.
func EnterUserNS() (int, bool) {
	switch os.Getenv(usernsEnv) {
	case "wait":
		becomeRoot()
	case "root":
		return 0, false
	}
	if os.Geteuid() == 0 {
		return 0, false
	}
	code, err := reexecInUserNS()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: run as an unprivileged user: %v\n", err)
		return 1, true
	}
	return code, true
}

// WillReexec reports whether EnterUserNS would run this program again in a
// user namespace (a user who is not root, not re-executed yet).
func WillReexec() bool { return os.Getenv(usernsEnv) == "" && os.Geteuid() != 0 }

// Reexecuted reports whether this process is builder re-executed in its
// own user namespace (it is root there, but the state dir is the user's).
func Reexecuted() bool { return os.Getenv(usernsEnv) == "root" }

// becomeRoot waits (fd 3) until the parent wrote the id maps, then execs
// this program again: mapped to root now, the exec grants every
// capability of the namespace (the first exec, unmapped, dropped them).
func becomeRoot() {
	f := os.NewFile(3, "userns-sync")
	_, _ = io.Copy(io.Discard, f)
	f.Close()
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "error: run as an unprivileged user: the user namespace has no id map")
		os.Exit(1)
	}
	env := withEnv(os.Environ(), usernsEnv, "root")
	exe, err := os.Executable()
	if err == nil {
		err = unix.Exec(exe, os.Args, env)
	}
	fmt.Fprintf(os.Stderr, "error: run as an unprivileged user: re-exec: %v\n", err)
	os.Exit(1)
}

// reexecInUserNS starts this program in new user and mount namespaces,
// writes its id maps, forwards SIGINT and SIGTERM, and returns its exit
// status.
func reexecInUserNS() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Args[0] = os.Args[0]
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = withEnv(os.Environ(), usernsEnv, "wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER | unix.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return 0, fmt.Errorf("start in a user namespace: %w (are user namespaces enabled?)", err)
	}
	r.Close()
	warning, err := writeIDMaps(cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		w.Close()
		return 0, err
	}
	if warning != "" {
		fmt.Fprintln(os.Stderr, "WARNING:", warning)
	}
	w.Close() // the child goes on
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case s := <-sigs:
			_ = cmd.Process.Signal(s)
		case err := <-done:
			var ee *exec.ExitError
			switch {
			case err == nil:
				return 0, nil
			case errors.As(err, &ee):
				if st, ok := ee.Sys().(syscall.WaitStatus); ok && st.Signaled() {
					return 128 + int(st.Signal()), nil
				}
				return ee.ExitCode(), nil
			}
			return 0, err
		}
	}
}

// writeIDMaps maps root of pid's namespace to this user and ids 1.. to
// the user's subordinate ranges; without ranges, this user alone (and
// says what that breaks).
func writeIDMaps(pid int) (string, error) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	subU, okU := subIDs("/etc/subuid", name, uid)
	subG, okG := subIDs("/etc/subgid", name, gid)
	p := strconv.Itoa(pid)
	if okU && okG {
		if err := idmap("newuidmap", p, uid, subU); err != nil {
			return "", err
		}
		return "", idmap("newgidmap", p, gid, subG)
	}
	// One id: a process may map its own ids (after denying setgroups).
	for _, f := range []struct{ file, data string }{
		{"uid_map", fmt.Sprintf("0 %d 1\n", uid)}, {"setgroups", "deny"}, {"gid_map", fmt.Sprintf("0 %d 1\n", gid)},
	} {
		if err := os.WriteFile("/proc/"+p+"/"+f.file, []byte(f.data), 0); err != nil {
			return "", fmt.Errorf("write %s: %w", f.file, err)
		}
	}
	return fmt.Sprintf("%s has no subordinate ids in /etc/subuid and /etc/subgid: only root (your own id) exists in the build, "+
		"so base images with files of other owners cannot be unpacked and chown in RUN fails "+
		"(add a line \"%s:100000:65536\" to both files; Debian's uidmap package provides newuidmap)", name, name), nil
}

// idRange is count subordinate ids from start.
type idRange struct{ start, count int }

func idmap(tool, pid string, id int, sub []idRange) error {
	args := []string{pid, "0", strconv.Itoa(id), "1"}
	next := 1
	for _, r := range sub {
		args = append(args, strconv.Itoa(next), strconv.Itoa(r.start), strconv.Itoa(r.count))
		next += r.count
	}
	out, err := exec.Command(tool, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s (is Debian's uidmap package installed?)", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// subIDs reads the ranges of a user (by name or id) from /etc/subuid-like files.
func subIDs(file, name string, id int) ([]idRange, bool) {
	f, err := os.Open(file)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var out []idRange
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(strings.TrimSpace(sc.Text()), ":")
		if len(parts) != 3 || (parts[0] != name && parts[0] != strconv.Itoa(id)) {
			continue
		}
		start, err1 := strconv.Atoi(parts[1])
		count, err2 := strconv.Atoi(parts[2])
		if err1 == nil && err2 == nil && count > 0 {
			out = append(out, idRange{start, count})
		}
	}
	return out, len(out) > 0
}

// withEnv is env with k set to v (replaced, not added: the first of two
// entries wins).
func withEnv(env []string, k, v string) []string {
	out := make([]string, 0, len(env)+1)
	for _, e := range env {
		if !strings.HasPrefix(e, k+"=") {
			out = append(out, e)
		}
	}
	return append(out, k+"="+v)
}
