package executor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// fileReader reads files of an image rootfs.
type fileReader interface {
	ReadFile(p string) ([]byte, error)
}

type passwdEntry struct {
	name     string
	uid, gid int
	home     string
}

type groupEntry struct {
	name    string
	gid     int
	members []string
}

func readPasswd(r fileReader) ([]passwdEntry, error) {
	data, err := r.ReadFile("/etc/passwd")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []passwdEntry
	for _, f := range colonLines(data, 7) {
		uid, err1 := strconv.Atoi(f[2])
		gid, err2 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, passwdEntry{name: f[0], uid: uid, gid: gid, home: f[5]})
	}
	return out, nil
}

func readGroup(r fileReader) ([]groupEntry, error) {
	data, err := r.ReadFile("/etc/group")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []groupEntry
	for _, f := range colonLines(data, 4) {
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		var members []string
		if f[3] != "" {
			members = strings.Split(f[3], ",")
		}
		out = append(out, groupEntry{name: f[0], gid: gid, members: members})
	}
	return out, nil
}

// colonLines splits non-comment lines of /etc/passwd-like files into n fields.
func colonLines(data []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		out = append(out, f)
	}
	return out
}

// execUser is a resolved USER.
type execUser struct {
	uid, gid int
	groups   []int
	home     string
}

// resolveUser resolves "user[:group]" (names or ids) against the rootfs,
// like runc's GetExecUser: unknown names are errors, unknown ids are fine.
func resolveUser(r fileReader, spec string) (execUser, error) {
	if spec == "" {
		spec = "0"
	}
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	users, err := readPasswd(r)
	if err != nil {
		return execUser{}, fmt.Errorf("read /etc/passwd: %w", err)
	}
	groups, err := readGroup(r)
	if err != nil {
		return execUser{}, fmt.Errorf("read /etc/group: %w", err)
	}
	u := execUser{home: "/"}
	name := ""
	if id, err := strconv.Atoi(userPart); err == nil {
		u.uid = id
		for _, p := range users {
			if p.uid == id {
				u.gid, u.home, name = p.gid, p.home, p.name
				break
			}
		}
	} else {
		found := false
		for _, p := range users {
			if p.name == userPart {
				u.uid, u.gid, u.home, name, found = p.uid, p.gid, p.home, p.name, true
				break
			}
		}
		if !found {
			return execUser{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(groupPart); err == nil {
			u.gid = id
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					u.gid, found = g.gid, true
					break
				}
			}
			if !found {
				return execUser{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
			}
		}
	} else if name != "" {
		for _, g := range groups {
			for _, m := range g.members {
				if m == name && g.gid != u.gid {
					u.groups = append(u.groups, g.gid)
				}
			}
		}
	}
	if u.uid == 0 && u.home == "/" && name == "" {
		u.home = "/root"
	}
	return u, nil
}

// chownIDs resolves a --chown value to uid/gid. With only a user, the gid
// is the user's primary group when the user is a name, else the same id.
func chownIDs(r fileReader, spec string) (int, int, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	var uid, gid int
	if id, err := strconv.Atoi(userPart); err == nil {
		uid, gid = id, id
	} else {
		users, err := readPasswd(r)
		if err != nil {
			return 0, 0, err
		}
		found := false
		for _, p := range users {
			if p.name == userPart {
				uid, gid, found = p.uid, p.gid, true
				break
			}
		}
		if !found {
			return 0, 0, fmt.Errorf("--chown=%s: unable to find user %s in /etc/passwd", spec, userPart)
		}
	}
	if hasGroup {
		if id, err := strconv.Atoi(groupPart); err == nil {
			gid = id
		} else {
			groups, err := readGroup(r)
			if err != nil {
				return 0, 0, err
			}
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					gid, found = g.gid, true
					break
				}
			}
			if !found {
				return 0, 0, fmt.Errorf("--chown=%s: unable to find group %s in /etc/group", spec, groupPart)
			}
		}
	}
	return uid, gid, nil
}
