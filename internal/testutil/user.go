package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
)

// MakeUser makes (if missing) a user named name with a subordinate id
// range starting at sub in /etc/subuid and /etc/subgid, for the rootless
// tests and bench. undo puts the host back as it was before: userdel if
// the user was made here, and both id files as they were before useradd
// (which may add a range of its own, which userdel leaves). Call undo even
// after an error.
func MakeUser(name string, sub int) (uid, gid int, undo func(), err error) {
	var undos []func()
	undo = func() {
		for i := len(undos) - 1; i >= 0; i-- {
			undos[i]()
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, rerr := os.ReadFile(f)
		undos = append(undos, func() {
			if rerr == nil {
				_ = os.WriteFile(f, data, 0o644)
			} else {
				_ = os.Remove(f)
			}
		})
	}
	u, err := user.Lookup(name)
	if err != nil {
		if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
			return 0, 0, undo, fmt.Errorf("useradd: %v: %s", err, out)
		}
		undos = append(undos, func() { _ = exec.Command("userdel", name).Run() })
		if u, err = user.Lookup(name); err != nil {
			return 0, 0, undo, err
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, _ := os.ReadFile(f)
		if bytes.Contains(data, []byte(name+":")) {
			continue
		}
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return 0, 0, undo, err
		}
		_, err = fmt.Fprintf(fh, "%s:%d:65536\n", name, sub)
		if cerr := fh.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return 0, 0, undo, err
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid, undo, nil
}
